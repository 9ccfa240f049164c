/*
 * inbuf: streamed stdin of exec jobs; contract in inbuf.h.
 *
 * The bytes wait in a ring of INBUF_MAX bytes, allocated when the first
 * bytes come. Writers write 1 to the eventfd after each append; the worker
 * reads it to zero and drains the ring into the pipe.
 */
#include "daemon/executors/process/inbuf.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/base/memory.h"

#define BUCKETS 256

struct inbuf {
	atomic_int references;
	uint64_t id;         /* set at creation */
	int wake_fd;         /* the eventfd; closed when the last reference goes */
	struct inbuf *hash_next; /* table_lock */
	pthread_mutex_t lock; /* guards the rest */
	char *ring;          /* INBUF_MAX bytes, NULL until needed */
	size_t start, count;
	bool eof;            /* the writer said so */
	bool gone;           /* the command's side ended */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inbuf *buckets[BUCKETS];

static size_t bucket_of(uint64_t id)
{
	return (size_t)(id % BUCKETS);
}

struct inbuf *inbuf_open(uint64_t id)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct inbuf *buffer = memory_zalloc(sizeof(*buffer));
	atomic_init(&buffer->references, 2); /* the table's and the caller's */
	buffer->id = id;
	buffer->wake_fd = fd;
	pthread_mutex_init(&buffer->lock, NULL);
	pthread_mutex_lock(&table_lock);
	buffer->hash_next = buckets[bucket_of(id)];
	buckets[bucket_of(id)] = buffer;
	pthread_mutex_unlock(&table_lock);
	return buffer;
}

struct inbuf *inbuf_find(uint64_t id)
{
	pthread_mutex_lock(&table_lock);
	struct inbuf *buffer = buckets[bucket_of(id)];
	while (buffer != NULL && buffer->id != id)
		buffer = buffer->hash_next;
	if (buffer != NULL)
		atomic_fetch_add_explicit(&buffer->references, 1, memory_order_relaxed);
	pthread_mutex_unlock(&table_lock);
	return buffer;
}

struct inbuf *inbuf_ref(struct inbuf *buffer)
{
	atomic_fetch_add_explicit(&buffer->references, 1, memory_order_relaxed);
	return buffer;
}

void inbuf_unref(struct inbuf *buffer)
{
	if (buffer == NULL)
		return;
	/* acq_rel: the last dropper sees the others' writes before freeing. */
	if (atomic_fetch_sub_explicit(&buffer->references, 1, memory_order_acq_rel) != 1)
		return;
	close(buffer->wake_fd);
	free(buffer->ring);
	pthread_mutex_destroy(&buffer->lock);
	free(buffer);
}

void inbuf_end(struct inbuf *buffer)
{
	bool listed = false;
	pthread_mutex_lock(&table_lock);
	struct inbuf **link = &buckets[bucket_of(buffer->id)];
	while (*link != NULL && *link != buffer)
		link = &(*link)->hash_next;
	if (*link == buffer) {
		*link = buffer->hash_next;
		listed = true;
	}
	pthread_mutex_lock(&buffer->lock);
	buffer->gone = true;
	free(buffer->ring);
	buffer->ring = NULL;
	buffer->count = 0;
	pthread_mutex_unlock(&buffer->lock);
	pthread_mutex_unlock(&table_lock);
	if (listed)
		inbuf_unref(buffer); /* the table's */
}

bool inbuf_append(struct inbuf *buffer, const void *data, size_t length, bool eof,
                  size_t *accepted)
{
	const char *bytes = data;
	size_t taken = 0;
	pthread_mutex_lock(&buffer->lock);
	if (buffer->gone || buffer->eof) {
		pthread_mutex_unlock(&buffer->lock);
		*accepted = 0;
		return false;
	}
	if (length > 0 && buffer->ring == NULL)
		buffer->ring = memory_alloc(INBUF_MAX);
	while (taken < length && buffer->count < INBUF_MAX) {
		size_t end = (buffer->start + buffer->count) % INBUF_MAX;
		size_t room = end >= buffer->start ? INBUF_MAX - end : buffer->start - end;
		if (room > INBUF_MAX - buffer->count)
			room = INBUF_MAX - buffer->count;
		size_t part = length - taken < room ? length - taken : room;
		memcpy(buffer->ring + end, bytes + taken, part);
		buffer->count += part;
		taken += part;
	}
	if (eof && taken == length)
		buffer->eof = true;
	pthread_mutex_unlock(&buffer->lock);
	uint64_t one = 1;
	/* EAGAIN only when the counter is near 2^64: the worker is awake anyway. */
	ssize_t wrote = write(buffer->wake_fd, &one, sizeof(one));
	(void)wrote;
	*accepted = taken;
	return true;
}

size_t inbuf_pending(struct inbuf *buffer)
{
	pthread_mutex_lock(&buffer->lock);
	size_t count = buffer->count;
	pthread_mutex_unlock(&buffer->lock);
	return count;
}

int inbuf_wake_fd(const struct inbuf *buffer)
{
	return buffer->wake_fd;
}

void inbuf_woken(struct inbuf *buffer)
{
	uint64_t value;
	ssize_t got = read(buffer->wake_fd, &value, sizeof(value));
	(void)got;
}

int inbuf_drain(struct inbuf *buffer, int fd)
{
	int outcome = 1;
	pthread_mutex_lock(&buffer->lock);
	while (buffer->count > 0) {
		size_t part = INBUF_MAX - buffer->start;
		if (part > buffer->count)
			part = buffer->count;
		/* A non-blocking write: the lock is held for one copy, never a wait. */
		ssize_t wrote = write(fd, buffer->ring + buffer->start, part);
		if (wrote > 0) {
			buffer->start = (buffer->start + (size_t)wrote) % INBUF_MAX;
			buffer->count -= (size_t)wrote;
			continue;
		}
		if (wrote < 0 && errno == EINTR)
			continue;
		outcome = wrote < 0 && errno == EAGAIN ? 0 : -1;
		break;
	}
	if (outcome == 1 && buffer->eof)
		outcome = 2;
	if (buffer->count == 0)
		buffer->start = 0;
	pthread_mutex_unlock(&buffer->lock);
	return outcome;
}

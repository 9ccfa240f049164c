/*
 * spool: see spool.h.
 *
 * The file holds the bytes back to back; an index in memory says where each
 * appended run of one stream starts in the file and in each numbering, so a
 * read at any offset is a binary search and a pread.
 */
#include "daemon/executors/process/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/base/memory.h"

/* One append: `length` bytes of `stream` at `position` in the file, which
 * begin at before[n] in numbering n. */
struct record {
	uint64_t before[3];
	uint64_t position;
	size_t length;
	int stream;
};

struct spool {
	int fd;
	uid_t owner;
	uint64_t total[3]; /* bytes per numbering */
	struct record *records;
	size_t record_count, record_capacity;
};

struct user {
	uid_t uid;
	size_t held;
};

/* Set by spool_configure before any job runs; read-only afterwards. */
static char spool_directory[4096];
static size_t spool_budget;
static bool spool_all;

/* Guards users and the logged-once flag. */
static pthread_mutex_t users_lock = PTHREAD_MUTEX_INITIALIZER;
static struct user *users;
static size_t user_count, user_capacity;
static bool open_failure_logged;

int spool_configure(const char *directory, size_t budget, bool all, char *message,
                    size_t message_size)
{
	spool_budget = budget;
	spool_all = all;
	if (budget == 0)
		return 0;
	if (directory == NULL || directory[0] == '\0') {
		snprintf(message, message_size,
		         "--output-spool keeps output in the state dir: give --state-dir DIR too, or "
		         "--output-spool 0");
		return EINVAL;
	}
	int written = snprintf(spool_directory, sizeof(spool_directory), "%s/spool", directory);
	if (written < 0 || (size_t)written >= sizeof(spool_directory)) {
		snprintf(message, message_size, "--state-dir is too long for its spool directory");
		return ENAMETOOLONG;
	}
	if (mkdir(spool_directory, 0700) != 0 && errno != EEXIST) {
		int error = errno;
		snprintf(message, message_size, "cannot make the output spool directory %s: %s",
		         spool_directory, strerror(error));
		return error;
	}
	return 0;
}

bool spool_allowed(void)
{
	return spool_budget > 0;
}

bool spool_wanted(bool asked)
{
	return spool_budget > 0 && (asked || spool_all);
}

/* users_lock held. The user's entry, made when missing (NULL: no memory). */
static struct user *user_for(uid_t uid)
{
	for (size_t i = 0; i < user_count; i++)
		if (users[i].uid == uid)
			return &users[i];
	if (user_count == user_capacity) {
		size_t capacity = user_capacity == 0 ? 8 : user_capacity * 2;
		struct user *grown = realloc(users, capacity * sizeof(*users));
		if (grown == NULL)
			return NULL;
		users = grown;
		user_capacity = capacity;
	}
	users[user_count] = (struct user){.uid = uid};
	return &users[user_count++];
}

/* Takes (take) or gives back bytes of uid's budget. Returns false when
 * taking would go past it, or the user's entry cannot be made. */
static bool charge(uid_t uid, size_t bytes, bool take)
{
	pthread_mutex_lock(&users_lock);
	struct user *user = user_for(uid);
	bool fits = user != NULL && (!take || user->held + bytes <= spool_budget);
	if (fits)
		user->held = take ? user->held + bytes : user->held - bytes;
	pthread_mutex_unlock(&users_lock);
	return fits;
}

size_t spool_held(uid_t uid)
{
	pthread_mutex_lock(&users_lock);
	size_t held = 0;
	for (size_t i = 0; i < user_count; i++)
		if (users[i].uid == uid)
			held = users[i].held;
	pthread_mutex_unlock(&users_lock);
	return held;
}

/* An unnamed file in the spool directory; a named one unlinked at once where
 * the file system has no O_TMPFILE. Returns the fd, or -1 with errno. */
static int unnamed_file(void)
{
	int fd = open(spool_directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	char path[sizeof(spool_directory) + 32];
	snprintf(path, sizeof(path), "%s/output-XXXXXX", spool_directory);
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

struct spool *spool_open(uid_t owner)
{
	if (spool_budget == 0)
		return NULL;
	int fd = unnamed_file();
	if (fd < 0) {
		int error = errno;
		pthread_mutex_lock(&users_lock);
		bool first = !open_failure_logged;
		open_failure_logged = true;
		pthread_mutex_unlock(&users_lock);
		if (first)
			log_warn("cannot make an output spool file in %s: %s; output that leaves a "
			         "window is lost (logged once)",
			         spool_directory, strerror(error));
		return NULL;
	}
	struct spool *spool = memory_zalloc(sizeof(*spool));
	spool->fd = fd;
	spool->owner = owner;
	return spool;
}

bool spool_append(struct spool *spool, int stream, const char *data, size_t length)
{
	if (length == 0)
		return true;
	if (spool->record_count == spool->record_capacity) {
		size_t capacity = spool->record_capacity == 0 ? 64 : spool->record_capacity * 2;
		struct record *grown = realloc(spool->records, capacity * sizeof(*spool->records));
		if (grown == NULL)
			return false;
		spool->records = grown;
		spool->record_capacity = capacity;
	}
	if (!charge(spool->owner, length, true))
		return false;
	uint64_t position = spool->total[SPOOL_BOTH];
	for (size_t done = 0; done < length;) {
		ssize_t wrote = pwrite(spool->fd, data + done, length - done, (off_t)(position + done));
		if (wrote < 0 && errno == EINTR)
			continue;
		if (wrote <= 0) {
			/* What did get written is past the end the index knows: unused. */
			charge(spool->owner, length, false);
			return false;
		}
		done += (size_t)wrote;
	}
	struct record *record = &spool->records[spool->record_count++];
	memcpy(record->before, spool->total, sizeof(record->before));
	record->position = position;
	record->length = length;
	record->stream = stream;
	spool->total[stream] += length;
	spool->total[SPOOL_BOTH] += length;
	return true;
}

uint64_t spool_total(const struct spool *spool, enum spool_numbering numbering)
{
	return spool->total[numbering];
}

static bool counts_in(const struct record *record, enum spool_numbering numbering)
{
	return numbering == SPOOL_BOTH || record->stream == (int)numbering;
}

size_t spool_read(const struct spool *spool, enum spool_numbering numbering, uint64_t offset,
                  size_t max, char *to, int *stream)
{
	/* The first record that begins past offset; the one that holds offset
	 * is the last of that numbering before it. */
	size_t low = 0, high = spool->record_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (spool->records[middle].before[numbering] <= offset)
			low = middle + 1;
		else
			high = middle;
	}
	size_t index = low;
	while (index > 0 && !counts_in(&spool->records[index - 1], numbering))
		index--;
	if (index == 0)
		return 0;
	index--;
	const struct record *record = &spool->records[index];
	uint64_t skip = offset - record->before[numbering];
	if (skip >= record->length)
		return 0;
	*stream = record->stream;
	size_t copied = 0;
	/* On through the following records of the same stream, as one run. */
	for (; index < spool->record_count && copied < max; index++) {
		record = &spool->records[index];
		if (!counts_in(record, numbering))
			continue;
		if (record->stream != *stream)
			break;
		size_t part = record->length - (size_t)skip;
		if (part > max - copied)
			part = max - copied;
		for (size_t done = 0; to != NULL && done < part;) {
			ssize_t got = pread(spool->fd, to + copied + done, part - done,
			                    (off_t)(record->position + skip + done));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				log_warn("cannot read output back from its spool file: %s",
				         got < 0 ? strerror(errno) : "it is shorter than it should be");
				return copied;
			}
			done += (size_t)got;
		}
		copied += part;
		skip = 0;
	}
	return copied;
}

void spool_close(struct spool *spool)
{
	if (spool == NULL)
		return;
	charge(spool->owner, spool->total[SPOOL_BOTH], false);
	close(spool->fd);
	free(spool->records);
	free(spool);
}

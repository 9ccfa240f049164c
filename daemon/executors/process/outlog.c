/*
 * outlog: jobs' output as bytes; contract in outlog.h.
 *
 * A log is a FIFO of chunks. A chunk holds bytes of one stream read one
 * after the other; an append goes into the tail chunk when it is of the same
 * stream and has room, else into a new chunk of at least CHUNK_MIN bytes.
 * Eviction drops whole chunks from the head, so for each numbering (stdout,
 * stderr, merged) everything from `first[...]` to the total is in the window,
 * and nothing before it.
 *
 * Accounting: `held` is the bytes a log's chunks take (headers and unused
 * room included), summed per user in the table. A log's held changes under
 * its own lock; the user's sum changes under the table lock, right after.
 *
 * Locks: table_lock guards the hash table, the users and their lists of
 * finished logs; a log's lock guards its chunks, counters and watches. Order:
 * table_lock, then a log's lock. Watch callbacks are called with no lock held.
 */
#include "daemon/executors/process/outlog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/executors/process/spool.h"
#include "weft/error.h"

#define CHUNK_MIN 4096
#define BUCKETS 4096
/* A user's finished logs beyond this many are dropped, oldest first, even
 * under the budget: empty logs cost memory too. */
#define MAX_FINISHED_PER_USER 4096
/* Room a producer may still need for one append. */
#define READ_ROOM OUTLOG_APPEND_MAX
/* The room of the chunks outlog_reserve makes (and the only size kept as a
 * spare): with its header, one read's worth, so that a window of N reads'
 * worth holds N full chunks. */
#define SPARE_CAPACITY (OUTLOG_APPEND_MAX - sizeof(struct chunk))
/* outlog_reserve reads into the tail's room only when it has this much. */
#define TAIL_ROOM_MIN 1024

struct chunk {
	struct chunk *next;
	enum outlog_stream stream;
	uint64_t merged;  /* merged offset of data[0] */
	uint64_t at;      /* offset of data[0] in its stream */
	size_t length, capacity;
	char data[];
};

struct user;

struct outlog {
	atomic_int references;
	/* Set at creation, never changed. */
	uint64_t id;
	uid_t owner;

	/* Guarded by table_lock. */
	struct outlog *hash_next;
	TAILQ_ENTRY(outlog) finished_link; /* in the owner's finished logs */
	bool listed;     /* in the hash table */
	bool finished;   /* in the owner's finished list */

	pthread_mutex_t lock; /* guards the rest */
	struct chunk *head, *tail;
	size_t held;
	uint64_t total[2];       /* bytes appended per stream */
	uint64_t first[2];       /* per stream, the offset of the oldest byte kept */
	uint64_t merged_total;
	uint64_t merged_first;
	uint64_t read_mark;      /* merged offset up to which a reader has read */
	double last_read;        /* monotonic, the last read (or the open) */
	bool wait_for_readers;
	bool ended;
	bool unflushed[2];       /* per stream, quiet appends no reader was woken for */
	/* outlog_reserve's chunk, not in the window until outlog_commit links
	 * it; between the two it is the producer's to write. Also a chunk the
	 * window dropped, kept for the next reserve (a fast command would
	 * otherwise allocate and free a chunk per read, and fault its pages
	 * anew). Freed when the output ends. */
	struct chunk *spare;
	bool reserved_spare;     /* the reservation is in spare (else in the tail's room) */
	LIST_HEAD(, outlog_watch) watches;
	/* What left the window, when the job spools (spool.h); owned. */
	struct spool *spool;
};

struct user {
	uid_t uid;
	size_t held;
	size_t finished_count;
	TAILQ_HEAD(, outlog) finished; /* finished logs, oldest first */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct outlog *buckets[BUCKETS];
static struct user **users; /* each its own allocation, so a list head never moves */
static size_t user_count, user_capacity;
static size_t total_held;
static size_t window_size = OUTLOG_DEFAULT_WINDOW;
static size_t budget_size = OUTLOG_DEFAULT_BUDGET;
static double idle_seconds = OUTLOG_IDLE_SECONDS;

void outlog_init(size_t window, size_t budget, double idle)
{
	idle_seconds = idle > 0 ? idle : OUTLOG_IDLE_SECONDS;
	window_size = window > 0 ? window : OUTLOG_DEFAULT_WINDOW;
	budget_size = budget > 0 ? budget : OUTLOG_DEFAULT_BUDGET;
	if (window_size < 4 * READ_ROOM)
		window_size = 4 * READ_ROOM; /* room for a read beyond what is unread */
}

static size_t bucket_of(uint64_t id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 52) % BUCKETS;
}

/* table_lock held. Never fails: memory.h aborts when memory runs out. */
static struct user *user_for(uid_t uid)
{
	for (size_t i = 0; i < user_count; i++)
		if (users[i]->uid == uid)
			return users[i];
	if (user_count == user_capacity) {
		user_capacity = user_capacity == 0 ? 8 : user_capacity * 2;
		users = memory_realloc(users, user_capacity * sizeof(*users));
	}
	struct user *user = memory_zalloc(sizeof(*user));
	user->uid = uid;
	TAILQ_INIT(&user->finished);
	users[user_count++] = user;
	return user;
}

static void free_chunks(struct chunk *chunk)
{
	while (chunk != NULL) {
		struct chunk *next = chunk->next;
		free(chunk);
		chunk = next;
	}
}

struct outlog *outlog_ref(struct outlog *log)
{
	atomic_fetch_add_explicit(&log->references, 1, memory_order_relaxed);
	return log;
}

void outlog_unref(struct outlog *log)
{
	if (log == NULL)
		return;
	/* acq_rel: the last dropper must see the others' writes before freeing. */
	if (atomic_fetch_sub_explicit(&log->references, 1, memory_order_acq_rel) != 1)
		return;
	free_chunks(log->head);
	free(log->spare);
	spool_close(log->spool);
	pthread_mutex_destroy(&log->lock);
	free(log);
}

/* table_lock held. */
static void finished_unlink(struct user *user, struct outlog *log)
{
	if (!log->finished)
		return;
	TAILQ_REMOVE(&user->finished, log, finished_link);
	log->finished = false;
	user->finished_count--;
}

/* A chunk leaves the window: into the spool, if the log has one. When the
 * spool cannot take it (budget, disk), the spool is dropped whole, so what
 * the log can still give stays one stretch: the window, and the spool
 * before it or nothing. log->lock held. */
static void keep_in_spool(struct outlog *log, const struct chunk *chunk)
{
	if (log->spool == NULL || spool_append(log->spool, (int)chunk->stream, chunk->data,
	                                       chunk->length))
		return;
	spool_close(log->spool);
	log->spool = NULL;
}

/* Frees a log's bytes but keeps its counters, so that a reader is told how
 * many it lost. table_lock held. */
static void drop_bytes(struct user *user, struct outlog *log)
{
	pthread_mutex_lock(&log->lock);
	for (struct chunk *chunk = log->head; chunk != NULL; chunk = chunk->next)
		keep_in_spool(log, chunk);
	struct chunk *chunks = log->head;
	size_t held = log->held;
	log->head = log->tail = NULL;
	log->held = 0;
	log->first[0] = log->total[0];
	log->first[1] = log->total[1];
	log->merged_first = log->merged_total;
	pthread_mutex_unlock(&log->lock);
	free_chunks(chunks);
	user->held -= held;
	total_held -= held;
}

/* Removes a finished log from the table and frees its bytes; readers that
 * still hold it see everything as lost. table_lock held. */
static void drop(struct user *user, struct outlog *log)
{
	finished_unlink(user, log);
	struct outlog **link = &buckets[bucket_of(log->id)];
	while (*link != NULL && *link != log)
		link = &(*link)->hash_next;
	if (*link == log)
		*link = log->hash_next;
	log->listed = false;
	/* Gone for good: nothing more goes to its spool. */
	pthread_mutex_lock(&log->lock);
	struct spool *spool = log->spool;
	log->spool = NULL;
	pthread_mutex_unlock(&log->lock);
	spool_close(spool);
	drop_bytes(user, log);
	outlog_unref(log); /* the table's */
}

/* Frees the bytes of the user's finished logs, oldest first, until the user
 * is within the budget. table_lock held. */
static void trim_finished(struct user *user)
{
	struct outlog *log;
	TAILQ_FOREACH(log, &user->finished, finished_link) {
		if (user->held <= budget_size)
			break;
		drop_bytes(user, log);
	}
}

void outlog_fini(void)
{
	pthread_mutex_lock(&table_lock);
	for (size_t b = 0; b < BUCKETS; b++) {
		while (buckets[b] != NULL) {
			struct outlog *log = buckets[b];
			drop(user_for(log->owner), log);
		}
	}
	for (size_t i = 0; i < user_count; i++)
		free(users[i]);
	free(users);
	users = NULL;
	user_count = user_capacity = 0;
	pthread_mutex_unlock(&table_lock);
}

/* table_lock held. A new reference, or NULL. */
static struct outlog *find_nolock(uint64_t id)
{
	for (struct outlog *log = buckets[bucket_of(id)]; log != NULL; log = log->hash_next)
		if (log->id == id)
			return outlog_ref(log);
	return NULL;
}

void outlog_forget(uint64_t id)
{
	pthread_mutex_lock(&table_lock);
	struct outlog *log = find_nolock(id);
	/* A log is finished before its job is: retention never sees one running. */
	if (log != NULL && log->finished)
		drop(user_for(log->owner), log);
	pthread_mutex_unlock(&table_lock);
	outlog_unref(log);
}

struct outlog *outlog_find(uint64_t id)
{
	pthread_mutex_lock(&table_lock);
	struct outlog *log = find_nolock(id);
	pthread_mutex_unlock(&table_lock);
	return log;
}

struct outlog *outlog_open(uint64_t id, uid_t owner, bool wait_for_readers, bool spool)
{
	pthread_mutex_lock(&table_lock);
	struct outlog *log = find_nolock(id);
	if (log == NULL) {
		log = memory_zalloc(sizeof(*log));
		atomic_init(&log->references, 2); /* the table's and the caller's */
		log->id = id;
		log->owner = owner;
		pthread_mutex_init(&log->lock, NULL);
		log->last_read = now_monotonic();
		log->listed = true;
		size_t b = bucket_of(id);
		log->hash_next = buckets[b];
		buckets[b] = log;
	}
	finished_unlink(user_for(log->owner), log);
	pthread_mutex_lock(&log->lock);
	log->ended = false;
	log->wait_for_readers = log->wait_for_readers || wait_for_readers;
	/* A retry's attempt continues the spool; a first one starts it, with
	 * nothing evicted yet, so the spool and the window meet. */
	if (spool && log->spool == NULL && log->merged_first == 0)
		log->spool = spool_open(owner);
	log->last_read = now_monotonic();
	pthread_mutex_unlock(&log->lock);
	pthread_mutex_unlock(&table_lock);
	return log;
}

/* Drops the head chunk. log->lock held. Returns the bytes freed. */
static size_t evict_head(struct outlog *log)
{
	struct chunk *chunk = log->head;
	keep_in_spool(log, chunk);
	log->head = chunk->next;
	if (log->head == NULL)
		log->tail = NULL;
	if (chunk->stream == OUTLOG_STDOUT || chunk->stream == OUTLOG_STDERR)
		log->first[chunk->stream] = chunk->at + chunk->length;
	log->merged_first = chunk->merged + chunk->length;
	size_t freed = sizeof(*chunk) + chunk->capacity;
	if (log->spare == NULL && chunk->capacity == SPARE_CAPACITY && !log->ended)
		log->spare = chunk;
	else
		free(chunk);
	log->held -= freed;
	return freed;
}

LIST_HEAD(woken, outlog_watch);

/* Moves the watches that bytes of `stream` (or the end, when ended) wake to
 * *woken. log->lock held. */
static void take_watches(struct outlog *log, enum outlog_stream stream, bool ended,
                         struct woken *woken)
{
	struct outlog_watch *watch = LIST_FIRST(&log->watches), *next;
	for (; watch != NULL; watch = next) {
		next = LIST_NEXT(watch, link);
		if (!ended && watch->stream != OUTLOG_BOTH && watch->stream != stream)
			continue;
		LIST_REMOVE(watch, link);
		LIST_INSERT_HEAD(woken, watch, link);
	}
}

/* No lock held. */
static void notify_all(struct woken *woken)
{
	struct outlog_watch *watch = LIST_FIRST(woken);
	while (watch != NULL) {
		/* notify may free the watch: read the link first. */
		struct outlog_watch *next = LIST_NEXT(watch, link);
		watch->notify(watch);
		watch = next;
	}
}

/* After an append: the user's sum follows the log's held, and the budget is
 * kept. No lock held. */
static void grew(struct outlog *log, size_t grown, size_t freed)
{
	if (grown == freed)
		return;
	pthread_mutex_lock(&table_lock);
	struct user *user = user_for(log->owner);
	user->held += grown;
	user->held -= freed;
	total_held += grown;
	total_held -= freed;
	/* Over the budget: the user's finished logs go first, then this one's oldest. */
	trim_finished(user);
	if (user->held > budget_size) {
		pthread_mutex_lock(&log->lock);
		size_t more = 0;
		while (user->held > budget_size + more && log->head != log->tail)
			more += evict_head(log);
		pthread_mutex_unlock(&log->lock);
		user->held -= more;
		total_held -= more;
	}
	pthread_mutex_unlock(&table_lock);
}

/* outlog_append and outlog_append_quiet. */
static void append(struct outlog *log, enum outlog_stream stream, const void *data, size_t length,
                   bool quiet)
{
	if (length == 0 || (stream != OUTLOG_STDOUT && stream != OUTLOG_STDERR))
		return;
	size_t grown = 0, freed = 0;
	pthread_mutex_lock(&log->lock);
	struct chunk *tail = log->tail;
	const char *bytes = data;
	size_t left = length;
	if (tail != NULL && tail->stream == stream && tail->capacity > tail->length) {
		size_t room = tail->capacity - tail->length;
		size_t part = left < room ? left : room;
		memcpy(tail->data + tail->length, bytes, part);
		tail->length += part;
		bytes += part;
		left -= part;
	}
	if (left > 0) {
		size_t capacity = left < CHUNK_MIN ? CHUNK_MIN : left;
		struct chunk *chunk = memory_alloc(sizeof(*chunk) + capacity);
		chunk->next = NULL;
		chunk->stream = stream;
		chunk->merged = log->merged_total + (length - left);
		chunk->at = log->total[stream] + (length - left);
		chunk->length = left;
		chunk->capacity = capacity;
		memcpy(chunk->data, bytes, left);
		if (log->tail != NULL)
			log->tail->next = chunk;
		else
			log->head = chunk;
		log->tail = chunk;
		grown = sizeof(*chunk) + capacity;
		log->held += grown;
	}
	log->total[stream] += length;
	log->merged_total += length;
	while (log->held > window_size && log->head != log->tail)
		freed += evict_head(log);
	struct woken woken = LIST_HEAD_INITIALIZER(woken);
	if (quiet)
		log->unflushed[stream] = true;
	else
		take_watches(log, stream, false, &woken);
	pthread_mutex_unlock(&log->lock);

	grew(log, grown, freed);
	notify_all(&woken);
}

void outlog_append(struct outlog *log, enum outlog_stream stream, const void *data, size_t length)
{
	append(log, stream, data, length, false);
}

void outlog_append_quiet(struct outlog *log, enum outlog_stream stream, const void *data,
                         size_t length)
{
	append(log, stream, data, length, true);
}

void *outlog_reserve(struct outlog *log, enum outlog_stream stream, size_t max, size_t *room)
{
	if (max > SPARE_CAPACITY)
		max = SPARE_CAPACITY;
	pthread_mutex_lock(&log->lock);
	struct chunk *tail = log->tail;
	size_t free_room = tail != NULL ? tail->capacity - tail->length : 0;
	if (tail != NULL && tail->stream == stream && free_room >= TAIL_ROOM_MIN) {
		log->reserved_spare = false;
		*room = free_room < max ? free_room : max;
		char *at = tail->data + tail->length;
		pthread_mutex_unlock(&log->lock);
		return at;
	}
	if (log->spare == NULL) {
		/* Allocated without the lock; a chunk the window dropped meanwhile
		 * (evict_head keeps it) is used instead. */
		pthread_mutex_unlock(&log->lock);
		struct chunk *made = memory_alloc(sizeof(*made) + SPARE_CAPACITY);
		made->capacity = SPARE_CAPACITY;
		pthread_mutex_lock(&log->lock);
		if (log->spare == NULL)
			log->spare = made;
		else
			free(made);
	}
	log->reserved_spare = true;
	char *at = log->spare->data;
	pthread_mutex_unlock(&log->lock);
	*room = max;
	return at;
}

void outlog_commit(struct outlog *log, enum outlog_stream stream, size_t length, bool quiet)
{
	if (stream != OUTLOG_STDOUT && stream != OUTLOG_STDERR)
		return;
	size_t grown = 0, freed = 0;
	struct woken woken = LIST_HEAD_INITIALIZER(woken);
	pthread_mutex_lock(&log->lock);
	if (length == 0) {
		pthread_mutex_unlock(&log->lock);
		return; /* a reserved spare stays the spare */
	}
	if (log->reserved_spare) {
		struct chunk *chunk = log->spare;
		log->spare = NULL;
		chunk->next = NULL;
		chunk->stream = stream;
		chunk->merged = log->merged_total;
		chunk->at = log->total[stream];
		chunk->length = length;
		if (log->tail != NULL)
			log->tail->next = chunk;
		else
			log->head = chunk;
		log->tail = chunk;
		grown = sizeof(*chunk) + chunk->capacity;
		log->held += grown;
	} else {
		log->tail->length += length;
	}
	log->reserved_spare = false;
	log->total[stream] += length;
	log->merged_total += length;
	while (log->held > window_size && log->head != log->tail)
		freed += evict_head(log);
	if (quiet)
		log->unflushed[stream] = true;
	else
		take_watches(log, stream, false, &woken);
	pthread_mutex_unlock(&log->lock);
	grew(log, grown, freed);
	notify_all(&woken);
}

void outlog_flush(struct outlog *log)
{
	struct woken woken = LIST_HEAD_INITIALIZER(woken);
	pthread_mutex_lock(&log->lock);
	for (int stream = OUTLOG_STDOUT; stream <= OUTLOG_STDERR; stream++) {
		if (log->unflushed[stream])
			take_watches(log, (enum outlog_stream)stream, false, &woken);
		log->unflushed[stream] = false;
	}
	pthread_mutex_unlock(&log->lock);
	notify_all(&woken);
}

/* The last chunk gives back the room no byte will fill: a finished log
 * holds its bytes, not a reserve's room (a job that printed one line would
 * keep a whole chunk). Returns the bytes freed. log->lock held. */
static size_t shrink_tail(struct outlog *log)
{
	struct chunk *tail = log->tail, *before = NULL;
	if (tail == NULL || tail->capacity - tail->length < CHUNK_MIN)
		return 0;
	if (log->head != tail)
		for (before = log->head; before->next != tail; before = before->next)
			;
	size_t capacity = tail->length < CHUNK_MIN ? CHUNK_MIN : tail->length;
	size_t freed = tail->capacity - capacity;
	struct chunk *smaller = realloc(tail, sizeof(*tail) + capacity);
	if (smaller == NULL)
		return 0; /* it keeps its room */
	smaller->capacity = capacity;
	if (before != NULL)
		before->next = smaller;
	else
		log->head = smaller;
	log->tail = smaller;
	log->held -= freed;
	return freed;
}

void outlog_end(struct outlog *log)
{
	pthread_mutex_lock(&table_lock);
	pthread_mutex_lock(&log->lock);
	log->ended = true;
	struct chunk *spare = log->spare;
	log->spare = NULL;
	size_t freed = shrink_tail(log);
	struct woken woken = LIST_HEAD_INITIALIZER(woken);
	take_watches(log, OUTLOG_BOTH, true, &woken);
	pthread_mutex_unlock(&log->lock);
	free(spare);
	if (freed > 0) {
		struct user *user = user_for(log->owner);
		user->held -= freed;
		total_held -= freed;
	}
	if (log->listed && !log->finished) {
		struct user *user = user_for(log->owner);
		log->finished = true;
		TAILQ_INSERT_TAIL(&user->finished, log, finished_link);
		user->finished_count++;
		while (user->finished_count > MAX_FINISHED_PER_USER)
			drop(user, TAILQ_FIRST(&user->finished));
	}
	pthread_mutex_unlock(&table_lock);
	notify_all(&woken);
}

bool outlog_ended(struct outlog *log)
{
	pthread_mutex_lock(&log->lock);
	bool ended = log->ended;
	pthread_mutex_unlock(&log->lock);
	return ended;
}

uint64_t outlog_total(struct outlog *log, enum outlog_stream stream)
{
	pthread_mutex_lock(&log->lock);
	uint64_t total = stream == OUTLOG_BOTH ? log->merged_total : log->total[stream];
	pthread_mutex_unlock(&log->lock);
	return total;
}

/* What one more read may add to a window: its bytes, a chunk's header, and
 * the rest of a small chunk. */
#define APPEND_ROOM (READ_ROOM + sizeof(struct chunk) + CHUNK_MIN)

static void account(struct outlog *log, size_t freed)
{
	if (freed == 0)
		return;
	pthread_mutex_lock(&table_lock);
	user_for(log->owner)->held -= freed;
	total_held -= freed;
	pthread_mutex_unlock(&table_lock);
}

bool outlog_full(struct outlog *log)
{
	size_t freed = 0;
	bool full = false;
	pthread_mutex_lock(&log->lock);
	if (log->wait_for_readers && !log->ended) {
		bool reader_present =
			!LIST_EMPTY(&log->watches) || now_monotonic() - log->last_read < idle_seconds;
		/* Room is made by dropping what has been read, never what has not. */
		while (reader_present && log->held + APPEND_ROOM > window_size && log->head != NULL &&
		       log->head->merged + log->head->length <= log->read_mark)
			freed += evict_head(log);
		full = reader_present && log->held + APPEND_ROOM > window_size;
	}
	pthread_mutex_unlock(&log->lock);
	account(log, freed);
	return full;
}

static bool chunk_matches(const struct chunk *chunk, enum outlog_stream stream)
{
	return stream == OUTLOG_BOTH || chunk->stream == stream;
}

/* The chunk's offset in the numbering of `stream`. */
static uint64_t chunk_start(const struct chunk *chunk, enum outlog_stream stream)
{
	return stream == OUTLOG_BOTH ? chunk->merged : chunk->at;
}

static void *place_in_heap(void *arg, size_t length)
{
	char **data = arg;
	*data = malloc(length);
	return *data;
}

int outlog_read(struct outlog *log, enum outlog_stream stream, uint64_t offset, size_t max,
                struct outlog_slice *out)
{
	char *data = NULL;
	int rv = outlog_read_into(log, stream, offset, max, place_in_heap, &data, out);
	if (rv != WEFT_OK) {
		free(data);
		return rv;
	}
	out->data = data;
	return WEFT_OK;
}

/* A read below the window, from the spool: one run of one stream, so a
 * reader of both streams gets the spool's runs one reply each. log->lock
 * held. */
static int read_spool(struct outlog *log, enum outlog_stream stream, uint64_t offset, size_t max,
                      void *(*place)(void *arg, size_t length), void *arg,
                      struct outlog_slice *out)
{
	enum spool_numbering numbering = (enum spool_numbering)stream;
	int which = 0;
	size_t length = spool_read(log->spool, numbering, offset, max, NULL, &which);
	char *to = length > 0 ? place(arg, length) : NULL;
	if (length > 0 && to == NULL)
		return WEFT_ENOMEM;
	if (length > 0 && spool_read(log->spool, numbering, offset, length, to, &which) != length)
		return WEFT_EINTERNAL;
	if (stream == OUTLOG_BOTH && length > 0) {
		out->runs = malloc(sizeof(*out->runs));
		if (out->runs == NULL)
			return WEFT_ENOMEM;
		out->runs[0].stream = (enum outlog_stream)which;
		out->runs[0].length = length;
		out->run_count = 1;
	}
	out->length = length;
	out->offset = offset;
	out->next = offset + length;
	log->last_read = now_monotonic();
	return WEFT_OK;
}

int outlog_read_into(struct outlog *log, enum outlog_stream stream, uint64_t offset, size_t max,
                     void *(*place)(void *arg, size_t length), void *arg,
                     struct outlog_slice *out)
{
	char *to = NULL;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&log->lock);
	uint64_t first = stream == OUTLOG_BOTH ? log->merged_first : log->first[stream];
	uint64_t total = stream == OUTLOG_BOTH ? log->merged_total : log->total[stream];
	if (offset > total)
		offset = total;
	if (offset < first && log->spool != NULL &&
	    offset < spool_total(log->spool, (enum spool_numbering)stream)) {
		int rv = read_spool(log, stream, offset, max, place, arg, out);
		pthread_mutex_unlock(&log->lock);
		return rv;
	}
	if (offset < first) {
		out->lost = first - offset;
		offset = first;
	}
	size_t length = total - offset < max ? (size_t)(total - offset) : max;
	size_t run_capacity = 0;
	uint64_t merged_end = 0;
	if (length > 0 && (to = place(arg, length)) == NULL) {
		pthread_mutex_unlock(&log->lock);
		return WEFT_ENOMEM;
	}
	size_t copied = 0;
	for (struct chunk *chunk = log->head; chunk != NULL && copied < length; chunk = chunk->next) {
		if (!chunk_matches(chunk, stream))
			continue;
		uint64_t start = chunk_start(chunk, stream);
		if (start + chunk->length <= offset + copied)
			continue;
		size_t skip = (size_t)(offset + copied - start);
		size_t part = chunk->length - skip;
		if (part > length - copied)
			part = length - copied;
		memcpy(to + copied, chunk->data + skip, part);
		copied += part;
		merged_end = chunk->merged + skip + part;
		if (stream != OUTLOG_BOTH)
			continue;
		if (out->run_count > 0 && out->runs[out->run_count - 1].stream == chunk->stream) {
			out->runs[out->run_count - 1].length += part;
			continue;
		}
		if (out->run_count == run_capacity) {
			run_capacity = run_capacity == 0 ? 8 : run_capacity * 2;
			void *grown = realloc(out->runs, run_capacity * sizeof(*out->runs));
			if (grown == NULL) {
				pthread_mutex_unlock(&log->lock);
				outlog_slice_clear(out);
				return WEFT_ENOMEM;
			}
			out->runs = grown;
		}
		out->runs[out->run_count].stream = chunk->stream;
		out->runs[out->run_count].length = part;
		out->run_count++;
	}
	out->length = copied;
	out->offset = offset;
	out->next = offset + copied;
	out->eof = log->ended && out->next == total;
	/* A reader caught up on its stream has read everything that matters to it. */
	if (out->next == total)
		merged_end = log->merged_total;
	if (merged_end > log->read_mark)
		log->read_mark = merged_end;
	log->last_read = now_monotonic();
	pthread_mutex_unlock(&log->lock);
	return WEFT_OK;
}

void outlog_slice_clear(struct outlog_slice *slice)
{
	free(slice->data);
	free(slice->runs);
	memset(slice, 0, sizeof(*slice));
}

bool outlog_watch(struct outlog *log, struct outlog_watch *watch)
{
	pthread_mutex_lock(&log->lock);
	uint64_t total = watch->stream == OUTLOG_BOTH ? log->merged_total : log->total[watch->stream];
	bool wait = !log->ended && watch->offset >= total;
	if (wait)
		LIST_INSERT_HEAD(&log->watches, watch, link);
	pthread_mutex_unlock(&log->lock);
	return wait;
}

bool outlog_unwatch(struct outlog *log, struct outlog_watch *watch)
{
	bool removed = false;
	pthread_mutex_lock(&log->lock);
	struct outlog_watch *w;
	LIST_FOREACH(w, &log->watches, link) {
		if (w == watch) {
			LIST_REMOVE(w, link);
			removed = true;
			break;
		}
	}
	pthread_mutex_unlock(&log->lock);
	return removed;
}

size_t outlog_held(uid_t uid)
{
	pthread_mutex_lock(&table_lock);
	size_t held = 0;
	for (size_t i = 0; i < user_count; i++)
		if (users[i]->uid == uid)
			held = users[i]->held;
	pthread_mutex_unlock(&table_lock);
	return held;
}

size_t outlog_held_total(void)
{
	pthread_mutex_lock(&table_lock);
	size_t held = total_held;
	pthread_mutex_unlock(&table_lock);
	return held;
}

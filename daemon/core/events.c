/*
 * The event feed; see events.h.
 *
 * The ring is an array of max_entries slots; `oldest` is the seq of the
 * oldest entry held and `next_seq` the seq the next event gets, so entry
 * seq lives at slot seq % capacity. An append that would pass either bound
 * drops from the oldest end first. Entries are small and fixed (a queue
 * event's name is copied; a function's name is static), so a byte budget
 * is an entry budget in disguise, except for the names.
 *
 * Watches: after each append, under the lock, the watches whose filter keeps
 * the new entry are detached, and notified once the lock is released.
 */
#include "daemon/core/events.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/base/problem.h"
#include "daemon/base/watch.h"
#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/core/principal.h"

/* Entries one read looks at, at most. */
#define EVENTS_SCAN_MAX 65536

enum entry_type { ENTRY_JOB = 1, ENTRY_QUEUE = 2 };

struct entry {
	uint64_t seq;
	double time;
	enum entry_type type;
	uint64_t id;          /* job */
	uid_t owner;          /* job */
	const char *function; /* job: static */
	signed char from, to; /* job: enum job_state; from JOB_STATE_COUNT: just made */
	int worker;           /* job: -1 none */
	char *queue;          /* queue: owned */
	const char *change;   /* queue: static */
	long max;             /* queue */
	size_t bytes;         /* what it is charged */
};

static struct {
	pthread_mutex_t lock; /* guards everything below but the bounds and epoch */
	struct entry *ring;   /* capacity slots; NULL before events_init */
	size_t capacity;      /* immutable after events_init */
	size_t max_bytes;     /* immutable after events_init */
	uint64_t epoch;       /* immutable after events_init */
	uint64_t oldest;      /* seq of the oldest entry held; == next_seq when none */
	uint64_t next_seq;
	size_t bytes;
	uint64_t dropped;
	struct watch_list watches;
} ring = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool keeps(const struct events_filter *filter, const struct entry *entry)
{
	if (filter->type != 0 && filter->type != (int)entry->type)
		return false;
	if (entry->type == ENTRY_QUEUE)
		return filter->ids == NULL && filter->function == NULL;
	if (!filter->all && filter->viewer != entry->owner)
		return false;
	if (filter->function != NULL && strcmp(filter->function, entry->function) != 0)
		return false;
	if (filter->ids == NULL)
		return true;
	/* Sorted: every append matches each waiting reader's filter under the lock. */
	size_t low = 0, high = filter->id_count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (filter->ids[middle] < entry->id)
			low = middle + 1;
		else
			high = middle;
	}
	return low < filter->id_count && filter->ids[low] == entry->id;
}

/* Drops the oldest entry. Lock held; one is held. */
static void drop_oldest_locked(void)
{
	struct entry *entry = &ring.ring[ring.oldest % ring.capacity];
	ring.bytes -= entry->bytes;
	free(entry->queue);
	entry->queue = NULL;
	ring.oldest++;
	ring.dropped++;
}

/* watch_take's test: whether a waiting reader's filter keeps the new entry. Lock held. */
static bool watch_keeps(const struct watch *watch, const void *entry)
{
	return keeps(watch->data, entry);
}

/* Appends *entry (its queue name is taken) and notifies the watches it
 * satisfies. Any thread; no lock held. */
static void append(struct entry *made)
{
	struct watch_list ready = LIST_HEAD_INITIALIZER(ready);
	pthread_mutex_lock(&ring.lock);
	if (ring.ring == NULL) {
		pthread_mutex_unlock(&ring.lock);
		free(made->queue);
		return;
	}
	made->bytes = sizeof(*made) + (made->queue != NULL ? strlen(made->queue) + 1 : 0);
	while (ring.oldest < ring.next_seq &&
	       (ring.next_seq - ring.oldest >= ring.capacity ||
	        ring.bytes + made->bytes > ring.max_bytes))
		drop_oldest_locked();
	made->seq = ring.next_seq++;
	made->time = now_wall();
	ring.ring[made->seq % ring.capacity] = *made;
	ring.bytes += made->bytes;
	watch_take(&ring.watches, watch_keeps, made, &ready);
	pthread_mutex_unlock(&ring.lock);
	watch_notify_all(&ready);
}

static void on_moved(struct job *job, enum job_state from, enum job_state to, int worker)
{
	struct entry entry = {
		.type = ENTRY_JOB,
		.id = job->id,
		.owner = job->owner != NULL ? job->owner->uid : 0,
		.function = functions_name_of(job->function),
		.from = (signed char)from,
		.to = (signed char)to,
		.worker = worker,
	};
	append(&entry);
}

static const struct jobs_observer observer = {.moved = on_moved};

void events_init(struct jobs *jobs, size_t max_entries, size_t max_bytes)
{
	pthread_mutex_lock(&ring.lock);
	ring.capacity = max_entries > 0 ? max_entries : 1;
	ring.max_bytes = max_bytes > sizeof(struct entry) ? max_bytes : sizeof(struct entry);
	ring.ring = memory_zalloc(ring.capacity * sizeof(*ring.ring));
	/* Microseconds of the start: another run of weftd has another epoch. */
	ring.epoch = (uint64_t)(now_wall() * 1e6);
	ring.oldest = ring.next_seq = 1;
	pthread_mutex_unlock(&ring.lock);
	if (jobs != NULL)
		jobs_add_observer(jobs, &observer);
}

void events_fini(void)
{
	pthread_mutex_lock(&ring.lock);
	while (ring.ring != NULL && ring.oldest < ring.next_seq)
		drop_oldest_locked();
	free(ring.ring);
	ring.ring = NULL;
	ring.bytes = 0;
	pthread_mutex_unlock(&ring.lock);
}

void events_queue(const char *name, const char *change, long max)
{
	struct entry entry = {
		.type = ENTRY_QUEUE,
		.queue = memory_strdup(name),
		.change = change,
		.max = max,
		.worker = -1,
	};
	append(&entry);
}

int events_parse_cursor(const char *text, uint64_t *epoch, uint64_t *seq)
{
	char *end;
	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	unsigned long long e = strtoull(text, &end, 10);
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return -1;
	unsigned long long s = strtoull(end + 1, &end, 10);
	if (*end != '\0')
		return -1;
	*epoch = e;
	*seq = s;
	return 0;
}

void events_cursor(uint64_t seq, char *text)
{
	/* The epoch is immutable once events_init ran. */
	snprintf(text, EVENTS_CURSOR_SIZE, "%" PRIu64 ":%" PRIu64, ring.epoch, seq);
}

static json_t *entry_json(const struct entry *entry)
{
	char cursor[48];
	snprintf(cursor, sizeof(cursor), "%" PRIu64 ":%" PRIu64, ring.epoch, entry->seq);
	if (entry->type == ENTRY_QUEUE) {
		json_t *object = json_pack("{s:s, s:f, s:s, s:s, s:s}", "cursor", cursor, "time",
		                           entry->time, "type", "queue", "queue", entry->queue,
		                           "change", entry->change);
		if (strcmp(entry->change, "set") == 0)
			json_object_set_new(object, "max", json_integer(entry->max));
		return object;
	}
	json_t *object = json_pack("{s:s, s:f, s:s, s:I, s:I, s:s, s:s}", "cursor", cursor, "time",
	                           entry->time, "type", "job", "id", (json_int_t)entry->id, "owner",
	                           (json_int_t)entry->owner, "fn", entry->function, "state",
	                           job_state_name((enum job_state)entry->to));
	json_object_set_new(object, "from",
	                    entry->from == JOB_STATE_COUNT
	                            ? json_null()
	                            : json_string(job_state_name((enum job_state)entry->from)));
	if (entry->worker >= 0)
		json_object_set_new(object, "worker", json_integer(entry->worker));
	return object;
}

/* The oldest cursor a reader may pass: the one before the oldest entry. */
static int expired_locked(struct problem *problem, uint64_t *last, const char *why)
{
	char cursor[EVENTS_CURSOR_SIZE];
	*last = ring.oldest - 1;
	events_cursor(*last, cursor);
	return problem_set(problem, WEFT_ECURSOREXPIRED, "after",
	                   "%s; resync (list the jobs) and read on from the oldest cursor held, "
	                   "\"%s\"",
	                   why, cursor);
}

int events_read(uint64_t epoch, uint64_t seq, const struct events_filter *filter, size_t limit,
                json_t **out, uint64_t *last_out, struct problem *problem)
{
	struct entry *copies = NULL;
	pthread_mutex_lock(&ring.lock);
	int rv = WEFT_OK;
	if (ring.ring == NULL) {
		rv = problem_set(problem, WEFT_ESHUTDOWN, NULL, "the event feed is closed");
		goto done;
	}
	if (seq != 0 && epoch != ring.epoch) {
		rv = expired_locked(problem, last_out,
		                    "the cursor is from another run of weftd (it restarted)");
		goto done;
	}
	if (seq != 0 && seq + 1 < ring.oldest) {
		rv = expired_locked(problem, last_out, "events after the cursor were dropped (the "
		                                     "ring holds --events-max of them)");
		goto done;
	}
	if (seq >= ring.next_seq) {
		rv = problem_set(problem, WEFT_EBADFIELD, "after",
		                 "the cursor is past the newest event (%" PRIu64 "); pass a cursor "
		                 "this weftd gave",
		                 ring.next_seq - 1);
		goto done;
	}
	uint64_t at = seq < ring.oldest ? ring.oldest : seq + 1;
	uint64_t last = at - 1;
	/* Bounded work under the lock for a filter that keeps little: the
	 * cursor tells the reader how far this read looked. */
	uint64_t end = ring.next_seq - at > EVENTS_SCAN_MAX ? at + EVENTS_SCAN_MAX : ring.next_seq;
	/* Copied out under the lock and turned into JSON after it, so that
	 * appenders (every job's state change) wait for a copy, not for JSON. */
	size_t kept = 0;
	copies = memory_alloc((limit < (size_t)(end - at) ? limit : (size_t)(end - at) + 1) *
	                      sizeof(*copies));
	for (; at < end && kept < limit; at++) {
		const struct entry *entry = &ring.ring[at % ring.capacity];
		last = at;
		if (!keeps(filter, entry))
			continue;
		copies[kept] = *entry;
		if (entry->queue != NULL)
			copies[kept].queue = memory_strdup(entry->queue);
		kept++;
	}
	*last_out = last;
	pthread_mutex_unlock(&ring.lock);
	json_t *list = json_array();
	for (size_t i = 0; i < kept; i++) {
		json_array_append_new(list, entry_json(&copies[i]));
		free(copies[i].queue);
	}
	free(copies);
	*out = list;
	return WEFT_OK;
done:
	pthread_mutex_unlock(&ring.lock);
	return rv;
}

bool events_watch(struct watch *watch)
{
	pthread_mutex_lock(&ring.lock);
	bool found = false;
	if (ring.ring != NULL) {
		uint64_t at = watch->key < ring.oldest ? ring.oldest : watch->key + 1;
		for (; at < ring.next_seq && !found; at++)
			found = keeps(watch->data, &ring.ring[at % ring.capacity]);
	}
	bool wait = ring.ring != NULL && !found;
	if (wait)
		watch_add(&ring.watches, watch);
	pthread_mutex_unlock(&ring.lock);
	return wait;
}

bool events_unwatch(struct watch *watch)
{
	pthread_mutex_lock(&ring.lock);
	bool removed = watch->linked;
	if (removed)
		watch_remove(watch);
	pthread_mutex_unlock(&ring.lock);
	return removed;
}

void events_stats(struct events_stats *stats)
{
	pthread_mutex_lock(&ring.lock);
	stats->appended = ring.next_seq - 1;
	stats->held = ring.next_seq - ring.oldest;
	stats->bytes = ring.bytes;
	stats->dropped = ring.dropped;
	stats->epoch = ring.epoch;
	pthread_mutex_unlock(&ring.lock);
}

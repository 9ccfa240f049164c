/*
 * The event feed; see events.h.
 *
 * Lanes: the feed keeps one lane per owner of job events and one for queue
 * events. A lane is a FIFO of entries in seq order (a circular array that
 * grows by doubling and shrinks when three quarters empty), so an owner's
 * events can be dropped without touching anybody else's. An append first
 * drops the oldest entries of its own lane while the lane is past its share
 * (--events-max-per-user, --events-max-bytes-per-user), then, while the
 * whole feed is past its bounds, the oldest entry of the lane holding the
 * most (entries or bytes, whichever bound is passed): a user who holds less
 * than any other loses nothing to anybody's flood.
 *
 * Cursors stay global seqs. A lane remembers the seq of the newest entry it
 * dropped, so a cursor is expired for a reader only when a lane that reader
 * may see dropped an event after it: one user's flood never expires another
 * user's cursor. A read merges the lanes its reader may see by seq (one lane
 * and the queue lane for a user; every lane for an admin). Lanes are never
 * freed before events_fini: each holds a drop mark the cursors rely on, and
 * there are at most as many as the accounts that own jobs, plus one.
 *
 * Entries are small and fixed (a queue event's name is copied; a function's
 * name is static), so a byte budget is an entry budget in disguise, except
 * for the names.
 *
 * Watches: after each append, under the lock, the watches whose filter keeps
 * the new entry are detached, and notified once the lock is released.
 *
 * Durability (with a journal): the journal's writer collects what was
 * appended since its last commit (events_collect) and commits it with the
 * job changes of the same moments, so an event is as durable as the change
 * it tells of. A lane's drop mark tells the journal which of its rows to
 * delete: the rows a lane holds are always the newest of that lane, so one
 * DELETE of the lane's rows up to its mark keeps the store within the ring's
 * bounds. Seqs are reserved in the store ahead of use (events_set_reserved)
 * and reads stop below the reservation; at start the next seq is the stored
 * reservation, and the seqs between the newest event the store accounts for
 * and it (events handed out, then lost to a kill -9 before their commit) are
 * a gap whose cursors are expired: a reader who saw a lost event resyncs,
 * and no seq it saw means another event later.
 */
#include "daemon/core/events.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
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
#include "weft/error.h"

/* Entries one read looks at, at most. */
#define EVENTS_SCAN_MAX 65536
/* Slots a lane starts with, and below which it does not shrink. */
#define LANE_MIN_CAPACITY 16

enum entry_type { ENTRY_JOB = 1, ENTRY_QUEUE = 2 };

struct entry {
	uint64_t seq;
	double time;
	enum entry_type type;
	uint64_t id;          /* job */
	uid_t owner;          /* job */
	const char *function; /* job: static, or function_copy */
	char *function_copy;  /* job: owned; restored events whose function this weftd lacks */
	signed char from, to; /* job: enum job_state; from JOB_STATE_COUNT: just made */
	int worker;           /* job: -1 none */
	char *queue;          /* queue: owned */
	const char *change;   /* queue: static */
	long max;             /* queue */
	size_t bytes;         /* what it is charged */
};

/* One owner's events (or the queue events), oldest first. Under ring.lock. */
struct lane {
	bool queues;          /* the lane of queue events; else uid's job events */
	uid_t uid;
	struct entry *slots;  /* capacity slots; entry i at (head + i) % capacity */
	size_t capacity, head, count;
	size_t bytes;
	uint64_t dropped;     /* entries dropped from this lane */
	uint64_t dropped_upto; /* seq of the newest entry dropped; 0: none */
};

static struct {
	pthread_mutex_t lock; /* guards everything below but the bounds and epoch */
	bool open;            /* between events_init and events_fini */
	size_t max_entries;   /* the bounds: immutable after events_init */
	size_t max_bytes;
	size_t share_entries; /* one lane's share */
	size_t share_bytes;
	uint64_t epoch;       /* immutable after events_init (and events_restore_begin) */
	uint64_t next_seq;
	uint64_t appended;    /* since events_init: restored events are not counted */
	uint64_t visible_below; /* reads stop here (the journal's reservation) */
	uint64_t gap_low, gap_high; /* seqs in between were lost at the last restart */
	size_t count;         /* entries held in all lanes */
	size_t bytes;
	uint64_t dropped;
	struct lane *lanes;   /* lane 0: queue events */
	size_t lane_count, lane_capacity;
	struct watch_list watches;
} ring = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* events_set_hook's function: read by every appender without the lock. */
static _Atomic(events_hook_fn *) hook;

static void entry_free_names(struct entry *entry)
{
	free(entry->queue);
	entry->queue = NULL;
	free(entry->function_copy);
	entry->function_copy = NULL;
}

/* A copy of entry whose names are its own (they outlive the lock). */
static struct entry entry_copy(const struct entry *entry)
{
	struct entry copy = *entry;
	if (entry->queue != NULL)
		copy.queue = memory_strdup(entry->queue);
	if (entry->function_copy != NULL)
		copy.function = copy.function_copy = memory_strdup(entry->function_copy);
	return copy;
}

static struct entry *lane_at(const struct lane *lane, size_t i)
{
	return &lane->slots[(lane->head + i) % lane->capacity];
}

/* Moves lane's entries into an array of capacity slots. Lock held. */
static void lane_resize(struct lane *lane, size_t capacity)
{
	struct entry *slots = memory_alloc(capacity * sizeof(*slots));
	for (size_t i = 0; i < lane->count; i++)
		slots[i] = *lane_at(lane, i);
	free(lane->slots);
	lane->slots = slots;
	lane->capacity = capacity;
	lane->head = 0;
}

/* Drops lane's oldest entry; it holds one. Lock held. */
static void lane_drop_oldest(struct lane *lane)
{
	struct entry *entry = lane_at(lane, 0);
	lane->dropped_upto = entry->seq;
	lane->bytes -= entry->bytes;
	ring.bytes -= entry->bytes;
	entry_free_names(entry);
	lane->head = (lane->head + 1) % lane->capacity;
	lane->count--;
	ring.count--;
	lane->dropped++;
	ring.dropped++;
	/* A flood that has gone leaves no large array behind. */
	if (lane->capacity > LANE_MIN_CAPACITY && lane->count < lane->capacity / 4)
		lane_resize(lane, lane->capacity / 2);
}

/* The index of lane's first entry after seq (count when none). Lock held. */
static size_t lane_first_after(const struct lane *lane, uint64_t seq)
{
	size_t low = 0, high = lane->count;
	while (low < high) {
		size_t middle = low + (high - low) / 2;
		if (lane_at(lane, middle)->seq <= seq)
			low = middle + 1;
		else
			high = middle;
	}
	return low;
}

/* The lane of entry, made when missing. Lock held; the feed is open. */
static struct lane *lane_of(const struct entry *entry)
{
	if (entry->type == ENTRY_QUEUE)
		return &ring.lanes[0];
	/* A scan: lanes are as many as the accounts that own jobs. */
	for (size_t i = 1; i < ring.lane_count; i++)
		if (ring.lanes[i].uid == entry->owner)
			return &ring.lanes[i];
	if (ring.lane_count == ring.lane_capacity) {
		ring.lane_capacity *= 2;
		ring.lanes = memory_realloc(ring.lanes, ring.lane_capacity * sizeof(*ring.lanes));
	}
	struct lane *lane = &ring.lanes[ring.lane_count++];
	*lane = (struct lane){.uid = entry->owner};
	return lane;
}

/* The lane that gives up an entry when the whole feed is past a bound: the
 * one holding the most of it (by_bytes: bytes, else entries), the older
 * head on a tie. Lock held; some lane holds an entry. */
static struct lane *heaviest(bool by_bytes)
{
	struct lane *best = NULL;
	for (size_t i = 0; i < ring.lane_count; i++) {
		struct lane *lane = &ring.lanes[i];
		if (lane->count == 0)
			continue;
		size_t weight = by_bytes ? lane->bytes : lane->count;
		size_t best_weight = best == NULL ? 0 : by_bytes ? best->bytes : best->count;
		if (best == NULL || weight > best_weight ||
		    (weight == best_weight && lane_at(lane, 0)->seq < lane_at(best, 0)->seq))
			best = lane;
	}
	return best;
}

/* Whether a reader with filter may see lane's entries at all. */
static bool sees(const struct events_filter *filter, const struct lane *lane)
{
	if (lane->queues)
		return filter->type != ENTRY_JOB && filter->ids == NULL && filter->function == NULL;
	return filter->type != ENTRY_QUEUE && (filter->all || filter->viewer == lane->uid);
}

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

/* watch_take's test: whether a waiting reader's filter keeps the new entry. Lock held. */
static bool watch_keeps(const struct watch *watch, const void *entry)
{
	return keeps(watch->data, entry);
}

/* Places *made (seq, time and bytes set; its names are taken) in its lane,
 * dropping what the bounds want first. Lock held; the feed is open. */
static void place_locked(struct entry *made)
{
	struct lane *lane = lane_of(made);
	/* Its owner's share first: a flood pushes out its own oldest. */
	while (lane->count > 0 &&
	       (lane->count >= ring.share_entries || lane->bytes + made->bytes > ring.share_bytes))
		lane_drop_oldest(lane);
	/* Then the feed's bounds, from whoever holds the most. */
	while (ring.count > 0 &&
	       (ring.count >= ring.max_entries || ring.bytes + made->bytes > ring.max_bytes))
		lane_drop_oldest(heaviest(ring.count < ring.max_entries));
	if (lane->count == lane->capacity)
		lane_resize(lane, lane->capacity > 0 ? lane->capacity * 2 : LANE_MIN_CAPACITY);
	*lane_at(lane, lane->count) = *made;
	lane->count++;
	lane->bytes += made->bytes;
	ring.count++;
	ring.bytes += made->bytes;
}

/* Appends *made (its queue name is taken) and notifies the watches it
 * satisfies. Any thread; no lock held. */
static void append(struct entry *made)
{
	struct watch_list ready = LIST_HEAD_INITIALIZER(ready);
	pthread_mutex_lock(&ring.lock);
	if (!ring.open) {
		pthread_mutex_unlock(&ring.lock);
		entry_free_names(made);
		return;
	}
	made->bytes = sizeof(*made) + (made->queue != NULL ? strlen(made->queue) + 1 : 0);
	made->seq = ring.next_seq++;
	ring.appended++;
	made->time = now_wall();
	place_locked(made);
	/* Past the reservation it is not shown yet, so it wakes nobody. */
	if (made->seq < ring.visible_below)
		watch_take(&ring.watches, watch_keeps, made, &ready);
	pthread_mutex_unlock(&ring.lock);
	watch_notify_all(&ready);
	events_hook_fn *appended = atomic_load_explicit(&hook, memory_order_acquire);
	if (appended != NULL)
		appended();
}

void events_job(uint64_t id, uid_t owner, const char *function, int from, int to, int worker)
{
	struct entry entry = {
		.type = ENTRY_JOB,
		.id = id,
		.owner = owner,
		.function = function,
		.from = (signed char)from,
		.to = (signed char)to,
		.worker = worker,
	};
	append(&entry);
}

static void on_moved(struct job *job, enum job_state from, enum job_state to, int worker)
{
	events_job(job->id, job->owner != NULL ? job->owner->uid : 0,
	           functions_name_of(job->function), (int)from, (int)to, worker);
}

static const struct jobs_observer observer = {.moved = on_moved};

void events_init(struct jobs *jobs, const struct events_limits *limits)
{
	pthread_mutex_lock(&ring.lock);
	ring.max_entries = limits->max_entries > 0 ? limits->max_entries : 1;
	ring.max_bytes = limits->max_bytes > sizeof(struct entry) ? limits->max_bytes
	                                                          : sizeof(struct entry);
	ring.share_entries = limits->share_entries > 0 && limits->share_entries < ring.max_entries
	                             ? limits->share_entries
	                             : ring.max_entries;
	ring.share_bytes = limits->share_bytes > sizeof(struct entry) &&
	                                   limits->share_bytes < ring.max_bytes
	                           ? limits->share_bytes
	                           : ring.max_bytes;
	ring.lane_capacity = 8;
	ring.lanes = memory_zalloc(ring.lane_capacity * sizeof(*ring.lanes));
	ring.lanes[0].queues = true;
	ring.lane_count = 1;
	/* Microseconds of the start: another run of weftd has another epoch. */
	ring.epoch = (uint64_t)(now_wall() * 1e6);
	ring.next_seq = 1;
	ring.appended = 0;
	ring.visible_below = UINT64_MAX;
	ring.gap_low = ring.gap_high = 0;
	ring.count = ring.bytes = 0;
	ring.dropped = 0;
	ring.open = true;
	pthread_mutex_unlock(&ring.lock);
	if (jobs != NULL)
		jobs_add_observer(jobs, &observer);
}

void events_fini(void)
{
	pthread_mutex_lock(&ring.lock);
	for (size_t i = 0; i < ring.lane_count; i++) {
		struct lane *lane = &ring.lanes[i];
		for (size_t j = 0; j < lane->count; j++)
			entry_free_names(lane_at(lane, j));
		free(lane->slots);
	}
	free(ring.lanes);
	ring.lanes = NULL;
	ring.lane_count = ring.lane_capacity = 0;
	ring.count = ring.bytes = 0;
	ring.open = false;
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

/* The cursor to read on from after a cursor expired: the newest drop among
 * the lanes the reader sees. */
static int expired_locked(struct problem *problem, uint64_t *last, uint64_t oldest,
                          const char *why)
{
	char cursor[EVENTS_CURSOR_SIZE];
	*last = oldest;
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
	size_t *at = NULL;
	pthread_mutex_lock(&ring.lock);
	int rv = WEFT_OK;
	if (!ring.open) {
		rv = problem_set(problem, WEFT_ESHUTDOWN, NULL, "the event feed is closed");
		goto done;
	}
	/* Where this reader's lanes dropped to, and how much they hold. */
	uint64_t dropped_upto = 0;
	size_t held = 0;
	for (size_t i = 0; i < ring.lane_count; i++) {
		const struct lane *lane = &ring.lanes[i];
		if (!sees(filter, lane))
			continue;
		if (lane->dropped_upto > dropped_upto)
			dropped_upto = lane->dropped_upto;
		held += lane->count;
	}
	if (seq != 0 && epoch != ring.epoch) {
		rv = expired_locked(problem, last_out, dropped_upto,
		                    "the cursor is from another run of weftd (it restarted)");
		goto done;
	}
	if (seq != 0 && seq > ring.gap_low && seq < ring.gap_high) {
		rv = expired_locked(problem, last_out,
		                    dropped_upto > ring.gap_high ? dropped_upto : ring.gap_high,
		                    "events after the cursor were lost when weftd stopped before "
		                    "it could journal them (it was killed)");
		goto done;
	}
	if (seq >= ring.next_seq) {
		rv = problem_set(problem, WEFT_EBADFIELD, "after",
		                 "the cursor is past the newest event (%" PRIu64 "); pass a cursor "
		                 "this weftd gave",
		                 ring.next_seq - 1);
		goto done;
	}
	if (seq != 0 && seq < dropped_upto) {
		rv = expired_locked(problem, last_out, dropped_upto,
		                    "events after the cursor were dropped (the feed holds "
		                    "--events-max of them, --events-max-per-user of one user's)");
		goto done;
	}
	/* Each seen lane from its first entry after seq, merged by seq. */
	at = memory_alloc(ring.lane_count * sizeof(*at));
	for (size_t i = 0; i < ring.lane_count; i++)
		at[i] = sees(filter, &ring.lanes[i]) ? lane_first_after(&ring.lanes[i], seq)
		                                     : ring.lanes[i].count;
	/* Copied out under the lock and turned into JSON after it, so that
	 * appenders (every job's state change) wait for a copy, not for JSON. */
	copies = memory_alloc(((limit < held ? limit : held) + 1) * sizeof(*copies));
	size_t kept = 0, looked = 0;
	uint64_t last = seq;
	/* Bounded work under the lock for a filter that keeps little: the
	 * cursor tells the reader how far this read looked. */
	while (kept < limit && looked < EVENTS_SCAN_MAX) {
		struct lane *next = NULL;
		size_t which = 0;
		for (size_t i = 0; i < ring.lane_count; i++) {
			struct lane *lane = &ring.lanes[i];
			if (at[i] < lane->count &&
			    (next == NULL || lane_at(lane, at[i])->seq < lane_at(next, at[which])->seq)) {
				next = lane;
				which = i;
			}
		}
		if (next == NULL || lane_at(next, at[which])->seq >= ring.visible_below) {
			/* Every lane this reader sees is read to its end (or to
			 * the journal's reservation). */
			uint64_t end = ring.next_seq < ring.visible_below ? ring.next_seq
			                                                 : ring.visible_below;
			if (end - 1 > last)
				last = end - 1;
			break;
		}
		const struct entry *entry = lane_at(next, at[which]++);
		last = entry->seq;
		looked++;
		if (!keeps(filter, entry))
			continue;
		copies[kept++] = entry_copy(entry);
	}
	*last_out = last;
	pthread_mutex_unlock(&ring.lock);
	free(at);
	json_t *list = json_array();
	for (size_t i = 0; i < kept; i++) {
		json_array_append_new(list, entry_json(&copies[i]));
		entry_free_names(&copies[i]);
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
	for (size_t i = 0; ring.open && i < ring.lane_count && !found; i++) {
		const struct lane *lane = &ring.lanes[i];
		if (!sees(watch->data, lane))
			continue;
		for (size_t j = lane_first_after(lane, watch->key);
		     j < lane->count && !found && lane_at(lane, j)->seq < ring.visible_below; j++)
			found = keeps(watch->data, lane_at(lane, j));
	}
	bool wait = ring.open && !found;
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

void events_stats(uid_t viewer, struct events_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	pthread_mutex_lock(&ring.lock);
	stats->appended = ring.appended;
	stats->held = ring.count;
	stats->bytes = ring.bytes;
	stats->dropped = ring.dropped;
	stats->epoch = ring.epoch;
	stats->share_entries = ring.share_entries;
	stats->share_bytes = ring.share_bytes;
	for (size_t i = 1; i < ring.lane_count; i++) {
		const struct lane *lane = &ring.lanes[i];
		if (lane->count > 0)
			stats->users++;
		if (lane->uid == viewer) {
			stats->yours_held = lane->count;
			stats->yours_bytes = lane->bytes;
			stats->yours_dropped = lane->dropped;
		}
	}
	pthread_mutex_unlock(&ring.lock);
}

/* ---- durability ---- */

static long long lane_id(const struct lane *lane)
{
	return lane->queues ? EVENTS_QUEUE_LANE : (long long)lane->uid;
}

static void text_add(struct events_batch *batch, const char *bytes, size_t size)
{
	if (batch->text_size + size > batch->text_capacity) {
		size_t capacity = batch->text_capacity > 0 ? batch->text_capacity : 4096;
		while (capacity < batch->text_size + size)
			capacity *= 2;
		batch->text = memory_realloc(batch->text, capacity);
		batch->text_capacity = capacity;
	}
	memcpy(batch->text + batch->text_size, bytes, size);
	batch->text_size += size;
}

static void text_literal(struct events_batch *batch, const char *literal)
{
	text_add(batch, literal, strlen(literal));
}

/* value in decimal, without printf (the journal's writer runs this for
 * every event). */
static void text_uint(struct events_batch *batch, uint64_t value)
{
	char digits[24];
	char *end = digits + sizeof(digits), *at = end;
	do {
		*--at = (char)('0' + value % 10);
		value /= 10;
	} while (value > 0);
	text_add(batch, at, (size_t)(end - at));
}

/* A wall-clock time that reads back as the same double: between 2^29 and
 * 2^33 seconds (1987 to 2242) a double's step is at least 1.19e-7 s, so 7
 * decimals, rounded, land nearer to it than to either neighbour. Other
 * values go through printf's 17 digits. */
static void text_time(struct events_batch *batch, double value)
{
	if (!(value >= 536870912.0 && value < 8589934592.0)) {
		char digits[40];
		int length = snprintf(digits, sizeof(digits), "%.17g", value);
		text_add(batch, digits, (size_t)length);
		return;
	}
	uint64_t whole = (uint64_t)value;
	uint64_t fraction = (uint64_t)((value - (double)whole) * 1e7 + 0.5);
	if (fraction >= 10000000) {
		whole++;
		fraction -= 10000000;
	}
	text_uint(batch, whole);
	char digits[8] = {'.'};
	for (int i = 7; i >= 1; i--) {
		digits[i] = (char)('0' + fraction % 10);
		fraction /= 10;
	}
	text_add(batch, digits, 8);
}

/* value as a JSON string: runs that need no escape are copied whole. */
static void text_string(struct events_batch *batch, const char *value)
{
	static const char hex[] = "0123456789abcdef";
	text_add(batch, "\"", 1);
	const char *run = value;
	for (const char *at = value; *at != '\0'; at++) {
		unsigned char c = (unsigned char)*at;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		text_add(batch, run, (size_t)(at - run));
		run = at + 1;
		char escape[6] = {'\\', (char)c, 0};
		if (c < 0x20) {
			memcpy(escape, "\\u00", 4);
			escape[4] = hex[c >> 4];
			escape[5] = hex[c & 15];
			text_add(batch, escape, 6);
		} else {
			text_add(batch, escape, 2);
		}
	}
	text_add(batch, run, strlen(run));
	text_add(batch, "\"", 1);
}

/* The body entry_json makes, as JSON text, but for its cursor: that is the
 * store's epoch and the seq, kept beside it (a sixth of the bytes). */
static void body_text(struct events_batch *batch, const struct entry *entry)
{
	text_literal(batch, "{\"time\":");
	text_time(batch, entry->time);
	if (entry->type == ENTRY_QUEUE) {
		text_literal(batch, ",\"type\":\"queue\",\"queue\":");
		text_string(batch, entry->queue);
		text_literal(batch, ",\"change\":");
		text_string(batch, entry->change);
		if (strcmp(entry->change, "set") == 0) {
			text_literal(batch, ",\"max\":");
			if (entry->max < 0)
				text_add(batch, "-", 1);
			text_uint(batch, entry->max < 0 ? 0ULL - (uint64_t)entry->max : (uint64_t)entry->max);
		}
		text_add(batch, "}", 1);
		return;
	}
	text_literal(batch, ",\"type\":\"job\",\"id\":");
	text_uint(batch, entry->id);
	text_literal(batch, ",\"owner\":");
	text_uint(batch, entry->owner);
	text_literal(batch, ",\"fn\":");
	text_string(batch, entry->function);
	text_literal(batch, ",\"state\":");
	text_string(batch, job_state_name((enum job_state)entry->to));
	text_literal(batch, ",\"from\":");
	if (entry->from == JOB_STATE_COUNT)
		text_literal(batch, "null");
	else
		text_string(batch, job_state_name((enum job_state)entry->from));
	if (entry->worker >= 0) {
		text_literal(batch, ",\"worker\":");
		text_uint(batch, (uint64_t)entry->worker);
	}
	text_add(batch, "}", 1);
}

int events_collect(uint64_t after, uint64_t until, size_t max, struct events_batch *batch)
{
	memset(batch, 0, sizeof(*batch));
	if (max == 0)
		max = 1;
	pthread_mutex_lock(&ring.lock);
	if (!ring.open) {
		pthread_mutex_unlock(&ring.lock);
		return WEFT_ESHUTDOWN;
	}
	uint64_t upto = ring.next_seq - 1 < until ? ring.next_seq - 1 : until;
	size_t marks = 0;
	for (size_t i = 0; i < ring.lane_count; i++)
		marks += ring.lanes[i].dropped_upto > 0;
	batch->marks = memory_alloc((marks + 1) * sizeof(*batch->marks));
	for (size_t i = 0; i < ring.lane_count; i++)
		if (ring.lanes[i].dropped_upto > 0)
			batch->marks[batch->mark_count++] = (struct events_mark){
				.lane = lane_id(&ring.lanes[i]),
				.dropped_upto = ring.lanes[i].dropped_upto,
			};
	/* Usually a commit's worth: the appends since the last collect. */
	size_t wanted = upto > after ? (size_t)(upto - after) : 0;
	if (wanted > ring.count)
		wanted = ring.count;
	if (wanted > max)
		wanted = max;
	struct entry *copies = memory_alloc((wanted + 1) * sizeof(*copies));
	size_t *at = memory_alloc(ring.lane_count * sizeof(*at));
	for (size_t i = 0; i < ring.lane_count; i++)
		at[i] = lane_first_after(&ring.lanes[i], after);
	size_t kept = 0;
	/* Merged by seq, so that a capped collect takes the oldest. */
	for (;;) {
		struct lane *next = NULL;
		size_t which = 0;
		for (size_t i = 0; i < ring.lane_count; i++) {
			struct lane *lane = &ring.lanes[i];
			if (at[i] < lane->count && lane_at(lane, at[i])->seq <= upto &&
			    (next == NULL || lane_at(lane, at[i])->seq < lane_at(next, at[which])->seq)) {
				next = lane;
				which = i;
			}
		}
		if (next == NULL)
			break;
		if (kept == max) {
			batch->more = true;
			upto = copies[kept - 1].seq;
			break;
		}
		copies[kept++] = entry_copy(lane_at(next, at[which]++));
	}
	batch->upto = upto;
	batch->next_seq = ring.next_seq;
	pthread_mutex_unlock(&ring.lock);
	free(at);
	batch->rows = memory_alloc((kept + 1) * sizeof(*batch->rows));
	size_t *offsets = memory_alloc((kept + 1) * sizeof(*offsets));
	for (size_t i = 0; i < kept; i++) {
		struct entry *entry = &copies[i];
		offsets[i] = batch->text_size;
		body_text(batch, entry);
		batch->rows[i] = (struct events_row){
			.seq = entry->seq,
			.lane = entry->type == ENTRY_QUEUE ? EVENTS_QUEUE_LANE : (long long)entry->owner,
			.bytes = entry->bytes,
			.body_size = batch->text_size - offsets[i],
		};
		text_add(batch, "", 1);
		entry_free_names(entry);
	}
	/* The text is final now: it no longer moves. */
	for (size_t i = 0; i < kept; i++)
		batch->rows[i].body = batch->text + offsets[i];
	free(offsets);
	batch->row_count = kept;
	free(copies);
	return WEFT_OK;
}

void events_batch_clear(struct events_batch *batch)
{
	free(batch->text);
	free(batch->rows);
	free(batch->marks);
	memset(batch, 0, sizeof(*batch));
}

uint64_t events_newest(void)
{
	pthread_mutex_lock(&ring.lock);
	uint64_t newest = ring.next_seq > 0 ? ring.next_seq - 1 : 0;
	pthread_mutex_unlock(&ring.lock);
	return newest;
}

void events_set_hook(events_hook_fn *appended)
{
	atomic_store_explicit(&hook, appended, memory_order_release);
}

void events_set_reserved(uint64_t below)
{
	pthread_mutex_lock(&ring.lock);
	ring.visible_below = below;
	pthread_mutex_unlock(&ring.lock);
}

void events_restore_begin(uint64_t epoch)
{
	pthread_mutex_lock(&ring.lock);
	ring.epoch = epoch;
	pthread_mutex_unlock(&ring.lock);
}

/* The lane of `lane` (an events_row's), made when missing. Lock held. */
static struct lane *lane_by_id(long long lane)
{
	struct entry probe = {.type = lane == EVENTS_QUEUE_LANE ? ENTRY_QUEUE : ENTRY_JOB,
	                      .owner = (uid_t)lane};
	return lane_of(&probe);
}

/* Reads a stored body back into *entry (names owned). Returns WEFT_OK or WEFT_EINVAL. */
static int entry_parse(const char *body, long long lane, struct entry *entry)
{
	json_t *object = json_loads(body, 0, NULL);
	const char *type = json_string_value(json_object_get(object, "type"));
	const json_t *time = json_object_get(object, "time");
	int rv = WEFT_EINVAL;
	*entry = (struct entry){.worker = -1};
	if (type == NULL || !json_is_number(time))
		goto done;
	entry->time = json_number_value(time);
	if (strcmp(type, "queue") == 0 && lane == EVENTS_QUEUE_LANE) {
		static const char *const changes[] = {"set", "pause", "resume"};
		const char *queue = json_string_value(json_object_get(object, "queue"));
		const char *change = json_string_value(json_object_get(object, "change"));
		for (size_t i = 0; change != NULL && i < sizeof(changes) / sizeof(changes[0]); i++)
			if (strcmp(change, changes[i]) == 0)
				entry->change = changes[i];
		if (queue == NULL || entry->change == NULL)
			goto done;
		entry->type = ENTRY_QUEUE;
		entry->queue = memory_strdup(queue);
		entry->max = (long)json_integer_value(json_object_get(object, "max"));
		rv = WEFT_OK;
		goto done;
	}
	const char *function = json_string_value(json_object_get(object, "fn"));
	const char *state = json_string_value(json_object_get(object, "state"));
	const json_t *from = json_object_get(object, "from");
	const json_t *id = json_object_get(object, "id");
	const json_t *worker = json_object_get(object, "worker");
	enum job_state to, before = JOB_STATE_COUNT;
	if (strcmp(type, "job") != 0 || lane < 0 || function == NULL || !json_is_integer(id) ||
	    state == NULL || job_state_parse(state, &to) != 0 ||
	    (from != NULL && !json_is_null(from) &&
	     (!json_is_string(from) || job_state_parse(json_string_value(from), &before) != 0)))
		goto done;
	entry->type = ENTRY_JOB;
	entry->id = (uint64_t)json_integer_value(id);
	entry->owner = (uid_t)lane;
	entry->to = (signed char)to;
	entry->from = (signed char)before;
	entry->worker = json_is_integer(worker) ? (int)json_integer_value(worker) : -1;
	/* The function's own static name when this weftd has it. */
	const struct function *known = strcmp(function, functions_name_of(&functions_future)) == 0
	                                       ? &functions_future
	                                       : functions_find(function);
	if (known != NULL)
		entry->function = functions_name_of(known);
	else
		entry->function = entry->function_copy = memory_strdup(function);
	rv = WEFT_OK;
done:
	json_decref(object);
	return rv;
}

int events_restore(uint64_t seq, long long lane, size_t bytes, const char *body)
{
	struct entry entry;
	if (entry_parse(body, lane, &entry) != WEFT_OK) {
		entry_free_names(&entry);
		return WEFT_EINVAL;
	}
	entry.seq = seq;
	entry.bytes = bytes >= sizeof(entry) ? bytes : sizeof(entry);
	pthread_mutex_lock(&ring.lock);
	if (!ring.open || seq < ring.next_seq) {
		/* Out of order: not a store events_collect wrote. */
		pthread_mutex_unlock(&ring.lock);
		entry_free_names(&entry);
		return WEFT_EINVAL;
	}
	place_locked(&entry);
	ring.next_seq = seq + 1;
	pthread_mutex_unlock(&ring.lock);
	return WEFT_OK;
}

void events_restore_mark(long long lane, uint64_t dropped_upto)
{
	pthread_mutex_lock(&ring.lock);
	if (ring.open) {
		struct lane *found = lane_by_id(lane);
		if (dropped_upto > found->dropped_upto)
			found->dropped_upto = dropped_upto;
		if (dropped_upto >= ring.next_seq)
			ring.next_seq = dropped_upto + 1;
	}
	pthread_mutex_unlock(&ring.lock);
}

void events_restore_end(uint64_t upto, uint64_t reserved)
{
	pthread_mutex_lock(&ring.lock);
	if (upto < ring.next_seq - 1)
		upto = ring.next_seq - 1;
	ring.next_seq = upto + 1;
	/* Reads showed seqs below the reservation only: those past upto are
	 * lost, and the reservation itself is where this run starts. */
	if (reserved > ring.next_seq) {
		ring.gap_low = upto;
		ring.gap_high = reserved;
		ring.next_seq = reserved + 1;
	}
	pthread_mutex_unlock(&ring.lock);
}

/*
 * The job table; see jobs.h for the contract.
 *
 * Layout: SHARD_COUNT shards chosen by id, each a chained hash table under its
 * own mutex. Ids come from one atomic counter, so consecutive ids land on
 * different shards and concurrent submitters rarely meet on a lock.
 *
 * Retention: finished jobs are appended to one FIFO (the retention queue, under
 * retention_lock) in the order they finish; expiry and the count limit pop
 * from its head. Lock order: a shard lock and retention_lock are never held at
 * the same time; eviction takes retention_lock to pop, releases it, then takes
 * the shard lock to unlist.
 */
#include "daemon/core/jobs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/functions.h"
#include "daemon/core/items.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/core/principal.h"
#include "daemon/core/quota.h"

#define SHARD_COUNT 64

struct shard {
	pthread_mutex_t lock;
	struct job **buckets; /* chains through job->hash_next */
	size_t bucket_count;  /* a power of two */
	size_t count;
};

struct jobs {
	struct shard shards[SHARD_COUNT];
	/* The next id to hand out. Relaxed: ids need only be unique; the job is
	 * published to other threads through the shard lock. */
	atomic_uint_fast64_t next_id;
	/* Statistics read without locks; each update is a single relaxed RMW. */
	atomic_uint_fast64_t by_state[JOB_STATE_COUNT];
	atomic_uint_fast64_t submitted;
	/* Finishes so far: each finished job's place. Relaxed: only an order. */
	atomic_uint_fast64_t finishes;

	/* Bytes charged by the jobs listed (job->bytes summed), and by those of
	 * them in the retention queue. Relaxed: each is a sum read for limits and
	 * statistics; retained_bytes changes under retention_lock alone. */
	atomic_uint_fast64_t bytes;
	atomic_uint_fast64_t retained_bytes;

	pthread_mutex_t retention_lock;
	STAILQ_HEAD(, job) retained; /* oldest finished job first */
	size_t retained_count;
	uint64_t max_bytes; /* jobs_set_max_bytes; 0: none. Immutable once threads run. */
	/* Set by jobs_new before any other thread sees the table; immutable after. */
	double retain_seconds;
	size_t retain_max;
	/* Set by jobs_add_observer before any other thread uses the table. */
	const struct jobs_observer *observers[JOBS_MAX_OBSERVERS];
	size_t observer_count;
};

#define JOB_STATE_NAME_(name, wire) wire,
static const char *const state_names[JOB_STATE_COUNT] = {PROTO_STATE_MAP(JOB_STATE_NAME_)};
#undef JOB_STATE_NAME_

void job_schedule_free(struct job_schedule *schedule)
{
	if (schedule == NULL)
		return;
	free(schedule->after);
	free(schedule->queue_name);
	json_decref(schedule->retry_on);
	free(schedule);
}

const char *job_state_name(enum job_state state)
{
	return (unsigned)state < JOB_STATE_COUNT ? state_names[state] : "unknown";
}

int job_state_parse(const char *name, enum job_state *out)
{
	for (int state = 0; state < JOB_STATE_COUNT; state++) {
		if (strcmp(name, state_names[state]) == 0) {
			*out = (enum job_state)state;
			return 0;
		}
	}
	return -1;
}

static void count_add(struct jobs *jobs, enum job_state state, int delta)
{
	atomic_fetch_add_explicit(&jobs->by_state[state], (uint_fast64_t)(int_fast64_t)delta,
	                          memory_order_relaxed);
}

static void observe_changed(struct jobs *jobs, struct job *job)
{
	for (size_t i = 0; i < jobs->observer_count; i++)
		if (jobs->observers[i]->changed != NULL)
			jobs->observers[i]->changed(job);
}

static void observe_moved(struct jobs *jobs, struct job *job, enum job_state from,
                          enum job_state to, int worker)
{
	for (size_t i = 0; i < jobs->observer_count; i++)
		if (jobs->observers[i]->moved != NULL)
			jobs->observers[i]->moved(job, from, to, worker);
}

int jobs_add_observer(struct jobs *jobs, const struct jobs_observer *observer)
{
	if (jobs->observer_count == JOBS_MAX_OBSERVERS)
		return -1;
	jobs->observers[jobs->observer_count++] = observer;
	return 0;
}

void jobs_set_observer(struct jobs *jobs, const struct jobs_observer *observer)
{
	if (observer != NULL)
		(void)jobs_add_observer(jobs, observer);
}

struct items *jobs_items(struct jobs *jobs, struct job *job)
{
	struct items *items = atomic_load(&job->items);
	if (items != NULL)
		return items;
	struct items *made =
		items_new(job->owner != NULL ? job->owner->uid : 0,
	                  atomic_load_explicit(&job->item_buffer, memory_order_relaxed));
	struct items *expected = NULL;
	if (!atomic_compare_exchange_strong(&job->items, &expected, made)) {
		items_free(made);
		return expected;
	}
	/* Sequentially consistent with jobs_finish's load: either it sees these
	 * items and closes them, or this sees the job finished. */
	if (job_state_finished(jobs_state(jobs, job)))
		items_close(made);
	return made;
}

struct jobs *jobs_new(double retain_seconds, size_t retain_max)
{
	struct jobs *jobs = memory_zalloc(sizeof(*jobs));
	STAILQ_INIT(&jobs->retained);
	for (int i = 0; i < SHARD_COUNT; i++) {
		struct shard *shard = &jobs->shards[i];
		pthread_mutex_init(&shard->lock, NULL);
		shard->bucket_count = 64;
		shard->buckets = memory_zalloc(shard->bucket_count * sizeof(*shard->buckets));
	}
	pthread_mutex_init(&jobs->retention_lock, NULL);
	atomic_init(&jobs->next_id, 1);
	jobs->retain_seconds = retain_seconds;
	jobs->retain_max = retain_max;
	return jobs;
}

void jobs_free(struct jobs *jobs)
{
	if (jobs == NULL)
		return;
	for (int i = 0; i < SHARD_COUNT; i++) {
		struct shard *shard = &jobs->shards[i];
		for (size_t b = 0; b < shard->bucket_count; b++) {
			struct job *job = shard->buckets[b];
			while (job != NULL) {
				struct job *next = job->hash_next;
				job_unref(job);
				job = next;
			}
		}
		free(shard->buckets);
		pthread_mutex_destroy(&shard->lock);
	}
	pthread_mutex_destroy(&jobs->retention_lock);
	free(jobs);
}

static size_t bucket_of(const struct shard *shard, uint64_t id)
{
	return (size_t)(id / SHARD_COUNT) & (shard->bucket_count - 1);
}

/* Doubles the bucket array. Shard lock held. Out of memory in a refusable
 * region (memory.h) it keeps the old one: longer chains, nothing lost. */
static void shard_grow(struct shard *shard)
{
	size_t old_count = shard->bucket_count;
	struct job **old = shard->buckets;
	struct job **grown = memory_try_zalloc(old_count * 2 * sizeof(*shard->buckets));
	if (grown == NULL)
		return;
	shard->bucket_count = old_count * 2;
	shard->buckets = grown;
	for (size_t b = 0; b < old_count; b++) {
		struct job *job = old[b];
		while (job != NULL) {
			struct job *next = job->hash_next;
			size_t slot = bucket_of(shard, job->id);
			job->hash_next = shard->buckets[slot];
			shard->buckets[slot] = job;
			job = next;
		}
	}
	free(old);
}

struct job *jobs_create(struct jobs *jobs, const struct function *function, json_t *args,
                        json_t *labels, double timeout, struct principal *owner,
                        struct job_schedule *schedule)
{
	/* Outside a refusable region jobs_try_create aborts rather than fail. */
	unsigned refusable = memory_refusable_suspend();
	struct job *job = jobs_try_create(jobs, function, args, labels, timeout, owner, schedule);
	memory_refusable_resume(refusable);
	return job;
}

/* Lists a made job in its shard. No lock held. */
static void enlist(struct jobs *jobs, struct job *job)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	if (shard->count >= shard->bucket_count)
		shard_grow(shard);
	size_t slot = bucket_of(shard, job->id);
	job->hash_next = shard->buckets[slot];
	shard->buckets[slot] = job;
	shard->count++;
	pthread_mutex_unlock(&shard->lock);
}

struct job *jobs_try_create(struct jobs *jobs, const struct function *function, json_t *args,
                            json_t *labels, double timeout, struct principal *owner,
                            struct job_schedule *schedule)
{
	struct job *job = memory_try_zalloc(sizeof(*job));
	if (job == NULL)
		return NULL;
	job->id = atomic_fetch_add_explicit(&jobs->next_id, 1, memory_order_relaxed);
	job->function = function;
	job->args = args;
	job->labels = labels;
	job->timeout = timeout;
	job->created = now_wall();
	job->shard = (uint32_t)(job->id % SHARD_COUNT);
	job->owner = principal_ref(owner);
	job->schedule = schedule;
	job->state = JOB_QUEUED;
	job->worker = -1;
	/* One reference for the table, one for the caller. */
	atomic_init(&job->references, 2);

	enlist(jobs, job);

	count_add(jobs, JOB_QUEUED, 1);
	/* Counted against its owner until jobs_finish finishes it (quota.h). */
	if (owner != NULL)
		quota_charge(QUOTA_PENDING, owner->uid, 1);
	atomic_fetch_add_explicit(&jobs->submitted, 1, memory_order_relaxed);
	observe_moved(jobs, job, JOB_STATE_COUNT, JOB_QUEUED, -1);
	return job;
}

struct job *jobs_find(struct jobs *jobs, uint64_t id)
{
	if (id == 0)
		return NULL;
	struct shard *shard = &jobs->shards[id % SHARD_COUNT];
	pthread_mutex_lock(&shard->lock);
	struct job *job = shard->buckets[bucket_of(shard, id)];
	while (job != NULL && job->id != id)
		job = job->hash_next;
	if (job != NULL)
		job_ref(job);
	pthread_mutex_unlock(&shard->lock);
	return job;
}

void job_ref(struct job *job)
{
	/* Relaxed: taking a reference needs no ordering; the holder already sees the job. */
	atomic_fetch_add_explicit(&job->references, 1, memory_order_relaxed);
}

void job_unref(struct job *job)
{
	if (job == NULL)
		return;
	/* acq_rel: the last dropper must see every write other holders made before
	 * dropping theirs, so the free below happens after all of them. */
	if (atomic_fetch_sub_explicit(&job->references, 1, memory_order_acq_rel) != 1)
		return;
	json_decref(job->args);
	json_decref(job->labels);
	json_decref(job->result);
	json_decref(job->error);
	json_decref(job->attempts);
	json_decref(job->children);
	job_schedule_free(job->schedule);
	items_free(atomic_load_explicit(&job->items, memory_order_relaxed));
	principal_unref(job->owner);
	free(job);
}

bool jobs_start(struct jobs *jobs, struct job *job, int worker, struct job_attempt *attempt)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	bool started = job->state == JOB_QUEUED;
	if (started) {
		job->state = JOB_RUNNING;
		job->started = now_wall();
		job->worker = worker;
		job->attempt = attempt;
		/* Jobs that may run more than once record each attempt. */
		if (job->schedule != NULL && job->schedule->retries > 0) {
			if (job->attempts == NULL)
				job->attempts = json_array();
			json_array_append_new(job->attempts,
			                      json_pack("{s:I, s:f, s:n}", "number",
			                                (json_int_t)json_array_size(job->attempts) + 1,
			                                "started", job->started, "finished"));
		}
	}
	pthread_mutex_unlock(&shard->lock);
	if (started) {
		count_add(jobs, JOB_QUEUED, -1);
		count_add(jobs, JOB_RUNNING, 1);
		observe_moved(jobs, job, JOB_QUEUED, JOB_RUNNING, worker);
		observe_changed(jobs, job);
	}
	return started;
}

void jobs_make_pending(struct jobs *jobs, struct job *job)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	bool made = job->state == JOB_QUEUED;
	if (made)
		job->state = JOB_PENDING;
	pthread_mutex_unlock(&shard->lock);
	if (made) {
		count_add(jobs, JOB_QUEUED, -1);
		count_add(jobs, JOB_PENDING, 1);
		observe_moved(jobs, job, JOB_QUEUED, JOB_PENDING, -1);
	}
}

/* Ends the job's running attempt, if it has one open. Shard lock held. */
static void close_attempt(struct job *job, json_t *error)
{
	size_t count = job->attempts != NULL ? json_array_size(job->attempts) : 0;
	json_t *last = count > 0 ? json_array_get(job->attempts, count - 1) : NULL;
	if (last == NULL || !json_is_null(json_object_get(last, "finished")))
		return;
	json_object_set_new(last, "finished", json_real(now_wall()));
	if (error != NULL)
		json_object_set(last, "error", error);
}

/* Moves a job from one unfinished state to another; false when it was not in `from`. */
static bool move(struct jobs *jobs, struct job *job, enum job_state from, enum job_state to,
                 json_t *error)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	bool moved = job->state == from;
	int worker = job->worker;
	if (moved) {
		job->state = to;
		if (from == JOB_RUNNING)
			job->attempt = NULL; /* the attempt is over for the job */
		if (error != NULL)
			close_attempt(job, error);
	}
	pthread_mutex_unlock(&shard->lock);
	json_decref(error);
	if (moved) {
		count_add(jobs, from, -1);
		count_add(jobs, to, 1);
		observe_moved(jobs, job, from, to, from == JOB_RUNNING ? worker : -1);
	}
	return moved;
}

void jobs_make_waiting(struct jobs *jobs, struct job *job)
{
	move(jobs, job, JOB_QUEUED, JOB_WAITING, NULL);
}

bool jobs_release(struct jobs *jobs, struct job *job)
{
	return move(jobs, job, JOB_WAITING, JOB_QUEUED, NULL);
}

bool jobs_retry(struct jobs *jobs, struct job *job, json_t *error)
{
	bool moved = move(jobs, job, JOB_RUNNING, JOB_WAITING, error);
	if (moved)
		observe_changed(jobs, job); /* the attempt's end counts against retries */
	return moved;
}

void jobs_set_children(struct jobs *jobs, struct job *job, json_t *ids)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	json_t *old = job->children;
	job->children = ids;
	pthread_mutex_unlock(&shard->lock);
	json_decref(old);
}

unsigned jobs_attempts(struct jobs *jobs, struct job *job)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	unsigned count = job->attempts != NULL ? (unsigned)json_array_size(job->attempts) : 0;
	pthread_mutex_unlock(&shard->lock);
	return count;
}

/* Gives back what a job that the table drops was charged. No lock held. */
static void give_bytes(struct jobs *jobs, struct job *job)
{
	uint64_t bytes = atomic_exchange_explicit(&job->bytes, 0, memory_order_relaxed);
	if (bytes == 0)
		return;
	atomic_fetch_sub_explicit(&jobs->bytes, bytes, memory_order_relaxed);
	if (job->owner != NULL)
		quota_give(QUOTA_BYTES, job->owner->uid, bytes);
}

static bool over_bytes(struct jobs *jobs)
{
	return jobs->max_bytes > 0 &&
	       atomic_load_explicit(&jobs->bytes, memory_order_relaxed) > jobs->max_bytes;
}

/* Unlists a job and drops the table's reference. No lock held by the caller. */
static void unlist(struct jobs *jobs, struct job *job)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	struct job **link = &shard->buckets[bucket_of(shard, job->id)];
	while (*link != NULL && *link != job)
		link = &(*link)->hash_next;
	if (*link == job) {
		*link = job->hash_next;
		shard->count--;
	}
	enum job_state state = job->state;
	pthread_mutex_unlock(&shard->lock);
	count_add(jobs, state, -1);
	give_bytes(jobs, job);
	for (size_t i = 0; i < jobs->observer_count; i++)
		if (jobs->observers[i]->evicted != NULL)
			jobs->observers[i]->evicted(job);
	job_unref(job);
}

/* Pops the oldest retained job when keep() says it must go; NULL when none. */
static struct job *pop_retained(struct jobs *jobs, double expire_before)
{
	pthread_mutex_lock(&jobs->retention_lock);
	struct job *job = STAILQ_FIRST(&jobs->retained);
	bool evict = job != NULL && (jobs->retained_count > jobs->retain_max ||
	                             job->finished_monotonic < expire_before || over_bytes(jobs));
	if (evict) {
		STAILQ_REMOVE_HEAD(&jobs->retained, retained_link);
		jobs->retained_count--;
		atomic_fetch_sub_explicit(&jobs->retained_bytes,
		                          atomic_load_explicit(&job->bytes, memory_order_relaxed),
		                          memory_order_relaxed);
	}
	pthread_mutex_unlock(&jobs->retention_lock);
	return evict ? job : NULL;
}

static void retain(struct jobs *jobs, struct job *job)
{
	pthread_mutex_lock(&jobs->retention_lock);
	STAILQ_INSERT_TAIL(&jobs->retained, job, retained_link);
	jobs->retained_count++;
	atomic_fetch_add_explicit(&jobs->retained_bytes,
	                          atomic_load_explicit(&job->bytes, memory_order_relaxed),
	                          memory_order_relaxed);
	/* Whoever pushes the count over the limit evicts, so when this append did
	 * not, the lock need not be taken again. */
	bool over = jobs->retained_count > jobs->retain_max || over_bytes(jobs);
	pthread_mutex_unlock(&jobs->retention_lock);
	if (!over)
		return;
	/* The count limit is enforced at once, so memory stays bounded however fast
	 * jobs finish; age is enforced by jobs_expire. */
	struct job *old;
	while ((old = pop_retained(jobs, 0)) != NULL)
		unlist(jobs, old);
}

uint64_t jobs_json_bytes(const json_t *value)
{
	return value != NULL ? (uint64_t)json_dumpb(value, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
}

static void charge(struct jobs *jobs, struct job *job, uint64_t bytes)
{
	if (bytes == 0)
		return;
	atomic_fetch_add_explicit(&job->bytes, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&jobs->bytes, bytes, memory_order_relaxed);
	if (job->owner != NULL)
		quota_charge(QUOTA_BYTES, job->owner->uid, bytes);
}

void jobs_set_max_bytes(struct jobs *jobs, uint64_t max_bytes)
{
	jobs->max_bytes = max_bytes;
}

void jobs_add_bytes(struct jobs *jobs, struct job *job, uint64_t bytes)
{
	charge(jobs, job, bytes);
	/* Room for unfinished work is made from finished results, oldest first. */
	struct job *old;
	while (over_bytes(jobs) && (old = pop_retained(jobs, 0)) != NULL)
		unlist(jobs, old);
}

uint64_t jobs_unfinished_bytes(struct jobs *jobs)
{
	uint64_t all = atomic_load_explicit(&jobs->bytes, memory_order_relaxed);
	uint64_t retained = atomic_load_explicit(&jobs->retained_bytes, memory_order_relaxed);
	/* The two are read apart, so a finish in between can make retained the larger. */
	return all > retained ? all - retained : 0;
}

bool jobs_finish(struct jobs *jobs, struct job *job, enum job_state state, json_t *result,
                 json_t *error, enum job_state *previous, struct job_attempt **attempt)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	enum job_state before = job->state;
	int worker = job->worker;
	bool finishing = !job_state_finished(before);
	struct job_watch *watches = NULL;   /* detached from the job */
	struct job_attempt *running = NULL;
	if (finishing) {
		/* The runner's own reference keeps a named attempt alive (it is
		 * dropped only after the job stopped naming it), so taking one
		 * more here, under the lock, is safe. Relaxed, as for jobs. */
		running = job->attempt;
		job->attempt = NULL;
		if (running != NULL && attempt != NULL)
			atomic_fetch_add_explicit(&running->references, 1, memory_order_relaxed);
		job->state = state;
		job->finished = now_wall();
		job->finished_monotonic = now_monotonic();
		job->finish_order = atomic_fetch_add_explicit(&jobs->finishes, 1, memory_order_relaxed) + 1;
		job->result = result;
		job->error = error;
		close_attempt(job, error);
		watches = LIST_FIRST(&job->watches);
		LIST_INIT(&job->watches);
	}
	pthread_mutex_unlock(&shard->lock);
	if (previous != NULL)
		*previous = before;
	if (attempt != NULL)
		*attempt = running;
	if (!finishing) {
		json_decref(result);
		json_decref(error);
		return false;
	}
	count_add(jobs, before, -1);
	count_add(jobs, state, 1);
	/* Before the watchers: a reply they send may be followed by eviction,
	 * whose record must come after this one. */
	observe_changed(jobs, job);
	observe_moved(jobs, job, before, state, before == JOB_RUNNING ? worker : -1);
	/* After the state: a reader that finds the stream closed finds the job
	 * finished (jobs_items explains the order). */
	struct items *items = atomic_load(&job->items);
	if (items != NULL)
		items_close(items);
	/* The one call that finishes a job gives its pending count back. */
	if (job->owner != NULL)
		quota_give(QUOTA_PENDING, job->owner->uid, 1);
	/* Its result is held from now on: charged (never refused: it exists),
	 * before retain() so that the budget sees it. The values cannot change
	 * any more, so no lock is needed to measure them. */
	charge(jobs, job, jobs_json_bytes(result) + jobs_json_bytes(error));
	while (watches != NULL) {
		/* notify may free the watch: read the link first. The detached
		 * chain is walked forward only, never unlinked from. */
		struct job_watch *next = LIST_NEXT(watches, link);
		watches->notify(watches, job);
		watches = next;
	}
	job_ref(job);
	retain(jobs, job);
	/* retain() may have evicted this very job when retain_max is 0. */
	job_unref(job);
	return true;
}

bool jobs_watch(struct jobs *jobs, struct job *job, struct job_watch *watch)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	bool registered = !job_state_finished(job->state);
	if (registered) {
		LIST_INSERT_HEAD(&job->watches, watch, link);
	}
	pthread_mutex_unlock(&shard->lock);
	return registered;
}

bool jobs_unwatch(struct jobs *jobs, struct job *job, struct job_watch *watch)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	/* Finishing detaches every watch together with the state change, so an
	 * unfinished job still has this watch in its list. */
	bool removed = !job_state_finished(job->state);
	if (removed) {
		LIST_REMOVE(watch, link);
	}
	pthread_mutex_unlock(&shard->lock);
	return removed;
}

enum job_state jobs_state(struct jobs *jobs, struct job *job)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	enum job_state state = job->state;
	pthread_mutex_unlock(&shard->lock);
	return state;
}

void jobs_snapshot(struct jobs *jobs, struct job *job, struct job_snapshot *snapshot)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	snapshot->state = job->state;
	snapshot->finished = job->finished;
	snapshot->finish_order = job->finish_order;
	snapshot->result = json_incref(job->result);
	snapshot->error = json_incref(job->error);
	pthread_mutex_unlock(&shard->lock);
}

void jobs_snapshot_clear(struct job_snapshot *snapshot)
{
	json_decref(snapshot->result);
	json_decref(snapshot->error);
	snapshot->result = snapshot->error = NULL;
}

static json_t *time_or_null(double seconds)
{
	return seconds > 0 ? json_real(seconds) : json_null();
}

json_t *jobs_to_json(struct jobs *jobs, struct job *job)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	enum job_state state = job->state;
	double started = job->started;
	double finished = job->finished;
	int worker = job->worker;
	json_t *error = json_incref(job->error);
	json_t *attempts = job->attempts != NULL ? json_deep_copy(job->attempts) : NULL;
	json_t *children = json_incref(job->children); /* never changed once set */
	pthread_mutex_unlock(&shard->lock);

	json_t *object = json_pack("{s:I, s:s, s:s, s:O, s:o, s:f, s:o, s:o}", "id",
	                           (json_int_t)job->id, "fn", functions_name_of(job->function), "state",
	                           job_state_name(state), "args", job->args, "labels",
	                           job->labels != NULL ? json_incref(job->labels) : json_object(),
	                           "created", job->created, "started", time_or_null(started),
	                           "finished", time_or_null(finished));
	if (job->timeout > 0)
		json_object_set_new(object, "timeout", json_real(job->timeout));
	if (job->owner != NULL) {
		json_object_set_new(object, "owner", json_integer((json_int_t)job->owner->uid));
		if (job->owner->identity.user != NULL)
			json_object_set_new(object, "owner_name",
			                    json_string(job->owner->identity.user));
	}
	if (worker >= 0)
		json_object_set_new(object, "worker", json_integer(worker));
	if (error != NULL)
		json_object_set_new(object, "error", error);
	if (attempts != NULL)
		json_object_set_new(object, "attempts", attempts);
	if (children != NULL)
		json_object_set_new(object, "children", children);
	struct items *items = atomic_load(&job->items);
	if (items != NULL) {
		struct items_stats stats;
		items_stats(items, &stats);
		json_object_set_new(object, "items",
		                    json_pack("{s:I, s:I, s:I, s:I, s:I}", "count",
		                              (json_int_t)stats.count, "first", (json_int_t)stats.first,
		                              "held", (json_int_t)stats.held, "bytes",
		                              (json_int_t)stats.bytes, "pauses",
		                              (json_int_t)stats.pauses));
	}
	unsigned buffer = atomic_load_explicit(&job->item_buffer, memory_order_relaxed);
	if (buffer > 0)
		json_object_set_new(object, "buffer", json_integer(buffer));
	const struct job_schedule *schedule = job->schedule;
	if (schedule != NULL) {
		if (schedule->after_count > 0) {
			json_t *after = json_array();
			for (size_t i = 0; i < schedule->after_count; i++)
				json_array_append_new(after, json_integer((json_int_t)schedule->after[i]));
			json_object_set_new(object, "after", after);
			json_object_set_new(object, "after_policy",
			                    json_string(schedule->after_always ? "always" : "success"));
		}
		if (schedule->run_at > 0)
			json_object_set_new(object, "run_at", json_real(schedule->run_at));
		if (schedule->retries > 0) {
			json_object_set_new(object, "retries", json_integer(schedule->retries));
			json_object_set_new(object, "retry_backoff", json_real(schedule->retry_backoff));
			json_object_set_new(object, "retry_backoff_max",
			                    json_real(schedule->retry_backoff_max));
			if (schedule->retry_on != NULL)
				json_object_set(object, "retry_on", schedule->retry_on);
		}
		if (schedule->deadline > 0)
			json_object_set_new(object, "deadline", json_real(schedule->deadline));
		if (schedule->priority != 0)
			json_object_set_new(object, "priority", json_integer(schedule->priority));
		if (schedule->queue_name != NULL)
			json_object_set_new(object, "queue", json_string(schedule->queue_name));
	}
	return object;
}

static bool labels_match(const json_t *labels, const json_t *wanted)
{
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)wanted, key, value)
	{
		json_t *have = labels != NULL ? json_object_get(labels, key) : NULL;
		if (have == NULL || !json_equal(have, value))
			return false;
	}
	return true;
}

static int compare_ids(const void *left, const void *right)
{
	uint64_t a = (*(struct job *const *)left)->id;
	uint64_t b = (*(struct job *const *)right)->id;
	return a < b ? -1 : a > b;
}

/* References to every listed job for which keep() holds, in id order. */
static struct job **collect(struct jobs *jobs, bool (*keep)(struct job *, const void *),
                            const void *context, size_t *count)
{
	size_t used = 0, capacity = 64;
	struct job **found = memory_alloc(capacity * sizeof(*found));
	for (int i = 0; i < SHARD_COUNT; i++) {
		struct shard *shard = &jobs->shards[i];
		pthread_mutex_lock(&shard->lock);
		for (size_t b = 0; b < shard->bucket_count; b++) {
			for (struct job *job = shard->buckets[b]; job != NULL; job = job->hash_next) {
				if (!keep(job, context))
					continue;
				if (used == capacity) {
					capacity *= 2;
					found = memory_realloc(found, capacity * sizeof(*found));
				}
				job_ref(job);
				found[used++] = job;
			}
		}
		pthread_mutex_unlock(&shard->lock);
	}
	qsort(found, used, sizeof(*found), compare_ids);
	*count = used;
	return found;
}

/* Shard lock held: job->state may be read. */
static bool filter_keeps(struct job *job, const void *context)
{
	const struct jobs_filter *filter = context;
	if (job->id <= filter->after)
		return false;
	if (filter->viewer != NULL && !principal_may_act_on(filter->viewer, job->owner))
		return false;
	if (filter->state >= 0 && (int)job->state != filter->state)
		return false;
	if (filter->function != NULL && strcmp(functions_name_of(job->function), filter->function) != 0)
		return false;
	return filter->labels == NULL || labels_match(job->labels, filter->labels);
}

/* The job with this id if the filter keeps it, with a reference; else NULL. */
static struct job *find_kept(struct jobs *jobs, uint64_t id, const struct jobs_filter *filter)
{
	struct shard *shard = &jobs->shards[id % SHARD_COUNT];
	pthread_mutex_lock(&shard->lock);
	struct job *job = shard->buckets[bucket_of(shard, id)];
	while (job != NULL && job->id != id)
		job = job->hash_next;
	if (job != NULL && filter_keeps(job, filter))
		job_ref(job);
	else
		job = NULL;
	pthread_mutex_unlock(&shard->lock);
	return job;
}

json_t *jobs_list(struct jobs *jobs, const struct jobs_filter *filter, bool *more,
                  uint64_t *next)
{
	/* Ids are handed out in order, so a page walks ids from its cursor and
	 * looks each up (O(1) a step) instead of collecting and sorting the whole
	 * table; the walk is bounded, so a filter that matches little costs a
	 * bounded page and a cursor, never a scan of everything. */
	uint64_t top = atomic_load_explicit(&jobs->next_id, memory_order_relaxed) - 1;
	uint64_t low = filter->after;                        /* exclusive */
	uint64_t high = filter->before > 0 ? filter->before : top + 1; /* exclusive */
	if (high > top + 1)
		high = top + 1;
	json_t *list = json_array();
	size_t found = 0, scanned = 0;
	bool another = false; /* one match past the limit: there is more for sure */
	uint64_t id = filter->newest_first ? high - 1 : low + 1;
	while (low < id && id < high && scanned < JOBS_LIST_SCAN_MAX) {
		struct job *job = find_kept(jobs, id, filter);
		scanned++;
		if (job != NULL) {
			if (found == filter->limit) {
				another = true;
				job_unref(job);
				break;
			}
			json_array_append_new(list, jobs_to_json(jobs, job));
			found++;
			job_unref(job);
		}
		id = filter->newest_first ? id - 1 : id + 1;
	}
	/* Unless another match was seen, more means ids are left unlooked at. */
	*more = another || (low < id && id < high);
	/* The cursor resumes at the id the walk stopped on. */
	*next = filter->newest_first ? id + 1 : (id > 0 ? id - 1 : 0);
	return list;
}

void jobs_counts(struct jobs *jobs, struct jobs_counts *counts)
{
	for (int state = 0; state < JOB_STATE_COUNT; state++)
		counts->by_state[state] =
			atomic_load_explicit(&jobs->by_state[state], memory_order_relaxed);
	counts->submitted = atomic_load_explicit(&jobs->submitted, memory_order_relaxed);
	pthread_mutex_lock(&jobs->retention_lock);
	counts->retained = jobs->retained_count;
	pthread_mutex_unlock(&jobs->retention_lock);
	counts->bytes = atomic_load_explicit(&jobs->bytes, memory_order_relaxed);
	counts->retained_bytes = atomic_load_explicit(&jobs->retained_bytes, memory_order_relaxed);
	counts->max_bytes = jobs->max_bytes;
}

uint64_t jobs_unfinished(struct jobs *jobs)
{
	return atomic_load_explicit(&jobs->by_state[JOB_WAITING], memory_order_relaxed) +
	       atomic_load_explicit(&jobs->by_state[JOB_QUEUED], memory_order_relaxed) +
	       atomic_load_explicit(&jobs->by_state[JOB_RUNNING], memory_order_relaxed) +
	       atomic_load_explicit(&jobs->by_state[JOB_PENDING], memory_order_relaxed);
}

size_t jobs_expire(struct jobs *jobs, double now)
{
	size_t dropped = 0;
	struct job *old;
	while ((old = pop_retained(jobs, now - jobs->retain_seconds)) != NULL) {
		unlist(jobs, old);
		dropped++;
	}
	return dropped;
}

static bool unfinished(struct job *job, const void *context)
{
	(void)context;
	return !job_state_finished(job->state);
}

void jobs_for_each_unfinished(struct jobs *jobs, void (*visit)(struct job *job, void *context),
                              void *context)
{
	size_t count;
	struct job **found = collect(jobs, unfinished, NULL, &count);
	for (size_t i = 0; i < count; i++) {
		visit(found[i], context);
		job_unref(found[i]);
	}
	free(found);
}

void jobs_durable(struct jobs *jobs, struct job *job, struct jobs_durable *out)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	out->state = job->state;
	out->started = job->started;
	out->finished = job->finished;
	out->result = json_incref(job->result);
	out->error = json_incref(job->error);
	out->attempts = job->attempts != NULL ? json_deep_copy(job->attempts) : NULL;
	out->children = json_incref(job->children);
	pthread_mutex_unlock(&shard->lock);
}

void jobs_durable_clear(struct jobs_durable *durable)
{
	json_decref(durable->result);
	json_decref(durable->error);
	json_decref(durable->attempts);
	json_decref(durable->children);
	memset(durable, 0, sizeof(*durable));
}

struct job *jobs_restore(struct jobs *jobs, uint64_t id, const struct function *function,
                         json_t *args, json_t *labels, double timeout, double created,
                         struct principal *owner, struct job_schedule *schedule,
                         const struct jobs_durable *durable)
{
	struct job *job = memory_zalloc(sizeof(*job));
	job->id = id;
	job->function = function;
	job->args = args;
	job->labels = labels;
	job->timeout = timeout;
	job->created = created;
	job->shard = (uint32_t)(id % SHARD_COUNT);
	job->owner = principal_ref(owner);
	job->schedule = schedule;
	job->state = durable->state;
	job->started = durable->started;
	job->finished = durable->finished;
	if (durable->finished > 0) {
		/* Its age carries over; the monotonic clock started anew with us. */
		double age = now_wall() - durable->finished;
		job->finished_monotonic = now_monotonic() - (age > 0 ? age : 0);
		job->finish_order = atomic_fetch_add_explicit(&jobs->finishes, 1, memory_order_relaxed) + 1;
	}
	job->result = durable->result;
	job->error = durable->error;
	job->attempts = durable->attempts;
	job->children = durable->children;
	job->worker = -1;
	/* Its changes from now on are journaled like any accepted job's. */
	atomic_init(&job->journaled, true);
	atomic_init(&job->references, 2);
	enlist(jobs, job);
	count_add(jobs, job->state, 1);
	/* Counted as a submitted job is: jobs_finish gives the pending count back. */
	if (owner != NULL && !job_state_finished(job->state))
		quota_charge(QUOTA_PENDING, owner->uid, 1);
	charge(jobs, job, jobs_json_bytes(args) + jobs_json_bytes(labels) +
	                          jobs_json_bytes(job->result) + jobs_json_bytes(job->error));
	atomic_fetch_add_explicit(&jobs->submitted, 1, memory_order_relaxed);
	uint64_t next = atomic_load_explicit(&jobs->next_id, memory_order_relaxed);
	if (id >= next)
		atomic_store_explicit(&jobs->next_id, id + 1, memory_order_relaxed);
	if (job_state_finished(job->state)) {
		job_ref(job);
		retain(jobs, job);
		job_unref(job);
	}
	return job;
}

void jobs_discard(struct jobs *jobs, struct job *job)
{
	struct shard *shard = &jobs->shards[job->shard];
	pthread_mutex_lock(&shard->lock);
	struct job **link = &shard->buckets[bucket_of(shard, job->id)];
	while (*link != NULL && *link != job)
		link = &(*link)->hash_next;
	bool listed = *link == job;
	if (listed) {
		*link = job->hash_next;
		shard->count--;
	}
	enum job_state state = job->state;
	pthread_mutex_unlock(&shard->lock);
	if (!listed)
		return;
	count_add(jobs, state, -1);
	atomic_fetch_sub_explicit(&jobs->submitted, 1, memory_order_relaxed);
	/* It never finished, so jobs_finish never gave its pending count back. */
	if (job->owner != NULL && !job_state_finished(state))
		quota_give(QUOTA_PENDING, job->owner->uid, 1);
	give_bytes(jobs, job);
	job_unref(job);
}

uint64_t jobs_next_id(struct jobs *jobs)
{
	return atomic_load_explicit(&jobs->next_id, memory_order_relaxed);
}

void jobs_set_next_id(struct jobs *jobs, uint64_t next)
{
	if (next > atomic_load_explicit(&jobs->next_id, memory_order_relaxed))
		atomic_store_explicit(&jobs->next_id, next, memory_order_relaxed);
}

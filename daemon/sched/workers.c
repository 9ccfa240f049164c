/*
 * The daemon's worker loops are the runtime's workers (daemon/runtime/): one
 * thread per core, each with its own event_base, running coroutine tasks from
 * work-stealing queues. This module keeps the small placement interface the
 * rest of weftd uses (workers.h) and maps it onto the runtime: a posted call
 * runs on that worker's thread from its scheduler loop (runtime_post), and the
 * loop is the runtime's base for that worker.
 */
#include "daemon/sched/workers.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "daemon/base/log.h"
#include "daemon/base/memory.h"
#include "daemon/runtime/runtime.h"
#include "weft/error.h"

struct workers_worker {
	struct workers *pool;
	int index;
	/* Jobs started here; single relaxed RMWs, read by stats. */
	atomic_uint_fast64_t jobs_run;
	/* Probes (workers_probe) this loop has run. Written by the worker's own
	 * thread, read by the watchdog on the main thread: relaxed, since it is a
	 * count read on its own and publishes nothing else. */
	atomic_uint_fast64_t heartbeat;
};

struct workers {
	runtime *runtime;
	int count;
	workers_exit_fn on_exit;
	/* Round-robin cursor; relaxed, only spreads load. */
	atomic_uint next;
	struct workers_worker *workers;
};

/* The one pool of this process, for workers_current(); set before the workers
 * run anything and cleared after they stopped. */
static struct workers *current_pool;

/* How long stopping waits for tasks still running (they were cancelled first). */
#define STOP_GRACE_SECONDS 5.0

static void worker_exited(struct event_base *base, void *argument)
{
	struct workers *pool = argument;
	if (pool->on_exit != NULL)
		pool->on_exit(base);
}

int workers_start(int count, workers_exit_fn on_exit, struct workers **out)
{
	struct workers *pool = memory_zalloc(sizeof(*pool));
	pool->count = count;
	pool->on_exit = on_exit;
	pool->workers = memory_zalloc((size_t)count * sizeof(*pool->workers));
	for (int i = 0; i < count; i++) {
		pool->workers[i].pool = pool;
		pool->workers[i].index = i;
	}
	current_pool = pool;
	runtime_config config = {
		.workers = count,
		.on_worker_exit = worker_exited,
		.on_worker_exit_argument = pool,
	};
	int rv = runtime_new(&config, &pool->runtime);
	if (rv != WEFT_OK) {
		current_pool = NULL;
		free(pool->workers);
		free(pool);
		return rv == WEFT_ENOMEM ? 12 /* ENOMEM */ : 22 /* EINVAL */;
	}
	*out = pool;
	return 0;
}

void workers_stop(struct workers *pool)
{
	if (pool == NULL)
		return;
	runtime_free(pool->runtime, STOP_GRACE_SECONDS);
	current_pool = NULL;
	free(pool->workers);
	free(pool);
}

int workers_count(const struct workers *pool)
{
	return pool->count;
}

struct workers_worker *workers_get(struct workers *pool, int index)
{
	return &pool->workers[index];
}

struct workers_worker *workers_pick(struct workers *pool)
{
	unsigned turn = atomic_fetch_add_explicit(&pool->next, 1, memory_order_relaxed);
	return &pool->workers[turn % (unsigned)pool->count];
}

int workers_index(const struct workers_worker *worker)
{
	return worker->index;
}

struct event_base *workers_base(struct workers_worker *worker)
{
	return runtime_event_base(worker->pool->runtime, worker->index);
}

struct runtime *workers_runtime(struct workers *pool)
{
	return pool->runtime;
}

void workers_post(struct workers_worker *worker, workers_call_fn fn, void *argument)
{
	int rv = runtime_post(worker->pool->runtime, worker->index, fn, argument);
	if (rv != WEFT_OK) {
		/* The daemon's policy for memory (memory.h): it cannot go on without. */
		log_error("cannot post to worker %d: %s", worker->index, weft_strerror(rv));
		abort();
	}
}

void workers_count_job(struct workers_worker *worker)
{
	atomic_fetch_add_explicit(&worker->jobs_run, 1, memory_order_relaxed);
}

/* Worker thread: the loop got round to the probe, so it is not wedged. */
static void probe_call(void *argument)
{
	struct workers_worker *worker = argument;
	atomic_fetch_add_explicit(&worker->heartbeat, 1, memory_order_relaxed);
}

void workers_probe(struct workers_worker *worker)
{
	workers_post(worker, probe_call, worker);
}

uint64_t workers_heartbeat(struct workers_worker *worker)
{
	return atomic_load_explicit(&worker->heartbeat, memory_order_relaxed);
}

void workers_stats(struct workers_worker *worker, struct workers_stats *stats)
{
	runtime_worker_stats all[1024];
	int count = runtime_stats(worker->pool->runtime, all, 1024);
	struct workers_stats result = {0};
	if (worker->index < count) {
		const runtime_worker_stats *mine = &all[worker->index];
		result.tasks_run = mine->tasks_run;
		result.stolen_by = mine->stolen_by;
		result.stolen_from = mine->stolen_from;
		result.injected = mine->injected;
		result.queue_depth = mine->queue_depth;
		result.parks = mine->parks;
		result.wakes = mine->wakes;
	}
	result.jobs_run = atomic_load_explicit(&worker->jobs_run, memory_order_relaxed);
	result.heartbeat = workers_heartbeat(worker);
	*stats = result;
}

struct workers_worker *workers_current(void)
{
	int index = weft_worker_index();
	struct workers *pool = current_pool;
	return index >= 0 && pool != NULL && index < pool->count ? &pool->workers[index] : NULL;
}

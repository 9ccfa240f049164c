/*
 * Worker threads with their own loops; see workers.h.
 *
 * Hand-off: a mutex-protected singly linked queue per worker plus an eventfd.
 * A poster writes the eventfd only when it finds the queue empty, so a burst of
 * posts costs one wake; the worker swaps the whole queue out under the lock and
 * runs the calls without it.
 */
#include "daemon/workers.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/memory.h"

struct call {
	struct call *next;
	workers_call_fn fn;
	void *argument;
};

struct workers_worker {
	struct workers *pool;
	int index;
	pthread_t thread;
	bool thread_started;
	struct event_base *base; /* only this worker's thread touches it */
	struct event *wake_event;
	int wake_fd;

	pthread_mutex_t lock; /* guards the queue below */
	struct call *head;
	struct call *tail;

	/* Statistics: single relaxed RMWs, read by stats. */
	atomic_uint_fast64_t calls_run;
	atomic_uint_fast64_t jobs_run;
	atomic_uint_fast64_t queued;
	atomic_uint_fast64_t wakes;
};

struct workers {
	int count;
	workers_exit_fn on_exit;
	/* Round-robin cursor; relaxed, only spreads load. */
	atomic_uint next;
	struct workers_worker *workers;
};

static _Thread_local struct workers_worker *current_worker;

struct workers_worker *workers_current(void)
{
	return current_worker;
}

static void run_queue(struct workers_worker *worker)
{
	pthread_mutex_lock(&worker->lock);
	struct call *call = worker->head;
	worker->head = worker->tail = NULL;
	pthread_mutex_unlock(&worker->lock);
	while (call != NULL) {
		struct call *next = call->next;
		call->fn(call->argument);
		free(call);
		atomic_fetch_sub_explicit(&worker->queued, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&worker->calls_run, 1, memory_order_relaxed);
		call = next;
	}
}

static void on_wake(evutil_socket_t fd, short events, void *argument)
{
	(void)events;
	struct workers_worker *worker = argument;
	uint64_t ignored;
	ssize_t got = read(fd, &ignored, sizeof(ignored));
	(void)got;
	run_queue(worker);
}

static void *worker_main(void *argument)
{
	struct workers_worker *worker = argument;
	current_worker = worker;
	event_base_loop(worker->base, EVLOOP_NO_EXIT_ON_EMPTY);
	/* Calls posted before the stop request still run. */
	run_queue(worker);
	if (worker->pool->on_exit != NULL)
		worker->pool->on_exit(worker->base);
	return NULL;
}

static void stop_loop(void *argument)
{
	struct workers_worker *worker = argument;
	event_base_loopbreak(worker->base);
}

static int worker_init(struct workers *pool, int index)
{
	struct workers_worker *worker = &pool->workers[index];
	worker->pool = pool;
	worker->index = index;
	worker->wake_fd = -1;
	pthread_mutex_init(&worker->lock, NULL);
	worker->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (worker->wake_fd < 0)
		return errno;
	worker->base = event_base_new();
	if (worker->base == NULL)
		return ENOMEM;
	worker->wake_event =
		event_new(worker->base, worker->wake_fd, EV_READ | EV_PERSIST, on_wake, worker);
	if (worker->wake_event == NULL || event_add(worker->wake_event, NULL) != 0)
		return ENOMEM;
	return 0;
}

static void worker_fini(struct workers_worker *worker)
{
	if (worker->wake_event != NULL)
		event_free(worker->wake_event);
	if (worker->base != NULL)
		event_base_free(worker->base);
	if (worker->wake_fd >= 0)
		close(worker->wake_fd);
	pthread_mutex_destroy(&worker->lock);
}

int workers_start(int count, workers_exit_fn on_exit, struct workers **out)
{
	struct workers *pool = memory_zalloc(sizeof(*pool));
	pool->count = count;
	pool->on_exit = on_exit;
	pool->workers = memory_zalloc((size_t)count * sizeof(*pool->workers));
	int rv = 0;
	int made = 0;
	for (; made < count; made++) {
		if ((rv = worker_init(pool, made)) != 0) {
			made++;
			goto fail;
		}
	}
	for (int i = 0; i < count; i++) {
		struct workers_worker *worker = &pool->workers[i];
		if ((rv = pthread_create(&worker->thread, NULL, worker_main, worker)) != 0)
			goto fail;
		worker->thread_started = true;
	}
	*out = pool;
	return 0;

fail:
	for (int i = 0; i < count; i++) {
		struct workers_worker *worker = &pool->workers[i];
		if (worker->thread_started) {
			workers_post(worker, stop_loop, worker);
			pthread_join(worker->thread, NULL);
		}
	}
	for (int i = 0; i < made; i++)
		worker_fini(&pool->workers[i]);
	free(pool->workers);
	free(pool);
	return rv;
}

void workers_stop(struct workers *pool)
{
	if (pool == NULL)
		return;
	for (int i = 0; i < pool->count; i++)
		workers_post(&pool->workers[i], stop_loop, &pool->workers[i]);
	for (int i = 0; i < pool->count; i++)
		pthread_join(pool->workers[i].thread, NULL);
	for (int i = 0; i < pool->count; i++)
		worker_fini(&pool->workers[i]);
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
	return worker->base;
}

void workers_post(struct workers_worker *worker, workers_call_fn fn, void *argument)
{
	struct call *call = memory_alloc(sizeof(*call));
	call->next = NULL;
	call->fn = fn;
	call->argument = argument;
	atomic_fetch_add_explicit(&worker->queued, 1, memory_order_relaxed);
	pthread_mutex_lock(&worker->lock);
	bool was_empty = worker->head == NULL;
	if (worker->tail != NULL)
		worker->tail->next = call;
	else
		worker->head = call;
	worker->tail = call;
	pthread_mutex_unlock(&worker->lock);
	/* An empty queue means the worker has drained everything and may sleep; a
	 * non-empty one means a wake is already on its way. The write happens after
	 * the unlock, and the worker swaps the queue under the same lock, so it
	 * cannot miss this call. */
	if (was_empty) {
		uint64_t one = 1;
		ssize_t wrote = write(worker->wake_fd, &one, sizeof(one));
		(void)wrote;
		atomic_fetch_add_explicit(&worker->wakes, 1, memory_order_relaxed);
	}
}

void workers_count_job(struct workers_worker *worker)
{
	atomic_fetch_add_explicit(&worker->jobs_run, 1, memory_order_relaxed);
}

void workers_stats(struct workers_worker *worker, struct workers_stats *stats)
{
	stats->calls_run = atomic_load_explicit(&worker->calls_run, memory_order_relaxed);
	stats->jobs_run = atomic_load_explicit(&worker->jobs_run, memory_order_relaxed);
	stats->queue_depth = atomic_load_explicit(&worker->queued, memory_order_relaxed);
	stats->wakes = atomic_load_explicit(&worker->wakes, memory_order_relaxed);
}

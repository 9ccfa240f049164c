/*
 * The worker loops jobs run on: the runtime's workers (daemon/runtime/), one
 * thread per core, each with its own libevent event_base, running coroutine
 * tasks from work-stealing queues. This is the small placement interface the
 * rest of weftd uses (runner.c, the executors).
 *
 * Rule (DESIGN-NOTES, libevent 2.1.12 defects): a worker's event_base is
 * touched only by its own thread. Other threads hand it work with
 * workers_post(), which queues a call and wakes the worker.
 */
#ifndef WORKERS_H
#define WORKERS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct runtime;
struct workers;
struct workers_worker;

/* A call to run on a worker's thread. */
typedef void (*workers_call_fn)(void *argument);

/* Per-worker figures, readable from any thread. */
struct workers_stats {
	uint64_t jobs_run;    /* jobs started on it (runner.c counts them) */
	uint64_t tasks_run;   /* times a task was started or resumed on it */
	uint64_t stolen_by;   /* tasks it stole from other workers */
	uint64_t stolen_from; /* tasks other workers stole from it */
	uint64_t injected;    /* tasks it took from the global injection queue */
	uint64_t queue_depth; /* tasks in its run queue now */
	uint64_t parks;       /* times it went to sleep for lack of work */
	uint64_t wakes;       /* times another thread woke it */
	uint64_t heartbeat;   /* probes it has answered (workers_probe) */
};

/* Called on each worker's thread after its loop stopped, before its event_base
 * is freed: the moment to release what lives on that loop (processes). */
typedef void (*workers_exit_fn)(struct event_base *base);

/* Starts count worker threads (count >= 1); on_exit may be NULL. Returns 0, or
 * an errno value when a thread or event base cannot be made (nothing is left
 * running then). Main thread. */
int workers_start(int count, workers_exit_fn on_exit, struct workers **out);

/* Stops every loop after the calls already posted have run, joins the threads and
 * frees everything. Main thread; no other thread may post any more. */
void workers_stop(struct workers *workers);

int workers_count(const struct workers *workers);
struct workers_worker *workers_get(struct workers *workers, int index);
/* The next worker in round-robin order. Any thread. */
struct workers_worker *workers_pick(struct workers *workers);

int workers_index(const struct workers_worker *worker);
/* The worker's event_base: only its own thread may use it. */
struct event_base *workers_base(struct workers_worker *worker);

/* The runtime the workers belong to, for starting coroutine tasks. */
struct runtime *workers_runtime(struct workers *workers);

/* Runs fn(argument) on the worker's thread, after the calls posted before it.
 * Any thread. Allocates the queue entry (aborts when out of memory). */
void workers_post(struct workers_worker *worker, workers_call_fn fn, void *argument);

/* Adds one to the worker's jobs_run figure. Any thread. */
void workers_count_job(struct workers_worker *worker);

void workers_stats(struct workers_worker *worker, struct workers_stats *stats);

/*
 * The liveness probe of the systemd watchdog: queues a call on the worker that
 * adds one to its heartbeat. A loop that is wedged (a call or task that never
 * returns) never runs it, so its heartbeat stands still. An idle worker is
 * woken for it, which costs one wake-up per watchdog period. Any thread.
 */
void workers_probe(struct workers_worker *worker);

/* Probes the worker has run so far. Any thread. */
uint64_t workers_heartbeat(struct workers_worker *worker);

/* The worker whose thread calls this, or NULL on any other thread. */
struct workers_worker *workers_current(void);

#endif

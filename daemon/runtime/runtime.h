/*
 * runtime: weftd's scheduler, as the daemon and other threads see it.
 *
 * One worker thread per CPU, each with its own libevent event_base (touched only by that thread)
 * and a run queue others steal from. Task code uses include/weft/task.h; this header is what
 * threads outside the runtime (nng callbacks, executors, main) use: create and stop a runtime,
 * inject a task, join it with a timeout, read statistics. See runtime.c for the design.
 */
#ifndef WEFT_RUNTIME_RUNTIME_H
#define WEFT_RUNTIME_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "weft/task.h"

struct event_base;

typedef struct runtime runtime;

typedef struct runtime_config {
	int workers;          /* 0: one per online CPU */
	size_t stack_size;    /* usable bytes per task stack; 0: 256 KiB */
	size_t guard_budget;  /* stacks that get a guard page; 0: a quarter of vm.max_map_count */
	size_t pool_watermark; /* free stacks a worker keeps; 0: 256 */
	/* Called on each worker's thread when it stops, after its last task and posted call,
	 * before its event_base is freed: the moment to release what lives on that loop
	 * (child processes, pipes). NULL: none. */
	void (*on_worker_exit)(struct event_base *base, void *argument);
	void *on_worker_exit_argument;
} runtime_config;

/* Per-worker counters, read without stopping the worker (each is exact, the set is not a
 * snapshot). */
typedef struct runtime_worker_stats {
	uint64_t tasks_run;   /* times a task was resumed or started on this worker */
	uint64_t stolen_by;   /* tasks this worker stole from others */
	uint64_t stolen_from; /* tasks others stole from this worker */
	uint64_t injected;    /* tasks this worker took from the global injection queue */
	uint64_t parks;       /* times it went to sleep in its loop for lack of work */
	uint64_t wakes;       /* times another thread woke it */
	uint32_t queue_depth; /* items in its run queue now */
	double cpu_seconds;   /* CPU time its thread has used */
} runtime_worker_stats;

/*
 * Starts the workers. config may be NULL for defaults. The first call in a process also calls
 * evthread_use_pthreads() (harmless if the caller did too) and installs a SIGSEGV handler (on each
 * worker's alternate signal stack) that names the task whose stack overflowed into its guard page,
 * then lets the signal kill the process. Returns WEFT_OK, WEFT_ENOMEM, WEFT_EINVAL (workers < 0 or
 * > 1024) or WEFT_EINTERNAL (a thread or loop could not be made). Any non-worker thread.
 */
int runtime_new(const runtime_config *config, runtime **runtime_out);

/*
 * Stops the workers and frees the runtime. Waits up to grace_seconds for every task to finish
 * (cancel them first with weft_cancel to make that quick: the runtime keeps no list of tasks, the
 * daemon has the handles); tasks still unfinished then are reported on stderr and abandoned, with
 * their stacks (freeing memory a suspended frame may still use would be worse than the leak).
 * Handles stay valid until released. Non-worker thread, once.
 */
void runtime_free(runtime *rt, double grace_seconds);

int runtime_worker_count(const runtime *rt);

/*
 * Starts fn(argument) as a task from any thread (IPC, executors): it goes to the global injection
 * queue, which every worker checks at a fixed interval, and wakes a parked worker. Same
 * contract as weft_spawn. Worker threads may call it too.
 */
int runtime_inject(runtime *rt, weft_task_fn fn, void *argument, const weft_spawn_options *options,
		   weft_task **task_out);

/*
 * Runs fn(argument) on worker `worker_index`'s thread, from its scheduler loop (not inside a
 * task: it must not block; it may spawn tasks). Calls posted to one worker run in order. This is
 * for event-driven work that must stay on the loop holding its events (libevent: one thread per
 * base), like stopping a child process that worker watches. Any thread. Returns WEFT_OK,
 * WEFT_EINVAL (no such worker) or WEFT_ENOMEM.
 */
int runtime_post(runtime *rt, int worker_index, void (*fn)(void *argument), void *argument);

/* Worker `worker_index`'s event_base, or NULL when there is no such worker. Only that worker's
 * thread may use it (in a posted call, or in a task until it blocks: weft_event_base()). */
struct event_base *runtime_event_base(runtime *rt, int worker_index);

/* weft_spawn_sleep from any thread. */
int runtime_inject_sleep(runtime *rt, double seconds, json_t *result,
			 const weft_spawn_options *options, weft_task **task_out);

/*
 * Blocks the calling thread (not a worker: that would stall its tasks; WEFT_EINVAL there) until
 * the task has finished or timeout_seconds passed. Returns the task's code or WEFT_ETIMEOUT.
 */
int runtime_join(weft_task *task, double timeout_seconds);

/* Same for a one-shot (weft_oneshot). */
int runtime_join_oneshot(weft_oneshot *oneshot, double timeout_seconds);

/* Copies the counters of up to `capacity` workers into `stats`; returns how many workers there
 * are. Any thread. */
int runtime_stats(runtime *rt, runtime_worker_stats *stats, int capacity);

/* Tasks spawned and not yet finished. Any thread. */
uint64_t runtime_live_tasks(runtime *rt);

/*
 * The built-in `spawn_tree`: from inside a task, spawns `fanout` children that each do the same
 * with depth - 1, joins them, and sets *count_out to the number of tasks of the tree including
 * the caller ((fanout^(depth+1) - 1) / (fanout - 1); depth 0 is the caller alone). Limits:
 * depth <= 20, fanout <= 64, at most 10,000,000 tasks: otherwise WEFT_EBADARGS. Task only.
 */
int runtime_spawn_tree(int depth, int fanout, int64_t *count_out);

/* Task-body form of spawn_tree for the daemon's registry: `argument` points to two ints
 * {depth, fanout} that must stay valid while the task runs; the count is the integer result. */
int runtime_spawn_tree_task(void *argument);

#endif

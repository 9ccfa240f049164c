/*
 * What runtime.c (workers, scheduling) and task.c (the task API) share. Not for other modules.
 *
 * Task states and who moves them:
 *   NEW      spawned, never run (scheduler moves it to RUNNING)
 *   RUNNING  on a worker (the task itself moves it to PARKING)
 *   PARKING  switching out to wait; its wait sources are published and may already fire
 *   PARKED   switched out; the scheduler moved it here with a CAS from PARKING
 *   NOTIFIED a waker found it PARKING; the scheduler that parks it requeues it instead
 *   RUNNABLE woken from PARKED by its waker, queued somewhere
 * Exactly one waker wins each wait: it claims `wake_claimed` (0 while waiting, 1 otherwise) with an
 * exchange, then writes the reason and moves the state. Events of a wait (timer, fd) live on the
 * base of the worker where the task parked (`event_owner`); only that worker deletes them, so a
 * woken task with events goes through its owner's inbox before it can run anywhere else.
 */
#ifndef WEFT_RUNTIME_RUNTIME_INTERNAL_H
#define WEFT_RUNTIME_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "daemon/runtime/context.h"
#include "daemon/runtime/runqueue.h"
#include "daemon/runtime/sanitizer.h"
#include "daemon/runtime/runtime.h"
#include "daemon/runtime/stack.h"

enum task_state {
	TASK_NEW,
	TASK_RUNNING,
	TASK_PARKING,
	TASK_PARKED,
	TASK_NOTIFIED,
	TASK_RUNNABLE,
};

enum task_wake_reason {
	TASK_WAKE_READY = 1,
	TASK_WAKE_TIMEOUT,
	TASK_WAKE_CANCELED,
};

enum task_switch_reason {
	TASK_SWITCH_PARK,
	TASK_SWITCH_YIELD,
	TASK_SWITCH_FINISH,
};

typedef struct worker worker;

enum {
	COMMON_TIMEOUTS = 16, /* per worker; libevent allows 256 per base */
};

/* A thread blocked in runtime_join. Lives on that thread's stack while it waits. */
typedef struct thread_waiter {
	pthread_mutex_t lock; /* guards signalled */
	pthread_cond_t cond;
	bool signalled;
} thread_waiter;

/* One party waiting for a completion: a task or a thread. Lives on the waiter's stack; it is
 * linked into a completion only under that completion's lock. */
typedef struct completion_waiter {
	struct completion_waiter *next;
	weft_task *task;        /* task waiting, or NULL */
	thread_waiter *thread;  /* thread waiting, or NULL */
} completion_waiter;

/* The result of a task or a one-shot. `lock` (a spinlock: held for a few instructions, never across
 * a switch or a callback into user code) guards done, the result fields and waiters. */
typedef struct completion {
	atomic_flag lock;
	atomic_bool done; /* also read without the lock: set once, with release, after the result */
	int error;
	int64_t value;
	json_t *result; /* owned */
	completion_waiter *waiters;
} completion;

struct weft_task {
	weft_task *next; /* link while in an injection or inbox list: owned by that list */
	weft_task *segment_last;  /* head of a list segment: its last task (scheduler.c) */
	uint32_t segment_count;   /* head of a list segment: its number of tasks */
	context saved;   /* owner: the thread running or resuming the task */
	stack *stack;    /* lent while the task runs or waits; NULL before its first run */
	/* rt to on_done_argument: set by task_new before the task is published (scheduled or
	 * handed to the caller), immutable after; read by any thread holding the task. */
	runtime *rt;
	weft_task_fn fn;
	void *argument;
	const char *name;
	uint64_t id;
	weft_task_done_fn on_done;
	void *on_done_argument;
	void *local;           /* weft_spawn_options.local: the spawner's, never read by the runtime */
	struct event *event;   /* timer/fd event of the current wait, allocated on first use */
	worker *event_owner;   /* worker whose base holds `event` while it is pending, else NULL */
	atomic_int state;      /* enum task_state: its worker and the claiming waker (task.c) */
	/* 0 while the task waits (stored by the task as it parks); any waker exchanges in 1, and
	 * only the one that read 0 may wake the task. */
	atomic_int wake_claimed;
	int wake_reason;       /* written by the waker that claimed, read by the task after resuming */
	short ready_events;    /* same, for fd waits */
	int switch_reason;     /* written by the task just before it switches to the scheduler */
	atomic_bool cancel_requested; /* set by any thread (weft_cancel); cleared by the task */
	/* weft_spawn_sleep: a timer, no stack. Set with sleep_seconds before publication,
	 * immutable after. */
	bool stackless;
	bool started;          /* scheduler's: the body (or the timer) has been started */
	double sleep_seconds;  /* stackless only */
	atomic_int references; /* any holder; the last release frees the task */
	completion done;       /* guarded by its own lock (see struct completion) */
	void *asan_fake_stack; /* sanitizer bookkeeping; owner: the thread running the task */
};

/* A list of tasks linked through task->next, in segments (scheduler.c), guarded by `lock`. */
typedef struct task_list {
	pthread_mutex_t lock; /* guards first and last */
	weft_task *first;
	weft_task *last; /* head of the last segment */
	atomic_size_t length; /* also read without the lock to skip empty lists */
} task_list;

struct worker {
	runqueue queue; /* first: aligned, and the hottest */
	runtime *rt;
	int index;
	/* Owned by this worker's thread. */
	weft_task *runnext;
	int runnext_streak;
	uint32_t tick;
	unsigned since_poll;  /* tasks run since the loop last polled its events */
	weft_task *handed_off; /* a task that parked by handing this worker straight to another */
	uint64_t random;
	uint64_t next_id;
	bool searching;
	/* A stackful task ran since this worker last parked: it is in a phase of task work, where
	 * spinning before parking pays off (waking a parked worker costs tens of microseconds).
	 * Without tasks (posted calls and events only, as exec jobs are) it parks at once: spinning
	 * there only takes the CPU from the child processes. Owner thread only. */
	bool ran_task;
	weft_task *current;
	void *task_cache; /* free task blocks, linked through their first word */
	size_t task_cache_count;
	context scheduler;
	stack_pool pool;
	struct event_base *base;
	struct event *wake_event;
	/* Durations that got a libevent common timeout on this base, and libevent's handles. */
	struct timeval common_durations[COMMON_TIMEOUTS];
	const struct timeval *common_timeouts[COMMON_TIMEOUTS];
	int common_count;
	void *altstack;
	sanitizer_fiber fiber;
	pthread_t thread;
	/* Shared. */
	int wake_fd;      /* eventfd: written by anyone to end this worker's park */
	task_list inbox;  /* woken tasks whose events this worker must delete first */
	pthread_mutex_t calls_lock; /* guards calls, calls_last */
	struct runtime_call *calls; /* runtime_post's calls to run on this thread, oldest first */
	struct runtime_call *calls_last;
	atomic_size_t call_count; /* also read without the lock to skip an empty list */
	atomic_bool parked;
	/* Statistics, read by anyone: tasks_run, stolen_by, injected and parks are written by
	 * their owner alone; stolen_from (by thieves) and wakes (by wakers) with atomic adds. */
	_Atomic uint64_t tasks_run, stolen_by, stolen_from, injected, parks, wakes;
	/* Tasks made and finished on this worker: written by the owner alone (a load and a store,
	 * not a locked add: no cache line is shared with other workers on the spawn path). */
	_Atomic uint64_t spawned, finished;
};

struct runtime {
	int worker_count;
	worker *workers;
	stack_source *stacks;
	task_list global;
	atomic_int searching;    /* workers searching for work now */
	atomic_int parked_count; /* workers with `parked` set */
	atomic_bool stopping;
	_Atomic uint64_t outside_spawned; /* tasks made by threads that are not workers */
	_Atomic uint64_t outside_ids;
	/* Batches of free task blocks moving from workers that free tasks to workers that spawn
	 * them (glibc's free of another thread's block takes that arena's lock and trims it). */
	pthread_mutex_t depot_lock; /* guards depot */
	void *depot;                /* batches linked through their second word */
	runtime_config config; /* as given to runtime_new, defaults filled in; read-only */
	pthread_mutex_t start_lock; /* guards started, start_failed */
	pthread_cond_t start_cond;
	int started;
	bool start_failed;
};


/* Shared helpers, implemented in task.c. */
void completion_init(completion *target);
void completion_lock(completion *target);
void completion_unlock(completion *target);
/* Marks done with the current result fields and wakes every waiter. */
void completion_finish(completion *target);
/* Wakes a waiting task for `reason`; false when it was not waiting or another waker won. Any
 * thread; never blocks. */
bool task_wake(weft_task *task, int reason, short events);
void task_complete(weft_task *task, int error);
int task_new(runtime *rt, weft_task_fn fn, void *argument, const weft_spawn_options *options,
	     weft_task **task_out);
/* The scheduler's part of running a stackless task. Worker thread. */
void task_run_stackless(worker *current, weft_task *task);
/* Scheduler side of a park: PARKING -> PARKED, or requeue when a waker came first. */
void scheduler_commit_park(worker *current, weft_task *task);

/* Implemented in runtime.c. */
/* The worker of the calling thread (never cached across a switch: not inlined). */
worker *runtime_current_worker(void);
runtime *runtime_of_worker(const worker *current);
struct event_base *runtime_worker_base(const worker *current);
int runtime_worker_index_of(const worker *current);
weft_task *runtime_worker_task(const worker *current);
uint64_t runtime_next_id(worker *current);
uint64_t runtime_outside_id(runtime *rt);
/* A call posted to a worker with runtime_post. Owned by the worker's call list until run. */
typedef struct runtime_call {
	struct runtime_call *next;
	void (*fn)(void *argument);
	void *argument;
} runtime_call;

/* Implemented in scheduler.c. */
void scheduler_list_init(task_list *list);
/* The worker loop: runs tasks until the runtime stops. Worker thread. */
void scheduler_loop(worker *current);
/* The callback of a worker's eventfd event (reads it empty). */
void scheduler_wake_callback(evutil_socket_t fd, short what, void *argument);
/* Ends a worker's park (writes its eventfd). Any thread. */
void scheduler_signal_worker(worker *target);
/* Wakes the worker if it is parked (after something was queued for it). Any thread. */
void scheduler_wake_if_parked(worker *target);
/* Runs the calls posted to this worker (runtime_post). Worker thread. */
void scheduler_run_calls(worker *current);
uint64_t scheduler_now_nanoseconds(void);
/* Makes a runnable task run: on the calling worker (lifo: in its runnext slot) when the caller is
 * one of rt's workers, else through the injection queue. */
void scheduler_schedule(runtime *rt, weft_task *task, bool lifo);
/* A woken task whose events live on `owner`: the owner deletes them, then runs it. */
void scheduler_send_to_owner(worker *owner, weft_task *task);
/* Task side: switch to the scheduler of the current worker for `reason`. Returns when resumed. */
void scheduler_switch_out(weft_task *task, int reason);
/* Memory for a task, cached per worker (the first fields of a free block reuse the task's
 * memory). current: the caller's worker, NULL on other threads. Blocks are interchangeable
 * malloc blocks of one size. runtime_task_started counts a task made by `current` (or by an
 * outside thread when NULL). */
void *runtime_task_alloc(worker *current, size_t size);
void runtime_task_dispose(void *memory);
/* The timeout to give event_add for `duration` on this worker's base: libevent's common timeout
 * for it when the worker has one or can make one (equal durations then cost O(1) each instead of
 * a heap operation: 100,000 sleeps of one second), else `duration` itself. Worker thread. */
const struct timeval *runtime_common_timeout(worker *current, const struct timeval *duration);
void runtime_task_started(runtime *rt, worker *current);
void runtime_task_finished(runtime *rt);
/* Writes "weft: task N (name) <how>; stopping" on stderr. Async-signal-safe. */
void runtime_report_overflow(const weft_task *task, const char *how);
/* Counter helpers: owner_counter_add for counters only their owner writes (a load and a store,
 * not a locked add), counter_add for the others. */
static inline void owner_counter_add(_Atomic uint64_t *counter, uint64_t amount)
{
	atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + amount,
			      memory_order_release);
}

static inline void counter_add(_Atomic uint64_t *counter, uint64_t amount)
{
	atomic_fetch_add_explicit(counter, amount, memory_order_relaxed);
}

#endif

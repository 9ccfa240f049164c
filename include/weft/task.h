/*
 * weft tasks: the API that task code uses inside weftd's runtime.
 *
 * A task is a stackful coroutine: its body is an ordinary C function that may block in the calls
 * below (weft_sleep, weft_yield, weft_await, weft_wait_fd, weft_notify_wait, weft_oneshot_await)
 * and continue where it left off, possibly on another worker thread. Functions marked "task
 * only" must be called from inside a task body; they return WEFT_EINVAL elsewhere.
 *
 * Rules for task code, because a task may resume on another thread after any blocking call:
 *  - in a function that blocks, read errno only through weft_errno(), right after the call that
 *    set it: glibc declares __errno_location() const, so the compiler computes errno's address
 *    once per function and, after the task moved, reads the old thread's errno (the runtime's
 *    tests catch exactly this);
 *  - keep no address of a thread-local variable across a blocking call;
 *  - hold no pthread mutex (or other thread-owned lock) across a blocking call: it would be
 *    unlocked from another thread, which is undefined;
 *  - the event_base from weft_event_base() belongs to the current worker only until the next
 *    blocking call; events added to it must be deleted before that call (weft_wait_fd does it for
 *    you).
 * Stacks are fixed-size (the runtime's configuration); deep recursion or large locals overflow
 * into a guard page, which stops the process with a message naming the task.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "weft/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A task blocked in an await gets WEFT_ECANCELED (weft/error.h) when it is cancelled, as
 * asyncio's CancelledError. */

/* Wait without a time limit. */
#define WEFT_FOREVER (-1.0)

/* A task. Handles are references: whoever got one from weft_spawn releases it. Thread-safe. */
typedef struct weft_task weft_task;

/*
 * A task body. Runs on a worker, inside the task's coroutine. Returns WEFT_OK to complete (with
 * the result set by weft_return_json / weft_return_int, or none) or an error code to fail;
 * returning WEFT_ECANCELED leaves the task cancelled.
 */
typedef int (*weft_task_fn)(void *argument);

/* Runs on the worker that completed the task, right after completion; must not block. The task
 * is borrowed for the duration of the call (take a reference with weft_task_retain to keep it). */
typedef void (*weft_task_done_fn)(weft_task *task, void *argument);

typedef struct weft_spawn_options {
	const char *name;          /* borrowed; must outlive the task (a string literal is best) */
	weft_task_done_fn on_done; /* NULL: none */
	void *on_done_argument;
	/* What the spawner attaches to the task (weft_task_local); the runtime never reads it.
	 * weftd's executors attach the job the task runs for. NULL: none. Not inherited. */
	void *local;
} weft_spawn_options;

/*
 * Starts fn(argument) as a new task on the current worker (other workers may steal it).
 * options may be NULL. With task_out non-NULL, *task_out gets a new reference (release it);
 * with NULL the task is detached. Task only. Returns WEFT_OK, WEFT_ENOMEM or WEFT_EINVAL.
 */
int weft_spawn(weft_task_fn fn, void *argument, const weft_spawn_options *options,
	       weft_task **task_out);

/*
 * Starts a task without a stack of its own that completes after `seconds` with `result` (stolen;
 * NULL for none), or with WEFT_ECANCELED when cancelled first. This is how the daemon's sleep
 * built-in runs: a waiting stackless task costs a few hundred bytes. Task only.
 */
int weft_spawn_sleep(double seconds, json_t *result, const weft_spawn_options *options,
		     weft_task **task_out);

/*
 * Waits until `task` has finished, at most timeout_seconds (WEFT_FOREVER: no limit). Returns the
 * task's own code (WEFT_OK, its error, WEFT_ECANCELED) or WEFT_ETIMEOUT; WEFT_ECANCELED also when
 * the waiting task itself is cancelled meanwhile. Task only.
 */
int weft_await(weft_task *task, double timeout_seconds);

/* Suspends the current task for `seconds` (a timer on the worker's loop). WEFT_OK, or
 * WEFT_ECANCELED when cancelled meanwhile. Task only. */
int weft_sleep(double seconds);

/* Lets the other runnable tasks run, then continues. WEFT_OK or WEFT_ECANCELED. Task only. */
int weft_yield(void);

/*
 * Waits until fd is ready for `events` (EV_READ and/or EV_WRITE from libevent), at most
 * timeout_seconds. Returns WEFT_OK and the ready events in *ready_out (may be NULL), or
 * WEFT_ETIMEOUT, or WEFT_ECANCELED. The fd stays the caller's. Task only.
 */
int weft_wait_fd(int fd, short events, double timeout_seconds, short *ready_out);

/*
 * Requests cancellation. A task blocked in a call above returns WEFT_ECANCELED from it (once:
 * later calls block again, so cleanup can await); a task not started yet never runs and ends
 * cancelled. A task that finishes without blocking again keeps its own result. Any thread.
 */
void weft_cancel(weft_task *task);

/* Whether cancellation was requested and not yet delivered to the current task. Task only. */
bool weft_cancelled(void);

/* Sets the result of the current task (jansson: the reference is stolen, even on error).
 * Task only; WEFT_EINVAL outside one. */
int weft_return_json(json_t *result);
/* Sets an integer result, cheaper than JSON for numeric work. Task only. */
int weft_return_int(int64_t value);

/* After completion (weft_await returned something other than WEFT_ETIMEOUT, or on_done ran):
 * the result, borrowed (valid while the handle is held; NULL if none), the integer result, and
 * the code the task finished with. Any thread. */
json_t *weft_task_result(const weft_task *task);
int64_t weft_task_value(const weft_task *task);
int weft_task_error(const weft_task *task);
bool weft_task_done(const weft_task *task);

/* Identity: a number unique in the runtime, and the name given at spawn (or "task"). */
uint64_t weft_task_id(const weft_task *task);
const char *weft_task_name(const weft_task *task);

/* Reference counting of handles. Any thread. */
weft_task *weft_task_retain(weft_task *task);
void weft_task_release(weft_task *task);

/* The current task's weft_spawn_options.local, or NULL (outside tasks, or none). Task only. */
void *weft_task_local(void);

/* The running task, borrowed, or NULL outside tasks. */
weft_task *weft_task_current(void);

/*
 * The libevent loop of the worker running the current task, or NULL outside tasks. Valid only
 * until the task blocks (see the rules above). Task only.
 */
struct event_base *weft_event_base(void);

/* The calling thread's errno, read afresh (never inlined): see the rules above. Any thread. */
int weft_errno(void);

/* Index of the worker running the caller (0..workers-1), or -1 on other threads. */
int weft_worker_index(void);

/*
 * Notify: a single permit that one task waits for and anyone signals (Tokio's Notify). A signal
 * with nobody waiting is kept until the next wait. Thread-safe.
 */
typedef struct weft_notify weft_notify;
int weft_notify_new(weft_notify **notify_out); /* WEFT_OK or WEFT_ENOMEM; any thread */
void weft_notify_free(weft_notify *notify);    /* nobody may wait on it any more */
void weft_notify_signal(weft_notify *notify);  /* any thread */
/* Takes the permit, waiting for it at most timeout_seconds. WEFT_OK, WEFT_ETIMEOUT,
 * WEFT_ECANCELED, or WEFT_EBUSY when another task already waits. Task only. */
int weft_notify_wait(weft_notify *notify, double timeout_seconds);

/*
 * One-shot: a result set by anyone, awaited by tasks (or joined from threads through the
 * daemon's runtime API). Reference counted; thread-safe.
 */
typedef struct weft_oneshot weft_oneshot;
int weft_oneshot_new(weft_oneshot **oneshot_out); /* one reference; WEFT_OK or WEFT_ENOMEM */
weft_oneshot *weft_oneshot_retain(weft_oneshot *oneshot);
void weft_oneshot_release(weft_oneshot *oneshot);
/* Completes the one-shot with `error` and `result` (stolen, even on error). WEFT_EALREADYSET when
 * it was already set (the result is then released). Any thread. */
int weft_oneshot_set(weft_oneshot *oneshot, int error, json_t *result);
/* Waits like weft_await; the result is then weft_oneshot_result (borrowed). Task only. */
int weft_oneshot_await(weft_oneshot *oneshot, double timeout_seconds);
json_t *weft_oneshot_result(const weft_oneshot *oneshot);

#ifdef __cplusplus
}
#endif
#endif

/*
 * run_in_executor for task code: hand a blocking call to weftd's thread pool
 * and suspend the calling task (its worker runs other tasks meanwhile) until
 * the call returns. asyncio's loop.run_in_executor(None, fn, arg).
 */
#ifndef WEFT_EXECUTOR_H
#define WEFT_EXECUTOR_H

#include "weft/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A blocking call: runs on a pool thread; its return value is handed back. */
typedef void *(*weft_thread_fn)(void *argument);

/*
 * Runs fn(argument) on the thread pool and suspends the calling task until it
 * returns; *result_out (may be NULL) gets fn's return value. Task only.
 * Returns WEFT_OK; WEFT_EBUSY when the pool's queue is full (fn did not run);
 * WEFT_EINVAL outside a task or before the pool exists; WEFT_ENOMEM.
 *
 * Cancellation: a running call cannot be interrupted, and `argument` must stay
 * valid while it runs, so a task cancelled while it waits keeps waiting until
 * the call returns and then gets WEFT_ECANCELED (the result is still stored
 * in *result_out, for the caller to free if it owns memory). A call still
 * queued when the task is cancelled never runs.
 */
int weft_run_in_thread(weft_thread_fn fn, void *argument, void **result_out);

#ifdef __cplusplus
}
#endif
#endif

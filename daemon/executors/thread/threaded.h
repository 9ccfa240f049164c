/*
 * Functions that run on the thread pool (threadpool.h): the blocking
 * built-ins of blocking.h, as functions of the registry with executor
 * "thread". A job's call goes to the pool from its worker loop; its end comes
 * back to that loop. Cancelling a job whose call is running cannot stop the
 * call: it completes and its result is dropped (concurrent.futures' rule).
 */
#ifndef THREADED_H
#define THREADED_H

#include <stddef.h>

struct function;
struct job_attempt;
struct threadpool_stats;

/* Starts the pool with `threads` threads. Main thread, before jobs run.
 * Returns WEFT_OK or an error. */
int threaded_init(unsigned threads);

/* Closes the pool to the workers: from now on a call that ends is set aside
 * for threaded_fini instead of posting its end to a worker (they are about
 * to stop), and
 * running calls are waited for briefly. Main thread, while the workers still
 * run (their timeouts and cancels may still reach the pool). */
void threaded_close(void);

/* Stops and frees the pool (closing it first if need be): the calls that
 * ended after close are freed and their attempts dropped (no retry); queued
 * calls are dropped; calls still running are left behind with the pool (a
 * blocking call cannot be interrupted, and shutdown must not hang on one).
 * Main thread, after the workers stopped. */
void threaded_fini(void);

/* The index-th thread function, or NULL past the last. Any thread after init. */
const struct function *threaded_function(size_t index);

/* The start and stop of every thread function, for one defined outside this
 * module (the test hooks' debug.block): its .implementation must be a
 * struct blocking_function (blocking.h), borrowed for good. The attempt's
 * worker thread, as the runner calls them. */
void threaded_start(struct job_attempt *attempt);
void threaded_stop(struct job_attempt *attempt);

/* The pool's figures; zeros before init. Any thread. */
void threaded_stats(struct threadpool_stats *stats);

#endif

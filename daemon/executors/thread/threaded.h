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
struct threadpool_stats;

/* Starts the pool with `threads` threads. Main thread, before jobs run.
 * Returns WEFT_OK or an error. */
int threaded_init(unsigned threads);

/* Closes the pool to the workers: from now on a call that ends frees itself
 * instead of posting its end to a worker (they are about to stop), and
 * running calls are waited for briefly. Main thread, while the workers still
 * run (their timeouts and cancels may still reach the pool). */
void threaded_close(void);

/* Stops and frees the pool (closing it first if need be): queued calls are
 * dropped; calls still running are left behind with the pool (a blocking call
 * cannot be interrupted, and shutdown must not hang on one). Main thread,
 * after the workers stopped. */
void threaded_fini(void);

/* The index-th thread function, or NULL past the last. Any thread after init. */
const struct function *threaded_function(size_t index);

/* The pool's figures; zeros before init. Any thread. */
void threaded_stats(struct threadpool_stats *stats);

#endif

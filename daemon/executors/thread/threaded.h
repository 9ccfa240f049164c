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

/* Stops the pool: queued calls are dropped; running calls are waited for
 * briefly, then left behind (a blocking call cannot be interrupted, and
 * shutdown must not hang on one). Main thread, before the workers stop. */
void threaded_fini(void);

/* The index-th thread function, or NULL past the last. Any thread after init. */
const struct function *threaded_function(size_t index);

/* The pool's figures; zeros before init. Any thread. */
void threaded_stats(struct threadpool_stats *stats);

#endif

/*
 * The thread pool behind weft_run_in_thread (include/weft/executor.h). weftd
 * hands its pool over at start-up; benchmarks and tests hand over their own.
 */
#ifndef RUN_IN_THREAD_H
#define RUN_IN_THREAD_H

struct threadpool;

/* Makes pool (borrowed; it must outlive every call) the one weft_run_in_thread
 * uses; NULL withdraws it. Main thread, while no task calls weft_run_in_thread. */
void run_in_thread_set_pool(struct threadpool *pool);

#endif

/*
 * 100,000 no-op calls through weft_run_in_thread on a 2-thread pool:
 *   run_in_thread_seq  one task, awaiting each call before the next
 *   run_in_thread_all  one task per call, all started at once, then joined
 * Usage: run_in_thread [N]
 */
#include <stdint.h>

#include "bench/runtime/bench_common.h"
#include "daemon/executors/thread/run_in_thread.h"
#include "daemon/executors/thread/threadpool.h"
#include "weft/executor.h"

static void *no_op(void *argument)
{
	return argument;
}

static int sequential(void *argument)
{
	long count = *(long *)argument;
	for (long i = 0; i < count; i++) {
		void *result;
		int rv = weft_run_in_thread(no_op, (void *)(intptr_t)i, &result);
		if (rv != WEFT_OK || (intptr_t)result != i)
			return rv != WEFT_OK ? rv : WEFT_EINTERNAL;
	}
	return WEFT_OK;
}

static int one_call(void *argument)
{
	return weft_run_in_thread(no_op, argument, NULL);
}

static int all_at_once(void *argument)
{
	long count = *(long *)argument;
	weft_task **tasks = malloc((size_t)count * sizeof(*tasks));
	if (tasks == NULL)
		return WEFT_ENOMEM;
	int rv = WEFT_OK;
	long spawned = 0;
	for (; spawned < count && rv == WEFT_OK; spawned++)
		rv = weft_spawn(one_call, NULL, NULL, &tasks[spawned]);
	if (rv != WEFT_OK)
		spawned--;
	for (long i = 0; i < spawned; i++) {
		int joined = weft_await(tasks[i], WEFT_FOREVER);
		if (rv == WEFT_OK)
			rv = joined;
		weft_task_release(tasks[i]);
	}
	free(tasks);
	return rv;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 100000;
	runtime *rt;
	struct threadpool *pool;
	if (runtime_new(NULL, &rt) != WEFT_OK ||
	    threadpool_create(2, (size_t)count + 16, &pool) != WEFT_OK) {
		fprintf(stderr, "run_in_thread: cannot start the runtime or the pool\n");
		return 1;
	}
	run_in_thread_set_pool(pool);
	double started = bench_now();
	bench_run_root(rt, sequential, &count);
	bench_result("run_in_thread_seq", "weft", count, bench_now() - started, (double)count);
	started = bench_now();
	bench_run_root(rt, all_at_once, &count);
	bench_result("run_in_thread_all", "weft", count, bench_now() - started, (double)count);
	runtime_free(rt, 10);
	run_in_thread_set_pool(NULL);
	threadpool_shutdown(pool);
	threadpool_free(pool);
	return 0;
}

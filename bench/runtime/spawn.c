/*
 * spawn: spawn N trivial tasks from one task, then wait until they have all finished. Tasks per
 * second. As the Go peer does with a WaitGroup, the tasks count themselves down and the last one
 * signals the spawner (the handle-per-task form of join is measured by `spawn N handles`).
 * Usage: spawn [N] [handles]   (default 1,000,000)
 */
#include <stdatomic.h>
#include <string.h>

#include "bench/runtime/bench_common.h"

static long task_count;
static bool with_handles;
static atomic_long remaining;
static weft_notify *all_done;

static int trivial(void *argument)
{
	(void)argument;
	if (atomic_fetch_sub_explicit(&remaining, 1, memory_order_acq_rel) == 1)
		weft_notify_signal(all_done);
	return WEFT_OK;
}

static int root_with_handles(void)
{
	weft_task **tasks = malloc(sizeof *tasks * (size_t)task_count);
	if (tasks == NULL)
		return WEFT_ENOMEM;
	for (long i = 0; i < task_count; i++) {
		int error = weft_spawn(trivial, NULL, NULL, &tasks[i]);
		if (error != WEFT_OK)
			return error;
	}
	for (long i = 0; i < task_count; i++) {
		weft_await(tasks[i], WEFT_FOREVER);
		weft_task_release(tasks[i]);
	}
	free(tasks);
	return weft_notify_wait(all_done, WEFT_FOREVER);
}

static int root(void *argument)
{
	(void)argument;
	atomic_store(&remaining, task_count);
	if (with_handles)
		return root_with_handles();
	for (long i = 0; i < task_count; i++) {
		int error = weft_spawn(trivial, NULL, NULL, NULL);
		if (error != WEFT_OK)
			return error;
	}
	return weft_notify_wait(all_done, WEFT_FOREVER);
}

int main(int argc, char **argv)
{
	task_count = bench_argument(argc, argv, 1, 1000000);
	with_handles = argc > 2 && strcmp(argv[2], "handles") == 0;
	runtime_config config = {.workers = bench_workers(), .stack_size = 64 * 1024};
	runtime *rt;
	if (runtime_new(&config, &rt) != WEFT_OK || weft_notify_new(&all_done) != WEFT_OK)
		return 1;
	double start = bench_now();
	bench_run_root(rt, root, NULL);
	double seconds = bench_now() - start;
	bench_result("spawn", with_handles ? "weft-handles" : "weft", task_count, seconds,
		     (double)task_count);
	bench_print_stats(rt);
	runtime_free(rt, 1);
	weft_notify_free(all_done);
	return 0;
}

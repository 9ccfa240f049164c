/*
 * sleep: N tasks each sleeping 1 s at once, then joined. Wall time and peak RSS.
 * Usage: sleep [N] [stackless|stackful] (default 100,000 stackless)
 * stackless: each task is a weft_spawn_sleep task (how weftd's sleep built-in runs: no stack).
 * stackful: each task is a coroutine calling weft_sleep(1) on its own (small) stack.
 */
#include <string.h>

#include "bench/runtime/bench_common.h"

static long task_count;
static bool stackful;

static int sleeper(void *argument)
{
	(void)argument;
	return weft_sleep(1.0);
}

static int root(void *argument)
{
	(void)argument;
	weft_task **tasks = malloc(sizeof *tasks * (size_t)task_count);
	if (tasks == NULL)
		return WEFT_ENOMEM;
	for (long i = 0; i < task_count; i++) {
		int error = stackful ? weft_spawn(sleeper, NULL, NULL, &tasks[i])
				     : weft_spawn_sleep(1.0, NULL, NULL, &tasks[i]);
		if (error != WEFT_OK)
			return error;
	}
	int failed = 0;
	for (long i = 0; i < task_count; i++) {
		if (weft_await(tasks[i], WEFT_FOREVER) != WEFT_OK)
			failed++;
		weft_task_release(tasks[i]);
	}
	free(tasks);
	return failed ? WEFT_EINTERNAL : WEFT_OK;
}

int main(int argc, char **argv)
{
	task_count = bench_argument(argc, argv, 1, 100000);
	stackful = argc > 2 && strcmp(argv[2], "stackful") == 0;
	if (argc > 2 && !stackful && strcmp(argv[2], "stackless") != 0) {
		fprintf(stderr, "sleep: the second argument is stackless or stackful\n");
		return 2;
	}
	runtime_config config = {.workers = bench_workers(), .stack_size = 16 * 1024};
	runtime *rt;
	if (runtime_new(&config, &rt) != WEFT_OK)
		return 1;
	double start = bench_now();
	bench_run_root(rt, root, NULL);
	double seconds = bench_now() - start;
	bench_result("sleep", stackful ? "weft-stackful" : "weft", task_count, seconds,
		     (double)task_count);
	bench_print_stats(rt);
	runtime_free(rt, 1);
	return 0;
}

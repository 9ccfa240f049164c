/* fib: fork-join fib(n); each call spawns fib(n-1) as a task, computes fib(n-2) inline and
 * joins. Spawned tasks per second. Usage: fib [n] (default 27) */
#include <stdint.h>

#include "bench/runtime/bench_common.h"

static _Atomic long spawned;

static int64_t fib(long n);

static int fib_task(void *argument)
{
	weft_return_int(fib((long)(intptr_t)argument));
	return WEFT_OK;
}

static int64_t fib(long n)
{
	if (n < 2)
		return n;
	weft_task *child;
	if (weft_spawn(fib_task, (void *)(intptr_t)(n - 1), NULL, &child) != WEFT_OK) {
		fprintf(stderr, "fib: spawn failed\n");
		exit(1);
	}
	int64_t other = fib(n - 2);
	weft_await(child, WEFT_FOREVER);
	int64_t value = weft_task_value(child) + other;
	weft_task_release(child);
	return value;
}

static int64_t answer;

static int root(void *argument)
{
	answer = fib((long)(intptr_t)argument);
	return WEFT_OK;
}

/* Calls with n >= 2 spawn one task each. */
static long spawns_for(long n)
{
	long a = 0, b = 0; /* spawns(n-2), spawns(n-1) */
	for (long i = 2; i <= n; i++) {
		long next = 1 + b + a;
		a = b;
		b = next;
	}
	return n < 2 ? 0 : b;
}

int main(int argc, char **argv)
{
	long n = bench_argument(argc, argv, 1, 27);
	runtime_config config = {.workers = bench_workers(), .stack_size = 64 * 1024};
	runtime *rt;
	if (runtime_new(&config, &rt) != WEFT_OK)
		return 1;
	(void)spawned;
	double start = bench_now();
	bench_run_root(rt, root, (void *)(intptr_t)n);
	double seconds = bench_now() - start;
	long tasks = spawns_for(n);
	fprintf(stderr, "fib(%ld) = %lld\n", n, (long long)answer);
	bench_result("fib", "weft", n, seconds, (double)tasks);
	bench_print_stats(rt);
	runtime_free(rt, 1);
	return 0;
}

/*
 * Shared by weft's runtime benchmarks: timing, peak RSS and the RESULT line that the suite
 * scripts pass on (see bench/suites/). Each program runs its root task through runtime_inject and
 * joins it from main, as weftd's request threads do.
 */
#ifndef WEFT_BENCH_COMMON_H
#define WEFT_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "daemon/runtime/runtime.h"

static inline double bench_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static inline long bench_peak_rss_kb(void)
{
	struct rusage usage;
	getrusage(RUSAGE_SELF, &usage);
	return usage.ru_maxrss;
}

static inline void bench_result(const char *bench, const char *impl, long n, double seconds,
				double operations)
{
	printf("RESULT bench=%s impl=%s n=%ld secs=%.3f rate=%.0f rss_kb=%ld\n", bench, impl, n,
	       seconds, operations / seconds, bench_peak_rss_kb());
	fflush(stdout);
}

/* Runs body(argument) as the root task and waits for it; exits on failure. */
static inline void bench_run_root(runtime *rt, weft_task_fn body, void *argument)
{
	weft_task *root;
	int error = runtime_inject(rt, body, argument, NULL, &root);
	if (error == WEFT_OK)
		error = runtime_join(root, WEFT_FOREVER);
	if (error != WEFT_OK) {
		fprintf(stderr, "bench: root task failed: %s\n", weft_strerror(error));
		exit(1);
	}
	weft_task_release(root);
}

/* With WEFT_BENCH_STATS set, prints each worker's counters on stderr. */
static inline void bench_print_stats(runtime *rt)
{
	if (getenv("WEFT_BENCH_STATS") == NULL)
		return;
	runtime_worker_stats stats[64];
	int count = runtime_stats(rt, stats, 64);
	for (int i = 0; i < count && i < 64; i++)
		fprintf(stderr,
			"worker %d: run %llu stolen_by %llu stolen_from %llu injected %llu parks %llu "
			"wakes %llu depth %u\n",
			i, (unsigned long long)stats[i].tasks_run, (unsigned long long)stats[i].stolen_by,
			(unsigned long long)stats[i].stolen_from,
			(unsigned long long)stats[i].injected, (unsigned long long)stats[i].parks,
			(unsigned long long)stats[i].wakes, stats[i].queue_depth);
}

/* Worker count from WEFT_WORKERS (default: one per CPU), for experiments. */
static inline int bench_workers(void)
{
	const char *text = getenv("WEFT_WORKERS");
	return text != NULL ? atoi(text) : 0;
}

static inline long bench_argument(int argc, char **argv, int index, long fallback)
{
	if (argc <= index)
		return fallback;
	char *end;
	long value = strtol(argv[index], &end, 10);
	if (*end != '\0' || value <= 0) {
		fprintf(stderr, "bench: argument %d must be a positive integer, not '%s'\n", index,
			argv[index]);
		exit(2);
	}
	return value;
}

#endif

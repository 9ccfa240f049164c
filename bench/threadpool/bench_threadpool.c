/*
 * Pushes no-op items through a 2-thread pool, the cost of a hand-off and
 * nothing else:
 *   threadpool_seq: one at a time (submit, wait for its done, next), so every
 *                   item pays a wake-up of a pool thread and one of ours;
 *   threadpool_all: every item submitted at once, then wait for the last done.
 * Prints one RESULT line per run. Usage: bench_threadpool [items] (default 100000).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "daemon/executors/thread/threadpool.h"
#include "weft/error.h"

static pthread_mutex_t finished_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t finished_changed = PTHREAD_COND_INITIALIZER;
static long finished; /* guarded by finished_mutex */

static void bench_run(struct threadpool_work *work)
{
	(void)work;
}

static void bench_done(struct threadpool_work *work)
{
	(void)work;
	pthread_mutex_lock(&finished_mutex);
	finished++;
	pthread_cond_signal(&finished_changed);
	pthread_mutex_unlock(&finished_mutex);
}

static void bench_wait_for(long count)
{
	pthread_mutex_lock(&finished_mutex);
	while (finished < count)
		pthread_cond_wait(&finished_changed, &finished_mutex);
	pthread_mutex_unlock(&finished_mutex);
}

static double bench_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void bench_report(const char *name, long count, double seconds)
{
	printf("RESULT bench=%s impl=pool n=%ld secs=%.3f rate=%.0f\n", name, count, seconds,
	       (double)count / seconds);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
	struct threadpool_work *items;
	struct threadpool *pool;
	double started;
	int rv;

	if (count <= 0) {
		fprintf(stderr, "usage: %s [items > 0]\n", argv[0]);
		return 2;
	}
	if ((items = calloc((size_t)count, sizeof(*items))) == NULL) {
		fprintf(stderr, "bench_threadpool: out of memory\n");
		return 1;
	}
	for (long i = 0; i < count; i++)
		threadpool_work_init(&items[i], bench_run, bench_done);
	if ((rv = threadpool_create(2, (size_t)count, &pool)) != WEFT_OK) {
		fprintf(stderr, "bench_threadpool: cannot create the pool: %s\n",
			weft_strerror(rv));
		return 1;
	}

	started = bench_now();
	for (long i = 0; i < count; i++) {
		if ((rv = threadpool_submit(pool, &items[i])) != WEFT_OK)
			goto fail;
		bench_wait_for(i + 1);
	}
	bench_report("threadpool_seq", count, bench_now() - started);

	started = bench_now();
	for (long i = 0; i < count; i++)
		if ((rv = threadpool_submit(pool, &items[i])) != WEFT_OK)
			goto fail;
	bench_wait_for(2 * count);
	bench_report("threadpool_all", count, bench_now() - started);

	threadpool_free(pool);
	free(items);
	return 0;

fail:
	fprintf(stderr, "bench_threadpool: submit failed: %s\n", weft_strerror(rv));
	threadpool_free(pool);
	free(items);
	return 1;
}

/*
 * Streams through libweft (issue 13): items/s through `next` for a `count`
 * of N (batched by the iterator, and one item per request), and events/s to
 * one follower while N jobs run. Prints RESULT lines for bench/run.
 *
 *   stream_bench --url URL [--items N] [--jobs N]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft/weft.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void report(const char *bench, long n, double seconds)
{
	printf("RESULT bench=%s impl=weft n=%ld secs=%.3f rate=%.0f\n", bench, n, seconds,
	       (double)n / seconds);
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "stream_bench: %s: %s\n", what, weft_last_error()->message);
	exit(1);
}

static uint64_t submit_count(weft_client *client, long to)
{
	weft_job_spec *spec;
	uint64_t id;
	json_t *args = json_pack("{s:I}", "to", (json_int_t)to);
	if (weft_job_spec_new("count", &spec) != WEFT_OK ||
	    weft_job_spec_set_args(spec, args) != WEFT_OK || weft_submit(client, spec, &id) != WEFT_OK)
		die("submit count");
	json_decref(args);
	weft_job_spec_free(spec);
	return id;
}

/* The iterator: up to 256 items a request. */
static void items_batched(weft_client *client, long n)
{
	double start = now();
	uint64_t id = submit_count(client, n);
	weft_iter *iter;
	if (weft_iter_open(client, id, &iter) != WEFT_OK)
		die("iter open");
	long seen = 0;
	for (;;) {
		json_t *item;
		if (weft_iter_next(iter, 60, &item) != WEFT_OK)
			die("iter next");
		if (item == NULL)
			break;
		if (json_integer_value(item) != seen + 1) {
			fprintf(stderr, "stream_bench: item %ld is %lld\n", seen,
			        (long long)json_integer_value(item));
			exit(1);
		}
		seen++;
		json_decref(item);
	}
	weft_iter_close(iter);
	if (seen != n) {
		fprintf(stderr, "stream_bench: %ld items of %ld\n", seen, n);
		exit(1);
	}
	report("items_next_batched", n, now() - start);
}

/* One `next` request per item. */
static void items_one_by_one(weft_client *client, long n)
{
	double start = now();
	uint64_t id = submit_count(client, n);
	for (long i = 0; i <= n; i++) {
		json_t *request = json_pack("{s:s, s:I, s:I, s:f}", "op", "next", "id", (json_int_t)id,
		                            "index", (json_int_t)i, "wait", 60.0), *reply;
		if (weft_request(client, request, 60, &reply) != WEFT_OK)
			die("next");
		json_decref(request);
		bool ok = json_is_true(json_object_get(reply, "ok"));
		bool done = json_is_true(json_object_get(reply, "done"));
		if (!ok || (i < n && json_integer_value(json_object_get(reply, "item")) != i + 1) ||
		    (i == n && !done)) {
			fprintf(stderr, "stream_bench: bad reply at %ld\n", i);
			exit(1);
		}
		json_decref(reply);
	}
	report("items_next_one_each", n, now() - start);
}

struct follower {
	const char *url;
	long wanted; /* job events to see */
	atomic_bool started;
	long seen, lost;
	double first, last;
	double *lags; /* µs from an event's time (weftd's wall clock) to its arrival, per event */
};

static double wall(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int compare_doubles(const void *left, const void *right)
{
	double a = *(const double *)left, b = *(const double *)right;
	return a < b ? -1 : a > b;
}

static void *follow(void *argument)
{
	struct follower *follower = argument;
	weft_client *client;
	if (weft_connect(follower->url, &client) != WEFT_OK)
		die("follower connect");
	weft_events *events;
	/* From now: first read everything held, to start after it. */
	if (weft_events_open(client, NULL, NULL, &events) != WEFT_OK)
		die("events open");
	json_t *event;
	while (weft_events_next(events, 0, &event) == WEFT_OK)
		json_decref(event);
	atomic_store(&follower->started, true);
	while (follower->seen < follower->wanted) {
		int rv = weft_events_next(events, 30, &event);
		if (rv == WEFT_ECURSOREXPIRED) {
			follower->lost++;
			continue;
		}
		if (rv == WEFT_ETIMEOUT)
			break;
		if (rv != WEFT_OK)
			die("events next");
		if (follower->seen == 0)
			follower->first = now();
		follower->lags[follower->seen] =
			(wall() - json_number_value(json_object_get(event, "time"))) * 1e6;
		follower->seen++;
		follower->last = now();
		json_decref(event);
	}
	weft_events_close(events);
	weft_close(client);
	return NULL;
}

static void events_while_jobs_run(weft_client *client, const char *url, long jobs)
{
	/* queued, running, done: three events a job. */
	struct follower follower = {.url = url, .wanted = 3 * jobs};
	follower.lags = calloc((size_t)(3 * jobs), sizeof(double));
	pthread_t thread;
	pthread_create(&thread, NULL, follow, &follower);
	while (!atomic_load(&follower.started))
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	enum { BATCH = 1000 };
	weft_job_spec *specs[BATCH];
	json_t *args = json_pack("{s:i}", "seconds", 0);
	for (int i = 0; i < BATCH; i++)
		if (weft_job_spec_new("sleep", &specs[i]) != WEFT_OK ||
		    weft_job_spec_set_args(specs[i], args) != WEFT_OK)
			die("spec");
	json_decref(args);
	double start = now();
	static uint64_t ids[BATCH];
	for (long done = 0; done < jobs; done += BATCH) {
		size_t count = jobs - done < BATCH ? (size_t)(jobs - done) : BATCH;
		if (weft_submit_batch(client, (const weft_job_spec *const *)specs, count, ids) !=
		    WEFT_OK)
			die("submit batch");
	}
	double submitted = now();
	pthread_join(thread, NULL);
	for (int i = 0; i < BATCH; i++)
		weft_job_spec_free(specs[i]);
	qsort(follower.lags, (size_t)follower.seen, sizeof(double), compare_doubles);
	/* p50/p99: from the event's time in weftd to its arrival at the follower. */
	printf("RESULT bench=events_to_one_follower impl=weft n=%ld secs=%.3f rate=%.0f p50_us=%.1f "
	       "p99_us=%.1f\n",
	       follower.seen, follower.last - start, (double)follower.seen / (follower.last - start),
	       follower.seen > 0 ? follower.lags[follower.seen / 2] : 0.0,
	       follower.seen > 0 ? follower.lags[follower.seen * 99 / 100] : 0.0);
	free(follower.lags);
	/* The same run's jobs, for scale: the follower keeps up when its rate is
	 * three times this one. */
	report("jobs_submitted_meanwhile", jobs, submitted - start);
	/* Events the follower never saw (n), and how often it was told so (rate):
	 * with a ring that holds the run, both are 0. */
	printf("RESULT bench=events_missed impl=weft n=%ld secs=0 rate=%ld\n",
	       3 * jobs - follower.seen, follower.lost);
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	long items = 100000, jobs = 100000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--url") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--items") == 0)
			items = atol(argv[i + 1]);
		else if (strcmp(argv[i], "--jobs") == 0)
			jobs = atol(argv[i + 1]);
	}
	if (url == NULL) {
		fprintf(stderr, "usage: stream_bench --url URL [--items N] [--jobs N]\n");
		return 2;
	}
	weft_client *client;
	if (weft_connect(url, &client) != WEFT_OK)
		die("connect");
	items_batched(client, items);
	items_one_by_one(client, items);
	events_while_jobs_run(client, url, jobs);
	weft_close(client);
	return 0;
}

/*
 * libweft's asynchronous API measured with the public API alone (weft/weft.h):
 *
 *   --mode results   N echo results: batches of --batch jobs submitted with
 *                    weft_submit_batch_async, each followed by
 *                    weft_result_many_async on its ids, --batch-inflight
 *                    batches at a time; every result is checked.
 *   --mode inflight  N echo jobs as weft_submit_wait_async (one round trip
 *                    each), --inflight in flight, all from one thread.
 *
 * One thread: it starts calls and takes their completions from a completion
 * queue, sleeping in poll(2) on the queue's fd as an event loop would.
 * Prints the RESULT line of bench/README.md (no latency fields).
 */
#include <getopt.h>
#include <poll.h>
#include <stdint.h>
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

static weft_call *next_call(weft_completion_queue *queue)
{
	for (;;) {
		weft_call *call = NULL;
		if (weft_completion_queue_next(queue, &call) != WEFT_OK)
			return NULL;
		if (call != NULL)
			return call;
		struct pollfd ready = {.fd = weft_completion_queue_fd(queue), .events = POLLIN};
		poll(&ready, 1, -1);
	}
}

static int fail(const char *what, weft_call *call)
{
	const weft_error_info *info = call != NULL ? weft_call_error_info(call) : weft_last_error();
	fprintf(stderr, "async_bench: %s: %s (%s)\n", what, weft_error_code(info->code),
	        info->message);
	return 1;
}

/* Tags on the calls of mode results. */
enum { TAG_SUBMIT = 1, TAG_RESULT = 2 };

int main(int argc, char **argv)
{
	const char *url = NULL, *mode = "results", *bench = "async_results", *impl = "weft-async";
	long count = 100000, batch = 1000, batch_inflight = 4, inflight = 64;
	static const struct option options[] = {
		{"url", required_argument, NULL, 'u'},  {"mode", required_argument, NULL, 'm'},
		{"count", required_argument, NULL, 'n'}, {"batch", required_argument, NULL, 'b'},
		{"batch-inflight", required_argument, NULL, 'B'},
		{"inflight", required_argument, NULL, 'f'}, {"bench", required_argument, NULL, 'x'},
		{"impl", required_argument, NULL, 'i'},  {NULL, 0, NULL, 0}};
	int option;
	while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (option) {
		case 'u': url = optarg; break;
		case 'm': mode = optarg; break;
		case 'n': count = atol(optarg); break;
		case 'b': batch = atol(optarg); break;
		case 'B': batch_inflight = atol(optarg); break;
		case 'f': inflight = atol(optarg); break;
		case 'x': bench = optarg; break;
		case 'i': impl = optarg; break;
		default: return 2;
		}
	}
	if (count < 1 || batch < 1 || batch_inflight < 1 || inflight < 1)
		return 2;
	weft_client *client = NULL;
	weft_completion_queue *queue = NULL;
	if (weft_connect(url, &client) != WEFT_OK)
		return fail("connect", NULL);
	if (weft_completion_queue_new(&queue) != WEFT_OK)
		return fail("queue", NULL);
	weft_job_spec *spec = NULL;
	json_t *args = json_pack("{s:i}", "value", 7);
	if (weft_job_spec_new("echo", &spec) != WEFT_OK || weft_job_spec_set_args(spec, args) != WEFT_OK)
		return fail("spec", NULL);
	json_decref(args);
	weft_notify notify = {.queue = queue};
	int rv = 0;
	long started = 0, finished = 0;
	double begin = now();
	if (strcmp(mode, "inflight") == 0) {
		for (; started < inflight && started < count; started++)
			if (weft_submit_wait_async(client, spec, 60, &notify, NULL) != WEFT_OK)
				return fail("submit", NULL);
		while (finished < count) {
			weft_call *call = next_call(queue);
			const weft_outcome *outcome = weft_call_outcome(call);
			if (weft_call_error(call) != WEFT_OK || outcome->state != WEFT_STATE_DONE ||
			    json_integer_value(outcome->result) != 7)
				return fail("submit wait", call);
			weft_call_free(call);
			finished++;
			if (started < count) {
				if (weft_submit_wait_async(client, spec, 60, &notify, NULL) != WEFT_OK)
					return fail("submit", NULL);
				started++;
			}
		}
	} else {
		const weft_job_spec **specs = calloc((size_t)batch, sizeof(*specs));
		for (long i = 0; i < batch; i++)
			specs[i] = spec;
		notify.user_data = (void *)(intptr_t)TAG_SUBMIT;
		long batches_out = 0;
		while (finished < count) {
			while (batches_out < batch_inflight && started < count) {
				long size = count - started < batch ? count - started : batch;
				if (weft_submit_batch_async(client, specs, (size_t)size, &notify, NULL) !=
				    WEFT_OK)
					return fail("submit batch", NULL);
				started += size;
				batches_out++;
			}
			weft_call *call = next_call(queue);
			if (weft_call_error(call) != WEFT_OK)
				return fail("call", call);
			if ((intptr_t)weft_call_user_data(call) == TAG_SUBMIT) {
				size_t n = 0;
				const uint64_t *ids = weft_call_ids(call, &n);
				weft_notify then = {.queue = queue, .user_data = (void *)(intptr_t)TAG_RESULT};
				if (weft_result_many_async(client, ids, n, 60, &then, NULL) != WEFT_OK)
					return fail("result many", NULL);
			} else {
				size_t n = 0;
				weft_outcome *const *outcomes = weft_call_outcomes(call, &n);
				for (size_t i = 0; i < n; i++)
					if (outcomes[i]->state != WEFT_STATE_DONE ||
					    json_integer_value(outcomes[i]->result) != 7)
						return fail("a result", call);
				finished += (long)n;
				batches_out--;
			}
			weft_call_free(call);
		}
		free(specs);
	}
	double seconds = now() - begin;
	printf("RESULT bench=%s impl=%s n=%ld secs=%.3f rate=%.0f\n", bench, impl, finished, seconds,
	       finished / seconds);
	weft_job_spec_free(spec);
	weft_close(client);
	weft_completion_queue_free(queue);
	return rv;
}

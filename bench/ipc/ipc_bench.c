/*
 * weft's side of the ipc benchmark: `echo` jobs through weftd.
 *
 *   --mode serial      submit with "wait": one round trip per job
 *   --mode serial-2rt  submit, then result: two round trips per job
 *   --mode batch       --jobs echo jobs submitted --batch at a time, then every
 *                      result fetched and checked: --collect results asks `result`
 *                      with the ids of one batch per request (it waits for them);
 *                      --collect each waits for each batch (`wait` ALL_COMPLETED)
 *                      and then asks `result` once per job
 *   --probe            wait (up to --seconds) until weftd answers a ping
 *
 * --inflight N keeps N jobs in flight (serial modes) or N result fetches in
 * flight (batch, --collect each). Two ways to talk to weftd:
 *   --via libweft (default): the C client library; N threads, each making
 *                 blocking calls (libweft is thread-safe, one context per call);
 *   --via raw:    the protocol over a bare nng REQ socket with N aios chained by
 *                 callbacks, the same machinery as the nng floor's client, so the
 *                 daemon is compared with the floor using identical client code.
 *
 * Every job's value is its index; every result is checked against it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "bench/ipc/driver.h"
#include "bench/ipc/measure.h"
#include "weft/client.h"

/* Seconds the daemon may hold a request with "wait" or a result timeout. */
#define IPC_BENCH_WAIT_SECONDS 10
/* The same, in the requests written by hand. */
#define IPC_BENCH_WAIT_TEXT "10"

enum ipc_bench_mode { IPC_BENCH_SERIAL, IPC_BENCH_SERIAL_2RT, IPC_BENCH_BATCH };

/* What one operation of a driver run is. */
enum ipc_bench_phase {
	IPC_BENCH_JOB,	   /* serial modes: one echo job, submitted and its result fetched */
	IPC_BENCH_SUBMIT,  /* batch: submit batch number `index` */
	IPC_BENCH_COLLECT, /* batch: `result` with the ids of batch `index`, each checked */
	IPC_BENCH_WAIT,	   /* batch, --collect each: `wait` ALL_COMPLETED on batch `index` */
	IPC_BENCH_EACH,	   /* batch, --collect each: `result` of job `index` */
};

/* Read-only while operations run, except ids (each slot written by one thread). */
struct ipc_bench {
	enum ipc_bench_mode mode;
	enum ipc_bench_phase phase;
	weft_client *client; /* --via libweft */
	uint64_t *ids;	     /* batch: the job id of each value */
	uint64_t jobs;
	uint64_t batch;
	bool collect_each; /* batch: wait, then one `result` per job (not `result` with ids) */
};

/* The values of batch number index: [*first, *first + *count). */
static void ipc_bench_batch_range(const struct ipc_bench *bench, uint64_t index, uint64_t *first,
				  uint64_t *count)
{
	*first = index * bench->batch;
	*count = bench->jobs - *first < bench->batch ? bench->jobs - *first : bench->batch;
}

/* ------------------------------------------------------------ the requests */

/* The request of a batch operation as text (malloc'd, the caller frees it), or
 * NULL when out of memory. */
static char *ipc_bench_batch_text(const struct ipc_bench *bench, uint64_t index, size_t *length_out)
{
	uint64_t first;
	uint64_t count;
	size_t capacity;
	size_t length;
	char *text;

	ipc_bench_batch_range(bench, index, &first, &count);
	capacity = 128 + count * 64;
	if ((text = malloc(capacity)) == NULL)
		return NULL;
	if (bench->phase == IPC_BENCH_SUBMIT) {
		length = (size_t)snprintf(text, capacity, "{\"op\":\"submit\",\"jobs\":[");
		for (uint64_t i = 0; i < count; i++)
			length += (size_t)snprintf(text + length, capacity - length,
						   "%s{\"fn\":\"echo\",\"args\":{\"value\":%" PRIu64 "}}",
						   i ? "," : "", first + i);
		length += (size_t)snprintf(text + length, capacity - length, "]}");
	} else {
		length = (size_t)snprintf(text, capacity, "{\"op\":\"%s\",\"ids\":[",
					  bench->phase == IPC_BENCH_WAIT ? "wait" : "result");
		for (uint64_t i = 0; i < count; i++)
			length += (size_t)snprintf(text + length, capacity - length, "%s%" PRIu64,
						   i ? "," : "", bench->ids[first + i]);
		length += (size_t)snprintf(text + length, capacity - length,
					   "]%s,\"timeout\":" IPC_BENCH_WAIT_TEXT "}",
					   bench->phase == IPC_BENCH_WAIT
						   ? ",\"return_when\":\"ALL_COMPLETED\""
						   : "");
	}
	*length_out = length;
	return text;
}

static void ipc_bench_print_reply(const char *what, const json_t *reply)
{
	char *text = json_dumps(reply, JSON_COMPACT);

	fprintf(stderr, "%s: %.300s\n", what, text ? text : "?");
	free(text);
}

/* Checks a finished echo job's outcome: ok (when asked), done, result == value. */
static int ipc_bench_check_done(const json_t *outcome, uint64_t value, bool with_ok)
{
	const json_t *result = json_object_get(outcome, "result");
	const char *state = json_string_value(json_object_get(outcome, "state"));

	if ((!with_ok || json_is_true(json_object_get(outcome, "ok"))) && state != NULL &&
	    strcmp(state, "done") == 0 && json_is_integer(result) &&
	    (uint64_t)json_integer_value(result) == value)
		return 0;
	fprintf(stderr, "the job of value %" PRIu64 " did not come back done with its value\n", value);
	ipc_bench_print_reply("its outcome", outcome);
	return -1;
}

/* Checks the reply (borrowed) to batch operation index and keeps what it says. */
static int ipc_bench_batch_reply(struct ipc_bench *bench, uint64_t index, const json_t *reply)
{
	uint64_t first;
	uint64_t count;
	const json_t *list;

	ipc_bench_batch_range(bench, index, &first, &count);
	switch (bench->phase) {
	case IPC_BENCH_SUBMIT:
		list = json_object_get(reply, "ids");
		if (!json_is_true(json_object_get(reply, "ok")) || json_array_size(list) != count) {
			ipc_bench_print_reply("batch submit failed", reply);
			return -1;
		}
		for (uint64_t i = 0; i < count; i++)
			bench->ids[first + i] = (uint64_t)json_integer_value(json_array_get(list, i));
		return 0;
	case IPC_BENCH_WAIT:
		if (!json_is_true(json_object_get(reply, "ok")) ||
		    json_array_size(json_object_get(reply, "done")) != count) {
			ipc_bench_print_reply("wait did not find every job done", reply);
			return -1;
		}
		return 0;
	case IPC_BENCH_COLLECT:
		list = json_object_get(reply, "results");
		if (!json_is_true(json_object_get(reply, "ok")) || json_array_size(list) != count) {
			ipc_bench_print_reply("result with ids failed", reply);
			return -1;
		}
		for (uint64_t i = 0; i < count; i++) {
			const json_t *entry = json_array_get(list, i);
			const json_t *id = json_object_get(entry, "id");

			if (!json_is_integer(id) ||
			    (uint64_t)json_integer_value(id) != bench->ids[first + i]) {
				fprintf(stderr, "results[%" PRIu64 "] is not job %" PRIu64 "\n", i,
					bench->ids[first + i]);
				return -1;
			}
			/* An entry is an outcome as `result` gives it, without "ok". */
			if (ipc_bench_check_done(entry, first + i, false) != 0)
				return -1;
		}
		return 0;
	default:
		return -1;
	}
}

/* ------------------------------------------------------------ raw protocol */

/* The reply as an object; NULL (printed) when it is not one. New reference. */
static json_t *ipc_bench_parse(nng_msg *reply)
{
	json_error_t error;
	json_t *object = json_loadb(nng_msg_body(reply), nng_msg_len(reply), 0, &error);

	if (object == NULL || !json_is_object(object)) {
		fprintf(stderr, "reply is not a JSON object: %.*s\n", (int)nng_msg_len(reply),
			(const char *)nng_msg_body(reply));
		json_decref(object);
		return NULL;
	}
	return object;
}

static nng_msg *ipc_bench_format(const char *format, uint64_t a)
{
	char text[256];
	int length = snprintf(text, sizeof(text), format, a);

	return driver_message(text, (size_t)length);
}

static int ipc_bench_raw_start(void *context, struct driver_slot *slot, nng_msg **request)
{
	const struct ipc_bench *bench = context;
	nng_msg *message = NULL;
	char *text;
	size_t length;

	switch (bench->phase) {
	case IPC_BENCH_JOB:
		if (bench->mode == IPC_BENCH_SERIAL)
			message = ipc_bench_format("{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{"
						   "\"value\":%" PRIu64 "},\"wait\":" IPC_BENCH_WAIT_TEXT "}",
						   slot->index);
		else
			message = ipc_bench_format("{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{"
						   "\"value\":%" PRIu64 "}}",
						   slot->index);
		break;
	case IPC_BENCH_EACH:
		message = ipc_bench_format("{\"op\":\"result\",\"id\":%" PRIu64
					   ",\"timeout\":" IPC_BENCH_WAIT_TEXT "}",
					   bench->ids[slot->index]);
		break;
	default:
		if ((text = ipc_bench_batch_text(bench, slot->index, &length)) != NULL) {
			message = driver_message(text, length);
			free(text);
		}
		break;
	}
	if (message == NULL) {
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	*request = message;
	return 0;
}

static int ipc_bench_raw_reply(void *context, struct driver_slot *slot, nng_msg *reply,
			       nng_msg **next)
{
	struct ipc_bench *bench = context;
	json_t *object = ipc_bench_parse(reply);
	int rv = -1;

	*next = NULL;
	if (object == NULL)
		return -1;
	switch (bench->phase) {
	case IPC_BENCH_JOB:
		if (bench->mode == IPC_BENCH_SERIAL_2RT && slot->step == 1) {
			const json_t *id = json_object_get(object, "id");

			if (!json_is_true(json_object_get(object, "ok")) || !json_is_integer(id)) {
				ipc_bench_print_reply("submit failed", object);
				break;
			}
			slot->job_id = (uint64_t)json_integer_value(id);
			*next = ipc_bench_format("{\"op\":\"result\",\"id\":%" PRIu64
						 ",\"timeout\":" IPC_BENCH_WAIT_TEXT "}",
						 slot->job_id);
			rv = *next == NULL ? -1 : 0;
			break;
		}
		rv = ipc_bench_check_done(object, slot->index, true);
		break;
	case IPC_BENCH_EACH:
		rv = ipc_bench_check_done(object, slot->index, true);
		break;
	default:
		rv = ipc_bench_batch_reply(bench, slot->index, object);
		break;
	}
	json_decref(object);
	return rv;
}

static const struct driver_ops ipc_bench_raw_ops = {.start = ipc_bench_raw_start,
						    .reply = ipc_bench_raw_reply};

/* One request with a blocking round trip on a fresh context; *reply: new reference. */
static int ipc_bench_raw_call(nng_socket socket, const char *text, size_t length, json_t **reply)
{
	nng_ctx context;
	nng_aio *aio = NULL;
	nng_msg *message = driver_message(text, length);
	int rv;

	if (message == NULL)
		return -1;
	if ((rv = nng_ctx_open(&context, socket)) != 0)
		goto fail_context;
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0)
		goto fail_aio;
	nng_aio_set_timeout(aio, (IPC_BENCH_WAIT_SECONDS + 5) * 1000);
	nng_aio_set_msg(aio, message);
	nng_ctx_send(context, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto fail_send;
	message = NULL;
	nng_ctx_recv(context, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0)
		goto fail_send;
	message = nng_aio_get_msg(aio);
	*reply = ipc_bench_parse(message);
	nng_msg_free(message);
	nng_aio_free(aio);
	nng_ctx_close(context);
	return *reply == NULL ? -1 : 0;
fail_send:
	nng_aio_free(aio);
fail_aio:
	nng_ctx_close(context);
fail_context:
	nng_msg_free(message);
	fprintf(stderr, "request failed: %s\n", nng_strerror(rv));
	return -1;
}

/* ------------------------------------------------------------------ libweft */

/* What a thread of driver_run_threads keeps between its calls; owned by the thread. */
struct ipc_bench_thread {
	weft_job_spec *spec;   /* serial modes: reused with new arguments for every job */
	weft_job_spec **specs; /* batch submit: one per job of a batch */
	size_t spec_count;
};

static void ipc_bench_print_weft_error(const char *call)
{
	const weft_error_info *error = weft_last_error();

	fprintf(stderr, "%s failed: %s (%s)\n", call, error->message, weft_error_code(error->code));
}

static int ipc_bench_set_value(weft_job_spec *spec, uint64_t value)
{
	json_t *args = json_pack("{s:I}", "value", (json_int_t)value);
	int rv = args == NULL ? WEFT_ENOMEM : weft_job_spec_set_args(spec, args);

	json_decref(args);
	if (rv != WEFT_OK) {
		ipc_bench_print_weft_error("weft_job_spec_set_args");
		return -1;
	}
	return 0;
}

static int ipc_bench_check_outcome(const weft_outcome *outcome, uint64_t value)
{
	if (outcome->state == WEFT_STATE_DONE && json_is_integer(outcome->result) &&
	    (uint64_t)json_integer_value(outcome->result) == value)
		return 0;
	fprintf(stderr, "job %" PRIu64 " (value %" PRIu64 ") ended %s, not done with its value\n",
		outcome->id, value, weft_state_name(outcome->state));
	return -1;
}

static int ipc_bench_weft_job(struct ipc_bench *bench, struct ipc_bench_thread *thread,
			      uint64_t index)
{
	weft_outcome *outcome = NULL;
	uint64_t id;
	int rv;

	if (thread->spec == NULL && weft_job_spec_new("echo", &thread->spec) != WEFT_OK) {
		ipc_bench_print_weft_error("weft_job_spec_new");
		return -1;
	}
	if (ipc_bench_set_value(thread->spec, index) != 0)
		return -1;
	if (bench->mode == IPC_BENCH_SERIAL) {
		if (weft_submit_wait(bench->client, thread->spec, IPC_BENCH_WAIT_SECONDS, &outcome) !=
		    WEFT_OK) {
			ipc_bench_print_weft_error("weft_submit_wait");
			return -1;
		}
	} else {
		if (weft_submit(bench->client, thread->spec, &id) != WEFT_OK) {
			ipc_bench_print_weft_error("weft_submit");
			return -1;
		}
		if (weft_result(bench->client, id, IPC_BENCH_WAIT_SECONDS, &outcome) != WEFT_OK) {
			ipc_bench_print_weft_error("weft_result");
			return -1;
		}
	}
	rv = ipc_bench_check_outcome(outcome, index);
	weft_outcome_free(outcome);
	return rv;
}

static int ipc_bench_weft_submit_batch(struct ipc_bench *bench, struct ipc_bench_thread *thread,
				       uint64_t index)
{
	uint64_t first;
	uint64_t count;

	ipc_bench_batch_range(bench, index, &first, &count);
	if (thread->specs == NULL) {
		if ((thread->specs = calloc(bench->batch, sizeof(*thread->specs))) == NULL)
			return -1;
		for (; thread->spec_count < bench->batch; thread->spec_count++) {
			if (weft_job_spec_new("echo", &thread->specs[thread->spec_count]) != WEFT_OK) {
				ipc_bench_print_weft_error("weft_job_spec_new");
				return -1;
			}
		}
	}
	for (uint64_t i = 0; i < count; i++)
		if (ipc_bench_set_value(thread->specs[i], first + i) != 0)
			return -1;
	if (weft_submit_batch(bench->client, (const weft_job_spec *const *)thread->specs, count,
			      bench->ids + first) != WEFT_OK) {
		ipc_bench_print_weft_error("weft_submit_batch");
		return -1;
	}
	return 0;
}

static int ipc_bench_weft_call(void *context, void **thread_state, uint64_t index)
{
	struct ipc_bench *bench = context;
	struct ipc_bench_thread *thread = *thread_state;
	weft_outcome *outcome = NULL;
	json_t *reply = NULL;
	char *text;
	size_t length;
	int rv;

	if (thread == NULL) {
		if ((thread = calloc(1, sizeof(*thread))) == NULL)
			return -1;
		*thread_state = thread;
	}
	switch (bench->phase) {
	case IPC_BENCH_JOB:
		return ipc_bench_weft_job(bench, thread, index);
	case IPC_BENCH_SUBMIT:
		return ipc_bench_weft_submit_batch(bench, thread, index);
	case IPC_BENCH_EACH:
		if (weft_result(bench->client, bench->ids[index], IPC_BENCH_WAIT_SECONDS, &outcome) !=
		    WEFT_OK) {
			ipc_bench_print_weft_error("weft_result");
			return -1;
		}
		rv = ipc_bench_check_outcome(outcome, index);
		weft_outcome_free(outcome);
		return rv;
	default:
		/* libweft has no call for `result` with ids; weft_request_bytes sends it. */
		if ((text = ipc_bench_batch_text(bench, index, &length)) == NULL)
			return -1;
		rv = weft_request_bytes(bench->client, text, length, IPC_BENCH_WAIT_SECONDS, &reply);
		free(text);
		if (rv != WEFT_OK) {
			ipc_bench_print_weft_error("weft_request_bytes");
			return -1;
		}
		rv = ipc_bench_batch_reply(bench, index, reply);
		json_decref(reply);
		return rv;
	}
}

static void ipc_bench_weft_thread_done(void *context, void *thread_state)
{
	struct ipc_bench_thread *thread = thread_state;

	(void)context;
	if (thread == NULL)
		return;
	weft_job_spec_free(thread->spec);
	for (size_t i = 0; i < thread->spec_count; i++)
		weft_job_spec_free(thread->specs[i]);
	free(thread->specs);
	free(thread);
}

static const struct driver_calls ipc_bench_weft_calls = {.call = ipc_bench_weft_call,
							 .thread_done =
								 ipc_bench_weft_thread_done};

/* ------------------------------------------------------------------- batch */

/* Runs count operations of one phase with inflight in flight; all must complete. */
static int ipc_bench_run_phase(struct ipc_bench *bench, nng_socket socket, bool raw,
			       enum ipc_bench_phase phase, uint64_t count, unsigned inflight,
			       const struct driver_options *options, uint64_t *finished_at)
{
	struct driver_options run = *options;
	uint64_t completed = 0;
	double seconds;
	int rv;

	bench->phase = phase;
	run.count = count;
	run.inflight = inflight;
	rv = raw ? driver_run(socket, &ipc_bench_raw_ops, bench, &run, NULL, &completed, &seconds)
		 : driver_run_threads(&ipc_bench_weft_calls, bench, &run, NULL, &completed, &seconds);
	if (rv != 0)
		return -1;
	if (completed != count) {
		fprintf(stderr, "only %" PRIu64 " of %" PRIu64 " operations finished in %.0f s\n",
			completed, count, options->seconds);
		return -1;
	}
	*finished_at = measure_now();
	return 0;
}

static int ipc_bench_run_batch(struct ipc_bench *bench, nng_socket socket, bool raw,
			       unsigned batch_inflight, const struct driver_options *options,
			       pid_t server_pid, const char *name, const char *impl)
{
	uint64_t batches = (bench->jobs + bench->batch - 1) / bench->batch;
	uint64_t started;
	uint64_t submitted;
	uint64_t waited;
	uint64_t finished;
	int rv = -1;

	if ((bench->ids = calloc(bench->jobs, sizeof(*bench->ids))) == NULL) {
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	started = measure_now();
	if (ipc_bench_run_phase(bench, socket, raw, IPC_BENCH_SUBMIT, batches, batch_inflight,
				options, &submitted) != 0)
		goto done;
	if (!bench->collect_each) {
		if (ipc_bench_run_phase(bench, socket, raw, IPC_BENCH_COLLECT, batches, batch_inflight,
					options, &finished) != 0)
			goto done;
		printf("%s %s phases: submit %.3f s, results %.3f s\n", name, impl,
		       (double)(submitted - started) / 1e9, (double)(finished - submitted) / 1e9);
	} else {
		if (ipc_bench_run_phase(bench, socket, raw, IPC_BENCH_WAIT, batches, batch_inflight,
					options, &waited) != 0 ||
		    ipc_bench_run_phase(bench, socket, raw, IPC_BENCH_EACH, bench->jobs,
					options->inflight, options, &finished) != 0)
			goto done;
		printf("%s %s phases: submit %.3f s, wait %.3f s, %" PRIu64 " results %.3f s\n", name,
		       impl, (double)(submitted - started) / 1e9, (double)(waited - submitted) / 1e9,
		       bench->jobs, (double)(finished - waited) / 1e9);
	}
	measure_print(NULL, name, impl, bench->jobs, (double)(finished - started) / 1e9, server_pid);
	rv = 0;
done:
	free(bench->ids);
	bench->ids = NULL;
	return rv;
}

/* -------------------------------------------------------------------- main */

static int ipc_bench_probe(const char *url, double seconds)
{
	uint64_t deadline = measure_now() + (uint64_t)(seconds * 1e9);

	do {
		nng_socket socket;
		json_t *reply = NULL;
		bool ok = false;

		if (nng_req0_open(&socket) != 0)
			return 1;
		nng_socket_set_ms(socket, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		if (nng_dial(socket, url, NULL, 0) == 0 &&
		    ipc_bench_raw_call(socket, "{\"op\":\"ping\"}", 13, &reply) == 0)
			ok = json_is_true(json_object_get(reply, "ok"));
		json_decref(reply);
		nng_close(socket);
		if (ok)
			return 0;
		nng_msleep(20);
	} while (measure_now() < deadline);
	fprintf(stderr, "weftd did not answer a ping at %s within %.1f s\n", url, seconds);
	return 1;
}

static void ipc_bench_usage(FILE *stream)
{
	fprintf(stream,
		"usage: weft_ipc_bench --url URL [options]\n"
		"  --probe           wait up to --seconds for weftd to answer a ping, then exit\n"
		"  --mode MODE       serial (submit with wait), serial-2rt (submit, then\n"
		"                    result) or batch (default serial)\n"
		"  --via WAY         libweft (threads making blocking calls, default) or raw\n"
		"                    (the protocol on a bare nng socket, aios on callbacks)\n"
		"  --inflight N      jobs (batch: result fetches) in flight (default 1)\n"
		"  --count N         measured jobs at most, serial modes (default 20000)\n"
		"  --seconds S       stop starting jobs after S seconds (default 10)\n"
		"  --warmup N        unmeasured jobs first, serial modes (default 1000)\n"
		"  --jobs N          batch: jobs in all (default 100000)\n"
		"  --batch N         batch: jobs per submit and per collecting request (default 1000)\n"
		"  --collect HOW     batch: results (one `result` with the batch's ids, default)\n"
		"                    or each (`wait` ALL_COMPLETED, then one `result` per job)\n"
		"  --batch-inflight N  batch: batch requests in flight (default 1)\n"
		"  --bench NAME      name in the RESULT line (default by mode)\n"
		"  --impl NAME       implementation name in the RESULT line (default weft)\n"
		"  --server-pid PID  report the daemon's peak resident set\n");
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"url", required_argument, NULL, 'u'},	    {"probe", no_argument, NULL, 'r'},
		{"mode", required_argument, NULL, 'm'},	    {"via", required_argument, NULL, 'v'},
		{"inflight", required_argument, NULL, 'f'}, {"count", required_argument, NULL, 'n'},
		{"seconds", required_argument, NULL, 's'},  {"warmup", required_argument, NULL, 'w'},
		{"jobs", required_argument, NULL, 'j'},	    {"batch", required_argument, NULL, 'B'},
		{"collect", required_argument, NULL, 'c'},
		{"batch-inflight", required_argument, NULL, 'I'},
		{"bench", required_argument, NULL, 'b'},    {"impl", required_argument, NULL, 'i'},
		{"server-pid", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	struct ipc_bench bench = {.mode = IPC_BENCH_SERIAL, .jobs = 100000, .batch = 1000};
	struct driver_options run = {.request_seconds = IPC_BENCH_WAIT_SECONDS + 5};
	const char *url = NULL;
	const char *name = NULL;
	const char *impl = "weft";
	struct measure_options common = {.inflight = 1, .count = 20000, .seconds = 10,
					 .warmup = 1000};
	unsigned batch_inflight = 1;
	uint64_t value;
	uint64_t completed;
	double seconds;
	bool probe = false;
	bool raw = false;
	struct measure measure = {.samples = NULL};
	nng_socket socket = NNG_SOCKET_INITIALIZER;
	int option;
	int rv = 1;

	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (option) {
		case 'u': url = optarg; break;
		case 'r': probe = true; break;
		case 'm':
			if (strcmp(optarg, "serial") == 0)
				bench.mode = IPC_BENCH_SERIAL;
			else if (strcmp(optarg, "serial-2rt") == 0)
				bench.mode = IPC_BENCH_SERIAL_2RT;
			else if (strcmp(optarg, "batch") == 0)
				bench.mode = IPC_BENCH_BATCH;
			else {
				fprintf(stderr, "--mode is serial, serial-2rt or batch, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'v':
			if (strcmp(optarg, "libweft") != 0 && strcmp(optarg, "raw") != 0) {
				fprintf(stderr, "--via is libweft or raw, not '%s'\n", optarg);
				return 2;
			}
			raw = strcmp(optarg, "raw") == 0;
			break;
		case 'j':
			if (measure_parse_count("--jobs", optarg, &bench.jobs) != 0)
				return 2;
			break;
		case 'B':
			if (measure_parse_count("--batch", optarg, &bench.batch) != 0 ||
			    bench.batch > 100000) {
				fprintf(stderr, "--batch takes 1 to 100000 jobs\n");
				return 2;
			}
			break;
		case 'c':
			if (strcmp(optarg, "results") != 0 && strcmp(optarg, "each") != 0) {
				fprintf(stderr, "--collect is results or each, not '%s'\n", optarg);
				return 2;
			}
			bench.collect_each = strcmp(optarg, "each") == 0;
			break;
		case 'I':
			if (measure_parse_count("--batch-inflight", optarg, &value) != 0 || value > 1024)
				return 2;
			batch_inflight = (unsigned)value;
			break;
		case 'b': name = optarg; break;
		case 'i': impl = optarg; break;
		case 'h': ipc_bench_usage(stdout); return 0;
		default: {
			int parsed = measure_parse_option(option, optarg, &common);
			if (parsed < 0)
				return 2;
			if (parsed == 0) {
				ipc_bench_usage(stderr);
				return 2;
			}
		}
		}
	}
	run.inflight = (unsigned)common.inflight;
	run.count = common.count;
	run.seconds = common.seconds;
	if (url == NULL || optind != argc) {
		ipc_bench_usage(stderr);
		return 2;
	}
	if (probe)
		return ipc_bench_probe(url, run.seconds);
	if (name == NULL)
		name = bench.mode == IPC_BENCH_BATCH ? "ipc_batch"
		       : run.inflight > 1	     ? "ipc_inflight"
						     : "ipc_serial";

	if (raw) {
		if (driver_dial(url, &socket) != 0)
			return 1;
	} else if (weft_connect(url, &bench.client) != WEFT_OK) {
		ipc_bench_print_weft_error("weft_connect");
		return 1;
	}

	if (bench.mode == IPC_BENCH_BATCH) {
		rv = ipc_bench_run_batch(&bench, socket, raw, batch_inflight, &run, (pid_t)common.server_pid,
					 name, impl) == 0
			     ? 0
			     : 1;
		goto done;
	}
	if (measure_init(&measure, run.count) != 0) {
		fprintf(stderr, "out of memory for %" PRIu64 " samples\n", run.count);
		goto done;
	}
	struct driver_options warm = run;

	warm.count = common.warmup;
	if (raw) {
		if (driver_run(socket, &ipc_bench_raw_ops, &bench, &warm, NULL, &completed, &seconds) != 0 ||
		    driver_run(socket, &ipc_bench_raw_ops, &bench, &run, &measure, &completed, &seconds) != 0)
			goto done;
	} else {
		if (driver_run_threads(&ipc_bench_weft_calls, &bench, &warm, NULL, &completed, &seconds) != 0 ||
		    driver_run_threads(&ipc_bench_weft_calls, &bench, &run, &measure, &completed, &seconds) != 0)
			goto done;
	}
	measure_print(&measure, name, impl, completed, seconds, (pid_t)common.server_pid);
	rv = 0;
done:
	measure_fini(&measure);
	if (raw)
		nng_close(socket);
	weft_close(bench.client);
	return rv;
}

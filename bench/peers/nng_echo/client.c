/*
 * The floor's client: round trips of a fixed-size message through
 * nng_echo_server, driven by the same machinery (bench/ipc/driver.h) as weft's
 * benchmark, one at a time or many in flight. Each reply must be the request.
 *
 * Two ways to keep requests in flight, matching the two ways weft is driven:
 *   default:   N contexts with aios chained by callbacks on one socket;
 *   --sync:    N threads, each making blocking round trips on its own context
 *              (send, then nng_aio_wait), as a blocking client library does.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/ipc/driver.h"
#include "bench/ipc/measure.h"

#define CLIENT_MAX_SIZE 65536

struct client_options {
	size_t size; /* bytes per request, >= 8: the operation's index, then filler */
	nng_socket socket;
};

/* A thread's own context and aio for blocking round trips (--sync). */
struct client_thread {
	nng_ctx context;
	nng_aio *aio;
};

static int client_start(void *context, struct driver_slot *slot, nng_msg **request)
{
	const struct client_options *options = context;
	nng_msg *message;

	if (nng_msg_alloc(&message, options->size) != 0) {
		fprintf(stderr, "out of memory\n");
		return -1;
	}
	memset(nng_msg_body(message), 'x', options->size);
	memcpy(nng_msg_body(message), &slot->index, sizeof(slot->index));
	*request = message;
	return 0;
}

static int client_reply(void *context, struct driver_slot *slot, nng_msg *reply, nng_msg **next)
{
	const struct client_options *options = context;
	uint64_t index;

	if (nng_msg_len(reply) != options->size) {
		fprintf(stderr, "reply of %zu bytes to a request of %zu\n", nng_msg_len(reply),
			options->size);
		return -1;
	}
	memcpy(&index, nng_msg_body(reply), sizeof(index));
	if (index != slot->index) {
		fprintf(stderr, "reply to request %llu carries %llu\n",
			(unsigned long long)slot->index, (unsigned long long)index);
		return -1;
	}
	*next = NULL;
	return 0;
}

static void client_thread_done(void *context, void *thread_state)
{
	struct client_thread *thread = thread_state;

	(void)context;
	if (thread == NULL)
		return;
	nng_aio_free(thread->aio);
	nng_ctx_close(thread->context);
	free(thread);
}

static int client_call(void *context, void **thread_state, uint64_t index)
{
	struct client_options *options = context;
	struct client_thread *thread = *thread_state;
	struct driver_slot slot = {.index = index};
	nng_msg *request;
	nng_msg *reply;
	nng_msg *next;
	int rv;

	if (thread == NULL) {
		if ((thread = calloc(1, sizeof(*thread))) == NULL)
			return -1;
		if (nng_ctx_open(&thread->context, options->socket) != 0) {
			free(thread);
			return -1;
		}
		if (nng_aio_alloc(&thread->aio, NULL, NULL) != 0) {
			nng_ctx_close(thread->context);
			free(thread);
			return -1;
		}
		nng_aio_set_timeout(thread->aio, 10000);
		*thread_state = thread;
	}
	if (client_start(context, &slot, &request) != 0)
		return -1;
	nng_aio_set_msg(thread->aio, request);
	nng_ctx_send(thread->context, thread->aio);
	nng_aio_wait(thread->aio);
	if ((rv = nng_aio_result(thread->aio)) != 0) {
		nng_msg_free(request);
		fprintf(stderr, "send failed: %s\n", nng_strerror(rv));
		return -1;
	}
	nng_ctx_recv(thread->context, thread->aio);
	nng_aio_wait(thread->aio);
	if ((rv = nng_aio_result(thread->aio)) != 0) {
		fprintf(stderr, "receive failed: %s\n", nng_strerror(rv));
		return -1;
	}
	reply = nng_aio_get_msg(thread->aio);
	rv = client_reply(context, &slot, reply, &next);
	nng_msg_free(reply);
	return rv;
}

static void client_usage(FILE *stream)
{
	fprintf(stream,
		"usage: nng_echo_client --url URL [options]\n"
		"  --bench NAME      name in the RESULT line (default ipc_serial)\n"
		"  --impl NAME       implementation name in the RESULT line (default nng)\n"
		"  --inflight N      requests in flight (default 1)\n"
		"  --count N         measured round trips at most (default 20000)\n"
		"  --seconds S       stop starting round trips after S seconds (default 10)\n"
		"  --warmup N        unmeasured round trips first (default 1000)\n"
		"  --size BYTES      request size, 8 to 65536 (default 64)\n"
		"  --sync            N threads making blocking round trips, instead of\n"
		"                    N aios on one thread-free callback chain\n"
		"  --server-pid PID  report the server's peak resident set\n");
}

int main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"url", required_argument, NULL, 'u'},	   {"bench", required_argument, NULL, 'b'},
		{"impl", required_argument, NULL, 'i'},	   {"inflight", required_argument, NULL, 'f'},
		{"count", required_argument, NULL, 'n'},   {"seconds", required_argument, NULL, 's'},
		{"warmup", required_argument, NULL, 'w'},  {"size", required_argument, NULL, 'z'},
		{"server-pid", required_argument, NULL, 'p'}, {"help", no_argument, NULL, 'h'},
		{"sync", no_argument, NULL, 'S'}, {NULL, 0, NULL, 0}};
	static const struct driver_ops ops = {.start = client_start, .reply = client_reply};
	static const struct driver_calls calls = {.call = client_call,
						  .thread_done = client_thread_done};
	struct client_options client = {.size = 64};
	struct driver_options run = {.request_seconds = 10};
	const char *url = NULL;
	const char *bench = "ipc_serial";
	const char *impl = "nng";
	struct measure_options common = {.inflight = 1, .count = 20000, .seconds = 10,
					 .warmup = 1000};
	bool sync = false;
	uint64_t value;
	uint64_t completed;
	double seconds;
	struct measure measure;
	nng_socket socket;
	int option;

	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (option) {
		case 'u': url = optarg; break;
		case 'b': bench = optarg; break;
		case 'i': impl = optarg; break;
		case 'z':
			if (measure_parse_count("--size", optarg, &value) != 0 || value < 8 ||
			    value > CLIENT_MAX_SIZE) {
				fprintf(stderr, "--size takes 8 to %d bytes\n", CLIENT_MAX_SIZE);
				return 2;
			}
			client.size = (size_t)value;
			break;
		case 'S': sync = true; break;
		case 'h': client_usage(stdout); return 0;
		default: {
			int parsed = measure_parse_option(option, optarg, &common);
			if (parsed < 0)
				return 2;
			if (parsed == 0) {
				client_usage(stderr);
				return 2;
			}
		}
		}
	}
	run.inflight = (unsigned)common.inflight;
	run.count = common.count;
	run.seconds = common.seconds;
	if (url == NULL || optind != argc) {
		client_usage(stderr);
		return 2;
	}
	if (measure_init(&measure, run.count) != 0) {
		fprintf(stderr, "out of memory for %llu samples\n", (unsigned long long)run.count);
		return 1;
	}
	if (driver_dial(url, &socket) != 0) {
		measure_fini(&measure);
		return 1;
	}
	client.socket = socket;
	struct driver_options warm = run;
	int failed;

	warm.count = common.warmup;
	if (sync)
		failed = driver_run_threads(&calls, &client, &warm, NULL, &completed, &seconds) != 0 ||
			 driver_run_threads(&calls, &client, &run, &measure, &completed, &seconds) != 0;
	else
		failed = driver_run(socket, &ops, &client, &warm, NULL, &completed, &seconds) != 0 ||
			 driver_run(socket, &ops, &client, &run, &measure, &completed, &seconds) != 0;
	if (failed) {
		nng_close(socket);
		measure_fini(&measure);
		return 1;
	}
	measure_print(&measure, bench, impl, completed, seconds, (pid_t)common.server_pid);
	nng_close(socket);
	measure_fini(&measure);
	return 0;
}

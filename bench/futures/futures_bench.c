/*
 * Issue 5's benchmarks, over the raw protocol (one REQ socket, blocking calls):
 *   chain_build    N jobs, each submitted `after` the one before: submits/s
 *   chain_resolve  the same chain hanging on a bare future, then set: links resolved/s
 *   as_completed   N sleep jobs finishing over about a second, collected with
 *                  as_completed until none is pending: jobs/s of the collection
 * Usage: futures_bench --url URL [--jobs N]
 */
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static nng_socket socket_;

static double now(void)
{
	struct timespec time;
	clock_gettime(CLOCK_MONOTONIC, &time);
	return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

/* One request; exits on a transport failure or an error reply. New reference. */
static json_t *call(const char *text, size_t size)
{
	char *buffer = NULL;
	size_t length = 0;
	int rv = nng_send(socket_, (void *)text, size, 0);
	if (rv == 0)
		rv = nng_recv(socket_, &buffer, &length, NNG_FLAG_ALLOC);
	if (rv != 0) {
		fprintf(stderr, "futures_bench: %s\n", nng_strerror(rv));
		exit(1);
	}
	json_t *reply = json_loadb(buffer, length, 0, NULL);
	nng_free(buffer, length);
	if (reply == NULL || !json_is_true(json_object_get(reply, "ok"))) {
		fprintf(stderr, "futures_bench: error reply to %.200s\n", text);
		exit(1);
	}
	return reply;
}

static long long call_id(const char *text)
{
	json_t *reply = call(text, strlen(text));
	long long id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	return id;
}

static void report(const char *bench, long n, double seconds)
{
	printf("RESULT bench=%s impl=weft n=%ld secs=%.3f rate=%.0f\n", bench, n, seconds,
	       (double)n / seconds);
	fflush(stdout);
}

static void chain(long n)
{
	char request[256];
	long long root = call_id("{\"op\":\"future.new\"}");
	long long previous = root;
	double started = now();
	for (long i = 1; i < n; i++) {
		snprintf(request, sizeof(request),
		         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":%ld},\"after\":[%lld]}",
		         i, previous);
		previous = call_id(request);
	}
	report("chain_build", n - 1, now() - started);
	started = now();
	snprintf(request, sizeof(request), "{\"op\":\"future.set\",\"id\":%lld,\"result\":0}", root);
	json_decref(call(request, strlen(request)));
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld}", previous);
	json_t *reply = call(request, strlen(request));
	if (json_integer_value(json_object_get(reply, "result")) != n - 1) {
		fprintf(stderr, "futures_bench: the chain ended with a wrong result\n");
		exit(1);
	}
	json_decref(reply);
	report("chain_resolve", n - 1, now() - started);
}

static void as_completed(long n)
{
	long long *pending = malloc((size_t)n * sizeof(*pending));
	long count = 0;
	const long batch = 1000;
	size_t capacity = (size_t)batch * 80 + 64;
	char *request = malloc(capacity);
	for (long start = 0; start < n; start += batch) {
		size_t used = (size_t)snprintf(request, capacity, "{\"op\":\"submit\",\"jobs\":[");
		for (long i = start; i < start + batch && i < n; i++)
			used += (size_t)snprintf(request + used, capacity - used,
			                         "%s{\"fn\":\"sleep\",\"args\":{\"seconds\":%.2f}}",
			                         i > start ? "," : "", (double)(i % 100) / 100.0);
		used += (size_t)snprintf(request + used, capacity - used, "]}");
		json_t *reply = call(request, used);
		json_t *ids = json_object_get(reply, "ids");
		for (size_t i = 0; i < json_array_size(ids); i++)
			pending[count++] = json_integer_value(json_array_get(ids, i));
		json_decref(reply);
	}
	free(request);
	capacity = (size_t)n * 24 + 64;
	request = malloc(capacity);
	double started = now();
	long yielded = 0, calls = 0;
	while (count > 0) {
		size_t used = (size_t)snprintf(request, capacity, "{\"op\":\"as_completed\",\"ids\":[");
		for (long i = 0; i < count; i++)
			used += (size_t)snprintf(request + used, capacity - used, "%s%lld", i ? "," : "",
			                         pending[i]);
		used += (size_t)snprintf(request + used, capacity - used, "],\"timeout\":30}");
		json_t *reply = call(request, used);
		yielded += (long)json_array_size(json_object_get(reply, "done"));
		json_t *still = json_object_get(reply, "pending");
		count = (long)json_array_size(still);
		for (long i = 0; i < count; i++)
			pending[i] = json_integer_value(json_array_get(still, (size_t)i));
		json_decref(reply);
		calls++;
	}
	if (yielded != n) {
		fprintf(stderr, "futures_bench: as_completed yielded %ld of %ld\n", yielded, n);
		exit(1);
	}
	report("as_completed", n, now() - started);
	fprintf(stderr, "futures_bench: as_completed took %ld calls\n", calls);
	free(request);
	free(pending);
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	long jobs = 100000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--url") == 0)
			url = argv[i + 1];
		else if (strcmp(argv[i], "--jobs") == 0)
			jobs = atol(argv[i + 1]);
	}
	if (url == NULL || jobs < 2) {
		fprintf(stderr, "usage: futures_bench --url URL [--jobs N]\n");
		return 2;
	}
	if (nng_req0_open(&socket_) != 0 ||
	    nng_socket_set_ms(socket_, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE) != 0 ||
	    nng_socket_set_size(socket_, NNG_OPT_RECVMAXSZ, 64 << 20) != 0 ||
	    nng_dial(socket_, url, NULL, 0) != 0) {
		fprintf(stderr, "futures_bench: cannot connect to %s\n", url);
		return 1;
	}
	chain(jobs);
	as_completed(jobs);
	nng_close(socket_);
	return 0;
}

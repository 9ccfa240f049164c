/*
 * The floor weft is measured against: a bare nng REP server that sends every
 * request back unchanged, over the same transport weftd uses.
 *
 * Two ways to serve, both the plainest nng allows:
 *   --contexts 0 (default): one thread in a blocking receive/send loop on the
 *                           socket itself, one request at a time;
 *   --contexts N:           N REP contexts, each with an aio whose callback
 *                           echoes on nng's own threads (many requests at once).
 * The suite runs the floor with both and reports the faster, so the floor is the
 * best bare nng does here.
 *
 * Runs until SIGTERM or SIGINT.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t server_stopping;

static void server_on_signal(int signal_number)
{
	(void)signal_number;
	server_stopping = 1;
}

/* One REP context and its aio; touched only by its own callback. */
struct server_lane {
	nng_ctx context;
	nng_aio *aio;
	bool sending;
};

static void server_lane_callback(void *argument)
{
	struct server_lane *lane = argument;
	int rv = nng_aio_result(lane->aio);

	if (lane->sending) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(lane->aio));
		lane->sending = false;
		nng_ctx_recv(lane->context, lane->aio);
		return;
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (rv != 0) {
		nng_ctx_recv(lane->context, lane->aio);
		return;
	}
	/* The received message becomes the reply as it is. */
	lane->sending = true;
	nng_aio_set_msg(lane->aio, nng_aio_get_msg(lane->aio));
	nng_ctx_send(lane->context, lane->aio);
}

static int server_serve_blocking(nng_socket socket)
{
	while (!server_stopping) {
		nng_msg *message;
		int rv = nng_recvmsg(socket, &message, 0);

		if (rv == NNG_ETIMEDOUT)
			continue;
		if (rv != 0) {
			if (server_stopping || rv == NNG_ECLOSED)
				break;
			fprintf(stderr, "nng_echo_server: receive: %s\n", nng_strerror(rv));
			continue;
		}
		if ((rv = nng_sendmsg(socket, message, 0)) != 0) {
			nng_msg_free(message);
			if (rv != NNG_ETIMEDOUT)
				fprintf(stderr, "nng_echo_server: send: %s\n", nng_strerror(rv));
		}
	}
	return 0;
}

/* Signals are blocked in every thread (see main), so sigsuspend is the one place
 * they arrive and none can slip in between the check and the sleep. */
static int server_serve_contexts(nng_socket socket, unsigned count, const sigset_t *unblocked)
{
	struct server_lane *lanes = calloc(count, sizeof(*lanes));
	unsigned opened = 0;
	int rv = 1;

	if (lanes == NULL) {
		fprintf(stderr, "nng_echo_server: out of memory\n");
		return 1;
	}
	for (; opened < count; opened++) {
		if (nng_ctx_open(&lanes[opened].context, socket) != 0)
			goto fail;
		if (nng_aio_alloc(&lanes[opened].aio, server_lane_callback, &lanes[opened]) != 0) {
			nng_ctx_close(lanes[opened].context);
			goto fail;
		}
	}
	for (unsigned i = 0; i < count; i++)
		nng_ctx_recv(lanes[i].context, lanes[i].aio);
	while (!server_stopping)
		sigsuspend(unblocked);
	rv = 0;
fail:
	if (rv != 0)
		fprintf(stderr, "nng_echo_server: cannot set up %u contexts\n", count);
	for (unsigned i = 0; i < opened; i++)
		nng_aio_stop(lanes[i].aio);
	for (unsigned i = 0; i < opened; i++) {
		nng_aio_free(lanes[i].aio);
		nng_ctx_close(lanes[i].context);
	}
	free(lanes);
	return rv;
}

static void server_usage(FILE *stream)
{
	fprintf(stream, "usage: nng_echo_server --listen URL [--contexts N]\n"
			"  Echoes every request back; --contexts 0 (default) serves with one\n"
			"  blocking loop, N > 0 with N asynchronous REP contexts.\n");
}

int main(int argc, char **argv)
{
	const char *url = NULL;
	unsigned long contexts = 0;
	struct sigaction action = {.sa_handler = server_on_signal};
	sigset_t unblocked;
	nng_socket socket;
	int rv;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
			url = argv[++i];
		} else if (strcmp(argv[i], "--contexts") == 0 && i + 1 < argc) {
			char *end;

			contexts = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || contexts > 4096) {
				fprintf(stderr, "--contexts takes a number from 0 to 4096\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--help") == 0) {
			server_usage(stdout);
			return 0;
		} else {
			server_usage(stderr);
			return 2;
		}
	}
	if (url == NULL) {
		server_usage(stderr);
		return 2;
	}
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	if (contexts > 0) {
		/* Before nng starts its threads, so that they inherit the mask. */
		sigset_t stop_signals;

		sigemptyset(&stop_signals);
		sigaddset(&stop_signals, SIGTERM);
		sigaddset(&stop_signals, SIGINT);
		pthread_sigmask(SIG_BLOCK, &stop_signals, &unblocked);
	}

	if ((rv = nng_rep0_open(&socket)) != 0) {
		fprintf(stderr, "nng_echo_server: cannot open a REP socket: %s\n", nng_strerror(rv));
		return 1;
	}
	/* A bounded receive lets the blocking loop notice a signal. */
	nng_socket_set_ms(socket, NNG_OPT_RECVTIMEO, 200);
	if ((rv = nng_listen(socket, url, NULL, 0)) != 0) {
		fprintf(stderr, "nng_echo_server: cannot listen on %s: %s\n", url, nng_strerror(rv));
		nng_close(socket);
		return 1;
	}
	rv = contexts == 0 ? server_serve_blocking(socket)
			   : server_serve_contexts(socket, (unsigned)contexts, &unblocked);
	nng_close(socket);
	return rv;
}

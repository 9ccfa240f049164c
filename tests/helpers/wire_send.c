/*
 * wire_send URL JSON: sends one request over a fresh nng REQ connection and
 * prints the reply on stdout. Tests run it as throwaway users, so that the
 * daemon sees exactly that user's credentials (tests/check_trust.c).
 * Exit status: 0 when a reply came, 1 when none did within 10 s, 2 on usage.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: wire_send URL JSON\n");
		return 2;
	}
	nng_socket socket;
	if (nng_req0_open(&socket) != 0)
		return 1;
	nng_socket_set_ms(socket, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(socket, NNG_OPT_RECVTIMEO, 10000);
	nng_socket_set_ms(socket, NNG_OPT_SENDTIMEO, 10000);
	char *reply = NULL;
	size_t size = 0;
	int rv = nng_dial(socket, argv[1], NULL, 0);
	if (rv == 0)
		rv = nng_send(socket, argv[2], strlen(argv[2]), 0);
	if (rv == 0)
		rv = nng_recv(socket, &reply, &size, NNG_FLAG_ALLOC);
	if (rv != 0) {
		fprintf(stderr, "wire_send: %s\n", nng_strerror(rv));
		nng_close(socket);
		return 1;
	}
	fwrite(reply, 1, size, stdout);
	nng_free(reply, size);
	nng_close(socket);
	return 0;
}

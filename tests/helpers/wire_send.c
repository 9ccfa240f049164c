/*
 * wire_send URL JSON: sends one request over a fresh nng REQ connection and
 * prints the reply on stdout. Tests run it as throwaway users, so that the
 * daemon sees exactly that user's credentials (tests/check_trust.c). For a
 * tls+tcp:// URL it shows the certificate in WEFT_TLS_CERT/WEFT_TLS_KEY (none
 * when they are unset) and checks weftd's against WEFT_TLS_CA.
 * Exit status: 0 when a reply came, 1 when none did within 10 s (or
 * WIRE_SEND_TIMEOUT_MS, for long polls), 2 on usage.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/tls.h"

/* Our side of a tls+tcp:// connection; returns 0 or an nng error. */
static int tls_setup(nng_dialer dialer)
{
	const char *cert = getenv("WEFT_TLS_CERT"), *key = getenv("WEFT_TLS_KEY"),
		   *ca = getenv("WEFT_TLS_CA");
	nng_tls_config *config;
	char message[512];
	int rv;
	if (cert != NULL && key != NULL) {
		if (proto_tls_config(false, cert, key, ca, "localhost", &config, message,
		                     sizeof(message)) != 0) {
			fprintf(stderr, "wire_send: %s\n", message);
			return NNG_EINVAL;
		}
	} else if ((rv = nng_tls_config_alloc(&config, NNG_TLS_MODE_CLIENT)) != 0 ||
	           (rv = nng_tls_config_ca_file(config, ca)) != 0 ||
	           (rv = nng_tls_config_server_name(config, "localhost")) != 0) {
		return rv;
	}
	rv = nng_dialer_set_ptr(dialer, NNG_OPT_TLS_CONFIG, config);
	nng_tls_config_free(config);
	return rv;
}

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
	const char *limit = getenv("WIRE_SEND_TIMEOUT_MS");
	nng_socket_set_ms(socket, NNG_OPT_RECVTIMEO, limit != NULL ? atoi(limit) : 10000);
	nng_socket_set_ms(socket, NNG_OPT_SENDTIMEO, 10000);
	char *reply = NULL;
	size_t size = 0;
	nng_dialer dialer;
	int rv = nng_dialer_create(&dialer, socket, argv[1]);
	if (rv == 0 && proto_tls_url(argv[1]))
		rv = tls_setup(dialer);
	if (rv == 0)
		rv = nng_dialer_start(dialer, 0);
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

/*
 * A small HTTP server for the http.* tests and benchmark (libevent's evhttp
 * on a thread of its own, on 127.0.0.1 and a port the kernel picks):
 *   /hello             200 "hello", header X-Test: yes
 *   /slow?ms=N         200 "slow" after N ms; a client that hangs up first is
 *                      counted in `aborted`
 *   /hold?until=N      200 "held" once N /hold requests wait at once (counted
 *                      in slow_in_flight meanwhile)
 *   /redirect          302 to /hello;  /redirect-file  302 to file:///etc/passwd
 *   /loop              302 to /loop
 *   /large?bytes=N     200, N bytes of 'x'
 *   /binary            200, 256 bytes 0..255 (not UTF-8)
 *   /status?code=N     N, body "status N"
 *   /echo              200, body "METHOD BODY X-Echo-header"
 *   /peer              200, body: the client's port (the same port twice: a
 *                      reused connection)
 * Counters are read from any thread.
 */
#ifndef TESTS_HTTP_SERVER_H
#define TESTS_HTTP_SERVER_H

#include <stdatomic.h>

struct http_server;

/* Starts the server; fails the test when it cannot. */
struct http_server *http_server_start(void);
/* The same over TLS with this certificate chain and key (PEM files). */
struct http_server *http_server_start_tls(const char *certificate, const char *key);
void http_server_stop(struct http_server *server);

int http_server_port(const struct http_server *server);
/* "http://127.0.0.1:PORT" (https:// for TLS) into buffer. */
const char *http_server_url(const struct http_server *server, char *buffer, unsigned size);

/* Slow requests waiting for their answer now, and ever hung up on by the client. */
int http_server_slow_in_flight(struct http_server *server);
int http_server_aborted(struct http_server *server);
/* /hold requests answered so far. */
int http_server_released(struct http_server *server);
/* Connections accepted so far. */
int http_server_connections(struct http_server *server);

#endif

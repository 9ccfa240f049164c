/* The tests' HTTP server; see http_server.h. Everything but the counters and
 * start/stop belongs to the server's thread. */
#include "tests/http_server.h"

#include <check.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A connection the server has seen, and the slow request it holds, if any. */
struct known {
	struct evhttp_connection *connection;
	struct http_server *server;
	struct evhttp_request *slow; /* waiting for its timer, or NULL */
	struct event *timer;
	struct event *peek;          /* watches for the client hanging up meanwhile */
	struct known *next;
};

struct http_server {
	struct event_base *base;
	struct evhttp *http;
	pthread_t thread;
	int port;
	struct known *known; /* the server's thread */
	struct evhttp_request **held; /* /hold requests waiting for the others */
	int held_count;
	/* Written by the server's thread, read by the test's: atomics. */
	atomic_int slow_in_flight;
	atomic_int aborted;
	atomic_int connections;
	atomic_int released;
	SSL_CTX *tls; /* NULL: plain HTTP */
};

static long query_number(struct evhttp_request *request, const char *name, long fallback)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(request);
	const char *query = evhttp_uri_get_query(uri);
	struct evkeyvalq fields;
	long value = fallback;
	if (query != NULL && evhttp_parse_query_str(query, &fields) == 0) {
		const char *text = evhttp_find_header(&fields, name);
		if (text != NULL)
			value = strtol(text, NULL, 10);
		evhttp_clear_headers(&fields);
	}
	return value;
}

static void reply_text(struct evhttp_request *request, int code, const char *text, size_t length)
{
	struct evbuffer *body = evbuffer_new();
	evbuffer_add(body, text, length);
	evhttp_send_reply(request, code, code == 200 ? "OK" : "Status", body);
	evbuffer_free(body);
}

static void on_close(struct evhttp_connection *connection, void *argument)
{
	struct known *known = argument;
	(void)connection;
	struct http_server *server = known->server;
	if (known->slow != NULL) {
		atomic_fetch_add(&server->aborted, 1);
		atomic_fetch_sub(&server->slow_in_flight, 1);
		event_free(known->timer);
		event_free(known->peek);
		known->slow = NULL;
	}
	for (struct known **link = &server->known; *link != NULL; link = &(*link)->next)
		if (*link == known) {
			*link = known->next;
			break;
		}
	free(known);
}

static struct known *know(struct http_server *server, struct evhttp_request *request)
{
	struct evhttp_connection *connection = evhttp_request_get_connection(request);
	for (struct known *known = server->known; known != NULL; known = known->next)
		if (known->connection == connection)
			return known;
	struct known *known = calloc(1, sizeof(*known));
	known->connection = connection;
	known->server = server;
	known->next = server->known;
	server->known = known;
	atomic_fetch_add(&server->connections, 1);
	evhttp_connection_set_closecb(connection, on_close, known);
	return known;
}

static void on_slow_timer(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct known *known = argument;
	struct evhttp_request *request = known->slow;
	known->slow = NULL;
	event_free(known->timer);
	event_free(known->peek);
	known->timer = NULL;
	known->peek = NULL;
	atomic_fetch_sub(&known->server->slow_in_flight, 1);
	reply_text(request, 200, "slow", 4);
}

/* The client of a slow request hung up (evhttp reads nothing more from a
 * connection while a request on it waits for its reply, so it would not
 * notice): the connection goes, and on_close counts it. */
static void on_peek(evutil_socket_t fd, short events, void *argument)
{
	(void)events;
	struct known *known = argument;
	char byte;
	if (recv(fd, &byte, 1, MSG_PEEK) > 0)
		return;
	event_del(known->peek);
	evhttp_connection_free(known->connection);
}

static void on_request(struct evhttp_request *request, void *argument)
{
	struct http_server *server = argument;
	struct known *known = know(server, request);
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(request));
	struct evkeyvalq *out = evhttp_request_get_output_headers(request);
	char text[512];
	if (path == NULL)
		path = "/";
	if (strcmp(path, "/hello") == 0) {
		evhttp_add_header(out, "X-Test", "yes");
		reply_text(request, 200, "hello", 5);
	} else if (strcmp(path, "/slow") == 0) {
		long ms = query_number(request, "ms", 100);
		struct timeval delay = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
		known->slow = request;
		known->timer = evtimer_new(server->base, on_slow_timer, known);
		evtimer_add(known->timer, &delay);
		evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(known->connection));
		known->peek = event_new(server->base, fd, EV_READ | EV_PERSIST, on_peek, known);
		event_add(known->peek, NULL);
		atomic_fetch_add(&server->slow_in_flight, 1);
	} else if (strcmp(path, "/hold") == 0) {
		int until = (int)query_number(request, "until", 1);
		server->held = realloc(server->held, sizeof(*server->held) * (size_t)(server->held_count + 1));
		server->held[server->held_count++] = request;
		atomic_fetch_add(&server->slow_in_flight, 1);
		if (server->held_count >= until) {
			for (int i = 0; i < server->held_count; i++)
				reply_text(server->held[i], 200, "held", 4);
			atomic_fetch_sub(&server->slow_in_flight, server->held_count);
			atomic_fetch_add(&server->released, server->held_count);
			server->held_count = 0;
		}
	} else if (strcmp(path, "/redirect") == 0) {
		evhttp_add_header(out, "Location", "/hello");
		reply_text(request, 302, "", 0);
	} else if (strcmp(path, "/redirect-file") == 0) {
		evhttp_add_header(out, "Location", "file:///etc/passwd");
		reply_text(request, 302, "", 0);
	} else if (strcmp(path, "/loop") == 0) {
		evhttp_add_header(out, "Location", "/loop");
		reply_text(request, 302, "", 0);
	} else if (strcmp(path, "/large") == 0) {
		long bytes = query_number(request, "bytes", 1000);
		char *data = malloc((size_t)bytes + 1);
		memset(data, 'x', (size_t)bytes);
		reply_text(request, 200, data, (size_t)bytes);
		free(data);
	} else if (strcmp(path, "/binary") == 0) {
		unsigned char data[256];
		for (int i = 0; i < 256; i++)
			data[i] = (unsigned char)i;
		reply_text(request, 200, (const char *)data, sizeof(data));
	} else if (strcmp(path, "/status") == 0) {
		int code = (int)query_number(request, "code", 500);
		int n = snprintf(text, sizeof(text), "status %d", code);
		reply_text(request, code, text, (size_t)n);
	} else if (strcmp(path, "/echo") == 0) {
		struct evbuffer *in = evhttp_request_get_input_buffer(request);
		size_t length = evbuffer_get_length(in);
		char body[256] = "";
		if (length >= sizeof(body))
			length = sizeof(body) - 1;
		evbuffer_copyout(in, body, length);
		body[length] = '\0';
		const char *header = evhttp_find_header(evhttp_request_get_input_headers(request), "X-Echo");
		static const char *const methods[] = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS",
		                                      "TRACE", "CONNECT", "PATCH"};
		enum evhttp_cmd_type command = evhttp_request_get_command(request);
		const char *method = "?";
		for (int i = 0; i < 9; i++)
			if (command == (enum evhttp_cmd_type)(1 << i))
				method = methods[i];
		int n = snprintf(text, sizeof(text), "%s %s %s", method, body, header ? header : "-");
		reply_text(request, 200, text, (size_t)n);
	} else if (strcmp(path, "/peer") == 0) {
		char *address;
		ev_uint16_t port;
		evhttp_connection_get_peer(evhttp_request_get_connection(request), &address, &port);
		int n = snprintf(text, sizeof(text), "%u", (unsigned)port);
		reply_text(request, 200, text, (size_t)n);
	} else {
		reply_text(request, 404, "not found", 9);
	}
}

static void *serve(void *argument)
{
	struct http_server *server = argument;
	event_base_dispatch(server->base);
	return NULL;
}

/* evhttp's bufferevent maker for a TLS server: every connection is TLS. */
static struct bufferevent *tls_bufferevent(struct event_base *base, void *argument)
{
	struct http_server *server = argument;
	return bufferevent_openssl_socket_new(base, -1, SSL_new(server->tls), BUFFEREVENT_SSL_ACCEPTING,
	                                      BEV_OPT_CLOSE_ON_FREE);
}

static struct http_server *start(SSL_CTX *tls);

struct http_server *http_server_start(void)
{
	return start(NULL);
}

struct http_server *http_server_start_tls(const char *certificate, const char *key)
{
	SSL_CTX *tls = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(tls);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(tls, certificate), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(tls, key, SSL_FILETYPE_PEM), 1);
	return start(tls);
}

static struct http_server *start(SSL_CTX *tls)
{
	evthread_use_pthreads();
	struct http_server *server = calloc(1, sizeof(*server));
	server->tls = tls;
	server->base = event_base_new();
	server->http = evhttp_new(server->base);
	ck_assert_ptr_nonnull(server->http);
	evhttp_set_allowed_methods(server->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	                                                 EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	                                                 EVHTTP_REQ_PATCH);
	evhttp_set_gencb(server->http, on_request, server);
	if (tls != NULL)
		evhttp_set_bevcb(server->http, tls_bufferevent, server);
	/* A deep backlog: a thousand clients connect at once. */
	struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct evconnlistener *listener = evconnlistener_new_bind(
	        server->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	        4096, (struct sockaddr *)&any, sizeof(any));
	ck_assert_ptr_nonnull(listener);
	struct evhttp_bound_socket *bound = evhttp_bind_listener(server->http, listener);
	ck_assert_ptr_nonnull(bound);
	signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in address;
	socklen_t length = sizeof(address);
	getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&address, &length);
	server->port = ntohs(address.sin_port);
	ck_assert_int_eq(pthread_create(&server->thread, NULL, serve, server), 0);
	return server;
}

void http_server_stop(struct http_server *server)
{
	event_base_loopexit(server->base, NULL);
	pthread_join(server->thread, NULL);
	evhttp_free(server->http);
	free(server->held);
	if (server->tls != NULL)
		SSL_CTX_free(server->tls);
	event_base_free(server->base);
	free(server);
}

int http_server_port(const struct http_server *server)
{
	return server->port;
}

const char *http_server_url(const struct http_server *server, char *buffer, unsigned size)
{
	snprintf(buffer, size, "%s://127.0.0.1:%d", server->tls != NULL ? "https" : "http", server->port);
	return buffer;
}

int http_server_slow_in_flight(struct http_server *server)
{
	return atomic_load(&server->slow_in_flight);
}

int http_server_aborted(struct http_server *server)
{
	return atomic_load(&server->aborted);
}

int http_server_connections(struct http_server *server)
{
	return atomic_load(&server->connections);
}

int http_server_released(struct http_server *server)
{
	return atomic_load(&server->released);
}

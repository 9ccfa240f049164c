/*
 * weftd's side of the wire: one nng REP socket with its listeners, a pool of
 * REP contexts that receive requests concurrently, replies sent from any
 * thread, and the guard that keeps the listeners accepting.
 *
 * Threads: the request handler runs on weftd's request threads, which take
 * the received requests round-robin between the users they came from (see
 * server.c, "Request threads"), never on nng's callback threads. A request is
 * answered exactly once, with server_reply() or server_drop(), from any
 * thread, immediately or much later (long polls): a pending request holds an
 * nng context and no thread. The server keeps a fixed number of contexts
 * receiving whatever number are held by long polls.
 */
#ifndef SERVER_H
#define SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nng_msg;
struct server;
struct server_request;
struct principal;

/* Called for each request on a request thread. body is borrowed for the call. */
typedef void (*server_handler_fn)(void *context, struct server_request *request,
                                  const void *body, size_t size);
/* Called on an nng thread when a client connection closes (its pipe id). It must
 * not call into the server; it may post work elsewhere. */
typedef void (*server_pipe_closed_fn)(void *context, uint32_t pipe);

struct server_config {
	const char *const *urls; /* borrowed for the call */
	size_t url_count;
	size_t max_message;      /* the transport reads up to PROTO_TRANSPORT_SLACK_FACTOR × this */
	server_handler_fn handler;
	server_pipe_closed_fn pipe_closed;
	void *context;
	/* Who every peer of a non-ipc listener acts as (--insecure-tcp-user): a
	 * principal borrowed for the call (the server takes its own reference),
	 * or NULL, when such listeners are refused. */
	struct principal *tcp_user;
	/* tls+tcp:// listeners (--tls-*): their peers must show a certificate
	 * signed by tls_ca, and then act as tls_user (borrowed like tcp_user;
	 * NULL: such listeners are refused). PEM file paths, read at start. */
	struct principal *tls_user;
	const char *tls_cert;
	const char *tls_key;
	const char *tls_ca;
	/* The group that may use an ipc socket's directory (--socket-group): the
	 * directory is made 0750 root:GROUP. -1: 0755 for root, 0700 for a user. */
	long socket_group;
	/* Seconds a connection may stay with no request in flight and no whole
	 * message received before it is closed (--idle-timeout); 0: never. A
	 * message sent in part and left there holds up to the transport's limit
	 * of memory, and nothing else ends it. Clients redial by themselves. */
	double idle_timeout;
};

/* Opens the socket and starts listening on every URL. For an ipc:// URL it makes
 * the socket's directory, refuses when a live peer already answers there, and
 * replaces a stale socket file. Returns WEFT_OK, or an error with a message for
 * the user in message. Main thread. */
int server_start(const struct server_config *config, struct server **out, char *message,
                 size_t size);

/* Answers a request: reply is stolen. Any thread, once per request. */
void server_reply(struct server_request *request, json_t *reply);
/* Answers a request with a message already written (writer.h); stolen. NULL
 * (the writer ran out of memory) drops the request instead. */
void server_reply_message(struct server_request *request, struct nng_msg *message);
/* Releases a request without answering (its client is gone). Any thread. */
void server_drop(struct server_request *request);
/* The server a request came on (borrowed). Any thread. */
struct server *server_request_server(const struct server_request *request);
/* The id of the connection (nng pipe) a request came on. */
uint32_t server_request_pipe(const struct server_request *request);

/* Who sent the request (principal.h): a new reference to the principal its
 * connection was given when it was added, or NULL when the connection is
 * already gone (then nothing may be done for it). Any thread. */
struct principal *server_request_principal(const struct server_request *request);

/* Requests received and not yet answered or dropped. Any thread. */
size_t server_outstanding(struct server *server);

/* What the listener guard did (see server.c). Its thread starts with the
 * server, probes every listener once a round (`every` seconds apart, one
 * probe at a time) and re-creates one that missed two pings in a row
 * (nng 1.5 defect #1518); an ipc listener is replaced without closing the old
 * one, which is closed once its connections are gone. */
struct server_guard_stats {
	uint64_t rounds;        /* rounds finished */
	uint64_t failed_probes; /* pings unanswered within their bound */
	uint64_t recreated;     /* listeners re-created */
	uint64_t retired;       /* replaced ipc listeners still serving their connections */
	double last_round;      /* monotonic seconds at the end of the last round; 0: none yet */
	double every;           /* seconds between rounds */
	uint64_t idle_closed;   /* connections closed for idling past --idle-timeout */
};

/* The guard's counters, read without a lock. Any thread. */
void server_guard_stats(struct server *server, struct server_guard_stats *stats);

/* The request threads (server.c, "Request threads"), read under their lock. */
struct server_request_stats {
	size_t threads;      /* request threads */
	size_t share;        /* of them one user's requests may hold at once */
	size_t running;      /* requests being handled now */
	size_t queued;       /* requests received and waiting for a thread */
	size_t queued_users; /* users with requests waiting */
	uint64_t refused;    /* requests answered busy: past their user's queue bounds */
};

/* Any thread. */
void server_request_stats(struct server *server, struct server_request_stats *stats);

/* Stops the listener guard (waiting up to 2 s for its round), closes the
 * socket (pending requests are abandoned), removes the ipc socket files and
 * frees everything. WEFT_OK; WEFT_ETIMEOUT when the guard was stuck in nng and
 * had to be left behind, and with it the server's memory. nng_close() itself
 * can block forever once nng 1.5's reaper is stuck (issue 17): the caller
 * bounds it (daemon.c's shutdown watchdog). Main thread, after every request
 * is answered. */
int server_stop(struct server *server);

#endif

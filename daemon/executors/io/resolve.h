/*
 * Host names for the IO built-ins, resolved without blocking a worker loop
 * (resolve.c): libevent's asynchronous resolver on the worker's own
 * event_base, one per worker thread, reading /etc/hosts and
 * /etc/resolv.conf (or weftd's --resolv-conf file) once when the worker
 * first needs it. A name gives every address the resolver found, IPv4 and
 * IPv6, in its order, at most RESOLVE_ADDRESSES_MAX: the pool tries them in
 * turn (pool.h).
 *
 * Bounds: each query waits RESOLVE_TRY_SECONDS for an answer, RESOLVE_TRIES
 * times; at most RESOLVE_INFLIGHT queries per worker are on the wire at once,
 * later ones wait in order behind them. The job's own timeout bounds it all.
 */
#ifndef RESOLVE_H
#define RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct resolve;

#define RESOLVE_TRY_SECONDS 3
#define RESOLVE_TRIES 2
#define RESOLVE_INFLIGHT 16
/* Longest host name accepted (RFC 1035), without the NUL. */
#define RESOLVE_NAME_MAX 253
/* Addresses kept of one answer; the others are dropped. */
#define RESOLVE_ADDRESSES_MAX 8
/* Room for one numeric address and its NUL (INET6_ADDRSTRLEN is 46). */
#define RESOLVE_ADDRESS_SIZE 64
/* The default of resolve_set_conf. */
#define RESOLVE_CONF_DEFAULT "/etc/resolv.conf"

/* What a name resolved to: count (1 to RESOLVE_ADDRESSES_MAX) numeric IPv4
 * or IPv6 addresses, in the resolver's order. */
struct resolve_addresses {
	size_t count;
	char address[RESOLVE_ADDRESSES_MAX][RESOLVE_ADDRESS_SIZE];
};

/* The answer: addresses (borrowed, for the call), or NULL and message saying
 * why. */
typedef void resolve_done(void *argument, const struct resolve_addresses *addresses,
                          const char *message);

/* Main thread, before the workers start: the resolv.conf(5) file every
 * worker's resolver reads (its nameserver lines may give ip:port), instead
 * of RESOLVE_CONF_DEFAULT. The path is kept absolute (call it before any
 * chdir). WEFT_OK, or WEFT_EBADARGS
 * when it is too long (errno ENAMETOOLONG) or cannot be opened for reading
 * (errno says why). A file that opens but lists no server leaves libevent's
 * default server, 127.0.0.1. */
int resolve_set_conf(const char *path);

/* Whether host is a numeric IPv4 or IPv6 address. Any thread. */
bool resolve_is_numeric(const char *host);

/* Whether host could be a host name (letters, digits, '-', '.', at most
 * RESOLVE_NAME_MAX bytes). Any thread; for checks at submit. */
bool resolve_name_valid(const char *host);

/* The worker's thread, base its loop. Starts resolving host; done is called
 * once, later, on this thread (never from inside resolve_start), unless
 * resolve_cancel comes first. Returns NULL when the resolver cannot be set
 * up (done is then never called). */
struct resolve *resolve_start(struct event_base *base, const char *host, resolve_done *done,
                              void *argument);

/* The worker's thread: done will not be called; the request is freed. */
void resolve_cancel(struct resolve *request);

/* A worker's thread, as it stops: frees its resolver (daemon.c, through the
 * IO pools' exit). Requests still open must have been cancelled. */
void resolve_worker_exit(struct event_base *base);

#endif

/*
 * The connection pools of the IO built-ins (pool.c): redis.command's and
 * sql.query's (PostgreSQL, MySQL/MariaDB) connections, per worker and per
 * key, where a key is "owner-uid url". A connection opened for one owner's
 * job serves only that owner's later jobs: the owner is part of the key.
 *
 * A driver embeds a struct pool_conn in each of its connections and a struct
 * pool_call in each job's call, and gives a struct pool_kind: how to run a
 * call on an idle connection, how to open one, how to close one. The pool
 * owns the lists and decides: a call that is submitted gets an idle
 * connection of its key, or a new one while the key has fewer than
 * kind->max, or waits in order (none is overtaken). A connection a driver
 * gives back (pool_conn_idle) closes after pool_idle_seconds() unused.
 * Host names in URLs are resolved first (resolve.h), off the loop.
 *
 * A name may resolve to several addresses (at most RESOLVE_ADDRESSES_MAX).
 * The pool hands the driver one at a time (kind->resolved) before it opens
 * a connection; a driver whose connection cannot reach its server tells the
 * pool (pool_connect_failed), which opens the next address for the same call
 * or, with none left, gives the driver the message to fail the call with.
 * Every address but the last also has a connect deadline: an equal share of
 * the time the job's timeout leaves, so one address that drops packets
 * cannot take all of it; the driver stops it once connected
 * (pool_connected). The job's own timeout still bounds everything.
 *
 * Threads: everything here but pool_set_idle_seconds and pool_stats runs on
 * the pool's worker thread, the only one that touches its lists.
 */
#ifndef POOL_H
#define POOL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <event2/util.h>

struct event_base;
struct problem;
struct event;
struct pool;
struct resolve;
struct resolve_addresses;

/* The kinds of pools, for the counters. */
enum pool_id { POOL_REDIS, POOL_POSTGRESQL, POOL_MYSQL, POOL_KINDS };

/* An idle connection closes after this many seconds by default. */
#define POOL_IDLE_DEFAULT 30.0

/* The enclosing struct of an embedded pool_conn or pool_call. */
#define POOL_OWNER(pointer, type, member) ((type *)(void *)((char *)(pointer) - offsetof(type, member)))

struct pool_call;

/* In a driver's connection; the fields are the pool's. */
struct pool_conn {
	struct pool *pool;
	char *key;              /* owned */
	struct pool_call *call; /* the call on it, or NULL */
	bool idle;              /* given back and reusable (pool_conn_idle) */
	double idle_since;      /* monotonic seconds, while idle */
	LIST_ENTRY(pool_conn) link; /* in its pool's connections */
};

/* In a driver's call (one job's operation); the fields are the pool's. */
struct pool_call {
	struct pool *pool;      /* set by pool_submit */
	char *key;              /* owned: "uid url" */
	struct pool_conn *conn; /* its connection, or NULL */
	bool waiting;           /* in the pool's waiting list */
	struct resolve *resolving; /* its host is being resolved, or NULL */
	TAILQ_ENTRY(pool_call) waiting_link; /* in the waiting list, while waiting */
	struct event *timer;    /* the job's timeout */
	double deadline;        /* monotonic seconds when timer fires */
	char *host;             /* owned: the name pool_submit resolves, or NULL */
	struct resolve_addresses *addresses; /* owned: what host resolved to, or NULL */
	size_t next;            /* the index in addresses of the next one to try */
	struct event *attempt;  /* the current address's connect deadline, or (retrying) the next one's turn */
	bool retrying;          /* attempt, pending, opens the next address */
};

struct pool_kind {
	enum pool_id id;
	const char *name; /* in stats */
	size_t max;       /* connections per worker for one key */
	/* call was given conn, an idle connection of its key: run on it. */
	void (*reuse)(struct pool_call *call, struct pool_conn *conn);
	/* call needs a new connection: open one and pool_conn_add it bound to
	 * call, or end the call. */
	void (*open)(struct pool *pool, struct pool_call *call);
	/* An idle connection unused too long: close it, pool_conn_remove it now
	 * or later (it counts against max until then). */
	void (*close)(struct pool_conn *conn);
	/* The worker stops: close and free conn at once, pool_conn_remove first. */
	void (*destroy)(struct pool_conn *conn);
	/* The host of call (pool_submit's) resolved to address (numeric): keep
	 * it for the connection open makes next (called again with the next
	 * address after pool_connect_failed). NULL when the kind never
	 * resolves. */
	void (*resolved)(struct pool_call *call, const char *address);
	/* It did not resolve: end the call (a ConnectionError). */
	void (*unresolved)(struct pool_call *call, const char *message);
};

/* Main thread, before the workers start: how long a connection may stay
 * idle (seconds > 0). */
void pool_set_idle_seconds(double seconds);
double pool_idle_seconds(void);

/* This worker's pool of kind (made on first use; NULL without memory for
 * its timer). base is the worker's loop. */
struct pool *pool_get(const struct pool_kind *kind, struct event_base *base);
struct event_base *pool_base(const struct pool *pool);

/* A worker's thread, as it stops: destroys the kind's connections and the
 * pool, and the worker's resolver. Calls must have ended before. */
void pool_worker_exit(const struct pool_kind *kind, struct event_base *base);

/* Checks the arguments every pooled built-in takes: timeout (seconds in
 * (0, 86400]) and max_size (bytes from 0 to size_max). WEFT_OK or
 * WEFT_EBADARGS with the problem. Any thread. */
int pool_check_limits(const json_t *args, unsigned size_max, struct problem *problem);

/* Sets up call, a job of owner on url, for pool: its key ("owner url": one
 * owner's connections never serve another's jobs) and its timer, armed for
 * timeout seconds, which calls on_timeout(argument) on the pool's loop
 * unless pool_call_fini comes first. WEFT_OK or WEFT_ENOMEM (call untouched
 * but zeroed). */
int pool_call_init(struct pool_call *call, struct pool *pool, unsigned owner, const char *url,
                   double timeout, void (*on_timeout)(evutil_socket_t, short, void *), void *argument);

/* Queues call for a connection of its key. With host non-NULL, a name,
 * it is resolved first (kind->resolved or kind->unresolved is called, later).
 * The call may have been served, or even ended, when this returns. */
void pool_submit(struct pool *pool, struct pool_call *call, const char *host);

/* The connection the driver opened for call (kind->open) did not reach its
 * server: refused, unreachable, nothing at that address; reason says why.
 * Not for errors from the server itself (a refused login): those end call.
 * Returns true when the pool takes call back to try its host's next address:
 * call is unbound from its connection (the driver closes that as one no call
 * uses, and does not end call), and kind->resolved and kind->open come again
 * later, never from inside this function. Returns false when no address is
 * left, or the host was numeric: message[size] then names the host, the last
 * address and reason ("cannot connect: <reason>" for a numeric host or a
 * socket), and the driver ends call with it (a ConnectionError). */
bool pool_connect_failed(struct pool_call *call, const char *reason, char *message, size_t size);

/* call's connection has reached its server: its address's connect deadline
 * is stopped. Harmless when there is none. */
void pool_connected(struct pool_call *call);

/* Takes call out of the pool: its resolution is cancelled, it leaves the
 * waiting list, its connection is unbound and returned (NULL if none); the
 * driver then gives that back (pool_conn_idle) or closes it. The key stays
 * the call's until pool_call_fini. */
struct pool_conn *pool_release(struct pool_call *call);

/* Frees what pool_call_init and pool_submit made (the key, the timers, the
 * addresses). */
void pool_call_fini(struct pool_call *call);

/* Serves the oldest waiting call of key, if a connection is free or may be
 * opened: after a call ended or a connection went. */
void pool_kick(struct pool *pool, const char *key);

/* Lists conn, a new connection of key (copied), bound to call (may be NULL). */
void pool_conn_add(struct pool *pool, struct pool_conn *conn, const char *key, struct pool_call *call);

/* conn, unbound, may serve its key's next call; it closes when idle too long. */
void pool_conn_idle(struct pool_conn *conn);

/* conn may serve no other call (it is closing). */
void pool_conn_unusable(struct pool_conn *conn);

/* Unlists conn (the driver frees it). */
void pool_conn_remove(struct pool_conn *conn);

/* Every kind's counters as JSON, a new reference:
 * {"redis": {"opened", "closed", "open", "idle", "waiting"}, ...}. Any thread. */
json_t *pool_stats(void);

#endif

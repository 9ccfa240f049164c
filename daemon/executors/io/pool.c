/*
 * The IO built-ins' connection pools; see pool.h.
 *
 * Design. A pool (struct pool) is one worker's connections of one kind,
 * thread-local, made on first use: its connection list, its waiting calls
 * (oldest first) and one timer that closes idle connections. The timer is
 * armed only while some connection is idle, for the earliest one's expiry,
 * so an idle worker with no pooled connection is never woken for them.
 *
 * A pool serves one waiting call per kick: every event that can free a place
 * (a call ends, a connection goes, a connection opens or is given back)
 * kicks once, and each kick serves at most one call, so none is overtaken.
 *
 * Trying a host's addresses in turn. A call whose connection failed goes back
 * to the head of the waiting list (it keeps its place: none overtakes it)
 * with the next address, from a zero-delay event rather than at once: the
 * driver reports the failure from inside its library's callback, and the
 * failed connection may still count against kind->max until the driver
 * frees it (hiredis frees its context after the callback), in which case
 * that freeing's own kick serves the call. A connection of the key that was
 * given back meanwhile serves it just as well: it reached some address of
 * the same URL. The same event, while an address other than the last is
 * being connected to, is that address's deadline.
 *
 * Counters (opened, closed, idle, waiting) are atomics shared by every
 * worker's pools of a kind and read by the stats op on another thread;
 * relaxed order is enough, they order nothing else.
 */
#include "daemon/executors/io/pool.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/base/problem.h"
#include "daemon/executors/io/resolve.h"
#include "weft/error.h"

struct pool {
	const struct pool_kind *kind;
	struct event_base *base;
	LIST_HEAD(, pool_conn) conns;
	TAILQ_HEAD(, pool_call) waiting; /* oldest first */
	struct event *sweep; /* pending while a connection is idle */
};

struct pool_counters {
	atomic_long opened, closed, idle, waiting;
};

static const char *const kind_names[POOL_KINDS] = {"redis", "postgresql", "mysql"};
static struct pool_counters counters[POOL_KINDS];

/* Written by the main thread before the workers start, read-only after. */
static double idle_seconds = POOL_IDLE_DEFAULT;

static _Thread_local struct pool *thread_pools[POOL_KINDS];

void pool_set_idle_seconds(double seconds)
{
	if (seconds > 0)
		idle_seconds = seconds;
}

double pool_idle_seconds(void)
{
	return idle_seconds;
}

static void count(struct pool *pool, atomic_long *counter, long delta)
{
	(void)pool;
	atomic_fetch_add_explicit(counter, delta, memory_order_relaxed);
}

static struct timeval delay_of(double seconds)
{
	if (seconds < 0.001)
		seconds = 0.001;
	struct timeval delay = {.tv_sec = (time_t)seconds,
	                        .tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
	return delay;
}

/* Closes the connections idle too long; waits for the next to be. */
static void on_sweep(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct pool *pool = argument;
	double now = now_monotonic();
	double earliest = 0;
	bool any = false;
	for (struct pool_conn *conn = LIST_FIRST(&pool->conns), *next; conn != NULL; conn = next) {
		next = LIST_NEXT(conn, link);
		if (!conn->idle)
			continue;
		if (now - conn->idle_since >= idle_seconds) {
			pool_conn_unusable(conn);
			pool->kind->close(conn); /* may unlist conn, nothing else */
		} else if (!any || conn->idle_since < earliest) {
			earliest = conn->idle_since;
			any = true;
		}
	}
	if (any) {
		struct timeval delay = delay_of(earliest + idle_seconds - now);
		evtimer_add(pool->sweep, &delay);
	}
}

struct pool *pool_get(const struct pool_kind *kind, struct event_base *base)
{
	struct pool *pool = thread_pools[kind->id];
	if (pool != NULL)
		return pool;
	pool = memory_zalloc(sizeof(*pool));
	pool->kind = kind;
	pool->base = base;
	LIST_INIT(&pool->conns);
	TAILQ_INIT(&pool->waiting);
	pool->sweep = evtimer_new(base, on_sweep, pool);
	if (pool->sweep == NULL) {
		free(pool);
		return NULL;
	}
	thread_pools[kind->id] = pool;
	return pool;
}

struct event_base *pool_base(const struct pool *pool)
{
	return pool->base;
}

void pool_worker_exit(const struct pool_kind *kind, struct event_base *base)
{
	struct pool *pool = thread_pools[kind->id];
	if (pool != NULL && pool->base == base) {
		thread_pools[kind->id] = NULL;
		while (!LIST_EMPTY(&pool->conns))
			kind->destroy(LIST_FIRST(&pool->conns));
		event_free(pool->sweep);
		free(pool);
	}
	resolve_worker_exit(base);
}

int pool_check_limits(const json_t *args, unsigned size_max, struct problem *problem)
{
	const json_t *timeout = json_object_get(args, "timeout");
	if (timeout != NULL && (!json_is_number(timeout) || json_number_value(timeout) <= 0 ||
	                        json_number_value(timeout) > 86400))
		return problem_set(problem, WEFT_EBADARGS, "args.timeout",
		                   "'timeout' must be a number of seconds in (0, 86400]");
	const json_t *size = json_object_get(args, "max_size");
	if (size != NULL && (!json_is_integer(size) || json_integer_value(size) < 0 ||
	                     json_integer_value(size) > size_max))
		return problem_set(problem, WEFT_EBADARGS, "args.max_size",
		                   "'max_size' must be an integer from 0 to %u bytes", size_max);
	return WEFT_OK;
}

static void on_attempt(evutil_socket_t fd, short events, void *argument);

int pool_call_init(struct pool_call *call, struct pool *pool, unsigned owner, const char *url,
                   double timeout, void (*on_timeout)(evutil_socket_t, short, void *), void *argument)
{
	memset(call, 0, sizeof(*call));
	struct event *timer = evtimer_new(pool->base, on_timeout, argument);
	if (timer == NULL)
		return WEFT_ENOMEM;
	struct event *attempt = evtimer_new(pool->base, on_attempt, call);
	if (attempt == NULL) {
		event_free(timer);
		return WEFT_ENOMEM;
	}
	size_t size = strlen(url) + 16;
	call->key = memory_alloc(size);
	snprintf(call->key, size, "%u %s", owner, url);
	call->pool = pool;
	call->timer = timer;
	call->attempt = attempt;
	struct timeval delay = delay_of(timeout);
	call->deadline = now_monotonic() + timeout;
	evtimer_add(timer, &delay);
	return WEFT_OK;
}

void pool_call_fini(struct pool_call *call)
{
	if (call->timer != NULL)
		event_free(call->timer);
	call->timer = NULL;
	if (call->attempt != NULL)
		event_free(call->attempt);
	call->attempt = NULL;
	free(call->key);
	call->key = NULL;
	free(call->host);
	call->host = NULL;
	free(call->addresses);
	call->addresses = NULL;
}

static void waiting_remove(struct pool *pool, struct pool_call *call)
{
	if (!call->waiting)
		return;
	TAILQ_REMOVE(&pool->waiting, call, waiting_link);
	call->waiting = false;
	count(pool, &counters[pool->kind->id].waiting, -1);
}

/* first: a call that had its turn already and tries another address. */
static void enqueue(struct pool *pool, struct pool_call *call, bool first)
{
	call->waiting = true;
	if (first)
		TAILQ_INSERT_HEAD(&pool->waiting, call, waiting_link);
	else
		TAILQ_INSERT_TAIL(&pool->waiting, call, waiting_link);
	count(pool, &counters[pool->kind->id].waiting, 1);
	pool_kick(pool, call->key);
}

/* Hands the driver call's next address and queues the call for it. */
static void try_next(struct pool_call *call, bool first)
{
	call->pool->kind->resolved(call, call->addresses->address[call->next++]);
	enqueue(call->pool, call, first);
}

/* The retry's turn, or the current address's connect deadline. */
static void on_attempt(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct pool_call *call = argument;
	if (!call->retrying) {
		/* Too long connecting: this address is given up like a refused one. */
		struct pool_conn *conn = call->conn;
		if (conn != NULL) {
			conn->call = NULL;
			call->conn = NULL;
			call->pool->kind->close(conn); /* may unlist conn, nothing else */
		}
	}
	call->retrying = false;
	try_next(call, true);
}

/* Arms the connect deadline of the address call is about to connect to,
 * unless it is the last one (the job's timeout is its deadline). */
static void attempt_arm(struct pool_call *call)
{
	if (call->addresses == NULL || call->next >= call->addresses->count)
		return;
	size_t left = call->addresses->count - call->next + 1; /* this one included */
	struct timeval delay = delay_of((call->deadline - now_monotonic()) / (double)left);
	evtimer_add(call->attempt, &delay);
}

static void on_resolved(void *argument, const struct resolve_addresses *addresses, const char *message)
{
	struct pool_call *call = argument;
	struct pool *pool = call->pool;
	call->resolving = NULL;
	if (addresses == NULL) {
		pool->kind->unresolved(call, message);
		return;
	}
	call->addresses = memory_alloc(sizeof(*call->addresses));
	*call->addresses = *addresses;
	call->next = 0;
	try_next(call, false);
}

void pool_submit(struct pool *pool, struct pool_call *call, const char *host)
{
	if (host == NULL) {
		enqueue(pool, call, false);
		return;
	}
	call->host = memory_strdup(host);
	call->resolving = resolve_start(pool->base, host, on_resolved, call);
	if (call->resolving == NULL)
		pool->kind->unresolved(call, "the resolver cannot be set up");
}

bool pool_connect_failed(struct pool_call *call, const char *reason, char *message, size_t size)
{
	const struct resolve_addresses *addresses = call->addresses;
	if (addresses != NULL && call->next < addresses->count) {
		struct pool_conn *conn = call->conn;
		if (conn != NULL) {
			conn->call = NULL;
			call->conn = NULL;
		}
		call->retrying = true;
		struct timeval now = {0, 0};
		evtimer_add(call->attempt, &now); /* replaces the deadline */
		return true;
	}
	event_del(call->attempt);
	if (addresses == NULL)
		snprintf(message, size, "cannot connect: %s", reason);
	else if (addresses->count == 1)
		snprintf(message, size, "cannot connect to '%s' (%s): %s", call->host,
		         addresses->address[0], reason);
	else
		snprintf(message, size, "cannot connect to '%s' at any of its %zu addresses; the last, %s: %s",
		         call->host, addresses->count, addresses->address[addresses->count - 1], reason);
	return false;
}

void pool_connected(struct pool_call *call)
{
	if (!call->retrying)
		event_del(call->attempt);
}

struct pool_conn *pool_release(struct pool_call *call)
{
	if (call->resolving != NULL) {
		resolve_cancel(call->resolving);
		call->resolving = NULL;
	}
	if (call->attempt != NULL)
		event_del(call->attempt);
	call->retrying = false;
	if (call->waiting)
		waiting_remove(call->pool, call);
	struct pool_conn *conn = call->conn;
	if (conn != NULL) {
		conn->call = NULL;
		call->conn = NULL;
	}
	return conn;
}

/* Connections of key, closing ones included (they still hold a server slot). */
static size_t key_count(struct pool *pool, const char *key)
{
	size_t n = 0;
	struct pool_conn *conn;
	LIST_FOREACH(conn, &pool->conns, link)
		if (strcmp(conn->key, key) == 0)
			n++;
	return n;
}

void pool_kick(struct pool *pool, const char *key)
{
	struct pool_call *call;
	TAILQ_FOREACH(call, &pool->waiting, waiting_link) {
		if (strcmp(call->key, key) != 0)
			continue;
		struct pool_conn *idle = NULL;
		struct pool_conn *conn;
		LIST_FOREACH(conn, &pool->conns, link)
			if (conn->idle && strcmp(conn->key, key) == 0) {
				idle = conn;
				break;
			}
		if (idle == NULL && key_count(pool, key) >= pool->kind->max)
			return;
		waiting_remove(pool, call);
		if (idle != NULL) {
			pool_conn_unusable(idle);
			idle->call = call;
			call->conn = idle;
			pool->kind->reuse(call, idle);
		} else {
			attempt_arm(call);
			pool->kind->open(pool, call);
		}
		return; /* one per kick: the call's own end kicks the next */
	}
}

void pool_conn_add(struct pool *pool, struct pool_conn *conn, const char *key, struct pool_call *call)
{
	conn->pool = pool;
	conn->key = memory_strdup(key);
	conn->idle = false;
	conn->call = call;
	if (call != NULL)
		call->conn = conn;
	LIST_INSERT_HEAD(&pool->conns, conn, link);
	count(pool, &counters[pool->kind->id].opened, 1);
}

void pool_conn_idle(struct pool_conn *conn)
{
	struct pool *pool = conn->pool;
	if (conn->idle)
		return;
	conn->idle = true;
	conn->idle_since = now_monotonic();
	count(pool, &counters[pool->kind->id].idle, 1);
	if (!evtimer_pending(pool->sweep, NULL)) {
		struct timeval delay = delay_of(idle_seconds);
		evtimer_add(pool->sweep, &delay);
	}
}

void pool_conn_unusable(struct pool_conn *conn)
{
	if (!conn->idle)
		return;
	conn->idle = false;
	count(conn->pool, &counters[conn->pool->kind->id].idle, -1);
}

void pool_conn_remove(struct pool_conn *conn)
{
	if (conn->key == NULL)
		return; /* never listed, or removed already: the key goes with the listing */
	struct pool *pool = conn->pool;
	pool_conn_unusable(conn);
	LIST_REMOVE(conn, link);
	free(conn->key);
	conn->key = NULL;
	count(pool, &counters[pool->kind->id].closed, 1);
}

json_t *pool_stats(void)
{
	json_t *stats = json_object();
	for (int i = 0; i < POOL_KINDS; i++) {
		long opened = atomic_load_explicit(&counters[i].opened, memory_order_relaxed);
		long closed = atomic_load_explicit(&counters[i].closed, memory_order_relaxed);
		json_object_set_new(
			stats, kind_names[i],
			json_pack("{s:I, s:I, s:I, s:I, s:I}", "opened", (json_int_t)opened, "closed",
			          (json_int_t)closed, "open", (json_int_t)(opened - closed), "idle",
			          (json_int_t)atomic_load_explicit(&counters[i].idle, memory_order_relaxed),
			          "waiting",
			          (json_int_t)atomic_load_explicit(&counters[i].waiting, memory_order_relaxed)));
	}
	return stats;
}

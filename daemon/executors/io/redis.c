/*
 * redis.command; see redis.h.
 *
 * Design. Everything runs on one worker's thread: its pool (pool.h, made
 * on first use), its connections and the commands on them. A connection
 * (struct redis_conn) serves one job at a time; between jobs it is idle in
 * the pool, which lists it, queues the jobs waiting and closes it when idle
 * too long.
 *
 * hiredis frees its context itself when the connection fails or the server
 * hangs up, calling back first; so a connection's own struct is never freed
 * inside a hiredis callback: conn_close and the callbacks mark it dead
 * (conn->ac = NULL) and a zero-delay event frees it afterwards (STYLE 9).
 * Every hiredis callback gets the connection as its private data and finds
 * the job, if it still has one, with conn_call.
 *
 * Memory: a reply larger than max_size fails the job; hiredis' read buffer
 * is checked before each read, so it holds at most max_size plus one read.
 */
#include "daemon/executors/io/redis.h"

#include <errno.h>
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <nettle/base64.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/base/problem.h"
#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/core/principal.h"
#include "daemon/executors/io/pool.h"
#include "daemon/executors/io/resolve.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/workers.h"
#include "weft/error.h"

#define REDIS_URL_MAX 1024
#define REDIS_ARGV_MAX 65536
#define REDIS_TIMEOUT_DEFAULT 10.0

/* Where a URL points. */
struct redis_target {
	char path[108];    /* a unix socket, or "" */
	char host[RESOLVE_NAME_MAX + 1]; /* a name or a numeric address */
	char address[64];  /* numeric: host, or what it resolved to */
	int port;
	long db;
	char password[256]; /* "" for none */
};

/* One job's command. Owned by the worker's thread; the attempt's data. */
struct redis_call {
	struct pool_call pc;      /* its key is "uid url" */
	struct job_attempt *attempt;
	struct pool *pool;
	struct redis_target target;
	int setup_replies; /* AUTH/SELECT replies to come before the job's own */
	size_t limit;      /* max_size */
};

struct redis_conn {
	struct pool_conn pc;      /* its call is the job using it, or NULL */
	redisAsyncContext *ac;    /* NULL once hiredis has let go of it (dead) */
	struct event *read_event, *write_event;
	bool connected;
	bool closing;             /* disconnecting: serves no other job */
	bool free_scheduled;
	char error[1024];         /* why it failed, for the job */
};

static const struct pool_kind redis_pool_kind;

/* The job on conn, or NULL. */
static struct redis_call *conn_call(const struct redis_conn *conn)
{
	return conn->pc.call != NULL ? POOL_OWNER(conn->pc.call, struct redis_call, pc) : NULL;
}

/* ---- URLs ---- */

/* Parses "redis:///path.sock[?db=N]" or "redis://[:password@]host[:port][/db]". */
static int parse_url(const char *url, struct redis_target *target, struct problem *problem)
{
	memset(target, 0, sizeof(*target));
	target->port = 6379;
	if (strncmp(url, "redis://", 8) != 0)
		return problem_set(problem, WEFT_EBADARGS, "args.url",
		                   "'url' must be redis:///path/to.sock or redis://host:port/db, not '%.64s'",
		                   url);
	const char *rest = url + 8;
	const char *db = NULL;
	if (rest[0] == '/') {
		const char *query = strchr(rest, '?');
		size_t length = query != NULL ? (size_t)(query - rest) : strlen(rest);
		if (length >= sizeof(target->path))
			return problem_set(problem, WEFT_EBADARGS, "args.url",
			                   "the socket path is longer than %zu bytes", sizeof(target->path) - 1);
		memcpy(target->path, rest, length);
		if (query != NULL) {
			if (strncmp(query, "?db=", 4) != 0)
				return problem_set(problem, WEFT_EBADARGS, "args.url",
				                   "a socket URL takes only ?db=N after the path");
			db = query + 4;
		}
	} else {
		const char *at = strchr(rest, '@');
		if (at != NULL) {
			const char *colon = memchr(rest, ':', (size_t)(at - rest));
			const char *password = colon != NULL ? colon + 1 : rest;
			size_t length = (size_t)(at - password);
			if (length >= sizeof(target->password))
				return problem_set(problem, WEFT_EBADARGS, "args.url", "the password is too long");
			memcpy(target->password, password, length);
			rest = at + 1;
		}
		const char *host_end;
		if (rest[0] == '[') {
			host_end = strchr(rest, ']');
			if (host_end == NULL)
				return problem_set(problem, WEFT_EBADARGS, "args.url", "an IPv6 address needs ']'");
			size_t length = (size_t)(host_end - rest - 1);
			if (length >= sizeof(target->host))
				return problem_set(problem, WEFT_EBADARGS, "args.url", "the host is too long");
			memcpy(target->host, rest + 1, length);
			host_end++;
		} else {
			host_end = rest + strcspn(rest, ":/");
			size_t length = (size_t)(host_end - rest);
			if (length == 0 || length >= sizeof(target->host))
				return problem_set(problem, WEFT_EBADARGS, "args.url", "'url' needs a host");
			memcpy(target->host, rest, length);
		}
		if (resolve_is_numeric(target->host))
			snprintf(target->address, sizeof(target->address), "%s", target->host);
		else if (!resolve_name_valid(target->host))
			return problem_set(problem, WEFT_EBADARGS, "args.url",
			                   "'%.64s' is neither a host name nor a numeric address", target->host);
		rest = host_end;
		if (rest[0] == ':') {
			char *end;
			long port = strtol(rest + 1, &end, 10);
			if (end == rest + 1 || port < 1 || port > 65535)
				return problem_set(problem, WEFT_EBADARGS, "args.url", "the port must be 1-65535");
			target->port = (int)port;
			rest = end;
		}
		if (rest[0] == '/' && rest[1] != '\0')
			db = rest + 1;
		else if (rest[0] != '\0' && strcmp(rest, "/") != 0)
			return problem_set(problem, WEFT_EBADARGS, "args.url",
			                   "unexpected '%.32s' after the address", rest);
	}
	if (db != NULL) {
		char *end;
		errno = 0;
		target->db = strtol(db, &end, 10);
		if (end == db || *end != '\0' || target->db < 0 || target->db > 100000)
			return problem_set(problem, WEFT_EBADARGS, "args.url",
			                   "the database must be a number from 0 to 100000");
	}
	return WEFT_OK;
}

/* ---- arguments ---- */

static const struct function_argument redis_arguments[] = {
	{"url", "string (required): redis:///path/to.sock[?db=N] or redis://[:password@]host[:port][/db]"},
	{"argv", "array of strings or numbers (required): the command and its arguments"},
	{"timeout", "number > 0 (optional): seconds for connecting and the reply; 10 by default"},
	{"max_size", "integer >= 0 (optional): largest reply accepted, bytes; 1 MiB by default, 16 MiB at most"},
	{NULL, NULL},
};

static int redis_check(const struct function *function, const json_t *args, struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	const json_t *url = json_object_get(args, "url");
	if (!json_is_string(url) || json_string_length(url) > REDIS_URL_MAX)
		return problem_set(problem, WEFT_EBADARGS, "args.url",
		                   "redis.command needs 'url', a redis:// URL of at most %d bytes",
		                   REDIS_URL_MAX);
	struct redis_target target;
	if ((rv = parse_url(json_string_value(url), &target, problem)) != WEFT_OK)
		return rv;
	const json_t *argv = json_object_get(args, "argv");
	if (!json_is_array(argv) || json_array_size(argv) == 0 || json_array_size(argv) > REDIS_ARGV_MAX)
		return problem_set(problem, WEFT_EBADARGS, "args.argv",
		                   "redis.command needs 'argv', an array of 1 to %d strings or numbers",
		                   REDIS_ARGV_MAX);
	size_t i;
	const json_t *item;
	json_array_foreach(argv, i, item) {
		if (!json_is_string(item) && !json_is_number(item))
			return problem_set(problem, WEFT_EBADARGS, "args.argv",
			                   "argv[%zu] must be a string or a number", i);
	}
	return pool_check_limits(args, REDIS_REPLY_MAX, problem);
}

/* ---- connections ---- */

static void conn_free_later(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct redis_conn *conn = argument;
	struct pool *pool = conn->pc.pool;
	char key[REDIS_URL_MAX + 32];
	snprintf(key, sizeof(key), "%s", conn->pc.key);
	pool_conn_remove(&conn->pc);
	free(conn);
	pool_kick(pool, key); /* its place in the pool is free */
}

/* hiredis has let go of the context (or is about to, on its way out of a
 * callback): the struct goes once the callback is over. */
static void conn_dead(struct redis_conn *conn)
{
	conn->ac = NULL;
	conn->closing = true;
	pool_conn_unusable(&conn->pc);
	if (conn->free_scheduled)
		return;
	conn->free_scheduled = true;
	struct timeval now = {0, 0};
	event_base_once(pool_base(conn->pc.pool), -1, EV_TIMEOUT, conn_free_later, conn, &now);
}

/* Closes the connection on the wire. Never from inside a hiredis callback.
 * Its job, if any, must already be detached. */
static void conn_close(struct redis_conn *conn)
{
	redisAsyncContext *ac = conn->ac;
	conn_dead(conn);
	if (ac != NULL)
		redisAsyncFree(ac); /* calls back with NULL replies: no job listens any more */
}

static void call_free(struct redis_call *call);

/* ---- the adapter between hiredis and the worker's event_base ---- */

static void on_read(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct redis_conn *conn = argument;
	redisAsyncContext *ac = conn->ac;
	if (ac == NULL)
		return;
	struct redis_call *call = conn_call(conn);
	if (call != NULL && ac->c.reader->len - ac->c.reader->pos > call->limit + 64) {
		/* The reply grows past max_size: stop reading it. */
		struct job_attempt *attempt = call->attempt;
		size_t limit = call->limit;
		attempt->data = NULL;
		pool_release(&call->pc);
		call_free(call);
		conn_close(conn);
		runner_fail(attempt, "ResponseTooLarge", NULL,
		            "redis.command: the reply is larger than max_size (%zu bytes)", limit);
		return;
	}
	redisAsyncHandleRead(ac);
}

static void on_write(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct redis_conn *conn = argument;
	if (conn->ac != NULL)
		redisAsyncHandleWrite(conn->ac);
}

static void adapter_add_read(void *data)
{
	struct redis_conn *conn = data;
	event_add(conn->read_event, NULL);
}

static void adapter_del_read(void *data)
{
	struct redis_conn *conn = data;
	event_del(conn->read_event);
}

static void adapter_add_write(void *data)
{
	struct redis_conn *conn = data;
	event_add(conn->write_event, NULL);
}

static void adapter_del_write(void *data)
{
	struct redis_conn *conn = data;
	event_del(conn->write_event);
}

static void adapter_cleanup(void *data)
{
	struct redis_conn *conn = data;
	event_free(conn->read_event);
	event_free(conn->write_event);
	conn->read_event = conn->write_event = NULL;
}

/* ---- a job's command ---- */

/* Frees a call already out of its pool (pool_release). */
static void call_free(struct redis_call *call)
{
	pool_call_fini(&call->pc);
	free(call);
}

/* Detaches the job from its connection and ends it. The connection stays
 * usable (idle) when keep is true; otherwise it is closed later. */
static void call_end(struct redis_call *call, bool keep, json_t *result, const char *type,
                     const char *message)
{
	struct job_attempt *attempt = call->attempt;
	struct pool *pool = call->pool;
	char key[REDIS_URL_MAX + 32];
	snprintf(key, sizeof(key), "%s", call->pc.key);
	attempt->data = NULL;
	struct pool_conn *released = pool_release(&call->pc);
	if (released != NULL) {
		struct redis_conn *conn = POOL_OWNER(released, struct redis_conn, pc);
		if (!keep && conn->ac != NULL) {
			/* Inside a hiredis callback: let it return first. */
			redisAsyncDisconnect(conn->ac);
			conn->closing = true;
		} else if (keep && conn->ac != NULL && !conn->closing) {
			pool_conn_idle(released);
		}
	}
	call_free(call);
	if (type == NULL)
		runner_complete(attempt, result);
	else
		runner_fail(attempt, type, NULL, "redis.command: %s", message);
	pool_kick(pool, key);
}

static bool utf8_string(const char *data, size_t length, json_t **out)
{
	json_t *text = json_stringn(data, length);
	if (text != NULL) {
		*out = text;
		return true;
	}
	char *encoded = memory_alloc(BASE64_ENCODE_RAW_LENGTH(length) + 1);
	base64_encode_raw(encoded, length, (const uint8_t *)data);
	encoded[BASE64_ENCODE_RAW_LENGTH(length)] = '\0';
	*out = json_pack("{s:s}", "base64", encoded);
	free(encoded);
	return false;
}

/* A reply as JSON: a new reference. Errors inside arrays (EXEC) become
 * {"error": message}; strings that are not UTF-8 {"base64": ...}. */
static json_t *reply_to_json(const redisReply *reply)
{
	json_t *value;
	switch (reply->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
		utf8_string(reply->str, reply->len, &value);
		return value;
	case REDIS_REPLY_INTEGER:
		return json_integer(reply->integer);
	case REDIS_REPLY_ARRAY:
		value = json_array();
		for (size_t i = 0; i < reply->elements; i++)
			json_array_append_new(value, reply_to_json(reply->element[i]));
		return value;
	case REDIS_REPLY_ERROR:
		utf8_string(reply->str, reply->len, &value);
		return json_pack("{s:o}", "error", value);
	case REDIS_REPLY_NIL:
	default:
		return json_null();
	}
}

/* hiredis, for every reply on the connection (NULL when it is going away). */

/* hiredis, for every reply on the connection (NULL when it is going away). */
static void on_reply(redisAsyncContext *ac, void *raw, void *data)
{
	(void)ac;
	struct redis_conn *conn = data;
	redisReply *reply = raw;
	struct redis_call *call = conn_call(conn);
	if (call == NULL)
		return; /* its job was cancelled, or it is the setup of a closed one */
	if (reply == NULL) {
		call_end(call, false, NULL, "ConnectionError",
		         conn->error[0] != '\0' ? conn->error : "the connection was lost");
		return;
	}
	if (call->setup_replies > 0) {
		call->setup_replies--;
		if (reply->type == REDIS_REPLY_ERROR) {
			char message[256];
			snprintf(message, sizeof(message), "setting up the connection: %.*s", (int)reply->len,
			         reply->str);
			call_end(call, false, NULL, "RedisError", message);
		}
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		char message[512];
		snprintf(message, sizeof(message), "%.*s", (int)reply->len, reply->str);
		call_end(call, true, NULL, "RedisError", message);
		return;
	}
	json_t *result = reply_to_json(reply);
	char *text = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t size = text != NULL ? strlen(text) : 0;
	free(text);
	if (size > call->limit) {
		json_decref(result);
		char message[128];
		snprintf(message, sizeof(message), "the reply is larger than max_size (%zu bytes)",
		         call->limit);
		call_end(call, true, NULL, "ResponseTooLarge", message);
		return;
	}
	call_end(call, true, result, NULL, NULL);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_conn *conn = ac->data;
	struct redis_call *call = conn_call(conn);
	if (status == REDIS_OK) {
		conn->connected = true;
		if (call != NULL)
			pool_connected(&call->pc);
		return;
	}
	/* hiredis frees the context after this, then calls on_reply with NULL
	 * for each command queued: the job's, unless the pool took the job back
	 * to try the host's next address (it is unbound then). */
	if (call == NULL)
		snprintf(conn->error, sizeof(conn->error), "cannot connect: %s", ac->errstr);
	else
		(void)pool_connect_failed(&call->pc, ac->errstr, conn->error, sizeof(conn->error));
	conn_dead(conn);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	(void)status;
	struct redis_conn *conn = ac->data;
	if (conn->ac == NULL)
		return; /* we closed it */
	conn_dead(conn);
	struct redis_call *call = conn_call(conn);
	if (call != NULL)
		call_end(call, false, NULL, "ConnectionError",
		         conn->error[0] != '\0' ? conn->error : "the server closed the connection");
}

/* The job's timeout, or redis_stop: its command is abandoned on the wire
 * (its connection closed). */
static void call_abort(struct redis_call *call)
{
	struct pool *pool = call->pool;
	char key[REDIS_URL_MAX + 32];
	snprintf(key, sizeof(key), "%s", call->pc.key);
	call->attempt->data = NULL;
	struct pool_conn *released = pool_release(&call->pc);
	if (released != NULL)
		conn_close(POOL_OWNER(released, struct redis_conn, pc));
	call_free(call);
	pool_kick(pool, key);
}

static void on_call_timeout(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct redis_call *call = argument;
	struct job_attempt *attempt = call->attempt;
	call_abort(call);
	runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_TIMEOUT), NULL,
	            "redis.command: no reply within its timeout");
}

void redis_worker_exit(struct event_base *base)
{
	pool_worker_exit(&redis_pool_kind, base);
}

/* A new connection to call's target, listed in the pool bound to call;
 * NULL with reason set (the connect failed at once: refused, unreachable). */
static struct redis_conn *conn_open(struct pool *pool, struct redis_call *call, char *reason,
                                    size_t size)
{
	const struct redis_target *target = &call->target;
	redisAsyncContext *ac = target->path[0] != '\0' ? redisAsyncConnectUnix(target->path)
	                                                : redisAsyncConnect(target->address, target->port);
	if (ac == NULL) {
		snprintf(reason, size, "out of memory");
		return NULL;
	}
	if (ac->err) {
		snprintf(reason, size, "%s", ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	struct redis_conn *conn = memory_zalloc(sizeof(*conn));
	conn->ac = ac;
	struct event_base *base = pool_base(pool);
	conn->read_event = event_new(base, ac->c.fd, EV_READ, on_read, conn);
	conn->write_event = event_new(base, ac->c.fd, EV_WRITE, on_write, conn);
	ac->data = conn;
	ac->ev.data = conn;
	ac->ev.addRead = adapter_add_read;
	ac->ev.delRead = adapter_del_read;
	ac->ev.addWrite = adapter_add_write;
	ac->ev.delWrite = adapter_del_write;
	ac->ev.cleanup = adapter_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* The connect is under way: wait for it to be writable. */
	event_add(conn->write_event, NULL);
	pool_conn_add(pool, &conn->pc, call->pc.key, &call->pc);
	return conn;
}

static void redis_start(struct job_attempt *attempt)
{
	const json_t *args = attempt->job->args;
	const char *url = json_string_value(json_object_get(args, "url"));
	struct redis_target target;
	struct problem problem;
	problem_init(&problem);
	if (parse_url(url, &target, &problem) != WEFT_OK) {
		runner_fail(attempt, "ValueError", NULL, "redis.command: %s", problem.message);
		return;
	}
	uid_t owner = attempt->job->owner->uid;
	if (target.path[0] != '\0' && owner != geteuid()) {
		runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_PERMISSION), NULL,
		            "redis.command: uid %u may not use unix socket %s on this weftd (it would "
		            "connect with the daemon's rights, uid %u); use a TCP address",
		            (unsigned)owner, target.path, (unsigned)geteuid());
		return;
	}
	struct pool *pool = pool_get(&redis_pool_kind, workers_base(attempt->worker));
	if (pool == NULL) {
		runner_fail(attempt, "OSError", NULL, "redis.command: cannot set up the worker's pool");
		return;
	}
	struct redis_call *call = memory_zalloc(sizeof(*call));
	const json_t *timeout = json_object_get(args, "timeout");
	double seconds = timeout != NULL ? json_number_value(timeout) : REDIS_TIMEOUT_DEFAULT;
	if (pool_call_init(&call->pc, pool, (unsigned)owner, url, seconds, on_call_timeout, call) != WEFT_OK) {
		free(call);
		runner_fail(attempt, "OSError", NULL, "redis.command: out of memory");
		return;
	}
	call->attempt = attempt;
	call->pool = pool;
	call->target = target;
	const json_t *size = json_object_get(args, "max_size");
	call->limit = size != NULL ? (size_t)json_integer_value(size) : REDIS_REPLY_DEFAULT;
	attempt->data = call;
	/* A name is resolved first (the timeout counts); then the call waits
	 * behind the jobs already waiting for this pool, so none is overtaken. */
	bool name = target.path[0] == '\0' && target.address[0] == '\0';
	pool_submit(pool, &call->pc, name ? call->target.host : NULL);
}

/* Sends call's command on conn (fresh: AUTH and SELECT first). */
static void call_send(struct redis_call *call, struct redis_conn *conn, bool fresh)
{
	const json_t *args = call->attempt->job->args;
	if (fresh && call->target.password[0] != '\0') {
		redisAsyncCommand(conn->ac, on_reply, conn, "AUTH %s", call->target.password);
		call->setup_replies++;
	}
	if (fresh && call->target.db != 0) {
		redisAsyncCommand(conn->ac, on_reply, conn, "SELECT %ld", call->target.db);
		call->setup_replies++;
	}
	const json_t *argv = json_object_get(args, "argv");
	size_t count = json_array_size(argv);
	const char **parts = memory_alloc(count * sizeof(*parts));
	size_t *lengths = memory_alloc(count * sizeof(*lengths));
	char **owned = memory_zalloc(count * sizeof(*owned));
	for (size_t i = 0; i < count; i++) {
		const json_t *item = json_array_get(argv, i);
		if (json_is_string(item)) {
			parts[i] = json_string_value(item);
			lengths[i] = json_string_length(item);
		} else {
			owned[i] = json_dumps(item, JSON_ENCODE_ANY | JSON_COMPACT);
			parts[i] = owned[i];
			lengths[i] = strlen(owned[i]);
		}
	}
	redisAsyncCommandArgv(conn->ac, on_reply, conn, (int)count, parts, lengths);
	for (size_t i = 0; i < count; i++)
		free(owned[i]);
	free(owned);
	free(lengths);
	free(parts);
}

/* ---- the pool's side ---- */

static void kind_reuse(struct pool_call *pc, struct pool_conn *conn)
{
	call_send(POOL_OWNER(pc, struct redis_call, pc), POOL_OWNER(conn, struct redis_conn, pc), false);
}

static void kind_open(struct pool *pool, struct pool_call *pc)
{
	struct redis_call *call = POOL_OWNER(pc, struct redis_call, pc);
	char reason[256], message[1024];
	struct redis_conn *conn = conn_open(pool, call, reason, sizeof(reason));
	if (conn == NULL) {
		if (!pool_connect_failed(pc, reason, message, sizeof(message)))
			call_end(call, false, NULL, "ConnectionError", message);
		return;
	}
	call->setup_replies = 0; /* a failed address's AUTH and SELECT were never answered */
	call_send(call, conn, true);
}

static void kind_close(struct pool_conn *conn)
{
	conn_close(POOL_OWNER(conn, struct redis_conn, pc));
}

static void kind_destroy(struct pool_conn *pc)
{
	struct redis_conn *conn = POOL_OWNER(pc, struct redis_conn, pc);
	redisAsyncContext *ac = conn->ac;
	conn->ac = NULL;
	pc->call = NULL; /* jobs were stopped before the workers */
	pool_conn_remove(pc);
	if (ac != NULL)
		redisAsyncFree(ac);
	free(conn);
}

static void kind_resolved(struct pool_call *pc, const char *address)
{
	struct redis_call *call = POOL_OWNER(pc, struct redis_call, pc);
	snprintf(call->target.address, sizeof(call->target.address), "%s", address);
}

static void kind_unresolved(struct pool_call *pc, const char *message)
{
	struct redis_call *call = POOL_OWNER(pc, struct redis_call, pc);
	char text[RESOLVE_NAME_MAX + 200];
	snprintf(text, sizeof(text), "cannot resolve '%s': %s", call->target.host, message);
	call_end(call, false, NULL, "ConnectionError", text);
}

static const struct pool_kind redis_pool_kind = {
	.id = POOL_REDIS,
	.name = "redis",
	.max = REDIS_POOL_MAX,
	.reuse = kind_reuse,
	.open = kind_open,
	.close = kind_close,
	.destroy = kind_destroy,
	.resolved = kind_resolved,
	.unresolved = kind_unresolved,
};

/* The attempt's worker: cancelled or timed out; its connection is closed, so
 * the server stops whatever it was doing for it. */
static void redis_stop(struct job_attempt *attempt)
{
	struct redis_call *call = attempt->data;
	if (call == NULL)
		return;
	call_abort(call);
}

const struct function redis_command_function = {
	.name = "redis.command",
	.executor = FUNCTION_LOOP,
	.summary = "one Redis command on a worker loop; the reply as JSON (errors fail with RedisError)",
	.arguments = redis_arguments,
	.check = redis_check,
	.start = redis_start,
	.stop = redis_stop,
};

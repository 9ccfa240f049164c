/*
 * sql.query for PostgreSQL (MySQL/MariaDB URLs go to sql_mysql.c); see sql.h.
 *
 * Design. Everything runs on one worker's thread: its pool (pool.h, made on
 * first use), its connections, the calls on them and the calls waiting for
 * one. A connection (struct sql_conn) goes
 * CONNECTING -> IDLE <-> BUSY and ends DEAD; it has one event, re-armed for
 * what libpq waits for (PQconnectPoll's READING/WRITING, PQflush's pending
 * output, the query's input). libpq calls nothing back, so a connection may
 * be freed from its own event's callback (libevent allows freeing an event
 * inside its callback).
 *
 * Results come row by row (PQsetSingleRowMode), so a result larger than
 * max_size is stopped as it grows instead of after libpq has read it all.
 *
 * Aborting a query (cancel, timeout, too large): the job ends at once, and
 * the connection leaves the pool for a pool thread (PQcancel blocks: it
 * connects), which tells the server to cancel through the PGcancel taken at
 * connect and reads what the connection still brings until the query has
 * ended, then closes it. A cancel that reaches the server before it started
 * the query (its text still in the socket) cancels nothing, so the cancel is
 * sent again until the query ends, SQL_ABORT_TRIES times at most. Closing
 * at once instead would leave such a query running for its whole length:
 * the server does not notice a closed client while it sleeps or computes.
 */
#include "daemon/executors/io/sql.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <libpq-fe.h>
#include <math.h>
#include <poll.h>
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
#include "daemon/executors/io/sql_mysql.h"
#include "daemon/runtime/runtime.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/workers.h"
#include "weft/error.h"
#include "weft/executor.h"

#define SQL_URL_MAX 1024
#define SQL_TEXT_MAX (1u << 20)
#define SQL_PARAMS_MAX 1000
#define SQL_TIMEOUT_DEFAULT 30.0
/* An aborted query: cancels sent at most, and the first wait for its end
 * after one (doubled after each: 0.1 + 0.2 + ... + 3.2 s in all). */
#define SQL_ABORT_TRIES 6
#define SQL_ABORT_FIRST_WAIT_MS 100

struct sql_target {
	char host[RESOLVE_NAME_MAX + 1]; /* as the URL names it, or "" */
	char hostaddr[64];   /* numeric: host or what it resolved to; "" while unresolved */
	char socket_dir[108]; /* a unix socket directory, or "" */
	char port[8];
	char dbname[64];
	char user[64];       /* "" for the owner's account name */
	char password[256];
	char sslmode[16];
};

enum sql_state { SQL_CONNECTING, SQL_IDLE, SQL_BUSY, SQL_DEAD };

struct sql_conn {
	struct pool_conn pc; /* its call is the query on it, or NULL */
	PGconn *pg;
	PGcancel *cancel; /* owned; taken once connected */
	struct event *event;
	enum sql_state state;
};

/* One job's query: the attempt's data. */
struct sql_call {
	struct pool_call pc;      /* its key is "uid url" */
	struct job_attempt *attempt;
	struct pool *pool;
	struct sql_target target;
	size_t limit, bytes;
	json_t *columns, *rows;   /* owned */
	json_int_t affected;
	json_t *error;            /* owned: {"sqlstate", "message"} of the first error, or NULL */
};

static const struct pool_kind sql_pool_kind;

/* The query on conn, or NULL. */
static struct sql_call *conn_call(const struct sql_conn *conn)
{
	return conn->pc.call != NULL ? POOL_OWNER(conn->pc.call, struct sql_call, pc) : NULL;
}

/* ---- URLs ---- */

static int decode(const char *from, size_t length, char *to, size_t size)
{
	size_t out = 0;
	for (size_t i = 0; i < length; i++) {
		char c = from[i];
		if (c == '%' && i + 2 < length && isxdigit((unsigned char)from[i + 1]) &&
		    isxdigit((unsigned char)from[i + 2])) {
			char hex[3] = {from[i + 1], from[i + 2], '\0'};
			c = (char)strtol(hex, NULL, 16);
			i += 2;
		}
		if (c == '\0' || out + 1 >= size)
			return -1;
		to[out++] = c;
	}
	to[out] = '\0';
	return 0;
}

/* postgresql://[user[:password]@][host][:port][/dbname][?host=/dir&sslmode=M] */
static int parse_url(const char *url, struct sql_target *target, struct problem *problem)
{
	memset(target, 0, sizeof(*target));
	const char *rest;
	if (strncmp(url, "postgresql://", 13) == 0)
		rest = url + 13;
	else if (strncmp(url, "postgres://", 11) == 0)
		rest = url + 11;
	else
		return problem_set(problem, WEFT_EBADARGS, "args.url",
		                   "'url' must be postgresql://user:password@host:port/dbname or "
		                   "mysql://user:password@host:port/dbname");
	const char *end = rest + strcspn(rest, "/?");
	const char *at = memchr(rest, '@', (size_t)(end - rest));
	if (at != NULL) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));
		const char *user_end = colon != NULL ? colon : at;
		if (decode(rest, (size_t)(user_end - rest), target->user, sizeof(target->user)) != 0 ||
		    (colon != NULL && decode(colon + 1, (size_t)(at - colon - 1), target->password,
		                             sizeof(target->password)) != 0))
			return problem_set(problem, WEFT_EBADARGS, "args.url", "bad user or password in 'url'");
		rest = at + 1;
	}
	char host[RESOLVE_NAME_MAX + 1] = "";
	const char *host_end = rest + strcspn(rest, ":/?");
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		if (close == NULL || close > end || (size_t)(close - rest - 1) >= sizeof(host))
			return problem_set(problem, WEFT_EBADARGS, "args.url", "bad IPv6 address in 'url'");
		memcpy(host, rest + 1, (size_t)(close - rest - 1));
		host_end = close + 1;
	} else {
		if ((size_t)(host_end - rest) >= sizeof(host))
			return problem_set(problem, WEFT_EBADARGS, "args.url", "the host is too long");
		memcpy(host, rest, (size_t)(host_end - rest));
	}
	rest = host_end;
	snprintf(target->port, sizeof(target->port), "5432");
	if (rest[0] == ':') {
		char *stop;
		long port = strtol(rest + 1, &stop, 10);
		if (stop == rest + 1 || port < 1 || port > 65535)
			return problem_set(problem, WEFT_EBADARGS, "args.url", "the port must be 1-65535");
		snprintf(target->port, sizeof(target->port), "%ld", port);
		rest = stop;
	}
	if (rest[0] == '/') {
		const char *db_end = rest + 1 + strcspn(rest + 1, "?");
		if (decode(rest + 1, (size_t)(db_end - rest - 1), target->dbname, sizeof(target->dbname)) != 0)
			return problem_set(problem, WEFT_EBADARGS, "args.url", "bad database name in 'url'");
		rest = db_end;
	}
	if (rest[0] == '?') {
		rest++;
		while (*rest != '\0') {
			const char *pair_end = rest + strcspn(rest, "&");
			char pair[160];
			if ((size_t)(pair_end - rest) >= sizeof(pair))
				return problem_set(problem, WEFT_EBADARGS, "args.url", "a URL parameter is too long");
			if (decode(rest, (size_t)(pair_end - rest), pair, sizeof(pair)) != 0)
				return problem_set(problem, WEFT_EBADARGS, "args.url", "bad URL parameter");
			if (strncmp(pair, "host=/", 6) == 0 && strlen(pair + 5) < sizeof(target->socket_dir))
				strcpy(target->socket_dir, pair + 5);
			else if (strncmp(pair, "sslmode=", 8) == 0 && strlen(pair + 8) < sizeof(target->sslmode) &&
			         (strcmp(pair + 8, "disable") == 0 || strcmp(pair + 8, "prefer") == 0 ||
			          strcmp(pair + 8, "require") == 0))
				strcpy(target->sslmode, pair + 8);
			else
				return problem_set(problem, WEFT_EBADARGS, "args.url",
				                   "sql.query takes only ?host=/socket/directory and "
				                   "sslmode=disable|prefer|require in its URL, not '%.40s'",
				                   pair);
			rest = *pair_end == '&' ? pair_end + 1 : pair_end;
		}
	}
	if (target->socket_dir[0] == '\0') {
		if (host[0] == '\0')
			strcpy(host, "127.0.0.1");
		if (resolve_is_numeric(host))
			strcpy(target->hostaddr, host);
		else if (resolve_name_valid(host))
			strcpy(target->host, host);
		else
			return problem_set(problem, WEFT_EBADARGS, "args.url",
			                   "'%.64s' is neither a host name nor a numeric address", host);
	}
	return WEFT_OK;
}

/* ---- arguments ---- */

static const struct function_argument sql_arguments[] = {
	{"url", "string (required): postgresql://user:password@host:port/dbname[?host=/socket/dir] or "
	        "mysql://user:password@host:port/dbname[?socket=/path]"},
	{"sql", "string (required): one statement; $1, $2... (PostgreSQL) or ? (MySQL) are the params"},
	{"params", "array (optional): the parameters, bound (never interpolated); null, booleans, "
	           "numbers, strings; arrays and objects are sent as JSON text"},
	{"timeout", "number > 0 (optional): seconds for waiting, connecting and the query; 30 by default"},
	{"max_size", "integer >= 0 (optional): largest result accepted, bytes; 1 MiB by default, 16 MiB at most"},
	{NULL, NULL},
};

static int sql_check(const struct function *function, const json_t *args, struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	const json_t *url = json_object_get(args, "url");
	if (!json_is_string(url) || json_string_length(url) > SQL_URL_MAX)
		return problem_set(problem, WEFT_EBADARGS, "args.url",
		                   "sql.query needs 'url', a postgresql:// URL of at most %d bytes", SQL_URL_MAX);
	struct sql_target target;
	if (sql_mysql_url_is_mine(json_string_value(url))) {
		if ((rv = sql_mysql_url_check(json_string_value(url), problem)) != WEFT_OK)
			return rv;
	} else if ((rv = parse_url(json_string_value(url), &target, problem)) != WEFT_OK) {
		return rv;
	}
	const json_t *sql = json_object_get(args, "sql");
	if (!json_is_string(sql) || json_string_length(sql) == 0 || json_string_length(sql) > SQL_TEXT_MAX ||
	    strlen(json_string_value(sql)) != json_string_length(sql))
		return problem_set(problem, WEFT_EBADARGS, "args.sql",
		                   "sql.query needs 'sql', a statement of at most %u bytes without NUL",
		                   SQL_TEXT_MAX);
	const json_t *params = json_object_get(args, "params");
	if (params != NULL && (!json_is_array(params) || json_array_size(params) > SQL_PARAMS_MAX))
		return problem_set(problem, WEFT_EBADARGS, "args.params",
		                   "'params' must be an array of at most %d values", SQL_PARAMS_MAX);
	size_t i;
	const json_t *item;
	json_array_foreach(params, i, item) {
		if (json_is_string(item) && strlen(json_string_value(item)) != json_string_length(item))
			return problem_set(problem, WEFT_EBADARGS, "args.params",
			                   "params[%zu] contains NUL, which PostgreSQL text cannot hold", i);
	}
	return pool_check_limits(args, SQL_RESULT_MAX, problem);
}

/* ---- cancelling on the server, from the thread pool ---- */

/* An aborted connection on its way out; owned by the pool thread that
 * aborts it (or by cancel_body until the pool takes it). */
struct sql_abort {
	PGconn *pg;
	PGcancel *cancel;
};

static void abort_free(struct sql_abort *abort)
{
	PQfinish(abort->pg);
	PQfreeCancel(abort->cancel);
	free(abort);
}

/* Pool thread: reads results until the connection has no query left (true)
 * or wait_ms have passed (false). A broken connection has none left. */
static bool query_ended(PGconn *pg, int wait_ms)
{
	double deadline = now_monotonic() + wait_ms / 1000.0;
	for (;;) {
		if (PQconsumeInput(pg) == 0)
			return true;
		while (!PQisBusy(pg)) {
			PGresult *result = PQgetResult(pg);
			if (result == NULL)
				return true;
			PQclear(result);
		}
		double left = deadline - now_monotonic();
		if (left <= 0)
			return false;
		struct pollfd readable = {.fd = PQsocket(pg), .events = POLLIN};
		if (poll(&readable, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR)
			return true;
	}
}

/* Pool thread: cancels the query until it has ended, then closes. */
static void *abort_blocking(void *argument)
{
	struct sql_abort *abort = argument;
	int wait_ms = SQL_ABORT_FIRST_WAIT_MS;
	for (int try = 0; try < SQL_ABORT_TRIES; try++, wait_ms *= 2) {
		char message[256];
		/* A server that cannot be reached cannot be told; closing is all. */
		if (!PQcancel(abort->cancel, message, sizeof(message)))
			break;
		if (query_ended(abort->pg, wait_ms))
			break;
	}
	abort_free(abort);
	return NULL;
}

/* Task body on a worker: hands the abort to the pool and waits for it. */
static int cancel_body(void *argument)
{
	int rv = weft_run_in_thread(abort_blocking, argument, NULL);
	if (rv != WEFT_OK && rv != WEFT_ECANCELED)
		abort_free(argument); /* the pool refused it: it never ran */
	return WEFT_OK;
}

/* ---- connections ---- */

static void on_conn_event(evutil_socket_t fd, short what, void *argument);

static void conn_wait(struct sql_conn *conn, short what)
{
	event_del(conn->event);
	event_assign(conn->event, pool_base(conn->pc.pool), PQsocket(conn->pg), what, on_conn_event, conn);
	event_add(conn->event, NULL);
}

/* Closes and frees a connection that no call uses any more. With cancel,
 * the server is told to stop the query it runs. */
static void conn_free(struct sql_conn *conn, bool cancel)
{
	pool_conn_remove(&conn->pc);
	event_free(conn->event);
	if (cancel && conn->pg != NULL && conn->cancel != NULL) {
		/* The loop lets go of the connection (its event is gone): the
		 * abort owns it from here. */
		struct sql_abort *abort = memory_alloc(sizeof(*abort));
		abort->pg = conn->pg;
		abort->cancel = conn->cancel;
		conn->pg = NULL;
		conn->cancel = NULL;
		if (runtime_inject(workers_runtime(runner_workers()), cancel_body, abort, NULL, NULL) !=
		    WEFT_OK)
			abort_free(abort);
	}
	if (conn->pg != NULL)
		PQfinish(conn->pg);
	if (conn->cancel != NULL)
		PQfreeCancel(conn->cancel);
	free(conn);
}

/* ---- calls ---- */

static void call_free(struct sql_call *call)
{
	json_decref(call->columns);
	json_decref(call->rows);
	json_decref(call->error);
	pool_call_fini(&call->pc);
	free(call);
}

/* Ends the call's attempt (the call is freed); its connection goes back to
 * the pool (reuse) or is closed (aborting the query on the server). */
static void call_end(struct sql_call *call, bool reuse, json_t *result, const char *type,
                     json_t *details, const char *message)
{
	struct job_attempt *attempt = call->attempt;
	struct pool *pool = call->pool;
	char key[SQL_URL_MAX + 32];
	snprintf(key, sizeof(key), "%s", call->pc.key);
	attempt->data = NULL;
	struct pool_conn *released = pool_release(&call->pc);
	if (released != NULL) {
		struct sql_conn *conn = POOL_OWNER(released, struct sql_conn, pc);
		if (reuse && conn->state == SQL_IDLE) {
			pool_conn_idle(released);
			conn_wait(conn, EV_READ); /* to notice the server going away */
		} else {
			conn_free(conn, conn->state == SQL_BUSY);
		}
	}
	call_free(call);
	if (type == NULL)
		runner_complete(attempt, result);
	else
		runner_fail(attempt, type, details, "sql.query: %s", message);
	pool_kick(pool, key);
}

static json_t *value_to_json(const PGresult *result, int row, int column)
{
	if (PQgetisnull(result, row, column))
		return json_null();
	const char *text = PQgetvalue(result, row, column);
	size_t length = (size_t)PQgetlength(result, row, column);
	switch (PQftype(result, column)) {
	case 16: /* bool */
		return json_boolean(text[0] == 't');
	case 20: /* int8 */
	case 21: /* int2 */
	case 23: /* int4 */
	case 26: /* oid */
		return json_integer(strtoll(text, NULL, 10));
	case 700: /* float4 */
	case 701: { /* float8 */
		double number = strtod(text, NULL);
		if (isfinite(number))
			return json_real(number);
		break;
	}
	case 114:  /* json */
	case 3802: { /* jsonb */
		json_t *parsed = json_loadb(text, length, JSON_DECODE_ANY, NULL);
		if (parsed != NULL)
			return parsed;
		break;
	}
	default:
		break;
	}
	json_t *string = json_stringn(text, length);
	return string != NULL ? string : json_null();
}

/* A result of the query came: a row, the end of the rows, a command's end or an error. */
static bool take_result(struct sql_call *call, PGresult *result)
{
	switch (PQresultStatus(result)) {
	case PGRES_SINGLE_TUPLE:
	case PGRES_TUPLES_OK: {
		int fields = PQnfields(result);
		if (call->columns == NULL) {
			call->columns = json_array();
			for (int c = 0; c < fields; c++)
				json_array_append_new(call->columns, json_string(PQfname(result, c)));
		}
		for (int r = 0; r < PQntuples(result); r++) {
			json_t *row = json_array();
			for (int c = 0; c < fields; c++) {
				call->bytes += (size_t)PQgetlength(result, r, c) + 8;
				json_array_append_new(row, value_to_json(result, r, c));
			}
			json_array_append_new(call->rows, row);
			call->affected++;
		}
		return call->bytes <= call->limit;
	}
	case PGRES_COMMAND_OK:
		call->affected = strtoll(PQcmdTuples(result), NULL, 10);
		return true;
	case PGRES_FATAL_ERROR:
	default:
		if (call->error == NULL) {
			const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
			const char *message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
			if (message == NULL)
				message = PQresultErrorMessage(result);
			call->error = json_pack("{s:s, s:s}", "sqlstate", state != NULL ? state : "",
			                        "message", message != NULL ? message : "");
			if (call->error == NULL)
				call->error = json_pack("{s:s, s:s}", "sqlstate", "", "message", "(not UTF-8)");
		}
		return true;
	}
}

static void query_done(struct sql_conn *conn, struct sql_call *call)
{
	conn->state = SQL_IDLE;
	if (call->error != NULL) {
		char message[600];
		snprintf(message, sizeof(message), "%s (SQLSTATE %s)",
		         json_string_value(json_object_get(call->error, "message")),
		         json_string_value(json_object_get(call->error, "sqlstate")));
		json_t *details = json_incref(call->error);
		call_end(call, true, NULL, "SQLError", details, message);
		return;
	}
	json_t *result = json_object();
	json_object_set_new(result, "columns", call->columns != NULL ? json_incref(call->columns)
	                                                            : json_array());
	json_object_set(result, "rows", call->rows);
	json_object_set_new(result, "affected", json_integer(call->affected));
	call_end(call, true, result, NULL, NULL, NULL);
}

/* libpq's last error without its trailing newline, in reason[size]. */
static void pg_reason(const PGconn *pg, char *reason, size_t size)
{
	snprintf(reason, size, "%s", pg != NULL ? PQerrorMessage(pg) : "out of memory");
	size_t length = strlen(reason);
	while (length > 0 && (reason[length - 1] == '\n' || reason[length - 1] == ' '))
		reason[--length] = '\0';
}

/* unreached: the server was never reached (the TCP connect failed), so the
 * pool may try the host's next address. */
static void conn_failed(struct sql_conn *conn, const char *what, bool unreached)
{
	char reason[512], message[1024];
	pg_reason(conn->pg, reason, sizeof(reason));
	struct sql_call *call = conn_call(conn);
	if (call == NULL) {
		conn_free(conn, false);
		return;
	}
	conn->state = SQL_DEAD;
	if (unreached) {
		if (pool_connect_failed(&call->pc, reason, message, sizeof(message))) {
			conn_free(conn, false); /* unbound: the call is the pool's again */
			return;
		}
	} else {
		snprintf(message, sizeof(message), "%s: %s", what, reason);
	}
	call_end(call, false, NULL, "ConnectionError", NULL, message);
}

static void send_query(struct sql_conn *conn)
{
	struct sql_call *call = conn_call(conn);
	const json_t *args = call->attempt->job->args;
	const json_t *params = json_object_get(args, "params");
	size_t count = json_array_size(params);
	const char **values = memory_zalloc((count + 1) * sizeof(*values));
	char **owned = memory_zalloc((count + 1) * sizeof(*owned));
	for (size_t i = 0; i < count; i++) {
		const json_t *item = json_array_get(params, i);
		if (json_is_null(item))
			values[i] = NULL;
		else if (json_is_string(item))
			values[i] = json_string_value(item);
		else if (json_is_true(item))
			values[i] = "true";
		else if (json_is_false(item))
			values[i] = "false";
		else
			values[i] = owned[i] = json_dumps(item, JSON_ENCODE_ANY | JSON_COMPACT);
	}
	int sent = PQsendQueryParams(conn->pg, json_string_value(json_object_get(args, "sql")), (int)count,
	                             NULL, values, NULL, NULL, 0);
	for (size_t i = 0; i < count; i++)
		free(owned[i]);
	free(owned);
	free(values);
	if (!sent) {
		conn_failed(conn, "cannot send the query", false);
		return;
	}
	PQsetSingleRowMode(conn->pg);
	conn->state = SQL_BUSY;
	int flushed = PQflush(conn->pg);
	if (flushed < 0) {
		conn_failed(conn, "cannot send the query", false);
		return;
	}
	conn_wait(conn, flushed == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static void on_conn_event(evutil_socket_t fd, short what, void *argument)
{
	(void)fd;
	struct sql_conn *conn = argument;
	switch (conn->state) {
	case SQL_CONNECTING: {
		/* Still CONNECTION_STARTED: the TCP connect is not done; a failure
		 * then never reached the server. */
		bool was_unreached = PQstatus(conn->pg) == CONNECTION_STARTED;
		PostgresPollingStatusType polled = PQconnectPoll(conn->pg);
		if (polled != PGRES_POLLING_FAILED && PQstatus(conn->pg) != CONNECTION_STARTED &&
		    conn_call(conn) != NULL)
			pool_connected(conn->pc.call);
		switch (polled) {
		case PGRES_POLLING_READING:
			conn_wait(conn, EV_READ);
			return;
		case PGRES_POLLING_WRITING:
			conn_wait(conn, EV_WRITE);
			return;
		case PGRES_POLLING_OK:
			PQsetnonblocking(conn->pg, 1);
			conn->cancel = PQgetCancel(conn->pg);
			conn->state = SQL_IDLE;
			send_query(conn);
			return;
		default:
			conn_failed(conn, "cannot connect", was_unreached);
			return;
		}
	}
	case SQL_IDLE:
		/* Nothing is asked of an idle connection: the server closed it, or
		 * sent a notice. */
		if (!PQconsumeInput(conn->pg) || PQstatus(conn->pg) != CONNECTION_OK)
			conn_free(conn, false);
		else
			conn_wait(conn, EV_READ);
		return;
	case SQL_BUSY:
		break;
	case SQL_DEAD:
		return;
	}
	struct sql_call *call = conn_call(conn);
	if (what & EV_WRITE) {
		int flushed = PQflush(conn->pg);
		if (flushed < 0) {
			conn_failed(conn, "cannot send the query", false);
			return;
		}
		if (flushed == 1) {
			conn_wait(conn, EV_READ | EV_WRITE);
			return;
		}
	}
	if ((what & EV_READ) && !PQconsumeInput(conn->pg)) {
		conn_failed(conn, "the connection was lost", false);
		return;
	}
	while (!PQisBusy(conn->pg)) {
		PGresult *result = PQgetResult(conn->pg);
		if (result == NULL) {
			query_done(conn, call);
			return;
		}
		bool within = take_result(call, result);
		PQclear(result);
		if (!within) {
			char message[128];
			snprintf(message, sizeof(message), "the result is larger than max_size (%zu bytes)",
			         call->limit);
			call_end(call, false, NULL, "ResponseTooLarge", NULL, message);
			return;
		}
	}
	conn_wait(conn, EV_READ);
}

/* A new connection for call (the pool has room). */
static void conn_open(struct pool *pool, struct sql_call *call)
{
	const struct sql_target *target = &call->target;
	const struct principal *owner = call->attempt->job->owner;
	const char *user = target->user[0] != '\0' ? target->user
	                   : owner->identity.user != NULL ? owner->identity.user : "";
	const char *keywords[16], *values[16];
	int n = 0;
	if (target->socket_dir[0] != '\0') {
		keywords[n] = "host";
		values[n++] = target->socket_dir;
	} else {
		/* Connected to the numeric address (libpq never resolves); the name
		 * is the server's for TLS. */
		keywords[n] = "hostaddr";
		values[n++] = target->hostaddr;
		if (target->host[0] != '\0') {
			keywords[n] = "host";
			values[n++] = target->host;
		}
	}
	keywords[n] = "port";
	values[n++] = target->port;
	keywords[n] = "user";
	values[n++] = user;
	keywords[n] = "dbname";
	values[n++] = target->dbname[0] != '\0' ? target->dbname : user;
	if (target->password[0] != '\0') {
		keywords[n] = "password";
		values[n++] = target->password;
	}
	/* None of the daemon's own files: its ~/.pgpass, service file or client
	 * certificates would serve another user. */
	keywords[n] = "passfile";
	values[n++] = "/dev/null";
	keywords[n] = "service";
	values[n++] = "";
	keywords[n] = "sslcert";
	values[n++] = "/dev/null";
	keywords[n] = "sslkey";
	values[n++] = "/dev/null";
	keywords[n] = "sslmode";
	values[n++] = target->sslmode[0] != '\0' ? target->sslmode : "prefer";
	keywords[n] = "application_name";
	values[n++] = "weft";
	keywords[n] = NULL;
	values[n] = NULL;
	PGconn *pg = PQconnectStartParams(keywords, values, 0);
	if (pg == NULL || PQstatus(pg) == CONNECTION_BAD) {
		/* On loopback a refused connect fails here, at once. */
		char reason[512], message[1024];
		pg_reason(pg, reason, sizeof(reason));
		if (pg != NULL)
			PQfinish(pg);
		if (!pool_connect_failed(&call->pc, reason, message, sizeof(message)))
			call_end(call, false, NULL, "ConnectionError", NULL, message);
		return;
	}
	struct sql_conn *conn = memory_zalloc(sizeof(*conn));
	conn->pg = pg;
	conn->state = SQL_CONNECTING;
	conn->event = event_new(pool_base(pool), -1, 0, on_conn_event, conn);
	pool_conn_add(pool, &conn->pc, call->pc.key, &call->pc);
	conn_wait(conn, EV_WRITE);
}

static void on_call_timeout(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct sql_call *call = argument;
	call_end(call, false, NULL, proto_job_error(PROTO_JOB_ERROR_TIMEOUT), NULL, "no result within its timeout");
}

/* ---- the pool's side ---- */

static void kind_reuse(struct pool_call *pc, struct pool_conn *conn)
{
	(void)pc;
	send_query(POOL_OWNER(conn, struct sql_conn, pc));
}

static void kind_open(struct pool *pool, struct pool_call *pc)
{
	conn_open(pool, POOL_OWNER(pc, struct sql_call, pc));
}

static void kind_close(struct pool_conn *conn)
{
	conn_free(POOL_OWNER(conn, struct sql_conn, pc), false);
}

static void kind_destroy(struct pool_conn *pc)
{
	struct sql_conn *conn = POOL_OWNER(pc, struct sql_conn, pc);
	if (conn->cancel != NULL) {
		PQfreeCancel(conn->cancel);
		conn->cancel = NULL;
	}
	conn_free(conn, false);
}

static void kind_resolved(struct pool_call *pc, const char *address)
{
	struct sql_call *call = POOL_OWNER(pc, struct sql_call, pc);
	snprintf(call->target.hostaddr, sizeof(call->target.hostaddr), "%s", address);
}

static void kind_unresolved(struct pool_call *pc, const char *message)
{
	struct sql_call *call = POOL_OWNER(pc, struct sql_call, pc);
	char text[RESOLVE_NAME_MAX + 200];
	snprintf(text, sizeof(text), "cannot resolve '%s': %s", call->target.host, message);
	call_end(call, false, NULL, "ConnectionError", NULL, text);
}

static const struct pool_kind sql_pool_kind = {
	.id = POOL_POSTGRESQL,
	.name = "postgresql",
	.max = SQL_POOL_MAX,
	.reuse = kind_reuse,
	.open = kind_open,
	.close = kind_close,
	.destroy = kind_destroy,
	.resolved = kind_resolved,
	.unresolved = kind_unresolved,
};

void sql_worker_exit(struct event_base *base)
{
	pool_worker_exit(&sql_pool_kind, base);
}

static void sql_start(struct job_attempt *attempt)
{
	const json_t *args = attempt->job->args;
	const char *url = json_string_value(json_object_get(args, "url"));
	if (sql_mysql_url_is_mine(url)) {
		sql_mysql_start(attempt);
		return;
	}
	struct problem problem;
	problem_init(&problem);
	struct sql_call *call = memory_zalloc(sizeof(*call));
	if (parse_url(url, &call->target, &problem) != WEFT_OK) {
		free(call);
		runner_fail(attempt, "ValueError", NULL, "sql.query: %s", problem.message);
		return;
	}
	uid_t owner = attempt->job->owner->uid;
	if (call->target.socket_dir[0] != '\0' && owner != geteuid()) {
		free(call);
		runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_PERMISSION), NULL,
		            "sql.query: uid %u may not use unix sockets on this weftd: the server's peer "
		            "authentication would see the daemon's uid %u; use a TCP address",
		            (unsigned)owner, (unsigned)geteuid());
		return;
	}
	struct pool *pool = pool_get(&sql_pool_kind, workers_base(attempt->worker));
	if (pool == NULL) {
		free(call);
		runner_fail(attempt, "OSError", NULL, "sql.query: cannot set up the worker's pool");
		return;
	}
	const json_t *timeout = json_object_get(args, "timeout");
	double seconds = timeout != NULL ? json_number_value(timeout) : SQL_TIMEOUT_DEFAULT;
	if (pool_call_init(&call->pc, pool, (unsigned)owner, url, seconds, on_call_timeout, call) != WEFT_OK) {
		free(call);
		runner_fail(attempt, "OSError", NULL, "sql.query: out of memory");
		return;
	}
	call->attempt = attempt;
	call->pool = pool;
	call->rows = json_array();
	const json_t *size = json_object_get(args, "max_size");
	call->limit = size != NULL ? (size_t)json_integer_value(size) : SQL_RESULT_DEFAULT;
	attempt->data = call;
	/* A name is resolved first (the timeout counts); then the call waits
	 * behind the others waiting for this pool, so nobody is overtaken. */
	bool name = call->target.socket_dir[0] == '\0' && call->target.hostaddr[0] == '\0';
	pool_submit(pool, &call->pc, name ? call->target.host : NULL);
}

/* The attempt's worker: cancelled or timed out. */
static void sql_stop(struct job_attempt *attempt)
{
	if (sql_mysql_url_is_mine(json_string_value(json_object_get(attempt->job->args, "url")))) {
		sql_mysql_stop(attempt);
		return;
	}
	struct sql_call *call = attempt->data;
	if (call == NULL)
		return;
	struct pool *pool = call->pool;
	char key[SQL_URL_MAX + 32];
	snprintf(key, sizeof(key), "%s", call->pc.key);
	attempt->data = NULL;
	struct pool_conn *released = pool_release(&call->pc);
	if (released != NULL) {
		struct sql_conn *conn = POOL_OWNER(released, struct sql_conn, pc);
		conn_free(conn, conn->state == SQL_BUSY);
	}
	call_free(call);
	pool_kick(pool, key);
}

const struct function sql_query_function = {
	.name = "sql.query",
	.executor = FUNCTION_LOOP,
	.summary = "one SQL statement with bound parameters on PostgreSQL or MySQL/MariaDB, on a worker loop; "
	           "result {columns, rows, affected}",
	.arguments = sql_arguments,
	.check = sql_check,
	.start = sql_start,
	.stop = sql_stop,
};

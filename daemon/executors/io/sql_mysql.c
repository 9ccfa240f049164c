/*
 * sql.query for MySQL/MariaDB (mysql:// and mariadb:// URLs); see sql_mysql.h.
 *
 * Design. As sql.c, on one worker's thread: a pool (pool.h) of
 * connections per (url, owner), at most SQL_POOL_MAX per worker, with calls
 * waiting in order for one. Connector/C's non-blocking API runs each step
 * (connect, prepare, execute, fetch, close the statement) as a _start call
 * and _cont calls: each returns the events it waits for (MYSQL_WAIT_READ,
 * _WRITE, _EXCEPT, _TIMEOUT), which the connection's one event and timer
 * wait for, or 0 when the step is done. Parameters go through a prepared
 * statement (bound, never interpolated); results are bound as strings.
 *
 * Aborting (cancel, timeout, too large): the connection is closed at once and
 * the server told to end it with KILL CONNECTION from a connection of the
 * same user, made on the thread pool (it blocks) by a small task. KILL QUERY
 * would miss a statement the server has not started yet (its text still in
 * the socket): it would then run its whole length, since the server does not
 * notice a closed client while it sleeps or computes.
 * LOAD DATA LOCAL is off: the server could otherwise ask for any file the
 * daemon can read.
 */
#include "daemon/executors/io/sql_mysql.h"

#include <errno.h>
#include <event2/event.h>
#include <mysql.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/base/problem.h"
#include "daemon/core/jobs.h"
#include "daemon/core/principal.h"
#include "daemon/executors/io/pool.h"
#include "daemon/executors/io/resolve.h"
#include "daemon/executors/io/sql_limits.h"
#include "daemon/runtime/runtime.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/workers.h"
#include "weft/error.h"
#include "weft/executor.h"

#define MY_URL_MAX 1024
#define MY_COLUMN_CHUNK 256

struct my_target {
	char host[RESOLVE_NAME_MAX + 1]; /* as the URL names it, or "" with socket */
	char address[64];    /* numeric: host, or what it resolved to */
	char socket[108];    /* a unix socket, or "" */
	unsigned port;
	char dbname[64];
	char user[64];
	char password[256];
};

enum my_step { MY_CONNECT, MY_PREPARE, MY_EXECUTE, MY_FETCH, MY_CLOSE, MY_IDLE, MY_DEAD };

struct my_conn {
	struct pool_conn pc; /* its call is the query on it, or NULL */
	MYSQL *mysql;
	MYSQL_STMT *stmt;
	struct my_target target; /* for KILL CONNECTION */
	unsigned long thread_id;
	struct event *event;
	struct event *timer; /* Connector/C's own timeouts */
	enum my_step step;
};

struct my_call {
	struct pool_call pc; /* its key is "uid url" */
	struct job_attempt *attempt;
	struct pool *pool;
	struct my_target target;
	size_t limit, bytes;
	/* The statement's bindings while it runs. */
	MYSQL_BIND *params;
	char **param_text; /* owned texts of numbers */
	long long *param_numbers;
	double *param_reals;
	size_t param_count;
	MYSQL_RES *metadata;
	MYSQL_BIND *columns_bind;
	char **column_buffers;
	unsigned long *column_lengths;
	my_bool *column_nulls, *column_errors;
	unsigned column_count;
	json_t *columns, *rows;
	json_int_t affected;
	char error[512];
	json_t *details; /* owned: {"sqlstate", "code", "message"} of a server error, or NULL */
	bool failed;
};

static const struct pool_kind my_pool_kind;

/* The query on conn, or NULL. */
static struct my_call *conn_call(const struct my_conn *conn)
{
	return conn->pc.call != NULL ? POOL_OWNER(conn->pc.call, struct my_call, pc) : NULL;
}

/* ---- URLs ---- */

static int my_decode(const char *from, size_t length, char *to, size_t size)
{
	size_t out = 0;
	for (size_t i = 0; i < length; i++) {
		char c = from[i];
		if (c == '%' && i + 2 < length) {
			char hex[3] = {from[i + 1], from[i + 2], '\0'};
			char *end;
			long value = strtol(hex, &end, 16);
			if (*end != '\0')
				return -1;
			c = (char)value;
			i += 2;
		}
		if (c == '\0' || out + 1 >= size)
			return -1;
		to[out++] = c;
	}
	to[out] = '\0';
	return 0;
}

static int parse_url(const char *url, struct my_target *target, struct problem *problem)
{
	memset(target, 0, sizeof(*target));
	target->port = 3306;
	const char *rest;
	if (strncmp(url, "mysql://", 8) == 0)
		rest = url + 8;
	else if (strncmp(url, "mariadb://", 10) == 0)
		rest = url + 10;
	else
		return problem_set(problem, WEFT_EBADARGS, "args.url", "not a mysql:// URL");
	const char *end = rest + strcspn(rest, "/?");
	const char *at = memchr(rest, '@', (size_t)(end - rest));
	if (at != NULL) {
		const char *colon = memchr(rest, ':', (size_t)(at - rest));
		const char *user_end = colon != NULL ? colon : at;
		if (my_decode(rest, (size_t)(user_end - rest), target->user, sizeof(target->user)) != 0 ||
		    (colon != NULL && my_decode(colon + 1, (size_t)(at - colon - 1), target->password,
		                                sizeof(target->password)) != 0))
			return problem_set(problem, WEFT_EBADARGS, "args.url", "bad user or password in 'url'");
		rest = at + 1;
	}
	const char *host_end = rest + strcspn(rest, ":/?");
	if ((size_t)(host_end - rest) >= sizeof(target->host))
		return problem_set(problem, WEFT_EBADARGS, "args.url", "the host is too long");
	memcpy(target->host, rest, (size_t)(host_end - rest));
	rest = host_end;
	if (rest[0] == ':') {
		char *stop;
		long port = strtol(rest + 1, &stop, 10);
		if (stop == rest + 1 || port < 1 || port > 65535)
			return problem_set(problem, WEFT_EBADARGS, "args.url", "the port must be 1-65535");
		target->port = (unsigned)port;
		rest = stop;
	}
	if (rest[0] == '/') {
		const char *db_end = rest + 1 + strcspn(rest + 1, "?");
		if (my_decode(rest + 1, (size_t)(db_end - rest - 1), target->dbname, sizeof(target->dbname)) != 0)
			return problem_set(problem, WEFT_EBADARGS, "args.url", "bad database name in 'url'");
		rest = db_end;
	}
	if (rest[0] == '?') {
		char pair[200];
		if (my_decode(rest + 1, strlen(rest + 1), pair, sizeof(pair)) != 0 ||
		    strncmp(pair, "socket=/", 8) != 0 || strlen(pair + 7) >= sizeof(target->socket))
			return problem_set(problem, WEFT_EBADARGS, "args.url",
			                   "a mysql:// URL takes only ?socket=/path/to/mysqld.sock");
		strcpy(target->socket, pair + 7);
	}
	if (target->socket[0] == '\0') {
		/* Connector/C takes "localhost" for its unix socket: a name is
		 * always resolved here and the address given to it. */
		if (target->host[0] == '\0')
			strcpy(target->host, "127.0.0.1");
		if (resolve_is_numeric(target->host))
			strcpy(target->address, target->host);
		else if (!resolve_name_valid(target->host))
			return problem_set(problem, WEFT_EBADARGS, "args.url",
			                   "'%.64s' is neither a host name nor a numeric address", target->host);
	} else {
		target->host[0] = '\0';
	}
	return WEFT_OK;
}

int sql_mysql_url_check(const char *url, struct problem *problem)
{
	struct my_target target;
	return parse_url(url, &target, problem);
}

bool sql_mysql_url_is_mine(const char *url)
{
	return strncmp(url, "mysql://", 8) == 0 || strncmp(url, "mariadb://", 10) == 0;
}

int sql_mysql_init(void)
{
	return mysql_library_init(0, NULL, NULL) == 0 ? WEFT_OK : WEFT_EINTERNAL;
}

void sql_mysql_fini(void)
{
	mysql_library_end();
}

/* ---- KILL CONNECTION, from the thread pool ---- */

struct my_kill {
	struct my_target target;
	unsigned long thread_id;
};

/* Pool thread: connects (blocking) as the same user and stops the query. */
static void *kill_blocking(void *argument)
{
	struct my_kill *kill = argument;
	MYSQL *mysql = mysql_init(NULL);
	if (mysql != NULL) {
		unsigned timeout = 5;
		my_bool off = 0;
		mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
		mysql_options(mysql, MYSQL_OPT_LOCAL_INFILE, &off);
		if (mysql_real_connect(mysql, kill->target.address[0] ? kill->target.address : NULL,
		                       kill->target.user, kill->target.password, NULL, kill->target.port,
		                       kill->target.socket[0] ? kill->target.socket : NULL, 0) != NULL) {
			char query[64];
			snprintf(query, sizeof(query), "KILL CONNECTION %lu", kill->thread_id);
			mysql_query(mysql, query);
		}
		mysql_close(mysql);
	}
	free(kill);
	return NULL;
}

static int kill_body(void *argument)
{
	int rv = weft_run_in_thread(kill_blocking, argument, NULL);
	if (rv != WEFT_OK && rv != WEFT_ECANCELED)
		free(argument);
	return WEFT_OK;
}

/* ---- connections ---- */

static void on_conn_event(evutil_socket_t fd, short what, void *argument);

/* Closes and frees a connection no call uses; with kill, the query it runs
 * is stopped on the server. */
static void conn_free(struct my_conn *conn, bool kill)
{
	pool_conn_remove(&conn->pc);
	event_free(conn->event);
	event_free(conn->timer);
	if (kill && conn->thread_id != 0) {
		struct my_kill *order = memory_zalloc(sizeof(*order));
		order->target = conn->target;
		order->thread_id = conn->thread_id;
		if (runtime_inject(workers_runtime(runner_workers()), kill_body, order, NULL, NULL) != WEFT_OK)
			free(order);
	}
	if (conn->mysql != NULL)
		mysql_close(conn->mysql);
	if (conn->stmt != NULL)
		mysql_stmt_close(conn->stmt); /* detached by mysql_close: frees it, no IO */
	free(conn);
}

/* Waits for what Connector/C asked for. */
static void conn_wait(struct my_conn *conn, int status)
{
	short what = ((status & MYSQL_WAIT_READ) ? EV_READ : 0) |
	             ((status & MYSQL_WAIT_WRITE) ? EV_WRITE : 0);
	event_del(conn->event);
	event_del(conn->timer);
	if (what != 0) {
		event_assign(conn->event, pool_base(conn->pc.pool), mysql_get_socket(conn->mysql), what,
		             on_conn_event, conn);
		event_add(conn->event, NULL);
	}
	if (status & MYSQL_WAIT_TIMEOUT) {
		unsigned ms = mysql_get_timeout_value_ms(conn->mysql);
		struct timeval delay = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
		evtimer_add(conn->timer, &delay);
	}
}

/* ---- calls ---- */

static void bindings_free(struct my_call *call)
{
	for (size_t i = 0; i < call->param_count; i++)
		free(call->param_text[i]);
	free(call->param_text);
	free(call->param_numbers);
	free(call->param_reals);
	free(call->params);
	for (unsigned i = 0; i < call->column_count; i++)
		free(call->column_buffers[i]);
	free(call->column_buffers);
	free(call->column_lengths);
	free(call->column_nulls);
	free(call->column_errors);
	free(call->columns_bind);
	if (call->metadata != NULL)
		mysql_free_result(call->metadata);
	call->params = NULL;
	call->param_text = NULL;
	call->param_numbers = NULL;
	call->param_reals = NULL;
	call->param_count = 0;
	call->column_buffers = NULL;
	call->column_lengths = NULL;
	call->column_nulls = call->column_errors = NULL;
	call->columns_bind = NULL;
	call->column_count = 0;
	call->metadata = NULL;
}

static void call_free(struct my_call *call)
{
	bindings_free(call);
	json_decref(call->columns);
	json_decref(call->rows);
	json_decref(call->details);
	pool_call_fini(&call->pc);
	free(call);
}

static void step_start(struct my_conn *conn);

/* Ends the call (freed); its connection goes back to the pool when reuse
 * and it is idle, else it is closed (and its query killed). */
static void call_end(struct my_call *call, bool reuse, json_t *result, const char *type,
                     json_t *details, const char *message)
{
	struct job_attempt *attempt = call->attempt;
	struct pool *pool = call->pool;
	char key[MY_URL_MAX + 32];
	snprintf(key, sizeof(key), "%s", call->pc.key);
	attempt->data = NULL;
	struct pool_conn *released = pool_release(&call->pc);
	if (released != NULL) {
		struct my_conn *conn = POOL_OWNER(released, struct my_conn, pc);
		if (reuse && conn->step == MY_IDLE) {
			event_del(conn->event);
			event_del(conn->timer);
			pool_conn_idle(released);
		} else {
			conn_free(conn, conn->step == MY_EXECUTE || conn->step == MY_FETCH);
		}
	}
	call_free(call);
	if (type == NULL)
		runner_complete(attempt, result);
	else
		runner_fail(attempt, type, details, "sql.query: %s", message);
	pool_kick(pool, key);
}

static void fail_from(struct my_conn *conn, const char *what, bool statement)
{
	struct my_call *call = conn_call(conn);
	const char *message = statement && conn->stmt != NULL ? mysql_stmt_error(conn->stmt)
	                                                      : mysql_error(conn->mysql);
	unsigned code = statement && conn->stmt != NULL ? mysql_stmt_errno(conn->stmt)
	                                                : mysql_errno(conn->mysql);
	const char *state = statement && conn->stmt != NULL ? mysql_stmt_sqlstate(conn->stmt)
	                                                    : mysql_sqlstate(conn->mysql);
	char text[1024];
	snprintf(text, sizeof(text), "%s%s (error %u, SQLSTATE %s)", what, message, code, state);
	/* A connect that failed on the client's side (2000-2999: refused,
	 * unreachable, lost before the handshake) never got an answer from the
	 * server: the host's next address may do better. */
	if (conn->step == MY_CONNECT && code >= 2000 && code < 3000) {
		char reason[640];
		snprintf(reason, sizeof(reason), "%s (error %u, SQLSTATE %s)", message, code, state);
		conn->step = MY_DEAD;
		if (pool_connect_failed(&call->pc, reason, text, sizeof(text))) {
			conn_free(conn, false); /* unbound: the call is the pool's again */
			return;
		}
		call_end(call, false, NULL, "ConnectionError", NULL, text);
		return;
	}
	/* A failed connect, and client-side errors (2000-2999), are the
	 * connection's; the others the statement's. */
	if (conn->step == MY_CONNECT || (code >= 2000 && code < 3000)) {
		conn->step = MY_DEAD;
		call_end(call, false, NULL, "ConnectionError", NULL, text);
		return;
	}
	json_t *details = json_pack("{s:s, s:i, s:s}", "sqlstate", state, "code", (int)code, "message",
	                            message);
	/* The statement failed; the connection is still good once it is closed. */
	snprintf(call->error, sizeof(call->error), "%s", text);
	call->failed = true;
	json_decref(call->details);
	call->details = details;
	conn->step = MY_CLOSE;
	step_start(conn);
}

static json_t *column_json(struct my_call *call, unsigned column, const char *data, unsigned long length)
{
	MYSQL_FIELD *field = mysql_fetch_field_direct(call->metadata, column);
	switch (field->type) {
	case MYSQL_TYPE_TINY:
	case MYSQL_TYPE_SHORT:
	case MYSQL_TYPE_LONG:
	case MYSQL_TYPE_INT24:
	case MYSQL_TYPE_LONGLONG:
	case MYSQL_TYPE_YEAR:
		return json_integer(strtoll(data, NULL, 10));
	case MYSQL_TYPE_FLOAT:
	case MYSQL_TYPE_DOUBLE:
		return json_real(strtod(data, NULL));
	default: {
		json_t *text = json_stringn(data, length);
		return text != NULL ? text : json_null();
	}
	}
}

/* One fetched row into call->rows; false when the result outgrew max_size. */
static bool take_row(struct my_conn *conn)
{
	struct my_call *call = conn_call(conn);
	json_t *row = json_array();
	for (unsigned c = 0; c < call->column_count; c++) {
		if (call->column_nulls[c]) {
			json_array_append_new(row, json_null());
			continue;
		}
		unsigned long length = call->column_lengths[c];
		call->bytes += length + 8;
		if (call->bytes > call->limit) {
			json_decref(row);
			return false;
		}
		if (length >= MY_COLUMN_CHUNK) {
			/* Truncated into the bound buffer: read the whole column from
			 * the row already received (no IO). */
			char *whole = memory_alloc(length + 1);
			MYSQL_BIND bind;
			memset(&bind, 0, sizeof(bind));
			bind.buffer_type = MYSQL_TYPE_STRING;
			bind.buffer = whole;
			bind.buffer_length = length + 1;
			mysql_stmt_fetch_column(conn->stmt, &bind, c, 0);
			whole[length] = '\0';
			json_array_append_new(row, column_json(call, c, whole, length));
			free(whole);
		} else {
			call->column_buffers[c][length] = '\0';
			json_array_append_new(row, column_json(call, c, call->column_buffers[c], length));
		}
	}
	json_array_append_new(call->rows, row);
	call->affected++;
	return true;
}

static int bind_params(struct my_conn *conn)
{
	struct my_call *call = conn_call(conn);
	const json_t *params = json_object_get(call->attempt->job->args, "params");
	size_t count = json_array_size(params);
	if (mysql_stmt_param_count(conn->stmt) != count) {
		snprintf(call->error, sizeof(call->error),
		         "the statement takes %lu parameters and 'params' has %zu",
		         (unsigned long)mysql_stmt_param_count(conn->stmt), count);
		return -1;
	}
	if (count == 0)
		return 0;
	call->param_count = count;
	call->params = memory_zalloc(count * sizeof(*call->params));
	call->param_text = memory_zalloc(count * sizeof(*call->param_text));
	call->param_numbers = memory_zalloc(count * sizeof(*call->param_numbers));
	call->param_reals = memory_zalloc(count * sizeof(*call->param_reals));
	for (size_t i = 0; i < count; i++) {
		const json_t *item = json_array_get(params, i);
		MYSQL_BIND *bind = &call->params[i];
		if (json_is_null(item)) {
			bind->buffer_type = MYSQL_TYPE_NULL;
		} else if (json_is_integer(item) || json_is_boolean(item)) {
			call->param_numbers[i] = json_is_integer(item) ? json_integer_value(item)
			                                               : json_is_true(item);
			bind->buffer_type = MYSQL_TYPE_LONGLONG;
			bind->buffer = &call->param_numbers[i];
		} else if (json_is_real(item)) {
			call->param_reals[i] = json_real_value(item);
			bind->buffer_type = MYSQL_TYPE_DOUBLE;
			bind->buffer = &call->param_reals[i];
		} else {
			const char *text = json_string_value(item);
			size_t length;
			if (text == NULL) {
				call->param_text[i] = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
				text = call->param_text[i];
				length = strlen(text);
			} else {
				length = json_string_length(item);
			}
			bind->buffer_type = MYSQL_TYPE_STRING;
			bind->buffer = (void *)text;
			bind->buffer_length = length;
		}
	}
	if (mysql_stmt_bind_param(conn->stmt, call->params) != 0) {
		snprintf(call->error, sizeof(call->error), "%s", mysql_stmt_error(conn->stmt));
		return -1;
	}
	return 0;
}

static int bind_columns(struct my_conn *conn)
{
	struct my_call *call = conn_call(conn);
	call->metadata = mysql_stmt_result_metadata(conn->stmt);
	unsigned count = mysql_num_fields(call->metadata);
	call->column_count = count;
	call->columns = json_array();
	call->columns_bind = memory_zalloc(count * sizeof(*call->columns_bind));
	call->column_buffers = memory_zalloc(count * sizeof(*call->column_buffers));
	call->column_lengths = memory_zalloc(count * sizeof(*call->column_lengths));
	call->column_nulls = memory_zalloc(count * sizeof(*call->column_nulls));
	call->column_errors = memory_zalloc(count * sizeof(*call->column_errors));
	for (unsigned c = 0; c < count; c++) {
		MYSQL_FIELD *field = mysql_fetch_field_direct(call->metadata, c);
		json_array_append_new(call->columns, json_string(field->name));
		call->column_buffers[c] = memory_alloc(MY_COLUMN_CHUNK + 1);
		MYSQL_BIND *bind = &call->columns_bind[c];
		bind->buffer_type = MYSQL_TYPE_STRING;
		bind->buffer = call->column_buffers[c];
		bind->buffer_length = MY_COLUMN_CHUNK;
		bind->length = &call->column_lengths[c];
		bind->is_null = &call->column_nulls[c];
		bind->error = &call->column_errors[c];
	}
	return mysql_stmt_bind_result(conn->stmt, call->columns_bind) == 0 ? 0 : -1;
}

/* The current step is done: on to the next one. */
static void step_done(struct my_conn *conn, int rc)
{
	struct my_call *call = conn_call(conn);
	switch (conn->step) {
	case MY_CONNECT:
		if (rc != 0) {
			fail_from(conn, "cannot connect: ", false);
			return;
		}
		pool_connected(&call->pc);
		conn->thread_id = mysql_thread_id(conn->mysql);
		conn->step = MY_PREPARE;
		break;
	case MY_PREPARE:
		if (rc != 0) {
			fail_from(conn, "", true);
			return;
		}
		if (bind_params(conn) != 0) {
			call->failed = true;
			conn->step = MY_CLOSE;
			break;
		}
		conn->step = MY_EXECUTE;
		break;
	case MY_EXECUTE:
		if (rc != 0) {
			fail_from(conn, "", true);
			return;
		}
		if (mysql_stmt_field_count(conn->stmt) > 0) {
			if (bind_columns(conn) != 0) {
				fail_from(conn, "", true);
				return;
			}
			conn->step = MY_FETCH;
		} else {
			call->affected = (json_int_t)mysql_stmt_affected_rows(conn->stmt);
			conn->step = MY_CLOSE;
		}
		break;
	case MY_FETCH:
		if (rc == 0 || rc == MYSQL_DATA_TRUNCATED) {
			if (!take_row(conn)) {
				char message[128];
				snprintf(message, sizeof(message), "the result is larger than max_size (%zu bytes)",
				         call->limit);
				call_end(call, false, NULL, "ResponseTooLarge", NULL, message);
				return;
			}
			break; /* the next row */
		}
		if (rc != MYSQL_NO_DATA) {
			fail_from(conn, "", true);
			return;
		}
		conn->step = MY_CLOSE;
		break;
	case MY_CLOSE: {
		conn->stmt = NULL;
		conn->step = MY_IDLE;
		if (call->failed) {
			char message[600];
			snprintf(message, sizeof(message), "%s", call->error);
			call_end(call, true, NULL, "SQLError", json_incref(call->details), message);
			return;
		}
		json_t *result = json_object();
		json_object_set_new(result, "columns",
		                    call->columns != NULL ? json_incref(call->columns) : json_array());
		json_object_set(result, "rows", call->rows);
		json_object_set_new(result, "affected", json_integer(call->affected));
		call_end(call, true, result, NULL, NULL, NULL);
		return;
	}
	default:
		return;
	}
	step_start(conn);
}

/* Starts the connection's current step; waits or goes on. */
static void step_start(struct my_conn *conn)
{
	struct my_call *call = conn_call(conn);
	int status = 0, rc = 0;
	my_bool closed = 0;
	MYSQL *ret = NULL;
	switch (conn->step) {
	case MY_CONNECT: {
		const struct my_target *t = &call->target;
		const struct principal *owner = call->attempt->job->owner;
		const char *user = t->user[0] != '\0' ? t->user
		                   : owner->identity.user != NULL ? owner->identity.user : "";
		snprintf(conn->target.user, sizeof(conn->target.user), "%s", user);
		status = mysql_real_connect_start(&ret, conn->mysql, t->address[0] ? t->address : NULL, user,
		                                  t->password, t->dbname[0] ? t->dbname : NULL, t->port,
		                                  t->socket[0] ? t->socket : NULL, 0);
		rc = ret == NULL;
		break;
	}
	case MY_PREPARE: {
		conn->stmt = mysql_stmt_init(conn->mysql);
		const json_t *sql = json_object_get(call->attempt->job->args, "sql");
		status = mysql_stmt_prepare_start(&rc, conn->stmt, json_string_value(sql),
		                                  (unsigned long)json_string_length(sql));
		break;
	}
	case MY_EXECUTE:
		status = mysql_stmt_execute_start(&rc, conn->stmt);
		break;
	case MY_FETCH:
		status = mysql_stmt_fetch_start(&rc, conn->stmt);
		break;
	case MY_CLOSE:
		bindings_free(call);
		status = conn->stmt != NULL ? mysql_stmt_close_start(&closed, conn->stmt) : 0;
		break;
	default:
		return;
	}
	if (status != 0)
		conn_wait(conn, status);
	else
		step_done(conn, rc);
}

static void on_conn_event(evutil_socket_t fd, short what, void *argument)
{
	(void)fd;
	struct my_conn *conn = argument;
	if (conn->step == MY_IDLE) {
		conn_free(conn, false); /* the server closed it, or timed it out */
		return;
	}
	int ready = ((what & EV_READ) ? MYSQL_WAIT_READ : 0) | ((what & EV_WRITE) ? MYSQL_WAIT_WRITE : 0) |
	            ((what & EV_TIMEOUT) ? MYSQL_WAIT_TIMEOUT : 0);
	int status = 0, rc = 0;
	my_bool closed = 0;
	MYSQL *ret = NULL;
	switch (conn->step) {
	case MY_CONNECT:
		status = mysql_real_connect_cont(&ret, conn->mysql, ready);
		rc = ret == NULL;
		break;
	case MY_PREPARE:
		status = mysql_stmt_prepare_cont(&rc, conn->stmt, ready);
		break;
	case MY_EXECUTE:
		status = mysql_stmt_execute_cont(&rc, conn->stmt, ready);
		break;
	case MY_FETCH:
		status = mysql_stmt_fetch_cont(&rc, conn->stmt, ready);
		break;
	case MY_CLOSE:
		status = mysql_stmt_close_cont(&closed, conn->stmt, ready);
		break;
	default:
		return;
	}
	if (status != 0)
		conn_wait(conn, status);
	else
		step_done(conn, rc);
}

static void conn_open(struct pool *pool, struct my_call *call)
{
	MYSQL *mysql = mysql_init(NULL);
	if (mysql == NULL) {
		call_end(call, false, NULL, "ConnectionError", NULL, "out of memory");
		return;
	}
	my_bool off = 0;
	mysql_options(mysql, MYSQL_OPT_NONBLOCK, 0);
	mysql_options(mysql, MYSQL_OPT_LOCAL_INFILE, &off);
	struct my_conn *conn = memory_zalloc(sizeof(*conn));
	conn->mysql = mysql;
	conn->target = call->target;
	conn->step = MY_CONNECT;
	conn->event = event_new(pool_base(pool), -1, 0, on_conn_event, conn);
	conn->timer = evtimer_new(pool_base(pool), on_conn_event, conn);
	pool_conn_add(pool, &conn->pc, call->pc.key, &call->pc);
	step_start(conn);
}

static void on_call_timeout(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	call_end(argument, false, NULL, proto_job_error(PROTO_JOB_ERROR_TIMEOUT), NULL, "no result within its timeout");
}

/* ---- the pool's side ---- */

static void kind_reuse(struct pool_call *pc, struct pool_conn *conn)
{
	(void)pc;
	struct my_conn *idle = POOL_OWNER(conn, struct my_conn, pc);
	idle->step = MY_PREPARE;
	step_start(idle);
}

static void kind_open(struct pool *pool, struct pool_call *pc)
{
	conn_open(pool, POOL_OWNER(pc, struct my_call, pc));
}

static void kind_close(struct pool_conn *conn)
{
	conn_free(POOL_OWNER(conn, struct my_conn, pc), false);
}

static void kind_resolved(struct pool_call *pc, const char *address)
{
	struct my_call *call = POOL_OWNER(pc, struct my_call, pc);
	snprintf(call->target.address, sizeof(call->target.address), "%s", address);
}

static void kind_unresolved(struct pool_call *pc, const char *message)
{
	struct my_call *call = POOL_OWNER(pc, struct my_call, pc);
	char text[RESOLVE_NAME_MAX + 200];
	snprintf(text, sizeof(text), "cannot resolve '%s': %s", call->target.host, message);
	call_end(call, false, NULL, "ConnectionError", NULL, text);
}

static const struct pool_kind my_pool_kind = {
	.id = POOL_MYSQL,
	.name = "mysql",
	.max = SQL_POOL_MAX,
	.reuse = kind_reuse,
	.open = kind_open,
	.close = kind_close,
	.destroy = kind_close,
	.resolved = kind_resolved,
	.unresolved = kind_unresolved,
};

void sql_mysql_worker_exit(struct event_base *base)
{
	pool_worker_exit(&my_pool_kind, base);
}

void sql_mysql_start(struct job_attempt *attempt)
{
	const json_t *args = attempt->job->args;
	const char *url = json_string_value(json_object_get(args, "url"));
	struct problem problem;
	problem_init(&problem);
	struct my_call *call = memory_zalloc(sizeof(*call));
	if (parse_url(url, &call->target, &problem) != WEFT_OK) {
		free(call);
		runner_fail(attempt, "ValueError", NULL, "sql.query: %s", problem.message);
		return;
	}
	uid_t owner = attempt->job->owner->uid;
	if (call->target.socket[0] != '\0' && owner != geteuid()) {
		free(call);
		runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_PERMISSION), NULL,
		            "sql.query: uid %u may not use unix sockets on this weftd: the server's "
		            "unix_socket authentication would see the daemon's uid %u; use a TCP address",
		            (unsigned)owner, (unsigned)geteuid());
		return;
	}
	struct pool *pool = pool_get(&my_pool_kind, workers_base(attempt->worker));
	if (pool == NULL) {
		free(call);
		runner_fail(attempt, "OSError", NULL, "sql.query: cannot set up the worker's pool");
		return;
	}
	const json_t *timeout = json_object_get(args, "timeout");
	double seconds = timeout != NULL ? json_number_value(timeout) : 30.0;
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
	/* A name is resolved first (the timeout counts), then the call waits its turn. */
	bool name = call->target.socket[0] == '\0' && call->target.address[0] == '\0';
	pool_submit(pool, &call->pc, name ? call->target.host : NULL);
}

void sql_mysql_stop(struct job_attempt *attempt)
{
	struct my_call *call = attempt->data;
	if (call == NULL)
		return;
	struct pool *pool = call->pool;
	char key[MY_URL_MAX + 32];
	snprintf(key, sizeof(key), "%s", call->pc.key);
	attempt->data = NULL;
	struct pool_conn *released = pool_release(&call->pc);
	if (released != NULL) {
		struct my_conn *conn = POOL_OWNER(released, struct my_conn, pc);
		conn_free(conn, conn->step == MY_EXECUTE || conn->step == MY_FETCH);
	}
	call_free(call);
	pool_kick(pool, key);
}

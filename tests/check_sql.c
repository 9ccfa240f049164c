/*
 * sql.query end to end against a real PostgreSQL: initdb once for the
 * program into a temporary directory, one server (as the postgres user, on a
 * unix socket there and a TCP port) for all its tests, polled until it
 * answers, stopped by pid. Without PostgreSQL or root (initdb must run as
 * another user) every test is a visible SKIP.
 */
#include <check.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/as_user.h"
#include "tests/dns_server.h"
#include "tests/fixture.h"
#include "tests/servers.h"
#include "tests/wire.h"

static struct servers_suite servers;
static char directory[64];
static int port;
static pid_t server;
static char tcp_url[128];    /* postgresql://postgres@127.0.0.1:PORT/postgres */
static char socket_url[160]; /* the same database over the unix socket */

/* Runs argv as the postgres user; waits unless background. */
static pid_t as_postgres(const struct passwd *account, const char *const argv[], bool background)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		char log[128];
		snprintf(log, sizeof(log), "%s/server.log", directory);
		int out = background ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : null;
		dup2(out, 1);
		dup2(out, 2);
		if (setgroups(0, NULL) != 0 || setgid(account->pw_gid) != 0 || setuid(account->pw_uid) != 0)
			_exit(122);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (!background) {
		int status;
		waitpid(pid, &status, 0);
		return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
	}
	return pid;
}

/* Makes the cluster and starts the server; on failure says why in servers.skip. */
static void server_start(void)
{
	glob_t found;
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &found) != 0) {
		snprintf(servers.skip, sizeof(servers.skip), "PostgreSQL is not installed (scripts/deps.sh)");
		return;
	}
	char bin[256];
	snprintf(bin, sizeof(bin), "%s", found.gl_pathv[found.gl_pathc - 1]);
	globfree(&found);
	*strrchr(bin, '/') = '\0';
	struct passwd *account = getpwnam("postgres");
	if (geteuid() != 0 || account == NULL) {
		snprintf(servers.skip, sizeof(servers.skip),
		         "needs root and a postgres user (initdb refuses to run as root)");
		return;
	}
	if (!servers_make_directory(directory, sizeof(directory), "pg", account->pw_uid,
	                            account->pw_gid)) {
		snprintf(servers.skip, sizeof(servers.skip), "cannot make a directory for the cluster");
		return;
	}
	char initdb[300], postgres[300], data[128];
	snprintf(initdb, sizeof(initdb), "%s/initdb", bin);
	snprintf(postgres, sizeof(postgres), "%s/postgres", bin);
	snprintf(data, sizeof(data), "%s/data", directory);
	const char *init_argv[] = {initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", NULL};
	if (as_postgres(account, init_argv, false) != 0) {
		snprintf(servers.skip, sizeof(servers.skip), "initdb failed");
		return;
	}
	port = servers_free_port();
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d", port);
	const char *run_argv[] = {postgres, "-D", data, "-k", directory, "-p", port_text, "-c",
	                    "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=60",
	                    NULL};
	server = as_postgres(account, run_argv, true);
	char conninfo[256];
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=postgres dbname=postgres", port);
	double deadline = fixture_now() + 30;
	while (PQping(conninfo) != PQPING_OK) {
		if (fixture_now() > deadline) {
			snprintf(servers.skip, sizeof(servers.skip), "postgres did not start (see %s)", directory);
			return;
		}
		usleep(10000);
	}
	snprintf(tcp_url, sizeof(tcp_url), "postgresql://postgres@127.0.0.1:%d/postgres", port);
	snprintf(socket_url, sizeof(socket_url), "postgresql://postgres@:%d/postgres?host=%s", port,
	         directory);
}

/* The test's own connection. */
static PGconn *control(void)
{
	char conninfo[256];
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=postgres dbname=postgres", port);
	PGconn *connection = PQconnectdb(conninfo);
	ck_assert_int_eq(PQstatus(connection), CONNECTION_OK);
	return connection;
}

static long scalar(PGconn *connection, const char *sql)
{
	PGresult *result = PQexec(connection, sql);
	ck_assert_int_eq(PQresultStatus(result), PGRES_TUPLES_OK);
	long value = strtol(PQgetvalue(result, 0, 0), NULL, 10);
	PQclear(result);
	return value;
}

static void wait_scalar(PGconn *connection, const char *sql, long wanted)
{
	double deadline = fixture_now() + 30;
	long now;
	while ((now = scalar(connection, sql)) != wanted)
		ck_assert_msg(fixture_now() < deadline, "%s gives %ld, not %ld", sql, now, wanted);
}

/* Runs sql.query with args (a JSON object's inside, after url) to its end. */
static json_t *query(const fixture *daemon, const char *url, const char *rest)
{
	json_t *reply = wire_callf(daemon->url,
	                     "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\",%s},\"wait\":30}",
	                     url, rest);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", json_dumps(reply, 0));
	return reply;
}

/* One counter of the daemon's postgresql pools (stats op, "io_pools"). */
/* Polls the counter until it is wanted, for at most 30 s. */
static json_int_t first_value(const json_t *reply)
{
	return json_integer_value(
		json_array_get(json_array_get(json_object_get(json_object_get(reply, "result"), "rows"), 0), 0));
}

START_TEST(test_parameters_are_bound_and_rows_typed)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = query(&daemon, tcp_url,
	                      "\"sql\":\"SELECT $1::int + 1 AS n, $2::text AS t, NULL::int AS z, true AS b, "
	                      "2.5::float8 AS f, '{\\\"k\\\":1}'::jsonb AS j\",\"params\":[41,\"x\"]");
	ck_assert_msg(strcmp(wire_text(reply, "state"), "done") == 0, "%s", json_dumps(reply, 0));
	json_t *result = json_object_get(reply, "result");
	json_t *columns = json_object_get(result, "columns");
	ck_assert_str_eq(json_string_value(json_array_get(columns, 0)), "n");
	ck_assert_str_eq(json_string_value(json_array_get(columns, 5)), "j");
	json_t *row = json_array_get(json_object_get(result, "rows"), 0);
	ck_assert_int_eq(json_integer_value(json_array_get(row, 0)), 42);
	ck_assert_str_eq(json_string_value(json_array_get(row, 1)), "x");
	ck_assert(json_is_null(json_array_get(row, 2)));
	ck_assert(json_is_true(json_array_get(row, 3)));
	ck_assert(json_real_value(json_array_get(row, 4)) == 2.5);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(row, 5), "k")), 1);
	json_decref(reply);
	/* A parameter is data, never SQL. */
	reply = query(&daemon, tcp_url, "\"sql\":\"SELECT $1::text\",\"params\":[\"'); DROP TABLE x; --\"]");
	ck_assert_str_eq(json_string_value(json_array_get(
	                         json_array_get(json_object_get(json_object_get(reply, "result"), "rows"), 0), 0)),
	                 "'); DROP TABLE x; --");
	json_decref(reply);
	/* Commands report the rows they touched; the unix socket works for root. */
	json_decref(query(&daemon, socket_url, "\"sql\":\"CREATE TABLE IF NOT EXISTS items (n int)\""));
	json_decref(query(&daemon, socket_url, "\"sql\":\"DELETE FROM items\""));
	reply = query(&daemon, socket_url,
	              "\"sql\":\"INSERT INTO items SELECT generate_series(1, $1::int)\",\"params\":[3]");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(reply, "result"), "affected")), 3);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_server_errors_fail_with_sql_error)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = query(&daemon, tcp_url, "\"sql\":\"SELECT 1/0\"");
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "SQLError");
	json_t *details = json_object_get(json_object_get(reply, "error"), "details");
	ck_assert_str_eq(wire_text(details, "sqlstate"), "22012");
	json_decref(reply);
	/* The connection is still good. */
	reply = query(&daemon, tcp_url, "\"sql\":\"SELECT 7\"");
	ck_assert_str_eq(wire_text(reply, "state"), "done");
	json_decref(reply);
	reply = query(&daemon, "postgresql://postgres@127.0.0.1:1/postgres", "\"sql\":\"SELECT 1\"");
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	json_decref(reply);
	reply = query(&daemon, tcp_url,
	              "\"sql\":\"SELECT repeat('x', 1000) FROM generate_series(1, 5000)\",\"max_size\":100000");
	ck_assert_str_eq(wire_error_type(reply), "ResponseTooLarge");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_bad_arguments_are_refused_at_submit)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	static const char *const refused[] = {
	        "{\"sql\":\"SELECT 1\"}",
	        "{\"url\":\"mysql://db_bad!name/x\",\"sql\":\"SELECT 1\"}",
	        "{\"url\":\"mysql://127.0.0.1/x?local_infile=1\",\"sql\":\"SELECT 1\"}",
	        "{\"url\":\"postgresql://-db.example/x\",\"sql\":\"SELECT 1\"}",
	        "{\"url\":\"postgresql://127.0.0.1/x?passfile=/root/.pgpass\",\"sql\":\"SELECT 1\"}",
	        "{\"url\":\"postgresql://127.0.0.1/x\"}",
	        "{\"url\":\"postgresql://127.0.0.1/x\",\"sql\":\"SELECT 1\",\"params\":{}}",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":%s}", refused[i]);
		ck_assert_msg(wire_error_code(reply) != NULL &&
		                      strcmp(wire_error_code(reply), "bad_arguments") == 0,
		              "%s was not refused: %s", refused[i], json_dumps(reply, 0));
		json_decref(reply);
	}
	fixture_stop(&daemon);
}
END_TEST

static const char running_sleeps[] =
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(600)%'";

START_TEST(test_timeout_and_cancel_stop_the_query_on_the_server)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	PGconn *connection = control();
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = query(&daemon, tcp_url, "\"sql\":\"SELECT pg_sleep(600)\",\"timeout\":0.5");
	ck_assert_str_eq(wire_error_type(reply), "Timeout");
	json_decref(reply);
	wait_scalar(connection, running_sleeps, 0);
	reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\","
	                         "\"sql\":\"SELECT pg_sleep(600)\",\"timeout\":900}}",
	             tcp_url);
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	wait_scalar(connection, running_sleeps, 1);
	json_decref(wire_callf(daemon.url, "{\"op\":\"cancel\",\"id\":%lld}", (long long)id));
	wait_scalar(connection, running_sleeps, 0);
	reply = wire_callf(daemon.url, "{\"op\":\"result\",\"id\":%lld,\"timeout\":10}", (long long)id);
	ck_assert_str_eq(wire_text(reply, "state"), "cancelled");
	json_decref(reply);
	fixture_stop(&daemon);
	PQfinish(connection);
}
END_TEST

/* Timeouts that fire around the moment the query reaches the server: a
 * cancel that comes before the server started the query cancels nothing,
 * and the query would then sleep on for its whole length. Every one of them
 * must stop on the server. */
START_TEST(test_a_timeout_as_the_query_starts_still_stops_it_on_the_server)
{
	enum { COUNT = 24 };
	SERVERS_SKIP_UNLESS_UP(&servers);
	PGconn *connection = control();
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t ids[COUNT];
	for (int i = 0; i < COUNT; i++) {
		json_t *reply = wire_callf(daemon.url,
		                           "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\","
		                           "\"sql\":\"SELECT pg_sleep(600)\",\"timeout\":%.4f}}",
		                           tcp_url, 0.002 + 0.002 * i);
		ids[i] = json_integer_value(json_object_get(reply, "id"));
		json_decref(reply);
	}
	for (int i = 0; i < COUNT; i++) {
		json_t *reply = wire_callf(daemon.url, "{\"op\":\"result\",\"id\":%lld,\"timeout\":60}",
		                           (long long)ids[i]);
		ck_assert_str_eq(wire_text(reply, "state"), "failed");
		json_decref(reply);
	}
	wait_scalar(connection, running_sleeps, 0);
	fixture_stop(&daemon);
	PQfinish(connection);
}
END_TEST

/* A host name (here localhost, from /etc/hosts) is resolved off the
 * worker loop, then its address connected to. */
START_TEST(test_host_names_are_resolved_and_connected_to)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	fixture daemon;
	fixture_start(&daemon, NULL);
	char url[160];
	const char *at = strstr(tcp_url, "127.0.0.1");
	ck_assert_ptr_nonnull(at);
	snprintf(url, sizeof(url), "%.*slocalhost%s", (int)(at - tcp_url), tcp_url, at + strlen("127.0.0.1"));
	json_t *reply = query(&daemon, url, "\"sql\":\"SELECT 41 + 1\"");
	ck_assert_msg(strcmp(wire_text(reply, "state"), "done") == 0, "%s", json_dumps(reply, 0));
	ck_assert_int_eq(first_value(reply), 42);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

/* A name resolves to two addresses; nothing listens on the first (the
 * server binds 127.0.0.1 alone, so 127.0.0.2 refuses): the query runs on
 * the second (tests/dns_server.c answers the name, through --resolv-conf). */
START_TEST(test_a_name_whose_first_address_refuses_connects_to_the_next)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct dns_server *dns = dns_server_new();
	dns_server_add(dns, "both.weft.test", "127.0.0.2");
	dns_server_add(dns, "both.weft.test", "127.0.0.1");
	char conf_directory[128];
	fixture daemon;
	servers_start_with_dns(&daemon, dns, conf_directory, sizeof(conf_directory));
	char url[200];
	servers_url_with_host(url, sizeof(url), tcp_url, "both.weft.test");
	json_t *reply = query(&daemon, url, "\"sql\":\"SELECT 41 + 1\"");
	ck_assert_msg(strcmp(wire_text(reply, "state"), "done") == 0, "%s", json_dumps(reply, 0));
	ck_assert_int_eq(first_value(reply), 42);
	json_decref(reply);
	ck_assert_int_ge(dns_server_queries(dns, "both.weft.test"), 1);
	fixture_stop(&daemon);
	dns_server_free(dns);
	servers_stop(0, 0, conf_directory);
}
END_TEST

/* --io-idle: a connection unused that long is closed, counted in stats;
 * the next query opens a new one. */
START_TEST(test_idle_connections_close_after_io_idle)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	fixture daemon;
	const char *const options[] = {"--workers", "1", "--io-idle", "0.2", NULL};
	fixture_start(&daemon, options);
	json_t *first = query(&daemon, tcp_url, "\"sql\":\"SELECT pg_backend_pid()\"");
	ck_assert_int_eq(servers_pool_stat(&daemon, "postgresql", "opened"), 1);
	servers_wait_pool_stat(&daemon, "postgresql", "closed", 1);
	ck_assert_int_eq(servers_pool_stat(&daemon, "postgresql", "idle"), 0);
	ck_assert_int_eq(servers_pool_stat(&daemon, "postgresql", "open"), 0);
	json_t *second = query(&daemon, tcp_url, "\"sql\":\"SELECT pg_backend_pid()\"");
	ck_assert_int_ne(first_value(first), first_value(second));
	ck_assert_int_eq(servers_pool_stat(&daemon, "postgresql", "opened"), 2);
	json_decref(first);
	json_decref(second);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_connections_are_reused)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	fixture daemon;
	const char *const one_worker[] = {"--workers", "1", NULL};
	fixture_start(&daemon, one_worker);
	json_t *first = query(&daemon, tcp_url, "\"sql\":\"SELECT pg_backend_pid()\"");
	json_t *second = query(&daemon, tcp_url, "\"sql\":\"SELECT pg_backend_pid()\"");
	json_t *a = json_array_get(json_array_get(json_object_get(json_object_get(first, "result"), "rows"), 0), 0);
	json_t *b = json_array_get(json_array_get(json_object_get(json_object_get(second, "result"), "rows"), 0), 0);
	ck_assert_int_eq(json_integer_value(a), json_integer_value(b));
	json_decref(first);
	json_decref(second);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_a_thousand_queries_share_a_bounded_pool_and_take_no_thread)
{
	enum { COUNT = 1000 };
	SERVERS_SKIP_UNLESS_UP(&servers);
	PGconn *connection = control();
	fixture daemon;
	fixture_start(&daemon, NULL);
	for (int i = 0; i < 4; i++)
		json_decref(query(&daemon, tcp_url, "\"sql\":\"SELECT 1\""));
	json_int_t before = fixture_threads(&daemon);
	size_t size = COUNT * 200 + 64, used = 0;
	char *request = malloc(size);
	used += (size_t)snprintf(request + used, size - used, "{\"op\":\"submit\",\"jobs\":[");
	for (int i = 0; i < COUNT; i++)
		used += (size_t)snprintf(request + used, size - used,
		                         "%s{\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\",\"sql\":"
		                         "\"SELECT $1::int FROM pg_sleep(0.01)\",\"params\":[%d]}}",
		                         i == 0 ? "" : ",", tcp_url, i);
	snprintf(request + used, size - used, "]}");
	json_t *reply = wire_call(daemon.url, request);
	free(request);
	json_t *ids = json_object_get(reply, "ids");
	ck_assert_uint_eq(json_array_size(ids), COUNT);
	/* While they run: no new thread, and at most 8 connections per worker. */
	json_int_t last = json_integer_value(json_array_get(ids, COUNT - 1));
	long most = 0;
	json_int_t threads = before;
	for (;;) {
		long now = scalar(connection, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'weft'");
		if (now > most)
			most = now;
		json_int_t count = fixture_threads(&daemon);
		if (count > threads)
			threads = count;
		json_t *status = wire_callf(daemon.url, "{\"op\":\"status\",\"id\":%lld}", (long long)last);
		bool done = strcmp(wire_text(json_object_get(status, "job"), "state"), "done") == 0;
		json_decref(status);
		if (done)
			break;
	}
	ck_assert_int_eq(threads, before);
	ck_assert_msg(most <= 16, "%ld connections at once", most);
	json_t *results = wire_results(daemon.url, ids);
	json_t *list = json_object_get(results, "results");
	for (size_t i = 0; i < COUNT; i++) {
		json_t *one = json_array_get(list, i);
		ck_assert_msg(strcmp(wire_text(one, "state"), "done") == 0, "job %zu: %s", i, json_dumps(one, 0));
		json_t *row = json_array_get(json_object_get(json_object_get(one, "result"), "rows"), 0);
		ck_assert_int_eq(json_integer_value(json_array_get(row, 0)), (json_int_t)i);
	}
	json_decref(results);
	json_decref(reply);
	fixture_stop(&daemon);
	PQfinish(connection);
}
END_TEST

/* Peer authentication on the socket would see root: refused for a user; over
 * TCP the user connects as their own role, never as the daemon's. */
START_TEST(test_a_user_never_connects_with_the_daemons_identity)
{
	SERVERS_SKIP_UNLESS_TRUSTED(&servers);
	fixture daemon;
	fixture_start(&daemon, NULL);
	chmod(daemon.directory, 0755);
	char request[600];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\",\"sql\":\"SELECT 1\"},"
	         "\"wait\":30}",
	         socket_url);
	json_t *reply = servers_call_as(&servers, daemon.url, request);
	ck_assert_str_eq(wire_error_type(reply), "PermissionError");
	json_decref(reply);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"postgresql://127.0.0.1:%d/postgres\","
	         "\"sql\":\"SELECT current_user\"},\"wait\":30}",
	         port);
	reply = servers_call_as(&servers, daemon.url, request);
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	char role[80];
	snprintf(role, sizeof(role), "role \"%s\" does not exist", servers.stranger.name);
	ck_assert_msg(strstr(wire_text(json_object_get(reply, "error"), "message"), role) != NULL, "%s",
	              json_dumps(reply, 0));
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

/* One worker, the same URL (its user named in it): root's idle connection
 * is in the pool, yet the other user's job opens one of its own. */
START_TEST(test_a_connection_never_serves_another_owner)
{
	SERVERS_SKIP_UNLESS_TRUSTED(&servers);
	fixture daemon;
	const char *const one_worker[] = {"--workers", "1", NULL};
	fixture_start(&daemon, one_worker);
	chmod(daemon.directory, 0755);
	json_t *root_reply = query(&daemon, tcp_url, "\"sql\":\"SELECT pg_backend_pid()\"");
	ck_assert_int_eq(servers_pool_stat(&daemon, "postgresql", "idle"), 1);
	char request[600];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\","
	         "\"sql\":\"SELECT pg_backend_pid()\"},\"wait\":30}",
	         tcp_url);
	json_t *user_reply = servers_call_as(&servers, daemon.url, request);
	ck_assert_msg(strcmp(wire_text(user_reply, "state"), "done") == 0, "%s", json_dumps(user_reply, 0));
	ck_assert_int_ne(first_value(root_reply), first_value(user_reply));
	ck_assert_int_eq(servers_pool_stat(&daemon, "postgresql", "opened"), 2);
	ck_assert_int_eq(servers_pool_stat(&daemon, "postgresql", "idle"), 2);
	/* And root's next job still gets root's own connection back. */
	json_t *again = query(&daemon, tcp_url, "\"sql\":\"SELECT pg_backend_pid()\"");
	ck_assert_int_eq(first_value(root_reply), first_value(again));
	json_decref(root_reply);
	json_decref(user_reply);
	json_decref(again);
	fixture_stop(&daemon);
}
END_TEST

int main(void)
{
	setenv("TMPDIR", "/tmp", 1);
	server_start();
	servers_suite_begin(&servers, "wtp", 9, "sql tests", 2, "sql trust test");
	Suite *suite = suite_create("sql");
	TCase *sql = tcase_create("sql");
	tcase_set_timeout(sql, 60);
	tcase_add_test(sql, test_parameters_are_bound_and_rows_typed);
	tcase_add_test(sql, test_server_errors_fail_with_sql_error);
	tcase_add_test(sql, test_bad_arguments_are_refused_at_submit);
	tcase_add_test(sql, test_timeout_and_cancel_stop_the_query_on_the_server);
	tcase_add_test(sql, test_a_timeout_as_the_query_starts_still_stops_it_on_the_server);
	tcase_add_test(sql, test_connections_are_reused);
	tcase_add_test(sql, test_host_names_are_resolved_and_connected_to);
	tcase_add_test(sql, test_a_name_whose_first_address_refuses_connects_to_the_next);
	tcase_add_test(sql, test_idle_connections_close_after_io_idle);
	tcase_add_test(sql, test_a_user_never_connects_with_the_daemons_identity);
	tcase_add_test(sql, test_a_connection_never_serves_another_owner);
	suite_add_tcase(suite, sql);
	TCase *load = tcase_create("load");
	tcase_set_timeout(load, 180);
	tcase_add_test(load, test_a_thousand_queries_share_a_bounded_pool_and_take_no_thread);
	suite_add_tcase(suite, load);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	servers_suite_end(&servers);
	servers_stop(server, SIGINT /* fast shutdown */, directory);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

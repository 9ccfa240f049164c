/*
 * sql.query end to end against a real MariaDB: mariadb-install-db once for
 * the program into a temporary directory, one mariadbd (as the mysql user, on
 * a unix socket there and a TCP port) for all its tests, polled until it
 * answers, stopped by pid. Without MariaDB or root every test is a visible
 * SKIP.
 */
#include <check.h>
#include <fcntl.h>
#include <mysql.h>
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
static char socket_path[128];
static int port;
static pid_t server;
static char tcp_url[128];    /* mysql://weft:pw@127.0.0.1:PORT/test */
static char socket_url[200]; /* the same over the unix socket */

/* The test's own connection, as root over the unix socket. */
static MYSQL *control(void)
{
	MYSQL *mysql = mysql_init(NULL);
	if (mysql_real_connect(mysql, NULL, "root", NULL, NULL, 0, socket_path, 0) == NULL) {
		mysql_close(mysql);
		return NULL;
	}
	return mysql;
}

static int run_quiet(const char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void server_start(void)
{
	struct passwd *account = getpwnam("mysql");
	if (access("/usr/sbin/mariadbd", X_OK) != 0 || access("/usr/bin/mariadb-install-db", X_OK) != 0) {
		snprintf(servers.skip, sizeof(servers.skip), "MariaDB is not installed (scripts/deps.sh)");
		return;
	}
	if (geteuid() != 0 || account == NULL) {
		snprintf(servers.skip, sizeof(servers.skip), "needs root and a mysql user");
		return;
	}
	if (!servers_make_directory(directory, sizeof(directory), "my", account->pw_uid,
	                            account->pw_gid)) {
		snprintf(servers.skip, sizeof(servers.skip), "cannot make a directory for the server");
		return;
	}
	char data[128], datadir[160];
	snprintf(data, sizeof(data), "%s/data", directory);
	snprintf(datadir, sizeof(datadir), "--datadir=%s", data);
	snprintf(socket_path, sizeof(socket_path), "%s/mysqld.sock", directory);
	const char *install[] = {"/usr/bin/mariadb-install-db", "--no-defaults", datadir, "--user=mysql",
	                         "--skip-test-db", "--auth-root-authentication-method=socket", NULL};
	if (run_quiet(install) != 0) {
		snprintf(servers.skip, sizeof(servers.skip), "mariadb-install-db failed");
		return;
	}
	port = servers_free_port();
	char socket_option[160], port_option[32], log_option[160];
	snprintf(socket_option, sizeof(socket_option), "--socket=%s", socket_path);
	snprintf(port_option, sizeof(port_option), "--port=%d", port);
	snprintf(log_option, sizeof(log_option), "--log-error=%s/server.log", directory);
	server = fork();
	if (server == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl("/usr/sbin/mariadbd", "mariadbd", "--no-defaults", datadir, socket_option, port_option,
		      "--bind-address=127.0.0.1", "--user=mysql", "--skip-name-resolve", log_option,
		      "--max-connections=100", "--innodb-buffer-pool-size=16M", (char *)NULL);
		_exit(127);
	}
	double deadline = fixture_now() + 60;
	MYSQL *mysql;
	while ((mysql = control()) == NULL) {
		if (fixture_now() > deadline) {
			snprintf(servers.skip, sizeof(servers.skip), "mariadbd did not start (see %s)", directory);
			return;
		}
		usleep(20000);
	}
	mysql_query(mysql, "CREATE DATABASE IF NOT EXISTS test");
	mysql_query(mysql, "CREATE USER 'weft'@'%' IDENTIFIED BY 'pw'");
	mysql_query(mysql, "GRANT ALL ON *.* TO 'weft'@'%'");
	mysql_close(mysql);
	snprintf(tcp_url, sizeof(tcp_url), "mysql://weft:pw@127.0.0.1:%d/test", port);
	snprintf(socket_url, sizeof(socket_url), "mysql://weft:pw@/test?socket=%s", socket_path);
}

static long scalar(MYSQL *mysql, const char *sql)
{
	ck_assert_int_eq(mysql_query(mysql, sql), 0);
	MYSQL_RES *result = mysql_store_result(mysql);
	MYSQL_ROW row = mysql_fetch_row(result);
	long value = row != NULL && row[0] != NULL ? strtol(row[0], NULL, 10) : -1;
	mysql_free_result(result);
	return value;
}

static void wait_scalar(MYSQL *mysql, const char *sql, long wanted)
{
	double deadline = fixture_now() + 30;
	long now;
	while ((now = scalar(mysql, sql)) != wanted)
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

/* One counter of the daemon's mysql pools (stats op, "io_pools"). */
/* Polls the counter until it is wanted, for at most 30 s. */
static json_int_t first_value(const json_t *reply)
{
	return json_integer_value(
		json_array_get(json_array_get(json_object_get(json_object_get(reply, "result"), "rows"), 0), 0));
}

static json_t *first_row(json_t *reply)
{
	return json_array_get(json_object_get(json_object_get(reply, "result"), "rows"), 0);
}

START_TEST(test_parameters_are_bound_and_rows_typed)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = query(&daemon, tcp_url,
	                      "\"sql\":\"SELECT ? + 1 AS n, ? AS t, NULL AS z, REPEAT('y', 1000) AS r, 2.5e0 AS f\","
	                      "\"params\":[41,\"x\"]");
	ck_assert_msg(strcmp(wire_text(reply, "state"), "done") == 0, "%s", json_dumps(reply, 0));
	json_t *columns = json_object_get(json_object_get(reply, "result"), "columns");
	ck_assert_str_eq(json_string_value(json_array_get(columns, 0)), "n");
	json_t *row = first_row(reply);
	ck_assert_int_eq(json_integer_value(json_array_get(row, 0)), 42);
	ck_assert_str_eq(json_string_value(json_array_get(row, 1)), "x");
	ck_assert(json_is_null(json_array_get(row, 2)));
	ck_assert_uint_eq(strlen(json_string_value(json_array_get(row, 3))), 1000);
	ck_assert(json_real_value(json_array_get(row, 4)) == 2.5);
	json_decref(reply);
	reply = query(&daemon, tcp_url, "\"sql\":\"SELECT ?\",\"params\":[\"'); DROP TABLE x; --\"]");
	ck_assert_str_eq(json_string_value(json_array_get(first_row(reply), 0)), "'); DROP TABLE x; --");
	json_decref(reply);
	json_decref(query(&daemon, socket_url, "\"sql\":\"CREATE TABLE IF NOT EXISTS items (n int)\""));
	json_decref(query(&daemon, socket_url, "\"sql\":\"DELETE FROM items\""));
	reply = query(&daemon, socket_url, "\"sql\":\"INSERT INTO items VALUES (?), (?), (?)\",\"params\":[1,2,3]");
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
	json_t *reply = query(&daemon, tcp_url, "\"sql\":\"SELECT * FROM no_such_table\"");
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "SQLError");
	ck_assert_str_eq(wire_text(json_object_get(json_object_get(reply, "error"), "details"), "sqlstate"), "42S02");
	json_decref(reply);
	reply = query(&daemon, tcp_url, "\"sql\":\"SELECT 7\"");
	ck_assert_int_eq(json_integer_value(json_array_get(first_row(reply), 0)), 7);
	json_decref(reply);
	reply = query(&daemon, tcp_url, "\"sql\":\"SELECT ?\",\"params\":[]");
	ck_assert_str_eq(wire_error_type(reply), "SQLError");
	json_decref(reply);
	reply = query(&daemon, "mysql://weft:pw@127.0.0.1:1/test", "\"sql\":\"SELECT 1\"");
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	json_decref(reply);
	reply = query(&daemon, "mysql://weft:wrong@127.0.0.1:1/test", "\"sql\":\"SELECT 1\"");
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

static const char running_sleeps[] =
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(600)%'";

START_TEST(test_timeout_and_cancel_stop_the_query_on_the_server)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	MYSQL *mysql = control();
	ck_assert_ptr_nonnull(mysql);
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = query(&daemon, tcp_url, "\"sql\":\"SELECT SLEEP(600)\",\"timeout\":0.5");
	ck_assert_str_eq(wire_error_type(reply), "Timeout");
	json_decref(reply);
	wait_scalar(mysql, running_sleeps, 0);
	reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\","
	                         "\"sql\":\"SELECT SLEEP(600)\",\"timeout\":900}}",
	             tcp_url);
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	wait_scalar(mysql, running_sleeps, 1);
	json_decref(wire_callf(daemon.url, "{\"op\":\"cancel\",\"id\":%lld}", (long long)id));
	wait_scalar(mysql, running_sleeps, 0);
	reply = wire_callf(daemon.url, "{\"op\":\"result\",\"id\":%lld,\"timeout\":10}", (long long)id);
	ck_assert_str_eq(wire_text(reply, "state"), "cancelled");
	json_decref(reply);
	fixture_stop(&daemon);
	mysql_close(mysql);
}
END_TEST

/* Timeouts that fire around the moment the statement reaches the server:
 * a KILL QUERY then would miss it. Every one must stop on the server. */
START_TEST(test_a_timeout_as_the_query_starts_still_stops_it_on_the_server)
{
	enum { COUNT = 24 };
	SERVERS_SKIP_UNLESS_UP(&servers);
	MYSQL *mysql = control();
	ck_assert_ptr_nonnull(mysql);
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t ids[COUNT];
	for (int i = 0; i < COUNT; i++) {
		json_t *reply = wire_callf(daemon.url,
		                           "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\","
		                           "\"sql\":\"SELECT SLEEP(600)\",\"timeout\":%.4f}}",
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
	wait_scalar(mysql, running_sleeps, 0);
	fixture_stop(&daemon);
	mysql_close(mysql);
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
	json_t *first = query(&daemon, tcp_url, "\"sql\":\"SELECT CONNECTION_ID()\"");
	ck_assert_int_eq(servers_pool_stat(&daemon, "mysql", "opened"), 1);
	servers_wait_pool_stat(&daemon, "mysql", "closed", 1);
	ck_assert_int_eq(servers_pool_stat(&daemon, "mysql", "idle"), 0);
	ck_assert_int_eq(servers_pool_stat(&daemon, "mysql", "open"), 0);
	json_t *second = query(&daemon, tcp_url, "\"sql\":\"SELECT CONNECTION_ID()\"");
	ck_assert_int_ne(first_value(first), first_value(second));
	ck_assert_int_eq(servers_pool_stat(&daemon, "mysql", "opened"), 2);
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
	json_t *first = query(&daemon, tcp_url, "\"sql\":\"SELECT CONNECTION_ID()\"");
	json_t *second = query(&daemon, tcp_url, "\"sql\":\"SELECT CONNECTION_ID()\"");
	ck_assert_int_eq(json_integer_value(json_array_get(first_row(first), 0)),
	                 json_integer_value(json_array_get(first_row(second), 0)));
	json_decref(first);
	json_decref(second);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_a_thousand_queries_share_a_bounded_pool_and_take_no_thread)
{
	enum { COUNT = 1000 };
	SERVERS_SKIP_UNLESS_UP(&servers);
	MYSQL *mysql = control();
	ck_assert_ptr_nonnull(mysql);
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
		                         "\"SELECT ? + SLEEP(0.01)\",\"params\":[%d]}}",
		                         i == 0 ? "" : ",", tcp_url, i);
	snprintf(request + used, size - used, "]}");
	json_t *reply = wire_call(daemon.url, request);
	free(request);
	json_t *ids = json_object_get(reply, "ids");
	ck_assert_uint_eq(json_array_size(ids), COUNT);
	json_int_t last = json_integer_value(json_array_get(ids, COUNT - 1));
	long most = 0;
	json_int_t threads = before;
	for (;;) {
		long now = scalar(mysql, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'weft'");
		if (now > most)
			most = now;
		json_int_t count = fixture_threads(&daemon);
		if (count > threads)
			threads = count;
		json_t *status = wire_callf(daemon.url, "{\"op\":\"status\",\"id\":%lld}", (long long)last);
		const char *state = wire_text(json_object_get(status, "job"), "state");
		bool over = strcmp(state, "done") == 0 || strcmp(state, "failed") == 0;
		json_decref(status);
		if (over)
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
	mysql_close(mysql);
}
END_TEST

/* unix_socket authentication would see root: refused for a user; over TCP
 * the user connects as their own account name, never as the daemon's. */
START_TEST(test_a_user_never_connects_with_the_daemons_identity)
{
	SERVERS_SKIP_UNLESS_TRUSTED(&servers);
	fixture daemon;
	fixture_start(&daemon, NULL);
	chmod(daemon.directory, 0755);
	char request[600];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"mysql:///test?socket=%s\","
	         "\"sql\":\"SELECT 1\"},\"wait\":30}",
	         socket_path);
	json_t *reply = servers_call_as(&servers, daemon.url, request);
	ck_assert_str_eq(wire_error_type(reply), "PermissionError");
	json_decref(reply);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"mysql://127.0.0.1:%d/test\","
	         "\"sql\":\"SELECT CURRENT_USER()\"},\"wait\":30}",
	         port);
	reply = servers_call_as(&servers, daemon.url, request);
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	char denied[80];
	snprintf(denied, sizeof(denied), "Access denied for user '%s'", servers.stranger.name);
	ck_assert_msg(strstr(wire_text(json_object_get(reply, "error"), "message"), denied) != NULL, "%s",
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
	json_t *root_reply = query(&daemon, tcp_url, "\"sql\":\"SELECT CONNECTION_ID()\"");
	ck_assert_int_eq(servers_pool_stat(&daemon, "mysql", "idle"), 1);
	char request[600];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\","
	         "\"sql\":\"SELECT CONNECTION_ID()\"},\"wait\":30}",
	         tcp_url);
	json_t *user_reply = servers_call_as(&servers, daemon.url, request);
	ck_assert_msg(strcmp(wire_text(user_reply, "state"), "done") == 0, "%s", json_dumps(user_reply, 0));
	ck_assert_int_ne(first_value(root_reply), first_value(user_reply));
	ck_assert_int_eq(servers_pool_stat(&daemon, "mysql", "opened"), 2);
	ck_assert_int_eq(servers_pool_stat(&daemon, "mysql", "idle"), 2);
	/* And root's next job still gets root's own connection back. */
	json_t *again = query(&daemon, tcp_url, "\"sql\":\"SELECT CONNECTION_ID()\"");
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
	servers_suite_begin(&servers, "wtm", 9, "mysql tests", 2, "mysql trust test");
	Suite *suite = suite_create("mysql");
	TCase *sql = tcase_create("mysql");
	tcase_set_timeout(sql, 60);
	tcase_add_test(sql, test_parameters_are_bound_and_rows_typed);
	tcase_add_test(sql, test_server_errors_fail_with_sql_error);
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
	servers_stop(server, SIGTERM, directory);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

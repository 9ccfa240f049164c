/*
 * Issue 15's SQL benchmark: N "SELECT 1" as weft sql.query jobs (submitted in
 * batches of 1000, all batches in flight) on a private weftd (2 workers, so
 * at most 2 x SQL_POOL_MAX = 16 connections) against a PostgreSQL and a
 * MariaDB started here over TCP on 127.0.0.1; beside asyncpg and aiomysql
 * with pools of 16 connections. A server or a Python package that is
 * missing is a SKIP line in the table, not a failure.
 * Usage: sql_bench [N]   (WEFTD and WEFT_SOURCE set, as bench/run does)
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/wire.h"

enum { BATCH = 1000, PEER_CONNECTIONS = 16 };
static int count = 10000;

struct server {
	char directory[64];
	pid_t pid;
	int port;
	char skip[200]; /* why it is not measured; "" when it runs */
};

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t length = sizeof(address);
	bind(fd, (struct sockaddr *)&address, sizeof(address));
	getsockname(fd, (struct sockaddr *)&address, &length);
	close(fd);
	return ntohs(address.sin_port);
}

/* Runs argv as account (output to log, or thrown away); waits unless background. */
static pid_t run_as(const struct passwd *account, const char *const argv[], const char *log,
                    int background)
{
	pid_t pid = fork();
	if (pid == 0) {
		int out = log != NULL ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)
		                      : open("/dev/null", O_WRONLY);
		dup2(out, 1);
		dup2(out, 2);
		if (account != NULL && (setgroups(0, NULL) != 0 || setgid(account->pw_gid) != 0 ||
		                        setuid(account->pw_uid) != 0))
			_exit(122);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (background)
		return pid;
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int server_directory(struct server *server, const struct passwd *account, const char *name)
{
	snprintf(server->directory, sizeof(server->directory), "/tmp/weft-%s-bench-XXXXXX", name);
	if (mkdtemp(server->directory) == NULL ||
	    chown(server->directory, account->pw_uid, account->pw_gid) != 0) {
		snprintf(server->skip, sizeof(server->skip), "cannot make a directory for the server");
		return -1;
	}
	chmod(server->directory, 0755);
	return 0;
}

static void postgres_start(struct server *server)
{
	glob_t found;
	if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &found) != 0) {
		snprintf(server->skip, sizeof(server->skip), "PostgreSQL is not installed (scripts/deps.sh)");
		return;
	}
	char bin[256];
	snprintf(bin, sizeof(bin), "%s", found.gl_pathv[found.gl_pathc - 1]);
	globfree(&found);
	*strrchr(bin, '/') = '\0';
	struct passwd *account = getpwnam("postgres");
	if (geteuid() != 0 || account == NULL) {
		snprintf(server->skip, sizeof(server->skip), "needs root and a postgres user");
		return;
	}
	if (server_directory(server, account, "pg") != 0)
		return;
	char initdb[300], postgres[300], data[128], log[128], port[16];
	snprintf(initdb, sizeof(initdb), "%s/initdb", bin);
	snprintf(postgres, sizeof(postgres), "%s/postgres", bin);
	snprintf(data, sizeof(data), "%s/data", server->directory);
	snprintf(log, sizeof(log), "%s/server.log", server->directory);
	const char *init[] = {initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", NULL};
	if (run_as(account, init, NULL, 0) != 0) {
		snprintf(server->skip, sizeof(server->skip), "initdb failed");
		return;
	}
	server->port = free_port();
	snprintf(port, sizeof(port), "%d", server->port);
	const char *run[] = {postgres, "-D", data, "-k", server->directory, "-p", port, "-c",
	                     "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=60",
	                     NULL};
	server->pid = run_as(account, run, log, 1);
	char conninfo[128];
	snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d user=postgres dbname=postgres",
	         server->port);
	double deadline = fixture_now() + 30;
	while (PQping(conninfo) != PQPING_OK) {
		if (fixture_now() > deadline) {
			snprintf(server->skip, sizeof(server->skip), "postgres did not start (see %s)", log);
			return;
		}
		usleep(10000);
	}
}

static void mariadb_start(struct server *server)
{
	struct passwd *account = getpwnam("mysql");
	if (access("/usr/sbin/mariadbd", X_OK) != 0 || access("/usr/bin/mariadb-install-db", X_OK) != 0) {
		snprintf(server->skip, sizeof(server->skip), "MariaDB is not installed (scripts/deps.sh)");
		return;
	}
	if (geteuid() != 0 || account == NULL) {
		snprintf(server->skip, sizeof(server->skip), "needs root and a mysql user");
		return;
	}
	if (server_directory(server, account, "my") != 0)
		return;
	char datadir[160], socket_path[128], socket_option[160], port_option[32], log_option[160];
	snprintf(datadir, sizeof(datadir), "--datadir=%s/data", server->directory);
	snprintf(socket_path, sizeof(socket_path), "%s/mysqld.sock", server->directory);
	const char *install[] = {"/usr/bin/mariadb-install-db", "--no-defaults", datadir, "--user=mysql",
	                         "--skip-test-db", "--auth-root-authentication-method=socket", NULL};
	if (run_as(NULL, install, NULL, 0) != 0) {
		snprintf(server->skip, sizeof(server->skip), "mariadb-install-db failed");
		return;
	}
	server->port = free_port();
	snprintf(socket_option, sizeof(socket_option), "--socket=%s", socket_path);
	snprintf(port_option, sizeof(port_option), "--port=%d", server->port);
	snprintf(log_option, sizeof(log_option), "--log-error=%s/server.log", server->directory);
	const char *run[] = {"/usr/sbin/mariadbd", "--no-defaults", datadir, socket_option, port_option,
	                     "--bind-address=127.0.0.1", "--user=mysql", "--skip-name-resolve",
	                     log_option, "--max-connections=100", "--innodb-buffer-pool-size=16M", NULL};
	server->pid = run_as(NULL, run, NULL, 1);
	double deadline = fixture_now() + 60;
	for (;;) {
		MYSQL *mysql = mysql_init(NULL);
		if (mysql_real_connect(mysql, NULL, "root", NULL, NULL, 0, socket_path, 0) != NULL) {
			mysql_query(mysql, "CREATE DATABASE IF NOT EXISTS test");
			mysql_query(mysql, "CREATE USER 'weft'@'%' IDENTIFIED BY 'pw'");
			mysql_query(mysql, "GRANT ALL ON *.* TO 'weft'@'%'");
			mysql_close(mysql);
			return;
		}
		mysql_close(mysql);
		if (fixture_now() > deadline) {
			snprintf(server->skip, sizeof(server->skip), "mariadbd did not start (see %s)",
			         server->directory);
			return;
		}
		usleep(20000);
	}
}

static void server_stop(struct server *server, int signal)
{
	if (server->pid > 0) {
		kill(server->pid, signal);
		waitpid(server->pid, NULL, 0);
	}
	if (server->directory[0] != '\0') {
		char command[128];
		snprintf(command, sizeof(command), "rm -rf %s", server->directory);
		if (system(command) != 0)
			fprintf(stderr, "could not remove %s\n", server->directory);
	}
}

/* Runs argv, returns its stdout (static). */
static const char *output_of(const char *const argv[])
{
	static char text[4096];
	int out[2];
	if (pipe(out) != 0)
		return "";
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	size_t length = 0;
	for (;;) {
		ssize_t got = read(out[0], text + length, sizeof(text) - 1 - length);
		if (got > 0)
			length += (size_t)got;
		else if (got == 0 || errno != EINTR || length == sizeof(text) - 1)
			break;
	}
	text[length] = '\0';
	close(out[0]);
	waitpid(pid, NULL, 0);
	return text;
}

/* A row of the table and the RESULT line bench/run collects. */
static void row(const char *client, const char *bench, const char *impl, double seconds)
{
	printf("| %-48s | %8.3f | %10.0f |\n", client, seconds, count / seconds);
	printf("RESULT bench=%s impl=%s n=%d secs=%.3f rate=%.0f\n", bench, impl, count, seconds,
	       count / seconds);
}

static void skip_row(const char *client, const char *why)
{
	printf("| %-48s | SKIP: %s |\n", client, why);
	printf("SKIP: 1 %s: %s\n", client, why);
}

/* count SELECT 1 as sql.query jobs against url; the wall seconds. Fails the
 * run unless every job gave 1. */
static double weft_run(const fixture *daemon, const char *url)
{
	size_t size = BATCH * (strlen(url) + 96) + 64;
	char *request = malloc(size);
	int batches = count / BATCH;
	json_t **replies = calloc((size_t)batches, sizeof(*replies));
	double started = fixture_now();
	for (int b = 0; b < batches; b++) {
		size_t used = (size_t)snprintf(request, size, "{\"op\":\"submit\",\"jobs\":[");
		for (int i = 0; i < BATCH; i++)
			used += (size_t)snprintf(request + used, size - used,
			                         "%s{\"fn\":\"sql.query\",\"args\":{\"url\":\"%s\","
			                         "\"sql\":\"SELECT 1\"}}",
			                         i ? "," : "", url);
		snprintf(request + used, size - used, "]}");
		replies[b] = wire_call_text(daemon->url, request, strlen(request), 60000);
		ck_assert_msg(replies[b] != NULL && json_object_get(replies[b], "ids") != NULL,
		              "batch %d was not accepted: %s", b,
		              replies[b] != NULL ? json_dumps(replies[b], 0) : "no reply");
	}
	size_t right = 0;
	for (int b = 0; b < batches; b++) {
		char *ids = json_dumps(json_object_get(replies[b], "ids"), 0);
		char *wait = malloc(strlen(ids) + 64);
		sprintf(wait, "{\"op\":\"result\",\"ids\":%s,\"timeout\":120}", ids);
		json_t *results = wire_call_text(daemon->url, wait, strlen(wait), 130000);
		ck_assert_msg(results != NULL, "no results for batch %d", b);
		json_t *list = json_object_get(results, "results");
		for (size_t i = 0; i < json_array_size(list); i++) {
			json_t *rows = json_object_get(json_object_get(json_array_get(list, i), "result"),
			                               "rows");
			json_t *value = json_array_get(json_array_get(rows, 0), 0);
			/* PostgreSQL's int4 and MariaDB's BIGINT both come as a number. */
			right += json_is_integer(value) && json_integer_value(value) == 1;
		}
		json_decref(results);
		free(wait);
		free(ids);
		json_decref(replies[b]);
	}
	double elapsed = fixture_now() - started;
	free(replies);
	free(request);
	ck_assert_msg(right == (size_t)count, "only %zu of %d jobs gave 1", right, count);
	return elapsed;
}

static void peer(const char *client, const char *bench, const char *impl, const char *const argv[])
{
	const char *out = output_of(argv);
	double seconds = strtod(out, NULL);
	if (strncmp(out, "SKIP", 4) == 0)
		skip_row(client, out + 6);
	else if (seconds > 0)
		row(client, bench, impl, seconds);
	else
		ck_abort_msg("%s failed: %s", client, out);
}

START_TEST(bench)
{
	struct server pg = {.pid = -1}, my = {.pid = -1};
	postgres_start(&pg);
	mariadb_start(&my);
	fixture daemon;
	const char *const args[] = {"--log-level", "warn", "--workers", "2", "--retain-max", "50000", NULL};
	fixture_start(&daemon, args);
	char number[16], connections[16], pg_port[16], my_port[16], pg_source[512], my_source[512];
	snprintf(number, sizeof(number), "%d", count);
	snprintf(connections, sizeof(connections), "%d", PEER_CONNECTIONS);
	snprintf(pg_port, sizeof(pg_port), "%d", pg.port);
	snprintf(my_port, sizeof(my_port), "%d", my.port);
	snprintf(pg_source, sizeof(pg_source), "%s/bench/io/asyncpg_select.py", getenv("WEFT_SOURCE"));
	snprintf(my_source, sizeof(my_source), "%s/bench/io/aiomysql_select.py", getenv("WEFT_SOURCE"));
	fflush(stdout);
	printf("%d \"SELECT 1\" over TCP on 127.0.0.1, 16 connections each\n\n", count);
	printf("| %-48s | %8s | %10s |\n", "client", "wall s", "queries/s");
	printf("|%s|%s|%s|\n", "--------------------------------------------------", "----------",
	       "------------");
	const char *weft_pg = "weft sql.query, PostgreSQL (batches of 1000)";
	const char *weft_my = "weft sql.query, MariaDB (batches of 1000)";
	if (pg.skip[0] != '\0') {
		skip_row(weft_pg, pg.skip);
		skip_row("asyncpg, pool of 16", pg.skip);
	} else {
		char url[128];
		snprintf(url, sizeof(url), "postgresql://postgres@127.0.0.1:%d/postgres", pg.port);
		row(weft_pg, "sql_select1_pg", "weft", weft_run(&daemon, url));
		const char *argv[] = {"/usr/bin/python3", pg_source, "127.0.0.1", pg_port, "postgres",
		                      "postgres", number, connections, NULL};
		peer("asyncpg, pool of 16", "sql_select1_pg", "asyncpg", argv);
	}
	if (my.skip[0] != '\0') {
		skip_row(weft_my, my.skip);
		skip_row("aiomysql, pool of 16", my.skip);
	} else {
		char url[128];
		snprintf(url, sizeof(url), "mysql://weft:pw@127.0.0.1:%d/test", my.port);
		row(weft_my, "sql_select1_mysql", "weft", weft_run(&daemon, url));
		const char *argv[] = {"/usr/bin/python3", my_source, "127.0.0.1", my_port, "weft", "pw",
		                      "test", number, connections, NULL};
		peer("aiomysql, pool of 16", "sql_select1_mysql", "aiomysql", argv);
	}
	fixture_stop(&daemon);
	server_stop(&pg, SIGINT);
	server_stop(&my, SIGTERM);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc > 1)
		count = atoi(argv[1]);
	if (count < BATCH)
		count = BATCH;
	count -= count % BATCH;
	Suite *suite = suite_create("sql bench");
	TCase *one = tcase_create("sql bench");
	tcase_set_timeout(one, 600);
	tcase_add_test(one, bench);
	suite_add_tcase(suite, one);
	SRunner *runner = srunner_create(suite);
	srunner_set_fork_status(runner, CK_NOFORK);
	srunner_run_all(runner, CK_SILENT);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}

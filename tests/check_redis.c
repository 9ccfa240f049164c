/*
 * redis.command end to end against a real redis-server, started per test on
 * a unix socket and a TCP port in the test's directory, polled until it
 * answers PING, stopped by pid. Without redis-server every test is a visible
 * SKIP. The trust tests need root and useradd (a throwaway user). Name
 * resolution runs against the tests' DNS server (tests/dns_server.c) through
 * weftd --resolv-conf; the tests of failed lookups need no redis-server.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/executors/io/resolve.h"
#include "tests/as_user.h"
#include "tests/dns_server.h"
#include "tests/fixture.h"
#include "tests/servers.h"
#include "tests/wire.h"

static struct servers_suite servers;

struct redis {
	char directory[128];
	char socket[160];
	int port;
	pid_t pid;
	redisContext *control; /* the test's own connection */
};

static void redis_start(struct redis *redis)
{
	ck_assert(servers_make_directory(redis->directory, sizeof(redis->directory), "redis", -1, -1));
	snprintf(redis->socket, sizeof(redis->socket), "%s/redis.sock", redis->directory);
	redis->port = servers_free_port();
	ck_assert_int_gt(redis->port, 0);
	char port[16];
	snprintf(port, sizeof(port), "%d", redis->port);
	redis->pid = fork();
	ck_assert_int_ge(redis->pid, 0);
	if (redis->pid == 0) {
		execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
		       "--unixsocket", redis->socket, "--unixsocketperm", "777", "--save", "",
		       "--appendonly", "no", "--dir", redis->directory, "--daemonize", "no",
		       "--loglevel", "warning", "--logfile", "redis.log", "--maxclients", "4000",
		       "--tcp-backlog", "2048", (char *)NULL);
		_exit(127);
	}
	double deadline = fixture_now() + 10;
	for (;;) {
		redisContext *context = redisConnectUnix(redis->socket);
		if (context != NULL && context->err == 0) {
			redisReply *reply = redisCommand(context, "PING");
			bool up = reply != NULL && reply->type == REDIS_REPLY_STATUS;
			if (reply != NULL)
				freeReplyObject(reply);
			if (up) {
				redis->control = context;
				return;
			}
		}
		if (context != NULL)
			redisFree(context);
		ck_assert_msg(fixture_now() < deadline, "redis-server did not answer on %s", redis->socket);
		usleep(5000);
	}
}

static void redis_stop(struct redis *redis)
{
	redisFree(redis->control);
	servers_stop(redis->pid, SIGTERM, redis->directory);
}

/* An INFO field of the server, as a number. */
static long info_number(struct redis *redis, const char *field)
{
	redisReply *reply = redisCommand(redis->control, "INFO");
	ck_assert_ptr_nonnull(reply);
	char name[64];
	snprintf(name, sizeof(name), "\r\n%s:", field);
	const char *at = strstr(reply->str, name);
	long value = at != NULL ? strtol(at + strlen(name), NULL, 10) : -1;
	freeReplyObject(reply);
	return value;
}

static void wait_info(struct redis *redis, const char *field, long wanted)
{
	double deadline = fixture_now() + 30;
	long now;
	while ((now = info_number(redis, field)) != wanted)
		ck_assert_msg(fixture_now() < deadline, "%s is %ld, not %ld", field, now, wanted);
}

/* Runs redis.command with these argv (JSON) on redis's socket, to its end. */
static json_t *command(const fixture *daemon, const char *url, const char *argv)
{
	json_t *reply = wire_callf(daemon->url,
	                     "{\"op\":\"submit\",\"fn\":\"redis.command\",\"args\":{\"url\":\"%s\",\"argv\":%s},"
	                     "\"wait\":30}",
	                     url, argv);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", json_dumps(reply, 0));
	return reply;
}

/* One counter of the daemon's redis pools (stats op, "io_pools"). */
/* Polls the counter until it is wanted, for at most 30 s. */
START_TEST(test_replies_map_to_json)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct redis redis;
	redis_start(&redis);
	fixture daemon;
	fixture_start(&daemon, NULL);
	char url[200];
	snprintf(url, sizeof(url), "redis://%s", redis.socket);
	json_t *reply = command(&daemon, url, "[\"SET\",\"k\",\"v\"]");
	ck_assert_str_eq(wire_text(reply, "result"), "OK");
	json_decref(reply);
	reply = command(&daemon, url, "[\"GET\",\"k\"]");
	ck_assert_str_eq(wire_text(reply, "result"), "v");
	json_decref(reply);
	reply = command(&daemon, url, "[\"INCRBY\",\"n\",41]");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 41);
	json_decref(reply);
	reply = command(&daemon, url, "[\"GET\",\"missing\"]");
	ck_assert(json_is_null(json_object_get(reply, "result")));
	json_decref(reply);
	json_decref(command(&daemon, url, "[\"RPUSH\",\"l\",\"a\",\"b\"]"));
	reply = command(&daemon, url, "[\"LRANGE\",\"l\",0,-1]");
	json_t *list = json_object_get(reply, "result");
	ck_assert_uint_eq(json_array_size(list), 2);
	ck_assert_str_eq(json_string_value(json_array_get(list, 1)), "b");
	json_decref(reply);
	/* A value that is not UTF-8 comes as base64. */
	freeReplyObject(redisCommand(redis.control, "SET bin %b", "\xff\x00\x01", (size_t)3));
	reply = command(&daemon, url, "[\"GET\",\"bin\"]");
	ck_assert_str_eq(wire_text(json_object_get(reply, "result"), "base64"), "/wAB");
	json_decref(reply);
	/* The same server over TCP, database 2. */
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/2", redis.port);
	json_decref(command(&daemon, url, "[\"SET\",\"in2\",\"yes\"]"));
	freeReplyObject(redisCommand(redis.control, "SELECT 2"));
	redisReply *check = redisCommand(redis.control, "GET in2");
	ck_assert_str_eq(check->str, "yes");
	freeReplyObject(check);
	fixture_stop(&daemon);
	redis_stop(&redis);
}
END_TEST

START_TEST(test_server_errors_fail_with_redis_error)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct redis redis;
	redis_start(&redis);
	fixture daemon;
	fixture_start(&daemon, NULL);
	char url[200];
	snprintf(url, sizeof(url), "redis://%s", redis.socket);
	json_t *reply = command(&daemon, url, "[\"NOSUCHCOMMAND\"]");
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "RedisError");
	ck_assert_ptr_nonnull(strstr(wire_text(json_object_get(reply, "error"), "message"), "unknown command"));
	json_decref(reply);
	/* The connection is still good for the next job. */
	reply = command(&daemon, url, "[\"PING\"]");
	ck_assert_str_eq(wire_text(reply, "result"), "PONG");
	json_decref(reply);
	/* Nobody listens there. */
	reply = command(&daemon, "redis://127.0.0.1:1", "[\"PING\"]");
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	json_decref(reply);
	/* A reply past max_size. */
	char *big = memset(malloc(3000000), 'x', 3000000);
	freeReplyObject(redisCommand(redis.control, "SET big %b", big, (size_t)3000000));
	free(big);
	reply = command(&daemon, url, "[\"GET\",\"big\"]");
	ck_assert_str_eq(wire_error_type(reply), "ResponseTooLarge");
	json_decref(reply);
	fixture_stop(&daemon);
	redis_stop(&redis);
}
END_TEST

/* A host name is resolved off the worker loop (asynchronously, /etc/hosts
 * first), then connected to; the daemon keeps answering meanwhile. */
START_TEST(test_host_names_are_resolved_and_connected_to)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct redis redis;
	redis_start(&redis);
	fixture daemon;
	fixture_start(&daemon, NULL);
	char url[200];
	snprintf(url, sizeof(url), "redis://localhost:%d/3", redis.port);
	json_t *reply = command(&daemon, url, "[\"SET\",\"named\",\"yes\"]");
	ck_assert_str_eq(wire_text(reply, "state"), "done");
	json_decref(reply);
	freeReplyObject(redisCommand(redis.control, "SELECT 3"));
	redisReply *check = redisCommand(redis.control, "GET named");
	ck_assert_str_eq(check->str, "yes");
	freeReplyObject(check);
	fixture_stop(&daemon);
	redis_stop(&redis);
}
END_TEST

/* How long the job of a submit's reply ran, from its own timestamps. */
static double job_seconds(const fixture *daemon, const json_t *reply)
{
	json_t *status = wire_callf(daemon->url, "{\"op\":\"status\",\"id\":%lld}",
	                            (long long)json_integer_value(json_object_get(reply, "id")));
	const json_t *job = json_object_get(status, "job");
	ck_assert_msg(json_is_number(json_object_get(job, "finished")), "%s", json_dumps(status, 0));
	double seconds = json_number_value(json_object_get(job, "finished")) -
	                 json_number_value(json_object_get(job, "started"));
	json_decref(status);
	return seconds;
}

/* A name the name server says does not exist: the job fails with a
 * ConnectionError naming the host and saying so. */
START_TEST(test_a_name_that_does_not_exist_fails_naming_the_host)
{
	struct dns_server *server = dns_server_new();
	char directory[128];
	fixture daemon;
	servers_start_with_dns(&daemon, server, directory, sizeof(directory));
	json_t *reply = command(&daemon, "redis://nowhere.weft.test:6379", "[\"PING\"]");
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	const char *message = wire_text(json_object_get(reply, "error"), "message");
	ck_assert_msg(strstr(message, "cannot resolve 'nowhere.weft.test'") != NULL &&
	                      strstr(message, "does not exist") != NULL,
	              "%s", message);
	json_decref(reply);
	fixture_stop(&daemon);
	dns_server_free(server);
	servers_stop(0, 0, directory);
}
END_TEST

/* A name server that never answers: the lookup gives up after the
 * resolver's tries (RESOLVE_TRIES of RESOLVE_TRY_SECONDS), well inside the
 * job's own timeout, so the job fails with a ConnectionError, not Timeout. */
START_TEST(test_a_name_server_that_never_answers_fails_after_the_resolvers_tries)
{
	struct dns_server *server = dns_server_new();
	dns_server_silence(server, "silent.weft.test");
	char directory[128];
	fixture daemon;
	servers_start_with_dns(&daemon, server, directory, sizeof(directory));
	json_t *reply = wire_callf(daemon.url,
	                           "{\"op\":\"submit\",\"fn\":\"redis.command\",\"args\":{\"url\":"
	                           "\"redis://silent.weft.test\",\"argv\":[\"PING\"],\"timeout\":600},"
	                           "\"wait\":120}");
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	const char *message = wire_text(json_object_get(reply, "error"), "message");
	ck_assert_msg(strstr(message, "cannot resolve 'silent.weft.test'") != NULL &&
	                      strstr(message, "no answer") != NULL,
	              "%s", message);
	/* It waited for the resolver's tries: each query was sent RESOLVE_TRIES
	 * times, and the job ran at least that many tries' time. */
	ck_assert_int_ge(dns_server_queries(server, "silent.weft.test"), RESOLVE_TRIES);
	double seconds = job_seconds(&daemon, reply);
	ck_assert_msg(seconds >= RESOLVE_TRIES * RESOLVE_TRY_SECONDS - 0.5, "the job ran %.3f s", seconds);
	json_decref(reply);
	/* The resolver's complaint is a line of weftd's log, not libevent's
	 * bare "[warn]" on stderr. */
	FILE *log = fopen(daemon.log_path, "r");
	ck_assert_ptr_nonnull(log);
	char line[1024];
	bool ours = false, bare = false;
	while (fgets(line, sizeof(line), log) != NULL) {
		ours = ours || (strstr(line, ": libevent: Nameserver 127.0.0.1") != NULL);
		bare = bare || strncmp(line, "[warn]", 6) == 0 || strncmp(line, "[msg]", 5) == 0;
	}
	fclose(log);
	ck_assert_msg(ours && !bare, "the resolver's failure is not in weftd's log format");
	fixture_stop(&daemon);
	dns_server_free(server);
	servers_stop(0, 0, directory);
}
END_TEST

/* A name resolves to two addresses; nothing listens on the first (redis
 * binds 127.0.0.1 alone, so 127.0.0.2 refuses): the job connects to the
 * second. A name with only the refusing address fails naming host, address
 * and error. */
START_TEST(test_a_name_whose_first_address_refuses_connects_to_the_next)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct redis redis;
	redis_start(&redis);
	/* Nothing on 127.0.0.2 at that port: a refused connect. */
	int probe = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)redis.port)};
	inet_pton(AF_INET, "127.0.0.2", &address.sin_addr);
	ck_assert_int_ne(connect(probe, (struct sockaddr *)&address, sizeof(address)), 0);
	ck_assert_int_eq(errno, ECONNREFUSED);
	close(probe);
	struct dns_server *server = dns_server_new();
	dns_server_add(server, "both.weft.test", "127.0.0.2");
	dns_server_add(server, "both.weft.test", "127.0.0.1");
	dns_server_add(server, "closed.weft.test", "127.0.0.2");
	char directory[128];
	fixture daemon;
	servers_start_with_dns(&daemon, server, directory, sizeof(directory));
	char url[200];
	snprintf(url, sizeof(url), "redis://both.weft.test:%d/4", redis.port);
	json_t *reply = command(&daemon, url, "[\"SET\",\"second\",\"yes\"]");
	ck_assert_msg(strcmp(wire_text(reply, "state"), "done") == 0, "%s", json_dumps(reply, 0));
	json_decref(reply);
	ck_assert_int_ge(dns_server_queries(server, "both.weft.test"), 1);
	freeReplyObject(redisCommand(redis.control, "SELECT 4"));
	redisReply *check = redisCommand(redis.control, "GET second");
	ck_assert_str_eq(check->str, "yes");
	freeReplyObject(check);
	/* The refused connection was opened and closed; the second address's
	 * stays, idle. */
	servers_wait_pool_stat(&daemon, "redis", "closed", 1);
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "opened"), 2);
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "idle"), 1);
	snprintf(url, sizeof(url), "redis://closed.weft.test:%d", redis.port);
	reply = command(&daemon, url, "[\"PING\"]");
	ck_assert_str_eq(wire_error_type(reply), "ConnectionError");
	const char *message = wire_text(json_object_get(reply, "error"), "message");
	ck_assert_msg(strstr(message, "cannot connect to 'closed.weft.test' (127.0.0.2): ") != NULL &&
	                      strstr(message, "refused") != NULL,
	              "%s", message);
	json_decref(reply);
	fixture_stop(&daemon);
	dns_server_free(server);
	servers_stop(0, 0, directory);
	redis_stop(&redis);
}
END_TEST

/* --resolv-conf naming a file weftd cannot read stops it at start, saying
 * which file and why. */
START_TEST(test_weftd_will_not_start_with_a_resolv_conf_it_cannot_read)
{
	int pipe_fds[2];
	ck_assert_int_eq(pipe(pipe_fds), 0);
	const char *weftd = getenv("WEFTD");
	ck_assert_ptr_nonnull(weftd);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipe_fds[1], 2);
		close(pipe_fds[0]);
		execl(weftd, weftd, "--resolv-conf", "/nonexistent/resolv.conf", "--state-dir", "none",
		      "--cgroup", "off", "--listen", "ipc:///nonexistent/weft.sock", (char *)NULL);
		_exit(127);
	}
	close(pipe_fds[1]);
	char output[4096];
	size_t used = 0;
	ssize_t got;
	while (used + 1 < sizeof(output) && (got = read(pipe_fds[0], output + used, sizeof(output) - 1 - used)) > 0)
		used += (size_t)got;
	output[used] = '\0';
	close(pipe_fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d: %s", status, output);
	ck_assert_msg(strstr(output, "--resolv-conf: cannot read /nonexistent/resolv.conf") != NULL, "%s",
	              output);
}
END_TEST

START_TEST(test_bad_arguments_are_refused_at_submit)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	static const char *const refused[] = {
	        "{\"argv\":[\"PING\"]}",
	        "{\"url\":\"redis://bad_name!\",\"argv\":[\"PING\"]}",
	        "{\"url\":\"redis://-dash.example\",\"argv\":[\"PING\"]}",
	        "{\"url\":\"http://127.0.0.1\",\"argv\":[\"PING\"]}",
	        "{\"url\":\"redis://127.0.0.1:99999\",\"argv\":[\"PING\"]}",
	        "{\"url\":\"redis://127.0.0.1\",\"argv\":[]}",
	        "{\"url\":\"redis://127.0.0.1\",\"argv\":[[\"nested\"]]}",
	        "{\"url\":\"redis://127.0.0.1\",\"argv\":[\"PING\"],\"timeout\":0}",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		json_t *reply = wire_callf(daemon.url, "{\"op\":\"submit\",\"fn\":\"redis.command\",\"args\":%s}",
		                     refused[i]);
		ck_assert_msg(wire_error_code(reply) != NULL &&
		                      strcmp(wire_error_code(reply), "bad_arguments") == 0,
		              "%s was not refused: %s", refused[i], json_dumps(reply, 0));
		json_decref(reply);
	}
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_timeout_and_cancel_close_the_connection)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct redis redis;
	redis_start(&redis);
	fixture daemon;
	fixture_start(&daemon, NULL);
	char url[200];
	snprintf(url, sizeof(url), "redis://%s", redis.socket);
	json_t *reply = wire_callf(daemon.url,
	                     "{\"op\":\"submit\",\"fn\":\"redis.command\",\"args\":{\"url\":\"%s\","
	                     "\"argv\":[\"BLPOP\",\"nothing\",0],\"timeout\":0.3},\"wait\":30}",
	                     url);
	ck_assert_str_eq(wire_error_type(reply), "Timeout");
	json_decref(reply);
	wait_info(&redis, "blocked_clients", 0);
	/* Cancel: the server sees the blocked client go. */
	reply = wire_callf(daemon.url,
	             "{\"op\":\"submit\",\"fn\":\"redis.command\",\"args\":{\"url\":\"%s\","
	             "\"argv\":[\"BLPOP\",\"nothing\",0],\"timeout\":600}}",
	             url);
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	wait_info(&redis, "blocked_clients", 1);
	json_decref(wire_callf(daemon.url, "{\"op\":\"cancel\",\"id\":%lld}", (long long)id));
	wait_info(&redis, "blocked_clients", 0);
	wait_info(&redis, "connected_clients", 1); /* the test's own */
	reply = wire_callf(daemon.url, "{\"op\":\"result\",\"id\":%lld,\"timeout\":10}", (long long)id);
	ck_assert_str_eq(wire_text(reply, "state"), "cancelled");
	json_decref(reply);
	fixture_stop(&daemon);
	redis_stop(&redis);
}
END_TEST

/* --io-idle: a connection unused that long is closed (the server sees it
 * go), counted in stats; the next job opens a new one. */
START_TEST(test_idle_connections_close_after_io_idle)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct redis redis;
	redis_start(&redis);
	fixture daemon;
	const char *const options[] = {"--workers", "1", "--io-idle", "0.2", NULL};
	fixture_start(&daemon, options);
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis.port);
	json_t *first = command(&daemon, url, "[\"CLIENT\",\"ID\"]");
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "opened"), 1);
	servers_wait_pool_stat(&daemon, "redis", "closed", 1);
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "idle"), 0);
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "open"), 0);
	wait_info(&redis, "connected_clients", 1); /* the test's own */
	json_t *second = command(&daemon, url, "[\"CLIENT\",\"ID\"]");
	ck_assert_int_ne(json_integer_value(json_object_get(first, "result")),
	                 json_integer_value(json_object_get(second, "result")));
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "opened"), 2);
	json_decref(first);
	json_decref(second);
	fixture_stop(&daemon);
	redis_stop(&redis);
}
END_TEST

START_TEST(test_connections_are_reused_per_url_and_owner)
{
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct redis redis;
	redis_start(&redis);
	fixture daemon;
	const char *const one_worker[] = {"--workers", "1", NULL};
	fixture_start(&daemon, one_worker);
	char url[200];
	snprintf(url, sizeof(url), "redis://%s", redis.socket);
	json_t *first = command(&daemon, url, "[\"CLIENT\",\"ID\"]");
	json_t *second = command(&daemon, url, "[\"CLIENT\",\"ID\"]");
	ck_assert_int_eq(json_integer_value(json_object_get(first, "result")),
	                 json_integer_value(json_object_get(second, "result")));
	json_decref(first);
	json_decref(second);
	/* Another URL (database 1) is another connection. */
	char other[220];
	snprintf(other, sizeof(other), "redis://%s?db=1", redis.socket);
	json_decref(command(&daemon, other, "[\"PING\"]"));
	ck_assert_int_eq(info_number(&redis, "connected_clients"), 3);
	/* Both idle in the pool (idle for 30 s by default), counted so. */
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "opened"), 2);
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "idle"), 2);
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "closed"), 0);
	fixture_stop(&daemon);
	redis_stop(&redis);
}
END_TEST

START_TEST(test_a_thousand_blocking_commands_share_bounded_pools_and_take_no_thread)
{
	enum { COUNT = 1000 };
	SERVERS_SKIP_UNLESS_UP(&servers);
	struct redis redis;
	redis_start(&redis);
	fixture daemon;
	fixture_start(&daemon, NULL);
	char url[200];
	snprintf(url, sizeof(url), "redis://%s", redis.socket);
	for (int i = 0; i < 4; i++)
		json_decref(command(&daemon, url, "[\"PING\"]"));
	json_int_t before = fixture_threads(&daemon);
	size_t size = COUNT * 200 + 64, used = 0;
	char *request = malloc(size);
	used += (size_t)snprintf(request + used, size - used, "{\"op\":\"submit\",\"jobs\":[");
	for (int i = 0; i < COUNT; i++)
		used += (size_t)snprintf(request + used, size - used,
		                         "%s{\"fn\":\"redis.command\",\"args\":{\"url\":\"%s\","
		                         "\"argv\":[\"BLPOP\",\"queue\",0],\"timeout\":120}}",
		                         i == 0 ? "" : ",", url);
	snprintf(request + used, size - used, "]}");
	json_t *reply = wire_call(daemon.url, request);
	free(request);
	json_t *ids = json_object_get(reply, "ids");
	ck_assert_uint_eq(json_array_size(ids), COUNT);
	/* Each worker's pool for this (url, owner) holds 64 connections: 128
	 * jobs block on the server, the others wait their turn in weftd. */
	wait_info(&redis, "blocked_clients", 128);
	ck_assert_int_eq(fixture_threads(&daemon), before);
	for (int i = 0; i < COUNT; i++)
		freeReplyObject(redisCommand(redis.control, "RPUSH queue %d", i));
	json_t *results = wire_results(daemon.url, ids);
	json_t *list = json_object_get(results, "results");
	for (size_t i = 0; i < COUNT; i++) {
		json_t *one = json_array_get(list, i);
		ck_assert_msg(strcmp(wire_text(one, "state"), "done") == 0, "job %zu: %s", i, json_dumps(one, 0));
		ck_assert_str_eq(json_string_value(json_array_get(json_object_get(one, "result"), 0)),
		                 "queue");
	}
	ck_assert_int_eq(fixture_threads(&daemon), before);
	ck_assert_int_le(info_number(&redis, "connected_clients"), 128 + 1);
	json_decref(results);
	json_decref(reply);
	fixture_stop(&daemon);
	redis_stop(&redis);
}
END_TEST

/* A user's request as that user, through wire_send. */
/* The daemon would connect with root's rights: a user's unix socket URL is
 * refused; over TCP the user gets connections of their own. */
START_TEST(test_a_user_may_not_use_unix_sockets_on_a_root_daemon)
{
	SERVERS_SKIP_UNLESS_TRUSTED(&servers);
	struct redis redis;
	redis_start(&redis);
	/* Only root may use this socket. */
	chmod(redis.socket, 0700);
	fixture daemon;
	const char *const one_worker[] = {"--workers", "1", NULL};
	fixture_start(&daemon, one_worker);
	chmod(daemon.directory, 0755);
	char request[512];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"redis.command\",\"args\":{\"url\":\"redis://%s\","
	         "\"argv\":[\"FLUSHALL\"]},\"wait\":30}",
	         redis.socket);
	freeReplyObject(redisCommand(redis.control, "SET keep me"));
	json_t *reply = servers_call_as(&servers, daemon.url, request);
	ck_assert_str_eq(wire_text(reply, "state"), "failed");
	ck_assert_str_eq(wire_error_type(reply), "PermissionError");
	json_decref(reply);
	redisReply *kept = redisCommand(redis.control, "GET keep");
	ck_assert_str_eq(kept->str, "me");
	freeReplyObject(kept);
	/* Over TCP: a connection of the user's own, not root's pooled one. */
	char url[64];
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", redis.port);
	json_t *root_id = command(&daemon, url, "[\"CLIENT\",\"ID\"]");
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"redis.command\",\"args\":{\"url\":\"%s\","
	         "\"argv\":[\"CLIENT\",\"ID\"]},\"wait\":30}",
	         url);
	json_t *user_id = servers_call_as(&servers, daemon.url, request);
	ck_assert_str_eq(wire_text(user_id, "state"), "done");
	ck_assert_int_ne(json_integer_value(json_object_get(root_id, "result")),
	                 json_integer_value(json_object_get(user_id, "result")));
	/* One worker: root's idle connection was there, and the user's job
	 * opened its own instead; both are idle in their owners' pools. */
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "opened"), 2);
	ck_assert_int_eq(servers_pool_stat(&daemon, "redis", "idle"), 2);
	json_decref(root_id);
	json_decref(user_id);
	fixture_stop(&daemon);
	redis_stop(&redis);
}
END_TEST

int main(void)
{
	setenv("TMPDIR", "/tmp", 1);
	if (as_user_shell("command -v redis-server") != 0)
		snprintf(servers.skip, sizeof(servers.skip), "redis-server is not installed (scripts/deps.sh)");
	servers_suite_begin(&servers, "wtr", 9, "redis tests", 1, "redis trust test");
	Suite *suite = suite_create("redis");
	TCase *redis = tcase_create("redis");
	tcase_set_timeout(redis, 60);
	tcase_add_test(redis, test_replies_map_to_json);
	tcase_add_test(redis, test_server_errors_fail_with_redis_error);
	tcase_add_test(redis, test_bad_arguments_are_refused_at_submit);
	tcase_add_test(redis, test_host_names_are_resolved_and_connected_to);
	tcase_add_test(redis, test_weftd_will_not_start_with_a_resolv_conf_it_cannot_read);
	tcase_add_test(redis, test_a_name_that_does_not_exist_fails_naming_the_host);
	tcase_add_test(redis, test_a_name_server_that_never_answers_fails_after_the_resolvers_tries);
	tcase_add_test(redis, test_a_name_whose_first_address_refuses_connects_to_the_next);
	tcase_add_test(redis, test_timeout_and_cancel_close_the_connection);
	tcase_add_test(redis, test_connections_are_reused_per_url_and_owner);
	tcase_add_test(redis, test_idle_connections_close_after_io_idle);
	tcase_add_test(redis, test_a_user_may_not_use_unix_sockets_on_a_root_daemon);
	suite_add_tcase(suite, redis);
	TCase *load = tcase_create("load");
	tcase_set_timeout(load, 180);
	tcase_add_test(load, test_a_thousand_blocking_commands_share_bounded_pools_and_take_no_thread);
	suite_add_tcase(suite, load);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	servers_suite_end(&servers);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * weftd end to end through raw nng REQ sockets (no libweft): the listener
 * guard against nng 1.5's defect, refusing a second daemon, stale sockets,
 * shutdown, retention, oversized messages and abandoned long polls.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/wire.h"

/* Runs a command line to completion; returns its exit status. */
static int run(const char *const argv[], char *output, size_t size)
{
	int pipe_fds[2];
	ck_assert_int_eq(pipe(pipe_fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(pipe_fds[1], 1);
		dup2(pipe_fds[1], 2);
		close(pipe_fds[0]);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipe_fds[1]);
	size_t used = 0;
	ssize_t got;
	while (used + 1 < size && (got = read(pipe_fds[0], output + used, size - 1 - used)) > 0)
		used += (size_t)got;
	output[used] = '\0';
	/* Read the rest too: a program whose output outgrows the buffer must
	 * not die of SIGPIPE on a pipe closed under it. */
	char rest[4096];
	while (read(pipe_fds[0], rest, sizeof(rest)) > 0)
		;
	close(pipe_fds[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(test_survives_nngcat_listening_on_its_socket)
{
	/* nng itself leaks the connections stuck in the listener it broke; under
	 * LeakSanitizer, weftd (inheriting this) is told so for this test only. */
	char suppressions[512];
	snprintf(suppressions, sizeof(suppressions),
	         "suppressions=%s/tests/lsan-nng-1518.supp:print_suppressions=0",
	         getenv("WEFT_SOURCE") != NULL ? getenv("WEFT_SOURCE") : ".");
	setenv("LSAN_OPTIONS", suppressions, 1);
	fixture daemon;
	fixture_start(&daemon, NULL);
	/* nngcat's "is the address in use" check connects and hangs up in the middle
	 * of the handshake: with nng 1.5 that leaves a listener attaching no new
	 * connections. Several tries make sure the defect is really hit. */
	for (int i = 0; i < 5; i++) {
		char output[512];
		const char *const argv[] = {"nngcat", "--rep", "--listen", daemon.url, NULL};
		ck_assert_int_ne(run(argv, output, sizeof(output)), 0);
		ck_assert_msg(strstr(output, "in use") != NULL, "nngcat said: %s", output);
	}
	ck_assert_msg(wire_answers_within(daemon.url, 15), "weftd stopped answering after nngcat");
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_second_daemon_on_the_same_socket_is_refused_and_harmless)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	for (int i = 0; i < 3; i++) {
		char output[2048];
		const char *const argv[] = {getenv("WEFTD"), "--listen", daemon.url, "--state-dir",
		                            "none", NULL};
		int status = run(argv, output, sizeof(output));
		ck_assert_int_eq(status, 1);
		/* Where it has cgroups, the instance's lock refuses it first (before
		 * it could take the first one's jobs for leftovers). */
		ck_assert_msg(strstr(output, "already listening on") != NULL ||
		                      strstr(output, "another weftd already runs its jobs in") != NULL,
		              "weftd said: %s", output);
	}
	/* The first daemon answers at once: the refusal never disturbed its listener. */
	ck_assert(wire_answers_within(daemon.url, 1.5));
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_stale_socket_file_is_replaced)
{
	char directory[] = "/tmp/weft-stale-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char path[128], url[160];
	snprintf(path, sizeof(path), "%s/weft.sock", directory);
	snprintf(url, sizeof(url), "ipc://%s", path);
	/* A socket file nobody listens on any more, as a crashed daemon leaves it. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	strcpy(address.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		execl(getenv("WEFTD"), "weftd", "--listen", url, "--log-level", "warn", "--state-dir", "none",
		      (char *)NULL);
		_exit(127);
	}
	ck_assert(wire_answers_within(url, 10));
	kill(pid, SIGTERM);
	int status;
	waitpid(pid, &status, 0);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_ne(access(path, F_OK), 0); /* removed at exit */
	rmdir(directory);
}
END_TEST

struct blocked_client {
	char url[160];
	json_int_t id;
	bool cancelled_by_shutdown;
};

static void *wait_for_result(void *argument)
{
	struct blocked_client *client = argument;
	char request[64];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld}",
	         (long long)client->id);
	json_t *reply = wire_call_text(client->url, request, strlen(request), 20000);
	const char *state = json_string_value(json_object_get(reply, "state"));
	const char *type =
		json_string_value(json_object_get(json_object_get(reply, "error"), "type"));
	client->cancelled_by_shutdown = state != NULL && strcmp(state, "cancelled") == 0 &&
	                                type != NULL && strcmp(type, "Shutdown") == 0;
	json_decref(reply);
	return NULL;
}

START_TEST(test_shutdown_answers_waiters_and_cancels_past_grace)
{
	fixture daemon;
	const char *const args[] = {"--grace", "0.2", NULL};
	fixture_start(&daemon, args);
	json_t *submitted = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
	                                     "\"args\":{\"seconds\":60}}");
	json_int_t id = json_integer_value(json_object_get(submitted, "id"));
	json_decref(submitted);
	/* A client blocked in `result` must get the job's end, not silence. nng is
	 * not fork-safe, so the client is a thread. */
	struct blocked_client client = {.id = id};
	snprintf(client.url, sizeof(client.url), "%s", daemon.url);
	pthread_t thread;
	pthread_create(&thread, NULL, wait_for_result, &client);
	/* Wait until the daemon holds the long poll, then stop it. */
	double deadline = fixture_now() + 10;
	while (wire_waiters_now(daemon.url) != 1)
		ck_assert_msg(fixture_now() < deadline, "the result request never arrived");
	fixture_stop(&daemon); /* SIGTERM; checks exit status 0 */
	pthread_join(thread, NULL);
	ck_assert_msg(client.cancelled_by_shutdown,
	              "the waiting client did not get a cancelled/Shutdown outcome");
}
END_TEST

START_TEST(test_submit_during_shutdown_is_refused)
{
	fixture daemon;
	const char *const args[] = {"--grace", "30", NULL};
	fixture_start(&daemon, args);
	json_decref(wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":60}}"));
	kill(daemon.pid, SIGTERM);
	double deadline = fixture_now() + 10;
	for (;;) {
		json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\","
		                                 "\"args\":{\"value\":1}}");
		bool refused = wire_error_code(reply) != NULL &&
		               strcmp(wire_error_code(reply), "shutting_down") == 0;
		json_decref(reply);
		if (refused)
			break;
		ck_assert_msg(fixture_now() < deadline, "submits still accepted after SIGTERM");
	}
	/* Reading still works during the grace period. */
	json_t *stats = wire_call(daemon.url, "{\"op\":\"stats\"}");
	ck_assert(json_is_true(json_object_get(stats, "ok")));
	json_decref(stats);
	fixture_stop(&daemon); /* a second SIGTERM skips the rest of the grace */
}
END_TEST

START_TEST(test_retention_limit_expires_the_oldest)
{
	fixture daemon;
	const char *const args[] = {"--retain-max", "2", NULL};
	fixture_start(&daemon, args);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":"
	                                 "{\"value\":1}},{\"fn\":\"echo\",\"args\":{\"value\":2}},"
	                                 "{\"fn\":\"echo\",\"args\":{\"value\":3}}]}");
	json_t *ids = json_object_get(reply, "ids");
	char request[64];
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}",
	         (long long)json_integer_value(json_array_get(ids, 0)));
	json_t *status = wire_call(daemon.url, request);
	ck_assert_str_eq(wire_error_code(status), "unknown_id");
	json_decref(status);
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld}",
	         (long long)json_integer_value(json_array_get(ids, 2)));
	json_t *result = wire_call(daemon.url, request);
	ck_assert_int_eq(json_integer_value(json_object_get(result, "result")), 3);
	json_decref(result);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_oversized_request_is_answered_too_large)
{
	fixture daemon;
	const char *const args[] = {"--max-message", "4096", NULL};
	fixture_start(&daemon, args);
	size_t size = 10000; /* above the limit, within what the transport reads */
	char *big = malloc(size + 1);
	memset(big, ' ', size);
	memcpy(big, "{\"op\":\"ping\"}", 13);
	json_t *reply = wire_call_text(daemon.url, big, size, 10000);
	ck_assert_ptr_nonnull(reply);
	ck_assert_str_eq(wire_error_code(reply), "too_large");
	json_decref(reply);
	free(big);
	ck_assert(wire_answers_within(daemon.url, 1.5));
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_client_that_leaves_frees_its_long_poll)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *submitted = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
	                                     "\"args\":{\"seconds\":60}}");
	char request[64];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld}",
	         (long long)json_integer_value(json_object_get(submitted, "id")));
	json_decref(submitted);
	/* Gives up after 300 ms and closes its connection while the daemon waits. */
	ck_assert_ptr_null(wire_call_text(daemon.url, request, strlen(request), 300));
	double deadline = fixture_now() + 10;
	while (wire_waiters_now(daemon.url) != 0)
		ck_assert_msg(fixture_now() < deadline, "the abandoned long poll was never freed");
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_waiter_limit_answers_busy_and_recovers)
{
	fixture daemon;
	const char *const args[] = {"--max-waiters", "1", NULL};
	fixture_start(&daemon, args);
	json_t *submitted = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
	                                     "\"args\":{\"seconds\":60}}");
	json_int_t id = json_integer_value(json_object_get(submitted, "id"));
	json_decref(submitted);
	char holding[96], probing[96];
	snprintf(holding, sizeof(holding), "{\"op\":\"result\",\"id\":%lld,\"timeout\":60}",
	         (long long)id);
	snprintf(probing, sizeof(probing), "{\"op\":\"result\",\"id\":%lld,\"timeout\":0.2}",
	         (long long)id);
	/* One long poll takes the only place... */
	nng_socket holder;
	ck_assert_int_eq(nng_req0_open(&holder), 0);
	nng_socket_set_ms(holder, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	ck_assert_int_eq(nng_dial(holder, daemon.url, NULL, 0), 0);
	ck_assert_int_eq(nng_send(holder, holding, strlen(holding), 0), 0);
	double deadline = fixture_now() + 10;
	while (wire_waiters_now(daemon.url) != 1)
		ck_assert_msg(fixture_now() < deadline, "the holding long poll never arrived");
	/* ...so another is refused with busy, at once. */
	json_t *reply = wire_call(daemon.url, probing);
	ck_assert_str_eq(wire_error_code(reply), "busy");
	json_decref(reply);
	/* The holder leaves; its place is freed and long polls are accepted again. */
	nng_close(holder);
	while (wire_waiters_now(daemon.url) != 0)
		ck_assert_msg(fixture_now() < deadline, "the abandoned long poll was never freed");
	reply = wire_call(daemon.url, probing);
	ck_assert_str_eq(wire_error_code(reply), "timeout");
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(reply, "error"), "state")),
		"running");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_pending_limit_answers_busy_and_recovers)
{
	fixture daemon;
	const char *const args[] = {"--max-pending", "3", NULL};
	fixture_start(&daemon, args);
	json_int_t ids[3];
	for (int i = 0; i < 3; i++) {
		json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
		                                      "\"args\":{\"seconds\":60}}");
		ids[i] = json_integer_value(json_object_get(reply, "id"));
		ck_assert_int_gt(ids[i], 0);
		json_decref(reply);
	}
	/* A fourth unfinished job is refused, and so is a batch that would pass the limit. */
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
	                                      "\"args\":{\"seconds\":60}}");
	ck_assert_str_eq(wire_error_code(reply), "busy");
	ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(
	                                     json_object_get(reply, "error"), "message")),
	                             "--max-pending"));
	json_decref(reply);
	/* As jobs finish, submits succeed again. */
	char request[64];
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)ids[0]);
	json_decref(wire_call(daemon.url, request));
	reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                              "\"wait\":5}");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 1);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_usage_errors_exit_2_with_a_message)
{
	/* Room for all of --help: a reader that stops early would kill it with SIGPIPE. */
	char output[16384];
	const char *const bad_workers[] = {getenv("WEFTD"), "--workers", "zero", NULL};
	ck_assert_int_eq(run(bad_workers, output, sizeof(output)), 2);
	ck_assert_msg(strstr(output, "--workers") != NULL, "%s", output);
	const char *const bad_url[] = {getenv("WEFTD"), "--listen", "/tmp/x.sock", NULL};
	ck_assert_int_eq(run(bad_url, output, sizeof(output)), 2);
	ck_assert_msg(strstr(output, "ipc://") != NULL, "%s", output);
	const char *const help[] = {getenv("WEFTD"), "--help", NULL};
	ck_assert_int_eq(run(help, output, sizeof(output)), 0);
	ck_assert_msg(strstr(output, "--retain-max") != NULL, "%s", output);
}
END_TEST

/* Whether the daemon's log holds `text` yet. */
static bool log_has(const fixture *daemon, const char *text)
{
	FILE *log = fopen(daemon->log_path, "r");
	char line[1024];
	bool found = false;
	while (log != NULL && !found && fgets(line, sizeof(line), log) != NULL)
		found = strstr(line, text) != NULL;
	if (log != NULL)
		fclose(log);
	return found;
}

START_TEST(test_sighup_is_logged_and_ignored)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *job = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":"
	                                    "{\"seconds\":30}}");
	ck_assert_int_eq(kill(daemon.pid, SIGHUP), 0);
	double deadline = fixture_now() + 10;
	while (!log_has(&daemon, "SIGHUP ignored")) {
		ck_assert_msg(fixture_now() < deadline, "no log line for SIGHUP");
		ck_assert_msg(fixture_alive(&daemon), "SIGHUP killed weftd");
		usleep(2000);
	}
	/* Still serving, and the job it had is still there. */
	char status[128];
	snprintf(status, sizeof(status), "{\"op\":\"status\",\"id\":%lld}",
	         (long long)json_integer_value(json_object_get(job, "id")));
	json_t *reply = wire_call(daemon.url, status);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(reply, "job"), "state")),
	                 "running");
	json_decref(reply);
	json_decref(job);
	fixture_stop(&daemon); /* SIGTERM still stops it, with status 0 */
}
END_TEST

/* Connects to weftd without nng, sends one request as a REQ peer and closes
 * at once: the daemon sets the long poll up while the connection goes away. */
static void send_and_hang_up(const char *url, const char *request)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", url + strlen("ipc://"));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	/* SP header of a REQ0 peer, then read the daemon's (a client that hangs
	 * up mid-handshake is another defect, with its own test). */
	static const unsigned char hello[8] = {0, 'S', 'P', 0, 0x00, 0x30, 0, 0};
	ck_assert_int_eq(write(fd, hello, sizeof(hello)), (ssize_t)sizeof(hello));
	unsigned char peer[8];
	size_t got = 0;
	while (got < sizeof(peer)) {
		ssize_t n = read(fd, peer + got, sizeof(peer) - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	size_t body = strlen(request);
	unsigned char frame[13 + 256];
	ck_assert_uint_lt(body, 256);
	uint64_t length = 4 + body;
	frame[0] = 1;
	for (int b = 0; b < 8; b++)
		frame[1 + b] = (unsigned char)(length >> (56 - 8 * b));
	frame[9] = 0x80; /* request id 0x80000001 */
	frame[10] = frame[11] = 0;
	frame[12] = 1;
	memcpy(frame + 13, request, body);
	ck_assert_int_eq(write(fd, frame, 13 + body), (ssize_t)(13 + body));
	close(fd);
}

/* The race of a long poll set up while its client disconnects: every one
 * is abandoned (the future is never set, so a missed one waits forever). */
/* Connects to an ipc URL and does the SP handshake as a REQ peer; the fd. */
static int raw_connect(const char *url)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", url + strlen("ipc://"));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&address, sizeof(address)), 0);
	static const unsigned char header[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};
	ck_assert_int_eq(write(fd, header, sizeof(header)), (ssize_t)sizeof(header));
	unsigned char reply[8];
	size_t got = 0;
	while (got < sizeof(reply)) {
		ssize_t n = read(fd, reply + got, sizeof(reply) - got);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	return fd;
}

static json_int_t idle_closed(const char *url)
{
	json_t *stats = wire_call(url, "{\"op\":\"stats\"}");
	json_int_t closed = json_integer_value(json_object_get(
		json_object_get(json_object_get(stats, "housekeeping"), "listener_guard"),
		"idle_closed"));
	json_decref(stats);
	return closed;
}

/*
 * --idle-timeout 0.5: a connection that sends the start of a message (its
 * 1 MiB length and 100 bytes) and stalls is closed by the daemon, so the
 * buffer nng made for it goes; a long poll in flight on another connection
 * for longer than that is not touched, and is answered.
 */
START_TEST(test_a_half_sent_message_is_dropped_after_the_idle_timeout)
{
	static const char *const args[] = {"--idle-timeout", "0.5", NULL};
	fixture daemon;
	fixture_start(&daemon, args);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":"
	                                      "{\"seconds\":3600}}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);

	int fd = raw_connect(daemon.url);
	unsigned char start[9 + 100] = {1, 0, 0, 0, 0, 0, 0x10, 0, 0}; /* type 1, length 1 MiB */
	memset(start + 9, 'x', 100);
	ck_assert_int_eq(write(fd, start, sizeof(start)), (ssize_t)sizeof(start));

	/* A long poll of 2 s, four times the idle timeout, on its own connection. */
	char poll_request[96];
	snprintf(poll_request, sizeof(poll_request),
	         "{\"op\":\"result\",\"id\":%lld,\"timeout\":2}", (long long)id);
	json_t *polled = wire_call_text(daemon.url, poll_request, strlen(poll_request), 30000);
	ck_assert_ptr_nonnull(polled);
	ck_assert_str_eq(wire_error_code(polled), "timeout");
	json_decref(polled);

	/* The stalled one is closed (a hang guard, not a bound on the time). */
	struct timeval guard = {.tv_sec = 30};
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard)), 0);
	char byte;
	ssize_t n = read(fd, &byte, 1);
	ck_assert_msg(n == 0 || (n < 0 && errno == ECONNRESET), "read %zd (%s)", n,
	              n < 0 ? strerror(errno) : "data");
	close(fd);
	ck_assert_int_ge(idle_closed(daemon.url), 1);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_long_polls_of_clients_gone_during_setup_are_freed)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *future = wire_call(daemon.url, "{\"op\":\"future.new\"}");
	char request[64];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld}",
	         (long long)json_integer_value(json_object_get(future, "id")));
	json_decref(future);
	for (int i = 0; i < 300; i++)
		send_and_hang_up(daemon.url, request);
	double deadline = fixture_now() + 20;
	json_int_t left;
	while ((left = wire_waiters_now(daemon.url)) != 0)
		ck_assert_msg(fixture_now() < deadline, "%lld of 300 abandoned long polls were never "
		              "freed", (long long)left);
	fixture_stop(&daemon);
}
END_TEST

static Suite *daemon_suite(void)
{
	Suite *suite = suite_create("daemon");
	TCase *listeners = tcase_create("listeners");
	tcase_set_timeout(listeners, 60);
	tcase_add_test(listeners, test_survives_nngcat_listening_on_its_socket);
	tcase_add_test(listeners, test_second_daemon_on_the_same_socket_is_refused_and_harmless);
	tcase_add_test(listeners, test_stale_socket_file_is_replaced);
	suite_add_tcase(suite, listeners);
	TCase *life = tcase_create("life");
	tcase_set_timeout(life, 60);
	tcase_add_test(life, test_shutdown_answers_waiters_and_cancels_past_grace);
	tcase_add_test(life, test_submit_during_shutdown_is_refused);
	tcase_add_test(life, test_retention_limit_expires_the_oldest);
	tcase_add_test(life, test_oversized_request_is_answered_too_large);
	tcase_add_test(life, test_client_that_leaves_frees_its_long_poll);
	tcase_add_test(life, test_long_polls_of_clients_gone_during_setup_are_freed);
	tcase_add_test(life, test_waiter_limit_answers_busy_and_recovers);
	tcase_add_test(life, test_pending_limit_answers_busy_and_recovers);
	tcase_add_test(life, test_usage_errors_exit_2_with_a_message);
	tcase_add_test(life, test_sighup_is_logged_and_ignored);
	tcase_add_test(life, test_a_half_sent_message_is_dropped_after_the_idle_timeout);
	suite_add_tcase(suite, life);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(daemon_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

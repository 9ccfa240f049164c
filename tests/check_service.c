/*
 * weftd as a systemd service (issue 11): the notification protocol spoken to a
 * fake $NOTIFY_SOCKET that the test binds (an abstract datagram socket, as
 * systemd's own is): READY only once the socket answers, STATUS lines, the
 * watchdog's pings at half of WATCHDOG_USEC and none while a worker loop is
 * wedged (debug.stall, --test-hooks), STOPPING at SIGTERM. Also the pure
 * parts of daemon/notify.c, called directly.
 *
 * No fixed sleeps: every wait is a poll() with a hang-guard deadline; the
 * only timed window is the one that proves an absence (no pings while stuck).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/notify.h"
#include "tests/fixture.h"
#include "tests/wire.h"
#include "weft/error.h"

/* Hang guard for anything the daemon should do promptly. */
#define DEADLINE_SECONDS 20.0
/* The watchdog interval the tests ask for: pings every 0.2 s. */
#define WATCHDOG_USEC 400000
#define PING_EVERY (WATCHDOG_USEC / 2e6)

/* ------------------------------------------------------------ pure parts */

START_TEST(address_of_a_path_counts_its_nul)
{
	struct sockaddr_un address;
	socklen_t length = 0;
	char message[256];
	ck_assert_int_eq(notify_address("/run/systemd/notify", &address, &length, message,
	                                sizeof(message)),
	                 WEFT_OK);
	ck_assert_str_eq(address.sun_path, "/run/systemd/notify");
	ck_assert_int_eq(length, offsetof(struct sockaddr_un, sun_path) + 20);
}
END_TEST

START_TEST(address_of_an_abstract_name_has_a_leading_nul_and_no_trailing_one)
{
	struct sockaddr_un address;
	socklen_t length = 0;
	char message[256];
	ck_assert_int_eq(notify_address("@weft/notify", &address, &length, message, sizeof(message)),
	                 WEFT_OK);
	ck_assert_int_eq(address.sun_path[0], '\0');
	ck_assert_int_eq(memcmp(address.sun_path + 1, "weft/notify", 11), 0);
	ck_assert_int_eq(length, offsetof(struct sockaddr_un, sun_path) + 12);
}
END_TEST

START_TEST(bad_addresses_are_refused_with_what_to_do)
{
	static const char *const bad[] = {"", "relative/path", "@"};
	struct sockaddr_un address;
	socklen_t length = 0;
	char message[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		message[0] = '\0';
		ck_assert_int_eq(notify_address(bad[i], &address, &length, message, sizeof(message)),
		                 WEFT_EINVAL);
		ck_assert_msg(strstr(message, "NOTIFY_SOCKET") != NULL, "message: %s", message);
	}
	char long_name[200];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[0] = '/';
	long_name[sizeof(long_name) - 1] = '\0';
	ck_assert_int_eq(notify_address(long_name, &address, &length, message, sizeof(message)),
	                 WEFT_EINVAL);
	ck_assert_msg(strstr(message, "too long") != NULL, "message: %s", message);
}
END_TEST

START_TEST(watchdog_values_are_parsed_and_foreign_pids_ignored)
{
	ck_assert_uint_eq(notify_parse_watchdog("30000000", NULL, 42), 30000000);
	ck_assert_uint_eq(notify_parse_watchdog("30000000", "42", 42), 30000000);
	ck_assert_uint_eq(notify_parse_watchdog("30000000", "43", 42), 0);
	ck_assert_uint_eq(notify_parse_watchdog("0", NULL, 42), 0);
	ck_assert_uint_eq(notify_parse_watchdog("-5", NULL, 42), 0);
	ck_assert_uint_eq(notify_parse_watchdog("12s", NULL, 42), 0);
	ck_assert_uint_eq(notify_parse_watchdog(NULL, "42", 42), 0);
}
END_TEST

/* ------------------------------------------------------- the fake systemd */

/* An abstract datagram socket named like systemd's; *name gets "@...". */
static int fake_systemd(char *name, size_t size)
{
	static unsigned serial;
	snprintf(name, size, "@weft-test-notify-%d-%u", (int)getpid(), serial++);
	struct sockaddr_un address;
	socklen_t length;
	char message[256];
	ck_assert_int_eq(notify_address(name, &address, &length, message, sizeof(message)), WEFT_OK);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(bind(fd, (struct sockaddr *)&address, length) == 0, "bind: %s",
	              strerror(errno));
	return fd;
}

/* The next datagram within `seconds`, into text; false when none came. */
static bool next_datagram(int fd, double seconds, char *text, size_t size)
{
	double deadline = fixture_now() + seconds;
	for (;;) {
		double left = deadline - fixture_now();
		if (left <= 0)
			return false;
		struct pollfd wait = {fd, POLLIN, 0};
		int ready = poll(&wait, 1, (int)(left * 1000) + 1);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			continue; /* the loop's deadline check ends it */
		ssize_t got = recv(fd, text, size - 1, 0);
		if (got < 0)
			continue;
		text[got] = '\0';
		return true;
	}
}

/* Waits (bounded) for a datagram containing `wanted`; the others are skipped.
 * Returns its arrival time, or fails the test. */
static double expect_datagram(int fd, const char *wanted, char *text, size_t size)
{
	double deadline = fixture_now() + DEADLINE_SECONDS;
	while (fixture_now() < deadline) {
		if (next_datagram(fd, deadline - fixture_now(), text, size) &&
		    strstr(text, wanted) != NULL)
			return fixture_now();
	}
	ck_abort_msg("no '%s' from weftd within %g s", wanted, DEADLINE_SECONDS);
	return 0;
}

/* Reads every datagram already queued, without waiting. */
static void drain(int fd)
{
	char text[512];
	while (recv(fd, text, sizeof(text), MSG_DONTWAIT) > 0)
		;
}

/* ------------------------------------------------------------------ tests */

/* weftd started by hand (not the fixture, which pings before we could look):
 * READY must mean "the socket answers now", at the first try. */
START_TEST(ready_comes_only_once_the_socket_answers)
{
	char name[108];
	int systemd = fake_systemd(name, sizeof(name));
	char directory[] = "/tmp/weft-notify-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char url[160], log_path[160];
	snprintf(url, sizeof(url), "ipc://%s/weft.sock", directory);
	snprintf(log_path, sizeof(log_path), "%s/weftd.log", directory);
	const char *weftd = getenv("WEFTD");
	ck_assert_ptr_nonnull(weftd);
	char notify_setting[sizeof(name) + 16];
	snprintf(notify_setting, sizeof(notify_setting), "NOTIFY_SOCKET=%s", name);
	const char *const settings[] = {notify_setting, NULL};
	char **environment = fixture_environ_with(settings);
	const char *const argv[] = {weftd, "--listen", url, "--workers", "2", "--grace", "0.1",
	                            "--state-dir", "none", NULL};
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (log < 0 || dup2(log, STDERR_FILENO) < 0)
			_exit(127);
		execve(weftd, (char *const *)argv, environment);
		_exit(127);
	}
	fixture_environ_free(environment);
	char text[512];
	expect_datagram(systemd, "READY=1", text, sizeof(text));
	/* One try, no retry loop: it must answer now. */
	json_t *reply = wire_call_text(url, "{\"op\":\"ping\"}", 13, 5000);
	ck_assert_msg(reply != NULL && json_is_true(json_object_get(reply, "ok")),
	              "READY=1 came but the socket did not answer");
	json_decref(reply);
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "weftd status %d", status);
	unlink(log_path);
	rmdir(directory);
	close(systemd);
}
END_TEST

START_TEST(status_lines_sum_up_jobs_and_workers)
{
	char name[108], text[512];
	int systemd = fake_systemd(name, sizeof(name));
	setenv("NOTIFY_SOCKET", name, 1);
	fixture daemon;
	fixture_start(&daemon, NULL);
	expect_datagram(systemd, "STATUS=0 jobs running, 0 queued; 2 workers", text, sizeof(text));
	json_decref(wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":"
	                                  "[\"sleep\",\"30\"]}}"));
	/* The summary is refreshed by the main loop's housekeeping (every second). */
	expect_datagram(systemd, "STATUS=1 jobs running, 0 queued; 2 workers", text, sizeof(text));
	fixture_stop(&daemon);
	close(systemd);
}
END_TEST

START_TEST(stopping_is_sent_at_sigterm_with_the_jobs_being_drained)
{
	char name[108], text[512];
	int systemd = fake_systemd(name, sizeof(name));
	setenv("NOTIFY_SOCKET", name, 1);
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":"
	                                      "[\"sleep\",\"30\"]}}");
	json_t *id = json_object_get(reply, "id");
	ck_assert_ptr_nonnull(id);
	char status[128];
	snprintf(status, sizeof(status), "{\"op\":\"status\",\"id\":%lld}",
	         (long long)json_integer_value(id));
	json_decref(reply);
	/* Until it runs (bounded), so that "draining 1" is exact. */
	double deadline = fixture_now() + DEADLINE_SECONDS;
	bool running = false;
	while (!running && fixture_now() < deadline) {
		json_t *state = wire_call(daemon.url, status);
		const char *value =
			json_string_value(json_object_get(json_object_get(state, "job"), "state"));
		running = value != NULL && strcmp(value, "running") == 0;
		json_decref(state);
	}
	ck_assert_msg(running, "the job never ran");
	drain(systemd);
	ck_assert_int_eq(kill(daemon.pid, SIGTERM), 0);
	expect_datagram(systemd, "STOPPING=1", text, sizeof(text));
	ck_assert_msg(strstr(text, "draining 1 jobs") != NULL, "datagram: %s", text);
	int exit_status;
	ck_assert(fixture_stop_within(&daemon, SIGTERM, DEADLINE_SECONDS, &exit_status));
	close(systemd);
}
END_TEST

START_TEST(jobs_never_see_the_notify_variables)
{
	char name[108], text[512];
	int systemd = fake_systemd(name, sizeof(name));
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "30000000", 1);
	fixture daemon;
	fixture_start(&daemon, NULL);
	expect_datagram(systemd, "READY=1", text, sizeof(text));
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"exec\",\"wait\":20,"
	                                      "\"args\":{\"argv\":[\"env\"]}}");
	const char *output =
		json_string_value(json_object_get(json_object_get(reply, "result"), "stdout"));
	ck_assert_msg(output != NULL, "no stdout: %s", json_dumps(reply, 0));
	ck_assert_msg(strstr(output, "NOTIFY_SOCKET") == NULL && strstr(output, "WATCHDOG_") == NULL,
	              "the job saw: %s", output);
	json_decref(reply);
	fixture_stop(&daemon);
	close(systemd);
}
END_TEST

/* Opens the FIFO for writing once debug.stall holds it for reading (so the
 * worker is stuck in it from then on). Bounded: fails the test otherwise. */
static int open_when_stuck(const char *fifo)
{
	double deadline = fixture_now() + DEADLINE_SECONDS;
	while (fixture_now() < deadline) {
		int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		ck_assert_msg(errno == ENXIO, "open %s: %s", fifo, strerror(errno));
		struct pollfd none = {-1, 0, 0};
		poll(&none, 0, 1); /* no reader yet: look again in a millisecond */
	}
	ck_abort_msg("debug.stall never opened its FIFO");
	return -1;
}

START_TEST(watchdog_pings_at_half_the_interval_and_stop_while_a_worker_is_stuck)
{
	char name[108], text[512];
	int systemd = fake_systemd(name, sizeof(name));
	setenv("NOTIFY_SOCKET", name, 1);
	char usec[32];
	snprintf(usec, sizeof(usec), "%d", WATCHDOG_USEC);
	setenv("WATCHDOG_USEC", usec, 1);
	static const char *const args[] = {"--test-hooks", NULL};
	fixture daemon;
	fixture_start(&daemon, args);

	/* Pings flow at the half interval. A periodic timer does not fire early,
	 * but one ping can be late (a loaded machine, a sanitizer) and the next on
	 * time, and this reader may be late too; so the spacing is judged over
	 * the whole run: PINGS - 1 intervals at least, less one interval of slack
	 * for a late first reading. */
	enum { PINGS = 6 };
	double first = expect_datagram(systemd, "WATCHDOG=1", text, sizeof(text)), last = first;
	for (int i = 1; i < PINGS; i++)
		last = expect_datagram(systemd, "WATCHDOG=1", text, sizeof(text));
	ck_assert_msg(last - first >= (PINGS - 2) * PING_EVERY,
	              "%d pings in %.3f s: more often than every %.3f s", PINGS, last - first,
	              PING_EVERY);

	/* Wedge one worker loop. */
	char fifo[160];
	snprintf(fifo, sizeof(fifo), "%s/stall.fifo", daemon.directory);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	char submit[320];
	snprintf(submit, sizeof(submit),
	         "{\"op\":\"submit\",\"fn\":\"debug.stall\",\"args\":{\"fifo\":\"%s\"}}", fifo);
	json_t *reply = wire_call(daemon.url, submit);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "submit: %s",
	              json_dumps(reply, 0));
	json_decref(reply);
	int writer = open_when_stuck(fifo);
	drain(systemd);
	/* A probe answered just before the loop got stuck may earn one more ping;
	 * after that none, for as long as it stays stuck (here 6 intervals). */
	int pings = 0;
	double window_end = fixture_now() + 6 * PING_EVERY;
	while (fixture_now() < window_end)
		if (next_datagram(systemd, window_end - fixture_now(), text, sizeof(text)) &&
		    strstr(text, "WATCHDOG=1") != NULL)
			pings++;
	ck_assert_msg(pings <= 1, "%d pings while a worker was stuck", pings);

	/* Let it go: the pings resume. */
	close(writer);
	expect_datagram(systemd, "WATCHDOG=1", text, sizeof(text));
	fixture_stop(&daemon);
	close(systemd);
}
END_TEST

START_TEST(debug_stall_is_refused_without_test_hooks)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"debug.stall\","
	                                      "\"args\":{\"fifo\":\"/nonexistent\"}}");
	ck_assert_str_eq(wire_error_code(reply), "bad_arguments");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

/*
 * weftd by hand, with stderr on `log_path` and, when journal is true,
 * $JOURNAL_STREAM naming that file's device and inode (as systemd names
 * the journal's stream); extra args after the usual ones. Returns its pid.
 */
static pid_t start_by_hand(const char *url, const char *log_path, bool journal,
                           const char *notify_name, const char *const *extra)
{
	const char *weftd = getenv("WEFTD");
	ck_assert_ptr_nonnull(weftd);
	/* Opened here, so that the environment naming it is made before fork. */
	int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_msg(log >= 0, "%s: %s", log_path, strerror(errno));
	struct stat status;
	ck_assert_int_eq(fstat(log, &status), 0);
	char stream_setting[80], notify_setting[160];
	snprintf(stream_setting, sizeof(stream_setting), "JOURNAL_STREAM=%llu:%llu",
	         (unsigned long long)status.st_dev, (unsigned long long)status.st_ino);
	snprintf(notify_setting, sizeof(notify_setting), "NOTIFY_SOCKET=%s",
	         notify_name != NULL ? notify_name : "");
	const char *settings[3] = {NULL, NULL, NULL};
	size_t count = 0;
	if (journal)
		settings[count++] = stream_setting;
	if (notify_name != NULL)
		settings[count++] = notify_setting;
	char **environment = fixture_environ_with(settings);
	const char *argv[16] = {weftd, "--listen", url, "--workers", "2", "--grace", "0.1"};
	size_t argc = 7;
	for (size_t i = 0; extra != NULL && extra[i] != NULL && argc < 15; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (dup2(log, STDERR_FILENO) < 0)
			_exit(127);
		execve(weftd, (char *const *)argv, environment);
		_exit(127);
	}
	fixture_environ_free(environment);
	close(log);
	return pid;
}

static void stop_by_hand(pid_t pid)
{
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "weftd status %d", status);
}

static void wait_for_ping(const char *url)
{
	double deadline = fixture_now() + DEADLINE_SECONDS;
	while (!wire_answers_within(url, 0.5))
		ck_assert_msg(fixture_now() < deadline, "weftd never answered");
}

/* On the journal's stream, every line starts with an sd-daemon priority and
 * carries no timestamp; on a plain file, the timestamped format. */
START_TEST(log_lines_carry_priorities_when_stderr_is_the_journal)
{
	static const char *const none[] = {"--state-dir", "none", NULL};
	for (int journal = 0; journal < 2; journal++) {
		char directory[] = "/tmp/weft-log-XXXXXX";
		ck_assert_ptr_nonnull(mkdtemp(directory));
		char url[160], log_path[160];
		snprintf(url, sizeof(url), "ipc://%s/weft.sock", directory);
		snprintf(log_path, sizeof(log_path), "%s/weftd.log", directory);
		pid_t pid = start_by_hand(url, log_path, journal, NULL, none);
		wait_for_ping(url);
		stop_by_hand(pid);
		FILE *log = fopen(log_path, "r");
		ck_assert_ptr_nonnull(log);
		char line[1024];
		int lines = 0;
		bool ready = false;
		while (fgets(line, sizeof(line), log) != NULL) {
			lines++;
			if (journal) {
				ck_assert_msg(line[0] == '<' && line[1] >= '0' && line[1] <= '7' &&
				                      line[2] == '>',
				              "no priority: %s", line);
				ready = ready || strncmp(line, "<6>info: weftd ", 15) == 0;
			} else {
				ck_assert_msg(line[0] == '2' && strstr(line, " weftd[") != NULL,
				              "not the terminal format: %s", line);
				ready = ready || strstr(line, "info: weftd ") != NULL;
			}
		}
		fclose(log);
		ck_assert_msg(lines > 0 && ready, "%d lines, ready line %s", lines,
		              ready ? "found" : "missing");
		unlink(log_path);
		rmdir(directory);
	}
}
END_TEST

/* Replaying a journal asks systemd for more time to start, before READY. */
START_TEST(a_replay_asks_for_more_time_before_ready)
{
	char directory[] = "/tmp/weft-extend-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char url[160], log_path[160], state[160];
	snprintf(url, sizeof(url), "ipc://%s/weft.sock", directory);
	snprintf(log_path, sizeof(log_path), "%s/weftd.log", directory);
	snprintf(state, sizeof(state), "%s/state", directory);
	ck_assert_int_eq(mkdir(state, 0700), 0);
	const char *const args[] = {"--state-dir", state, "--sync", "normal", NULL};
	pid_t pid = start_by_hand(url, log_path, false, NULL, args);
	wait_for_ping(url);
	json_decref(wire_call(url, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1}}"));
	stop_by_hand(pid);

	char name[108], text[512];
	int systemd = fake_systemd(name, sizeof(name));
	pid = start_by_hand(url, log_path, false, name, args);
	expect_datagram(systemd, "EXTEND_TIMEOUT_USEC=", text, sizeof(text));
	ck_assert_msg(strstr(text, "STATUS=replaying the journal") != NULL, "datagram: %s", text);
	/* READY comes after it. */
	expect_datagram(systemd, "READY=1", text, sizeof(text));
	stop_by_hand(pid);
	close(systemd);
	char command[200];
	snprintf(command, sizeof(command), "rm -rf '%s'", directory);
	ck_assert_int_eq(system(command), 0);
}
END_TEST

static Suite *service_suite(void)
{
	Suite *suite = suite_create("service");
	TCase *pure = tcase_create("notify");
	tcase_add_test(pure, address_of_a_path_counts_its_nul);
	tcase_add_test(pure, address_of_an_abstract_name_has_a_leading_nul_and_no_trailing_one);
	tcase_add_test(pure, bad_addresses_are_refused_with_what_to_do);
	tcase_add_test(pure, watchdog_values_are_parsed_and_foreign_pids_ignored);
	suite_add_tcase(suite, pure);
	TCase *daemon = tcase_create("systemd");
	tcase_set_timeout(daemon, 60);
	tcase_add_test(daemon, ready_comes_only_once_the_socket_answers);
	tcase_add_test(daemon, status_lines_sum_up_jobs_and_workers);
	tcase_add_test(daemon, stopping_is_sent_at_sigterm_with_the_jobs_being_drained);
	tcase_add_test(daemon, jobs_never_see_the_notify_variables);
	tcase_add_test(daemon, watchdog_pings_at_half_the_interval_and_stop_while_a_worker_is_stuck);
	tcase_add_test(daemon, debug_stall_is_refused_without_test_hooks);
	tcase_add_test(daemon, log_lines_carry_priorities_when_stderr_is_the_journal);
	tcase_add_test(daemon, a_replay_asks_for_more_time_before_ready);
	suite_add_tcase(suite, daemon);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(service_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}

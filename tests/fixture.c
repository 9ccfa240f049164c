/* Starts and stops a real weftd for integration tests; see fixture.h. */
#include "tests/fixture.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#define FIXTURE_START_SECONDS 10.0
#define FIXTURE_STOP_SECONDS 10.0
#define FIXTURE_POLL_NANOSECONDS (10 * 1000 * 1000)
#define FIXTURE_MAX_ARGS 64

double fixture_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void pause_briefly(void)
{
	struct timespec interval = {0, FIXTURE_POLL_NANOSECONDS};
	nanosleep(&interval, NULL);
}

void fixture_print_log(const fixture *daemon)
{
	FILE *log = fopen(daemon->log_path, "r");
	fprintf(stderr, "---- weftd log (%s) ----\n", daemon->log_path);
	if (log != NULL) {
		char line[1024];
		while (fgets(line, sizeof(line), log) != NULL)
			fputs(line, stderr);
		fclose(log);
	}
	fprintf(stderr, "---- end of weftd log ----\n");
}

/* Removes the cgroups a weftd that was killed left (its log's first lines
 * name them): the next weftd of the same instance would, but each test's
 * instance is new. rmdir removes only empty groups. Test thread. */
static void remove_cgroups(const fixture *daemon)
{
	static const char marker[] = "a cgroup per job in ";
	char text[4096];
	int fd = open(daemon->log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t got = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (got <= 0)
		return;
	text[got] = '\0';
	char *start = strstr(text, marker);
	if (start == NULL)
		return;
	start += sizeof(marker) - 1;
	start[strcspn(start, ";\n")] = '\0';
	if (strncmp(start, "/sys/fs/cgroup", 14) != 0)
		return;
	DIR *directory = opendir(start);
	if (directory != NULL) {
		struct dirent *entry;
		while ((entry = readdir(directory)) != NULL) {
			if (strncmp(entry->d_name, "job-", 4) != 0)
				continue;
			char path[sizeof(text) + 300];
			snprintf(path, sizeof(path), "%s/%s", start, entry->d_name);
			rmdir(path);
		}
		closedir(directory);
	}
	rmdir(start);
}

static void remove_directory(fixture *daemon)
{
	/* Only the files weftd and the fixture make live there. */
	char path[sizeof(daemon->directory) + 16];
	snprintf(path, sizeof(path), "%s/weft.sock", daemon->directory);
	unlink(path);
	unlink(daemon->log_path);
	rmdir(daemon->directory);
}

/* Waits for the daemon to exit; true with *status when it did in time. */
static bool wait_exit(fixture *daemon, double seconds, int *status)
{
	double deadline = fixture_now() + seconds;
	while (fixture_now() < deadline) {
		pid_t reaped = waitpid(daemon->pid, status, WNOHANG);
		if (reaped == daemon->pid)
			return true;
		if (reaped < 0 && errno != EINTR)
			return false;
		pause_briefly();
	}
	return false;
}

/*
 * The watchdog: a process of its own that outlives a test that dies (Check
 * ends a failed test with _exit and a timed-out one with SIGKILL, so nothing
 * in the test's process can clean up; Check also SIGKILLs the test's process
 * group, the daemon with it). It blocks on a pipe whose write end
 * only the test holds: a byte means fixture_stop did the work; end of file
 * means the test died, and the watchdog prints the daemon's log, stops the
 * daemon and removes the directory.
 */
static void watchdog_run(fixture *daemon, int read_end)
{
	char byte;
	ssize_t got;
	do
		got = read(read_end, &byte, 1);
	while (got < 0 && errno == EINTR);
	if (got == 1)
		_exit(0);
	fprintf(stderr, "fixture: the test ended without stopping weftd (pid %d)\n",
	        (int)daemon->pid);
	fixture_print_log(daemon);
	/* Not our child: poll until it is gone. PR_SET_PDEATHSIG has usually
	 * sent it SIGTERM already. */
	kill(daemon->pid, SIGTERM);
	double deadline = fixture_now() + FIXTURE_STOP_SECONDS;
	while (kill(daemon->pid, 0) == 0 && fixture_now() < deadline)
		pause_briefly();
	kill(daemon->pid, SIGKILL);
	remove_directory(daemon);
	_exit(0);
}

static void watchdog_start(fixture *daemon)
{
	int ends[2];
	ck_assert_msg(pipe2(ends, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Check kills the test's process group when the test ends: leave it. */
		setpgid(0, 0);
		close(ends[1]);
		watchdog_run(daemon, ends[0]);
	}
	close(ends[0]);
	daemon->watchdog_pid = pid;
	daemon->watchdog_fd = ends[1];
}

/* Tells the watchdog that the fixture was stopped properly, and reaps it. */
static void watchdog_stop(fixture *daemon)
{
	if (daemon->watchdog_pid == 0)
		return;
	ssize_t written = write(daemon->watchdog_fd, "S", 1);
	(void)written; /* if it failed, the watchdog cleans up what is already gone */
	close(daemon->watchdog_fd);
	waitpid(daemon->watchdog_pid, NULL, 0);
	daemon->watchdog_pid = 0;
}

bool fixture_alive(fixture *daemon)
{
	int status;
	return daemon->pid != 0 && waitpid(daemon->pid, &status, WNOHANG) == 0;
}

static bool has_option(const char *const *args, const char *option)
{
	for (size_t i = 0; args != NULL && args[i] != NULL; i++)
		if (strcmp(args[i], option) == 0)
			return true;
	return false;
}

/* One ping over a fresh REQ socket; true when the daemon answered ok. */
static bool ping_once(const char *url)
{
	nng_socket socket;
	if (nng_req0_open(&socket) != 0)
		return false;
	bool answered = false;
	nng_socket_set_ms(socket, NNG_OPT_RECVTIMEO, 1000);
	nng_socket_set_ms(socket, NNG_OPT_SENDTIMEO, 1000);
	static const char ping[] = "{\"op\":\"ping\"}";
	char *reply = NULL;
	size_t size = 0;
	if (nng_dial(socket, url, NULL, 0) == 0 &&
	    nng_send(socket, (void *)ping, sizeof(ping) - 1, 0) == 0 &&
	    nng_recv(socket, &reply, &size, NNG_FLAG_ALLOC) == 0) {
		answered = memmem(reply, size, "\"ok\":true", 9) != NULL ||
		           memmem(reply, size, "\"ok\": true", 10) != NULL;
		nng_free(reply, size);
	}
	nng_close(socket);
	return answered;
}

static void spawn(fixture *daemon, const char *weftd, char **argv)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* The daemon must not outlive a test that crashed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		int log = open(daemon->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (log < 0 || dup2(log, STDERR_FILENO) < 0)
			_exit(127);
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
		}
		execv(weftd, argv);
		fprintf(stderr, "fixture: cannot run %s: %s\n", weftd, strerror(errno));
		_exit(127);
	}
	daemon->pid = pid;
}

void fixture_start(fixture *daemon, const char *const *extra_args)
{
	const char *weftd = getenv("WEFTD");
	ck_assert_msg(weftd != NULL && weftd[0] == '/',
	              "set WEFTD to the absolute path of weftd (make check does)");
	memset(daemon, 0, sizeof(*daemon));
	const char *temporary = getenv("TMPDIR");
	if (temporary == NULL || temporary[0] != '/' || strlen(temporary) > 64)
		temporary = "/tmp";
	snprintf(daemon->directory, sizeof(daemon->directory), "%s/weft-test-XXXXXX", temporary);
	ck_assert_msg(mkdtemp(daemon->directory) != NULL, "mkdtemp: %s", strerror(errno));
	snprintf(daemon->url, sizeof(daemon->url), "ipc://%s/weft.sock", daemon->directory);
	snprintf(daemon->log_path, sizeof(daemon->log_path), "%s/weftd.log", daemon->directory);

	char *argv[FIXTURE_MAX_ARGS];
	size_t argc = 0;
	argv[argc++] = (char *)weftd;
	argv[argc++] = (char *)"--listen";
	argv[argc++] = daemon->url;
	if (!has_option(extra_args, "--workers")) {
		argv[argc++] = (char *)"--workers";
		argv[argc++] = (char *)"2";
	}
	/* Tests leave sleeping jobs behind; do not wait long for them. */
	if (!has_option(extra_args, "--grace")) {
		argv[argc++] = (char *)"--grace";
		argv[argc++] = (char *)"0.1";
	}
	/* In memory unless the test asks for a store: tests run side by side and
	 * must not share the default state directory. */
	if (!has_option(extra_args, "--state-dir")) {
		argv[argc++] = (char *)"--state-dir";
		argv[argc++] = (char *)"none";
	}
	if (!has_option(extra_args, "--log-level")) {
		argv[argc++] = (char *)"--log-level";
		argv[argc++] = (char *)"info";
	}
	for (size_t i = 0; extra_args != NULL && extra_args[i] != NULL; i++) {
		ck_assert_msg(argc < FIXTURE_MAX_ARGS - 1, "too many weftd arguments");
		argv[argc++] = (char *)extra_args[i];
	}
	argv[argc] = NULL;

	spawn(daemon, weftd, argv);
	watchdog_start(daemon);

	double deadline = fixture_now() + FIXTURE_START_SECONDS;
	while (!ping_once(daemon->url)) {
		if (!fixture_alive(daemon)) {
			/* The watchdog prints the log and removes the directory. */
			ck_abort_msg("weftd exited before answering ping on %s", daemon->url);
		}
		if (fixture_now() > deadline)
			ck_abort_msg("weftd did not answer ping on %s within %.0f s", daemon->url,
			             FIXTURE_START_SECONDS);
		pause_briefly();
	}
}

bool fixture_stop_within(fixture *daemon, int signal_number, double seconds, int *status)
{
	ck_assert_msg(daemon->pid != 0, "fixture_stop: weftd is not running");
	*status = 0;
	kill(daemon->pid, signal_number);
	bool exited = wait_exit(daemon, seconds, status);
	if (!exited) {
		kill(daemon->pid, SIGKILL);
		waitpid(daemon->pid, status, 0);
	}
	daemon->pid = 0;
	if (!exited || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0)
		fixture_print_log(daemon);
	watchdog_stop(daemon);
	remove_cgroups(daemon);
	remove_directory(daemon);
	return exited;
}

void fixture_stop(fixture *daemon)
{
	int status;
	bool exited = fixture_stop_within(daemon, SIGTERM, FIXTURE_STOP_SECONDS, &status);
	ck_assert_msg(exited, "weftd did not exit within %.0f s of SIGTERM", FIXTURE_STOP_SECONDS);
	ck_assert_msg(WIFEXITED(status), "weftd died of signal %d",
	              WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	ck_assert_msg(WEXITSTATUS(status) == 0, "weftd exited with status %d after SIGTERM",
	              WEXITSTATUS(status));
}

/* Whether entry ("NAME=...") sets the name that setting ("NAME=...") sets. */
static bool same_name(const char *entry, const char *setting)
{
	size_t length = strcspn(setting, "=");
	return strncmp(entry, setting, length) == 0 && entry[length] == '=';
}

char **fixture_environ_with(const char *const *settings)
{
	extern char **environ;
	size_t count = 0, added = 0;
	while (environ[count] != NULL)
		count++;
	while (settings[added] != NULL)
		added++;
	char **environment = calloc(count + added + 1, sizeof(*environment));
	ck_assert_ptr_nonnull(environment);
	size_t used = 0;
	for (size_t i = 0; i < count; i++) {
		bool replaced = false;
		for (size_t k = 0; k < added && !replaced; k++)
			replaced = same_name(environ[i], settings[k]);
		if (!replaced)
			environment[used++] = environ[i];
	}
	for (size_t k = 0; k < added; k++)
		environment[used++] = (char *)settings[k];
	environment[used] = NULL;
	return environment;
}

void fixture_environ_free(char **environment)
{
	free(environment);
}

int fixture_threads(const fixture *daemon)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon->pid);
	FILE *file = fopen(path, "r");
	ck_assert_ptr_nonnull(file);
	int threads = -1;
	while (fgets(line, sizeof(line), file) != NULL)
		if (strncmp(line, "Threads:", 8) == 0)
			threads = (int)strtol(line + 8, NULL, 10);
	fclose(file);
	return threads;
}

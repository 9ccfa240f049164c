/*
 * `weft run` and `weft submit` ($WEFT_CLI) against a real weftd: the
 * command's exit status becomes weft's (signals as 128+N), its stdout and
 * stderr are copied byte for byte (megabytes of both at once; bytes that are
 * not UTF-8 too), the job runs in the caller's directory, and
 * timeout, spawn failure and cancellation have codes of their own (124, 127,
 * 130).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/fixture.h"

#define RUN_MAX_ARGS 32
/* Larger than anything a test expects, so that runaway output fails cleanly. */
#define RUN_CAPTURE_MAX ((size_t)32 * 1024 * 1024)
/* A hang guard, not a time limit: how long the CLI may print nothing. A
 * sanitizer build on a machine loaded by parallel builds was seen silent for
 * over 30 s in the middle of submitting 1,200 jobs. */
#define RUN_POLL_MILLISECONDS 120000

/* One run of the CLI: what it printed and how it ended. Owned by the test;
 * freed with run_free. */
typedef struct run_result {
	int status; /* exit code, or 128 + signal */
	char *out;  /* NUL-terminated; out_size bytes before the NUL */
	size_t out_size;
	char *err;
	size_t err_size;
	double seconds;
} run_result;

/* How to start the CLI. */
typedef struct run_setup {
	const char *directory;  /* chdir there first; NULL: stay */
	const char *stdin_path; /* NULL: /dev/null */
} run_setup;

static fixture weftd;

static void run_free(run_result *run)
{
	free(run->out);
	free(run->err);
	free(run);
}

static pid_t cli_spawn(const run_setup *setup, char *const *args, int *out_fd, int *err_fd)
{
	const char *cli = getenv("WEFT_CLI");
	ck_assert_msg(cli != NULL && cli[0] == '/', "set WEFT_CLI (make check does)");
	int out_pipe[2], err_pipe[2];
	ck_assert_int_eq(pipe2(out_pipe, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(err_pipe, O_CLOEXEC), 0);
	char url_setting[sizeof(weftd.url) + 16];
	snprintf(url_setting, sizeof(url_setting), "WEFT_URL=%s", weftd.url);
	/* WEFT_TEST_CALLER_ONLY: the job must not see the caller's environment. */
	const char *const settings[] = {url_setting, "WEFT_TEST_CALLER_ONLY=leaked", NULL};
	char **environment = fixture_environ_with(settings);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		int input = open(setup->stdin_path != NULL ? setup->stdin_path : "/dev/null",
		                 O_RDONLY);
		if (input < 0 || dup2(input, STDIN_FILENO) < 0)
			_exit(126);
		if (setup->directory != NULL && chdir(setup->directory) != 0)
			_exit(126);
		execve(cli, args, environment);
		_exit(126);
	}
	fixture_environ_free(environment);
	close(out_pipe[1]);
	close(err_pipe[1]);
	*out_fd = out_pipe[0];
	*err_fd = err_pipe[0];
	return pid;
}

static void append(char **buffer, size_t *size, size_t *capacity, const char *data, size_t length)
{
	ck_assert_msg(*size + length < RUN_CAPTURE_MAX, "the CLI printed more than %zu bytes",
	              RUN_CAPTURE_MAX);
	if (*size + length + 1 > *capacity) {
		size_t bigger = *capacity * 2 > *size + length + 1 ? *capacity * 2 : *size + length + 1;
		*buffer = realloc(*buffer, bigger);
		ck_assert(*buffer != NULL);
		*capacity = bigger;
	}
	memcpy(*buffer + *size, data, length);
	*size += length;
	(*buffer)[*size] = '\0';
}

static void collect(run_result *run, int out_fd, int err_fd)
{
	size_t capacity[2] = {64, 64};
	run->out = calloc(1, capacity[0]);
	run->err = calloc(1, capacity[1]);
	ck_assert(run->out != NULL && run->err != NULL);
	struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
	int open_count = 2;
	static char chunk[65536];
	while (open_count > 0) {
		ck_assert_msg(poll(fds, 2, RUN_POLL_MILLISECONDS) >= 1, "the CLI printed nothing for %d s",
		              RUN_POLL_MILLISECONDS / 1000);
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || fds[i].revents == 0)
				continue;
			ssize_t got = read(fds[i].fd, chunk, sizeof(chunk));
			if (got <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_count--;
			} else if (i == 0) {
				append(&run->out, &run->out_size, &capacity[0], chunk, (size_t)got);
			} else {
				append(&run->err, &run->err_size, &capacity[1], chunk, (size_t)got);
			}
		}
	}
}

static int wait_status(pid_t pid)
{
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs `weft ARGS...` (NULL-terminated) to its end. */
static run_result *run_cli_with(const run_setup *setup, const char *first, ...)
{
	char *args[RUN_MAX_ARGS + 2];
	size_t count = 0;
	args[count++] = (char *)"weft";
	va_list list;
	va_start(list, first);
	for (const char *arg = first; arg != NULL; arg = va_arg(list, const char *)) {
		ck_assert(count < RUN_MAX_ARGS);
		args[count++] = (char *)arg;
	}
	va_end(list);
	args[count] = NULL;
	run_result *run = calloc(1, sizeof(*run));
	ck_assert(run != NULL);
	int out_fd, err_fd;
	double started = fixture_now();
	pid_t pid = cli_spawn(setup, args, &out_fd, &err_fd);
	collect(run, out_fd, err_fd);
	run->status = wait_status(pid);
	run->seconds = fixture_now() - started;
	return run;
}

static const run_setup plain = {NULL, NULL};
#define run_cli(...) run_cli_with(&plain, __VA_ARGS__)

#define assert_exit(run, expected)                                                          \
	ck_assert_msg((run)->status == (expected),                                         \
	              "exit code %d, wanted %d\nstdout: %.2000s\nstderr: %.2000s", (run)->status, \
	              (expected), (run)->out, (run)->err)

#define assert_output(run, want_out, want_err)                                              \
	do {                                                                                \
		ck_assert_str_eq((run)->out, (want_out));                                   \
		ck_assert_str_eq((run)->err, (want_err));                                   \
	} while (0)

static void start_daemon(const char *const *extra)
{
	fixture_start(&weftd, extra);
}

static void setup(void)
{
	start_daemon(NULL);
}

/* Room for the megabytes the output tests print. */
static void setup_large_output(void)
{
	const char *const options[] = {"--output-max", "4194304", NULL};
	start_daemon(options);
}

static void teardown(void)
{
	if (weftd.pid != 0)
		fixture_stop(&weftd);
}

/* ------------------------------------------------------------ exit codes */

START_TEST(test_exit_zero_copies_output)
{
	run_result *run = run_cli("run", "--", "sh", "-c", "echo out; echo err >&2", NULL);
	assert_exit(run, 0);
	assert_output(run, "out\n", "err\n");
	run_free(run);
}
END_TEST

/* A NUL byte in a command's output reaches the reply as \u0000: the CLI must
 * read it, copy it through, and `weft ls` must still list the job. */
START_TEST(test_output_with_a_nul_byte_is_copied_and_listed)
{
	run_result *run = run_cli("run", "--", "printf", "a\\0b", NULL);
	assert_exit(run, 0);
	ck_assert_uint_eq(run->out_size, 3);
	ck_assert_int_eq(memcmp(run->out, "a\0b", 3), 0);
	run_free(run);
	run = run_cli("ls", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "printf") != NULL || strstr(run->out, "exec") != NULL,
	              "ls does not list the job:\n%s", run->out);
	run_free(run);
}
END_TEST

START_TEST(test_exit_code_is_the_commands)
{
	run_result *run = run_cli("run", "--", "sh", "-c", "printf x; exit 3", NULL);
	assert_exit(run, 3);
	/* Nothing of weft's own: the failure is the command's business. */
	assert_output(run, "x", "");
	run_free(run);
	run = run_cli("run", "--", "sh", "-c", "exit 255", NULL);
	assert_exit(run, 255);
	run_free(run);
}
END_TEST

START_TEST(test_signal_gives_128_plus_n)
{
	run_result *run = run_cli("run", "--", "sh", "-c", "kill -TERM $$", NULL);
	assert_exit(run, 128 + SIGTERM);
	run_free(run);
	run = run_cli("run", "--", "sh", "-c", "echo before; kill -KILL $$", NULL);
	assert_exit(run, 128 + SIGKILL);
	ck_assert_str_eq(run->out, "before\n");
	run_free(run);
}
END_TEST

START_TEST(test_missing_command_gives_127)
{
	run_result *run = run_cli("run", "--", "weft-no-such-command", NULL);
	assert_exit(run, 127);
	ck_assert_str_eq(run->out, "");
	ck_assert_msg(strstr(run->err, "No such file or directory") != NULL, "stderr: %s", run->err);
	run_free(run);
}
END_TEST

START_TEST(test_timeout_gives_124_after_partial_output)
{
	run_result *run = run_cli("run", "--timeout", "0.3", "--kill-after", "1", "--", "sh", "-c",
	                          "echo partial; echo half >&2; exec sleep 30", NULL);
	assert_exit(run, 124);
	ck_assert_str_eq(run->out, "partial\n");
	/* The partial stderr first, then weftd's message. */
	ck_assert_msg(strncmp(run->err, "half\n", 5) == 0, "stderr: %s", run->err);
	ck_assert_msg(strstr(run->err, "timeout of 0.3 s") != NULL, "stderr: %s", run->err);
	ck_assert_msg(run->seconds < 10, "took %.1f s", run->seconds);
	run_free(run);
}
END_TEST

/* A `weft run` of a long sleep, started and waited for until its job runs. */
typedef struct running_cli {
	pid_t pid;
	int out_fd, err_fd;
	char id[32]; /* the job's id */
} running_cli;

static void start_sleeping_run(running_cli *running, const char *label)
{
	char label_option[64];
	snprintf(label_option, sizeof(label_option), "test=%s", label);
	char *args[] = {(char *)"weft", (char *)"run", (char *)"--label", label_option,
	                (char *)"--", (char *)"sleep", (char *)"60", NULL};
	running->pid = cli_spawn(&plain, args, &running->out_fd, &running->err_fd);
	running->id[0] = '\0';
	for (int i = 0; i < 1000 && running->id[0] == '\0'; i++) {
		run_result *list = run_cli("--json", "ls", "--label", label_option, "--state",
		                           "running", NULL);
		assert_exit(list, 0);
		json_t *listing = json_loads(list->out, 0, NULL);
		json_t *jobs = json_object_get(listing, "jobs");
		if (json_array_size(jobs) == 1)
			snprintf(running->id, sizeof(running->id), "%lld",
			         (long long)json_integer_value(json_object_get(json_array_get(jobs, 0),
			                                                       "id")));
		json_decref(listing);
		run_free(list);
	}
	ck_assert_msg(running->id[0] != '\0', "the job never ran");
}

static void finish_cancelled_run(running_cli *running, double started)
{
	run_result run = {0};
	collect(&run, running->out_fd, running->err_fd);
	run.status = wait_status(running->pid);
	assert_exit(&run, 130);
	ck_assert_msg(strstr(run.err, "cancelled") != NULL, "stderr: %s", run.err);
	ck_assert_msg(fixture_now() - started < 20, "the cancel did not end the wait");
	free(run.out);
	free(run.err);
}

START_TEST(test_interrupt_cancels_and_gives_130)
{
	double started = fixture_now();
	running_cli running;
	start_sleeping_run(&running, "interrupt");
	kill(running.pid, SIGINT);
	finish_cancelled_run(&running, started);
	/* The job itself was cancelled, not just abandoned. */
	run_result *status = run_cli("--json", "status", running.id, NULL);
	ck_assert_msg(strstr(status->out, "\"state\":\"cancelled\"") != NULL, "status: %s",
	              status->out);
	run_free(status);
}
END_TEST

START_TEST(test_cancel_from_elsewhere_gives_130)
{
	double started = fixture_now();
	running_cli running;
	start_sleeping_run(&running, "cancel");
	run_result *cancel = run_cli("cancel", running.id, NULL);
	assert_exit(cancel, 0);
	run_free(cancel);
	finish_cancelled_run(&running, started);
}
END_TEST

START_TEST(test_usage_errors_exit_2)
{
	run_result *run = run_cli("run", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "after '--'") != NULL, "stderr: %s", run->err);
	run_free(run);
	run = run_cli("run", "--", NULL);
	assert_exit(run, 2);
	run_free(run);
	run = run_cli("run", "--timeout", "soon", "--", "true", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "--timeout takes seconds") != NULL, "stderr: %s", run->err);
	run_free(run);
	run = run_cli("run", "--env", "NOEQUALS", "--", "true", NULL);
	assert_exit(run, 2);
	run_free(run);
	run = run_cli("submit", "--limit", "nofile=many", "--", "true", NULL);
	assert_exit(run, 2);
	run_free(run);
	/* weftd refuses an unknown limit: still the caller's mistake. */
	run = run_cli("run", "--limit", "bogus=1", "--", "true", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "unknown limit 'bogus'") != NULL, "stderr: %s", run->err);
	run_free(run);
}
END_TEST

START_TEST(test_help_documents_run_and_submit)
{
	run_result *run = run_cli("run", "--help", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "124") != NULL && strstr(run->out, "127") != NULL &&
	                      strstr(run->out, "130") != NULL && strstr(run->out, "--stdin") != NULL,
	              "help: %s", run->out);
	run_free(run);
	run = run_cli("submit", "--help", NULL);
	assert_exit(run, 0);
	run_free(run);
	run = run_cli("--help", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "run ") != NULL && strstr(run->out, "submit ") != NULL,
	              "help: %s", run->out);
	run_free(run);
}
END_TEST

/* ---------------------------------------------------------------- output */

/* "1\n2\n...count\n" with prefix before every number. */
static char *numbers(const char *prefix, int count, size_t *size)
{
	size_t capacity = (size_t)count * (strlen(prefix) + 12) + 1;
	char *text = malloc(capacity);
	ck_assert(text != NULL);
	size_t used = 0;
	for (int i = 1; i <= count; i++)
		used += (size_t)snprintf(text + used, capacity - used, "%s%d\n", prefix, i);
	*size = used;
	return text;
}

START_TEST(test_megabytes_on_both_streams_copied_exactly)
{
	/* About 3.4 MB each, written at the same time. */
	run_result *run = run_cli("run", "--", "sh", "-c",
	                          "seq 1 500000 & seq 1 500000 | sed s/^/e/ >&2; wait", NULL);
	assert_exit(run, 0);
	size_t out_size, err_size;
	char *out = numbers("", 500000, &out_size);
	char *err = numbers("e", 500000, &err_size);
	ck_assert_uint_eq(run->out_size, out_size);
	ck_assert_uint_eq(run->err_size, err_size);
	ck_assert(memcmp(run->out, out, out_size) == 0);
	ck_assert(memcmp(run->err, err, err_size) == 0);
	free(out);
	free(err);
	run_free(run);
}
END_TEST

START_TEST(test_bytes_that_are_not_utf8_are_copied_exactly)
{
	run_result *run = run_cli("run", "--", "printf", "a\\377b\\303", NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "a\377b\303");
	run_free(run);
	run = run_cli("run", "--", "printf", "caf\\303\\251", NULL);
	ck_assert_str_eq(run->out, "caf\xC3\xA9");
	run_free(run);
}
END_TEST

START_TEST(test_output_past_output_max_passes_through_whole)
{
	fixture_stop(&weftd);
	const char *const options[] = {"--output-max", "1000", NULL};
	start_daemon(options);
	/* --output-max bounds the retained result only; weft run streams it all. */
	run_result *run = run_cli("run", "--", "sh", "-c", "seq 1 100000", NULL);
	assert_exit(run, 0);
	ck_assert_uint_eq(run->out_size, 588895);
	ck_assert_str_eq(run->err, "");
	run_free(run);
	run = run_cli("--json", "run", "--", "sh", "-c", "seq 1 100000", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "\"truncated\":true") != NULL, "%.200s", run->out);
	run_free(run);
}
END_TEST

START_TEST(test_json_prints_the_whole_outcome)
{
	run_result *run = run_cli("--json", "run", "--", "sh", "-c", "echo hi; exit 4", NULL);
	assert_exit(run, 4);
	json_error_t error;
	json_t *outcome = json_loads(run->out, 0, &error);
	ck_assert_msg(outcome != NULL, "not JSON (%s): %s", error.text, run->out);
	ck_assert_str_eq(json_string_value(json_object_get(outcome, "state")), "failed");
	json_t *details = json_object_get(json_object_get(outcome, "error"), "details");
	ck_assert_int_eq(json_integer_value(json_object_get(details, "exit_code")), 4);
	ck_assert_str_eq(json_string_value(json_object_get(details, "stdout")), "hi\n");
	json_decref(outcome);
	run_free(run);
}
END_TEST

/* ------------------------------------------------------- the job's setup */

START_TEST(test_runs_in_the_callers_directory)
{
	char directory[] = "/tmp/weft-cli-exec-XXXXXX";
	ck_assert(mkdtemp(directory) != NULL);
	run_setup here = {directory, NULL};
	run_result *run = run_cli_with(&here, "run", "--", "pwd", NULL);
	assert_exit(run, 0);
	char expected[sizeof(directory) + 16];
	snprintf(expected, sizeof(expected), "%s\n", directory);
	ck_assert_str_eq(run->out, expected);
	run_free(run);
	run = run_cli_with(&here, "run", "--cwd", "/usr", "--", "pwd", NULL);
	ck_assert_str_eq(run->out, "/usr\n");
	run_free(run);
	/* A relative --cwd starts from the caller's directory, not weftd's. */
	char sub[sizeof(directory) + 8];
	snprintf(sub, sizeof(sub), "%s/sub", directory);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	run = run_cli_with(&here, "run", "--cwd", "sub", "--", "pwd", NULL);
	assert_exit(run, 0);
	snprintf(expected, sizeof(expected), "%s\n", sub);
	ck_assert_str_eq(run->out, expected);
	run_free(run);
	rmdir(sub);
	rmdir(directory);
}
END_TEST

START_TEST(test_env_is_set_and_the_callers_is_not_passed)
{
	run_result *run = run_cli("run", "--env", "GREETING=hello world", "--", "sh", "-c",
	                          "echo \"$GREETING\"; echo \"${WEFT_TEST_CALLER_ONLY:-absent}\"",
	                          NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "hello world\nabsent\n");
	run_free(run);
	run = run_cli("run", "--env-clear", "--env", "ONLY=1", "--", "/usr/bin/env", NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "ONLY=1\n");
	run_free(run);
}
END_TEST

START_TEST(test_shell_joins_the_words)
{
	run_result *run = run_cli("run", "--shell", "--", "echo", "a", "&&", "echo", "$((6*7))",
	                          "|", "tr", "4", "x", NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "a\nx2\n");
	run_free(run);
}
END_TEST

static void write_file(const char *path, const char *data, size_t size)
{
	FILE *file = fopen(path, "w");
	ck_assert(file != NULL);
	ck_assert_uint_eq(fwrite(data, 1, size, file), size);
	ck_assert_int_eq(fclose(file), 0);
}

START_TEST(test_stdin_is_sent)
{
	char path[] = "/tmp/weft-cli-stdin-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	write_file(path, "hello\nworld\n", 12);
	run_setup input = {NULL, path};
	run_result *run = run_cli_with(&input, "run", "--stdin", "--", "tr", "a-z", "A-Z", NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "HELLO\nWORLD\n");
	run_free(run);
	/* Without --stdin the command reads nothing, not the caller's stdin. */
	run = run_cli_with(&input, "run", "--", "wc", "-c", NULL);
	ck_assert_str_eq(run->out, "0\n");
	run_free(run);
	unlink(path);
}
END_TEST

START_TEST(test_stdin_over_the_message_limit_is_refused_by_submit_and_streamed_by_run)
{
	char path[] = "/tmp/weft-cli-stdin-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	size_t size = 2 * 1024 * 1024;
	char *data = malloc(size);
	ck_assert(data != NULL);
	memset(data, 'a', size);
	write_file(path, data, size);
	free(data);
	run_setup input = {NULL, path};
	/* weft submit sends stdin in the job: over --max-message it is refused. */
	run_result *run = run_cli_with(&input, "submit", "--stdin", "--", "wc", "-c", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "--max-message") != NULL, "stderr: %s", run->err);
	run_free(run);
	/* weft run streams it: no limit. */
	run = run_cli_with(&input, "run", "--stdin", "--", "wc", "-c", NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "2097152\n");
	run_free(run);
	unlink(path);
}
END_TEST

/* ---------------------------------------------------------------- submit */

START_TEST(test_submit_prints_the_id_and_result_has_the_output)
{
	run_result *run = run_cli("submit", "--", "sh", "-c", "echo submitted", NULL);
	assert_exit(run, 0);
	char *end = NULL;
	long id = strtol(run->out, &end, 10);
	ck_assert_msg(id > 0 && strcmp(end, "\n") == 0, "stdout: %s", run->out);
	ck_assert_msg(run->seconds < 10, "submit took %.1f s", run->seconds);
	char id_text[32];
	snprintf(id_text, sizeof(id_text), "%ld", id);
	run_free(run);
	run = run_cli("--json", "result", id_text, NULL);
	assert_exit(run, 0);
	json_t *outcome = json_loads(run->out, 0, NULL);
	ck_assert_msg(outcome != NULL, "stdout: %s", run->out);
	json_t *result = json_object_get(outcome, "result");
	ck_assert_str_eq(json_string_value(json_object_get(result, "stdout")), "submitted\n");
	ck_assert_int_eq(json_integer_value(json_object_get(result, "exit_code")), 0);
	json_decref(outcome);
	run_free(run);
	run = run_cli("--json", "submit", "--", "true", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strncmp(run->out, "{\"id\":", 6) == 0, "stdout: %s", run->out);
	run_free(run);
}
END_TEST

/* weft submit --lines: one job per line of stdin, each /bin/sh -c LINE. */
START_TEST(test_submit_lines_submits_one_job_per_line)
{
	char path[] = "/tmp/weft-cli-lines-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* 1,200 lines: more than one batch (1,000). Blank lines are skipped. */
	FILE *file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	for (int i = 0; i < 1200; i++)
		fprintf(file, "echo line-%d\n%s", i, i == 7 ? "\n" : "");
	ck_assert_int_eq(fclose(file), 0);
	run_setup input = {NULL, path};
	run_result *run = run_cli_with(&input, "--json", "submit", "--label", "from=lines",
	                               "--lines", NULL);
	assert_exit(run, 0);
	json_t *document = json_loads(run->out, 0, NULL);
	ck_assert_msg(document != NULL, "stdout: %.200s", run->out);
	json_t *ids = json_object_get(document, "ids");
	ck_assert_int_eq(json_array_size(ids), 1200);
	run_free(run);
	/* In the order of the lines, and each ran its own line. */
	static const int probes[] = {0, 8, 1199};
	for (size_t i = 0; i < 3; i++) {
		char id[32], want[32];
		snprintf(id, sizeof(id), "%lld",
		         (long long)json_integer_value(json_array_get(ids, (size_t)probes[i])));
		run = run_cli("--json", "result", id, NULL);
		assert_exit(run, 0);
		json_t *outcome = json_loads(run->out, 0, NULL);
		snprintf(want, sizeof(want), "line-%d\n", probes[i]);
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(outcome, "result"),
		                                                   "stdout")),
		                 want);
		json_decref(outcome);
		run_free(run);
	}
	json_decref(document);
	/* A line that is not UTF-8 submits nothing at all. */
	write_file(path, "echo fine\n\xff\n", 11);
	run = run_cli_with(&input, "submit", "--label", "bad=1", "--lines", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "line 2") != NULL, "stderr: %s", run->err);
	run_free(run);
	run = run_cli("--json", "ls", "--label", "bad=1", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "echo fine") == NULL, "the good line was submitted: %s",
	              run->out);
	run_free(run);
	unlink(path);
}
END_TEST

START_TEST(test_submit_returns_at_once)
{
	run_result *run = run_cli("submit", "--", "sleep", "30", NULL);
	assert_exit(run, 0);
	ck_assert_msg(run->seconds < 10, "submit waited %.1f s", run->seconds);
	run_free(run);
}
END_TEST

static Suite *cli_exec_suite(void)
{
	Suite *suite = suite_create("cli_exec");
	TCase *status = tcase_create("exit status");
	tcase_add_checked_fixture(status, setup, teardown);
	tcase_set_timeout(status, 30);
	tcase_add_test(status, test_exit_zero_copies_output);
	tcase_add_test(status, test_output_with_a_nul_byte_is_copied_and_listed);
	tcase_add_test(status, test_exit_code_is_the_commands);
	tcase_add_test(status, test_signal_gives_128_plus_n);
	tcase_add_test(status, test_missing_command_gives_127);
	tcase_add_test(status, test_timeout_gives_124_after_partial_output);
	tcase_add_test(status, test_interrupt_cancels_and_gives_130);
	tcase_add_test(status, test_cancel_from_elsewhere_gives_130);
	tcase_add_test(status, test_usage_errors_exit_2);
	tcase_add_test(status, test_help_documents_run_and_submit);
	suite_add_tcase(suite, status);

	TCase *output = tcase_create("output");
	tcase_add_checked_fixture(output, setup_large_output, teardown);
	tcase_set_timeout(output, 30);
	tcase_add_test(output, test_megabytes_on_both_streams_copied_exactly);
	tcase_add_test(output, test_bytes_that_are_not_utf8_are_copied_exactly);
	tcase_add_test(output, test_output_past_output_max_passes_through_whole);
	tcase_add_test(output, test_json_prints_the_whole_outcome);
	suite_add_tcase(suite, output);

	TCase *job = tcase_create("job setup");
	tcase_add_checked_fixture(job, setup, teardown);
	/* Over a thousand commands run here: slow under the sanitizers. */
	tcase_set_timeout(job, 180);
	tcase_add_test(job, test_runs_in_the_callers_directory);
	tcase_add_test(job, test_env_is_set_and_the_callers_is_not_passed);
	tcase_add_test(job, test_shell_joins_the_words);
	tcase_add_test(job, test_stdin_is_sent);
	tcase_add_test(job, test_stdin_over_the_message_limit_is_refused_by_submit_and_streamed_by_run);
	tcase_add_test(job, test_submit_prints_the_id_and_result_has_the_output);
	tcase_add_test(job, test_submit_returns_at_once);
	tcase_add_test(job, test_submit_lines_submits_one_job_per_line);
	suite_add_tcase(suite, job);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(cli_exec_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

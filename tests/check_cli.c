/*
 * The weft CLI ($WEFT_CLI) against a real weftd: output for people and for
 * scripts, the exit codes (0 ok, 1 job failed, 2 usage, 3 cannot connect,
 * 4 timeout, 5 daemon error), every error code the daemon sends (except
 * no_memory and internal, which nothing can trigger on purpose), and --help
 * for every subcommand.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "tests/fixture.h"

#define CLI_OUTPUT_MAX (256 * 1024)
#define CLI_MAX_ARGS 32

typedef struct cli_run {
	int status; /* exit code, or 128 + signal */
	char out[CLI_OUTPUT_MAX];
	char err[CLI_OUTPUT_MAX];
	double seconds;
} cli_run;

static fixture weftd;

/* Starts $WEFT_CLI with WEFT_URL pointing at the fixture and the given
 * arguments (NULL-terminated). *out_fd and *err_fd: read ends. */
static pid_t cli_spawn(char *const *args, int *out_fd, int *err_fd)
{
	const char *cli = getenv("WEFT_CLI");
	ck_assert_msg(cli != NULL && cli[0] == '/', "set WEFT_CLI (make check does)");
	int out_pipe[2], err_pipe[2];
	ck_assert_int_eq(pipe2(out_pipe, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(err_pipe, O_CLOEXEC), 0);
	char *argv[CLI_MAX_ARGS + 2];
	argv[0] = (char *)"weft";
	size_t argc = 1;
	for (size_t i = 0; args[i] != NULL; i++) {
		ck_assert(argc < CLI_MAX_ARGS);
		argv[argc++] = args[i];
	}
	argv[argc] = NULL;
	char url_setting[sizeof(weftd.url) + 16];
	snprintf(url_setting, sizeof(url_setting), "WEFT_URL=%s", weftd.url);
	const char *const settings[] = {weftd.url[0] != '\0' ? url_setting : NULL, NULL};
	char **environment = fixture_environ_with(settings);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(out_pipe[1], STDOUT_FILENO);
		dup2(err_pipe[1], STDERR_FILENO);
		int null = open("/dev/null", O_RDONLY);
		dup2(null, STDIN_FILENO);
		execve(cli, argv, environment);
		_exit(127);
	}
	fixture_environ_free(environment);
	close(out_pipe[1]);
	close(err_pipe[1]);
	*out_fd = out_pipe[0];
	*err_fd = err_pipe[0];
	return pid;
}

static void cli_collect(cli_run *run, pid_t pid, int out_fd, int err_fd)
{
	size_t out_size = 0, err_size = 0;
	struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
	int open_count = 2;
	while (open_count > 0) {
		ck_assert_int_ge(poll(fds, 2, 30000), 1);
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || fds[i].revents == 0)
				continue;
			char *buffer = i == 0 ? run->out : run->err;
			size_t *size = i == 0 ? &out_size : &err_size;
			ssize_t got = read(fds[i].fd, buffer + *size, CLI_OUTPUT_MAX - 1 - *size);
			if (got <= 0) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_count--;
			} else {
				*size += (size_t)got;
			}
		}
	}
	run->out[out_size] = '\0';
	run->err[err_size] = '\0';
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	run->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs the CLI to its end; the arguments end with NULL. */
static cli_run *cli(const char *first, ...)
{
	char *args[CLI_MAX_ARGS + 1];
	size_t count = 0;
	va_list list;
	va_start(list, first);
	for (const char *arg = first; arg != NULL; arg = va_arg(list, const char *)) {
		ck_assert(count < CLI_MAX_ARGS);
		args[count++] = (char *)arg;
	}
	va_end(list);
	args[count] = NULL;
	static cli_run run;
	memset(&run, 0, sizeof(run));
	int out_fd, err_fd;
	double started = fixture_now();
	pid_t pid = cli_spawn(args, &out_fd, &err_fd);
	cli_collect(&run, pid, out_fd, err_fd);
	run.seconds = fixture_now() - started;
	return &run;
}

#define assert_exit(run, expected)                                                          \
	ck_assert_msg((run)->status == (expected),                                         \
	              "exit code %d, wanted %d\nstdout: %s\nstderr: %s", (run)->status,    \
	              (expected), (run)->out, (run)->err)

/* The stdout of a --json run, parsed; new reference. */
static json_t *json_of(const cli_run *run)
{
	json_error_t error;
	json_t *value = json_loads(run->out, JSON_DECODE_ANY, &error);
	ck_assert_msg(value != NULL, "stdout is not one JSON document (%s): %s", error.text,
	              run->out);
	return value;
}

static const char *error_code_of(const cli_run *run)
{
	static char code[64];
	json_t *document = json_of(run);
	snprintf(code, sizeof(code), "%s",
	         json_string_value(json_object_get(json_object_get(document, "error"), "code")));
	json_decref(document);
	return code;
}

/* Submits a job through the CLI and returns its id. */
static char *call_id(const char *fn, const char *args)
{
	cli_run *run = cli("call", fn, args, NULL);
	assert_exit(run, 0);
	static char id[32];
	ck_assert_msg(sscanf(run->out, "%31s", id) == 1, "no id in '%s'", run->out);
	return id;
}

static void start(void)
{
	fixture_start(&weftd, NULL);
}

static void start_small(void)
{
	static const char *const args[] = {"--max-message", "4096", NULL};
	fixture_start(&weftd, args);
}

static void stop(void)
{
	fixture_stop(&weftd);
}

/* ------------------------------------------------------------- usage */

START_TEST(test_every_command_has_help)
{
	static const char *const commands[] = {"ping", "call",  "result", "wait",      "cancel",
	                                       "status", "ls", "stats", "functions", "request"};
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		cli_run *run = cli(commands[i], "--help", NULL);
		assert_exit(run, 0);
		char expected[64];
		snprintf(expected, sizeof(expected), "usage: weft %s", commands[i]);
		ck_assert_msg(strstr(run->out, expected) != NULL, "%s --help: %s", commands[i],
		              run->out);
	}
	cli_run *run = cli("--help", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "exit codes") != NULL, "weft --help: %s", run->out);
}
END_TEST

START_TEST(test_usage_errors_exit_2_and_say_what_to_change)
{
	cli_run *run = cli("call", "echo", "{\"value\":", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "not valid JSON") != NULL, "stderr: %s", run->err);
	run = cli("call", "echo", "[1]", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "must be a JSON object") != NULL, "stderr: %s", run->err);
	assert_exit(cli("call", NULL), 2);
	assert_exit(cli("call", "echo", "{}", "extra", NULL), 2);
	assert_exit(cli("call", "echo", "--timeout", "soon", NULL), 2);
	assert_exit(cli("call", "echo", "--label", "novalue", NULL), 2);
	assert_exit(cli("result", "abc", NULL), 2);
	assert_exit(cli("result", "0", NULL), 2);
	assert_exit(cli("wait", NULL), 2);
	assert_exit(cli("wait", "1", "--timeout", "-1", NULL), 2);
	assert_exit(cli("ls", "--state", "asleep", NULL), 2);
	assert_exit(cli("ls", "--limit", "0", NULL), 2);
	assert_exit(cli("ping", "--bogus", NULL), 2);
	assert_exit(cli("ping", "--url", NULL), 2);
	assert_exit(cli("frobnicate", NULL), 2);
	assert_exit(cli(NULL), 2);
	assert_exit(cli("--url", "carrier-pigeon://x", "ping", NULL), 2);
}
END_TEST

/* A filter or label that is not UTF-8 cannot go into JSON: the command must
 * refuse it, not drop it and list every job or submit without the label. */
START_TEST(test_text_that_is_not_utf8_is_refused)
{
	cli_run *run = cli("ls", "--fn", "ech\xff", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "--fn takes a function name in UTF-8") != NULL, "stderr: %s",
	              run->err);
	static const char *const commands[][3] = {
		{"ls", NULL, NULL}, {"call", "echo", "{}"}, {"submit", "--", "true"}};
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i][1] == NULL)
			run = cli(commands[i][0], "--label", "team=\xfe", NULL);
		else
			run = cli(commands[i][0], "--label", "team=\xfe", commands[i][1], commands[i][2],
			          NULL);
		assert_exit(run, 2);
		ck_assert_msg(strstr(run->err, "--label team: the key and value must be UTF-8") != NULL,
		              "%s: %s", commands[i][0], run->err);
	}
	run = cli("future", "new", "--label", "who=\xfe", NULL);
	assert_exit(run, 2);
	ck_assert_msg(strstr(run->err, "must be UTF-8") != NULL, "stderr: %s", run->err);
}
END_TEST

START_TEST(test_version_names_the_protocol)
{
	cli_run *run = cli("--version", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "(protocol 1)") != NULL, "weft --version: %s", run->out);
}
END_TEST

START_TEST(test_no_daemon_exits_3)
{
	cli_run *run = cli("--url", "ipc:///nonexistent-weft-dir/weft.sock", "ping", NULL);
	assert_exit(run, 3);
	ck_assert_msg(strstr(run->err, "nonexistent-weft-dir") != NULL, "stderr: %s", run->err);
	run = cli("ping", "--json", "--url", "ipc:///nonexistent-weft-dir/weft.sock", NULL);
	assert_exit(run, 3);
	ck_assert_str_eq(error_code_of(run), "cannot_connect");
}
END_TEST

/* --------------------------------------------------------- with a weftd */

START_TEST(test_ping_through_weft_url_and_url)
{
	cli_run *run = cli("ping", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "weftd ") != NULL, "stdout: %s", run->out);
	run = cli("--json", "ping", "--url", weftd.url, NULL);
	assert_exit(run, 0);
	json_t *reply = json_of(run);
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "protocol")), 1);
	json_decref(reply);
}
END_TEST

START_TEST(test_call_prints_an_id_and_result_prints_the_value)
{
	char *id = call_id("echo", "{\"value\": {\"answer\": 42}}");
	cli_run *run = cli("result", id, NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "{\"answer\":42}\n");
	run = cli("result", id, "--json", NULL);
	assert_exit(run, 0);
	json_t *outcome = json_of(run);
	ck_assert_str_eq(json_string_value(json_object_get(outcome, "state")), "done");
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(outcome, "result"), "answer")), 42);
	json_decref(outcome);
	run = cli("call", "echo", "{\"value\": 1}", "--json", NULL);
	assert_exit(run, 0);
	json_t *submitted = json_of(run);
	ck_assert(json_integer_value(json_object_get(submitted, "id")) > 0);
	json_decref(submitted);
}
END_TEST

START_TEST(test_call_wait_prints_the_result_or_the_failure)
{
	cli_run *run = cli("call", "echo", "{\"value\": \"hi\"}", "--wait", NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "\"hi\"\n");
	run = cli("call", "--wait", "5", "echo", "{\"value\": [1]}", NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "[1]\n");
	run = cli("call", "sleep", "{\"seconds\": 5}", "--timeout", "0.2", "--wait", NULL);
	assert_exit(run, 1);
	ck_assert_msg(strstr(run->err, "Timeout") != NULL, "stderr: %s", run->err);
	run = cli("call", "sleep", "{\"seconds\": 5}", "--wait=0.2", NULL);
	assert_exit(run, 4);
	ck_assert_msg(strstr(run->err, "weft result") != NULL, "stderr: %s", run->err);
	run = cli("call", "sleep", "{\"seconds\": 0, \"result\": 7}", "--wait", "--json", NULL);
	assert_exit(run, 0);
	json_t *outcome = json_of(run);
	ck_assert_int_eq(json_integer_value(json_object_get(outcome, "result")), 7);
	json_decref(outcome);
}
END_TEST

START_TEST(test_result_timeout_exits_4_and_leaves_the_job)
{
	char *id = call_id("sleep", "{\"seconds\": 0.5, \"result\": \"woke\"}");
	char saved[32];
	snprintf(saved, sizeof(saved), "%s", id);
	cli_run *run = cli("result", saved, "--timeout", "0", "--json", NULL);
	assert_exit(run, 4);
	ck_assert_str_eq(error_code_of(run), "timeout");
	run = cli("result", saved, NULL);
	assert_exit(run, 0);
	ck_assert_str_eq(run->out, "\"woke\"\n");
}
END_TEST

START_TEST(test_wait_runs_jobs_together_and_reports_pending)
{
	char first[32], second[32];
	snprintf(first, sizeof(first), "%s", call_id("sleep", "{\"seconds\": 1}"));
	snprintf(second, sizeof(second), "%s", call_id("sleep", "{\"seconds\": 1}"));
	cli_run *run = cli("wait", first, second, "--timeout", "0.1", NULL);
	assert_exit(run, 4);
	char expected[128];
	snprintf(expected, sizeof(expected), "done:\npending: %s %s\n", first, second);
	ck_assert_str_eq(run->out, expected);
	run = cli("wait", first, second, "--json", NULL);
	assert_exit(run, 0);
	ck_assert_msg(run->seconds < 1.8, "two 1 s sleeps took %.3f s", run->seconds);
	json_t *result = json_of(run);
	ck_assert_uint_eq(json_array_size(json_object_get(result, "done")), 2);
	ck_assert_uint_eq(json_array_size(json_object_get(result, "pending")), 0);
	json_decref(result);
}
END_TEST

START_TEST(test_wait_any_and_first_error)
{
	char slow[32], quick[32], failing[32];
	snprintf(slow, sizeof(slow), "%s", call_id("sleep", "{\"seconds\": 5}"));
	snprintf(quick, sizeof(quick), "%s", call_id("sleep", "{\"seconds\": 0.1}"));
	cli_run *run = cli("wait", slow, quick, "--any", "--timeout", "5", NULL);
	assert_exit(run, 0);
	char expected[128];
	snprintf(expected, sizeof(expected), "done: %s\npending: %s\n", quick, slow);
	ck_assert_str_eq(run->out, expected);

	run = cli("call", "sleep", "{\"seconds\": 5}", "--timeout", "0.2", NULL);
	assert_exit(run, 0);
	sscanf(run->out, "%31s", failing);
	run = cli("wait", slow, failing, "--first-error", "--timeout", "5", NULL);
	assert_exit(run, 0);
	snprintf(expected, sizeof(expected), "done: %s\npending: %s\n", failing, slow);
	ck_assert_str_eq(run->out, expected);
	run = cli("wait", slow, quick, "--first-error", "--timeout", "0.1", NULL);
	assert_exit(run, 4);
}
END_TEST

START_TEST(test_cancel_then_result_reports_cancelled)
{
	char id[32];
	snprintf(id, sizeof(id), "%s", call_id("sleep", "{\"seconds\": 30}"));
	cli_run *run = cli("cancel", id, NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "cancelled") != NULL, "stdout: %s", run->out);
	run = cli("result", id, NULL);
	assert_exit(run, 1);
	ck_assert_msg(strstr(run->err, "Cancelled") != NULL, "stderr: %s", run->err);
	run = cli("cancel", id, "999999", "--json", NULL);
	assert_exit(run, 5);
	json_t *results = json_of(run);
	ck_assert_uint_eq(json_array_size(results), 2);
	ck_assert(json_is_false(json_object_get(json_array_get(results, 0), "cancelled")));
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_array_get(results, 1), "error"), "code")),
	                 "unknown_id");
	json_decref(results);
}
END_TEST

START_TEST(test_status_ls_stats_functions)
{
	cli_run *run = cli("call", "echo", "{\"value\": 1}", "--label", "team=ci", NULL);
	assert_exit(run, 0);
	char id[32];
	sscanf(run->out, "%31s", id);
	run = cli("status", id, NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "fn        echo") != NULL, "stdout: %s", run->out);
	run = cli("status", id, "--json", NULL);
	assert_exit(run, 0);
	json_t *job = json_of(run);
	ck_assert_str_eq(json_string_value(json_object_get(job, "fn")), "echo");
	json_decref(job);
	run = cli("ls", "--label", "team=ci", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "team=ci") != NULL && strstr(run->out, "ID") == run->out,
	              "stdout: %s", run->out);
	run = cli("ls", "--json", "--fn", "echo", "--limit", "5", NULL);
	assert_exit(run, 0);
	json_t *list = json_of(run);
	ck_assert_uint_ge(json_array_size(json_object_get(list, "jobs")), 1);
	ck_assert(json_is_boolean(json_object_get(list, "more")));
	json_decref(list);
	run = cli("stats", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "jobs:") != NULL, "stdout: %s", run->out);
	run = cli("functions", NULL);
	assert_exit(run, 0);
	ck_assert_msg(strstr(run->out, "echo") != NULL && strstr(run->out, "sleep") != NULL,
	              "stdout: %s", run->out);
	assert_exit(cli("stats", "--json", NULL), 0);
	assert_exit(cli("functions", "--json", NULL), 0);
}
END_TEST

/* Every error code weftd sends, reached through the CLI, with its exit code. */
START_TEST(test_every_daemon_error_reaches_the_cli)
{
	static const struct {
		const char *args[8];
		const char *code;
		int exit_code;
	} cases[] = {
		{{"request", "--raw", "garbage"}, "malformed_json", 5},
		{{"request", "--raw", "{\"op\":\"pi"}, "malformed_json", 5},
		{{"request", "{\"op\":\"status\",\"id\":\"x\"}"}, "bad_field", 5},
		{{"request", "{\"op\":\"status\",\"idd\":1}"}, "unknown_field", 5},
		{{"request", "{\"op\":\"stat\"}"}, "unknown_op", 5},
		{{"call", "slep"}, "unknown_function", 5},
		{{"call", "sleep", "{\"seconds\":\"x\"}"}, "bad_arguments", 5},
		{{"status", "999999"}, "unknown_id", 5},
		{{"result", "999999"}, "unknown_id", 5},
		{{"wait", "999999"}, "unknown_id", 5},
		{{"request", "{\"op\":\"result\",\"id\":1,\"timeout\":0}"}, NULL, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *args[10];
		size_t count = 0;
		for (; cases[i].args[count] != NULL; count++)
			args[count] = (char *)cases[i].args[count];
		args[count++] = (char *)"--json";
		args[count] = NULL;
		cli_run *run = cli(args[0], args[1], args[2], args[3], args[4], NULL);
		if (cases[i].code == NULL)
			continue; /* a request to set up state */
		assert_exit(run, cases[i].exit_code);
		ck_assert_msg(strcmp(error_code_of(run), cases[i].code) == 0,
		              "case %zu: code %s, wanted %s\nstdout: %s", i, error_code_of(run),
		              cases[i].code, run->out);
		run = cli(args[0], args[1], args[2], args[3], NULL);
		ck_assert_msg(strstr(run->err, "weft") != NULL, "case %zu: no message: %s", i,
		              run->err);
	}
	char id[32];
	snprintf(id, sizeof(id), "%s", call_id("sleep", "{\"seconds\": 5}"));
	cli_run *run = cli("result", id, "--timeout", "0.05", "--json", NULL);
	assert_exit(run, 4);
	ck_assert_str_eq(error_code_of(run), "timeout");
}
END_TEST

START_TEST(test_too_large_reaches_the_cli)
{
	/* --max-message 4096: a 6000-byte request is answered too_large; one
	 * over 4 x 4096 is refused before it is sent. */
	char path[200];
	snprintf(path, sizeof(path), "%s/args.json", weftd.directory);
	FILE *file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	fprintf(file, "{\"value\": \"");
	for (int i = 0; i < 6000; i++)
		fputc('x', file);
	fprintf(file, "\"}");
	fclose(file);
	char argument[210];
	snprintf(argument, sizeof(argument), "@%s", path);
	cli_run *run = cli("call", "echo", argument, "--json", NULL);
	assert_exit(run, 5);
	ck_assert_str_eq(error_code_of(run), "too_large");
	file = fopen(path, "w");
	fprintf(file, "{\"value\": \"");
	for (int i = 0; i < 20000; i++)
		fputc('x', file);
	fprintf(file, "\"}");
	fclose(file);
	run = cli("call", "echo", argument, "--json", NULL);
	assert_exit(run, 5);
	ck_assert_str_eq(error_code_of(run), "too_large");
	unlink(path);
	assert_exit(cli("ping", NULL), 0);
}
END_TEST

START_TEST(test_shutting_down_reaches_the_cli)
{
	char id[32];
	snprintf(id, sizeof(id), "%s", call_id("sleep", "{\"seconds\": 30}"));
	char *args[] = {(char *)"result", id, (char *)"--json", NULL};
	int out_fd, err_fd;
	pid_t pid = cli_spawn(args, &out_fd, &err_fd);
	/* Stop the weftd once it holds the long poll. */
	double deadline = fixture_now() + 5;
	for (;;) {
		cli_run *stats = cli("stats", "--json", NULL);
		assert_exit(stats, 0);
		json_t *document = json_of(stats);
		json_int_t waiters = json_integer_value(json_object_get(document, "waiters"));
		json_decref(document);
		if (waiters >= 1)
			break;
		ck_assert_msg(fixture_now() < deadline, "the long poll never reached weftd");
		struct timespec pause = {0, 10 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	fixture_stop(&weftd);
	static cli_run run;
	cli_collect(&run, pid, out_fd, err_fd);
	/* Either the protocol's shutting_down error, or the job's end. */
	if (run.status == 5) {
		ck_assert_str_eq(error_code_of(&run), "shutting_down");
	} else {
		assert_exit(&run, 1);
	}
}
END_TEST

START_TEST(test_shutting_down_refuses_new_jobs_through_the_cli)
{
	/* --grace 10 and a sleeping job: weftd stays in its grace period and
	 * refuses new jobs until the second SIGTERM of fixture_stop. */
	call_id("sleep", "{\"seconds\": 30}");
	kill(weftd.pid, SIGTERM);
	double deadline = fixture_now() + 5;
	cli_run *run;
	for (;;) {
		run = cli("call", "echo", "{\"value\": 1}", "--json", NULL);
		if (run->status != 0)
			break;
		ck_assert_msg(fixture_now() < deadline, "jobs still accepted after SIGTERM");
	}
	assert_exit(run, 5);
	ck_assert_str_eq(error_code_of(run), "shutting_down");
	fixture_stop(&weftd);
}
END_TEST

START_TEST(test_busy_reaches_the_cli)
{
	/* --max-waiters 1: a second long poll is refused while the first waits. */
	char id[32];
	snprintf(id, sizeof(id), "%s", call_id("sleep", "{\"seconds\": 30}"));
	char *args[] = {(char *)"result", id, NULL};
	int out_fd, err_fd;
	pid_t pid = cli_spawn(args, &out_fd, &err_fd);
	/* Wait until the daemon holds that long poll, so the next one is surely the
	 * second. The top level's "waiters" (the limits say "waiters":1 too). */
	double deadline = fixture_now() + 10;
	for (;;) {
		cli_run *stats = cli("stats", "--json", NULL);
		json_t *parsed = stats->status == 0 ? json_loads(stats->out, 0, NULL) : NULL;
		json_int_t waiting = json_integer_value(json_object_get(parsed, "waiters"));
		json_decref(parsed);
		if (waiting == 1)
			break;
		ck_assert_msg(fixture_now() < deadline, "the first long poll never arrived: %s",
		              stats->out);
	}
	cli_run *run = cli("result", id, "--timeout", "5", "--json", NULL);
	ck_assert_msg(run->status == 5, "no busy answer; exit %d: %s", run->status, run->out);
	ck_assert_str_eq(error_code_of(run), "busy");
	assert_exit(cli("cancel", id, NULL), 0);
	static cli_run first;
	cli_collect(&first, pid, out_fd, err_fd);
	assert_exit(&first, 1);
}
END_TEST

static void start_long_grace(void)
{
	static const char *const args[] = {"--grace", "10", NULL};
	fixture_start(&weftd, args);
}

static void start_one_waiter(void)
{
	static const char *const args[] = {"--max-waiters", "1", NULL};
	fixture_start(&weftd, args);
}

static Suite *cli_suite(void)
{
	Suite *suite = suite_create("cli");
	TCase *offline = tcase_create("offline");
	tcase_add_test(offline, test_every_command_has_help);
	tcase_add_test(offline, test_usage_errors_exit_2_and_say_what_to_change);
	tcase_add_test(offline, test_no_daemon_exits_3);
	tcase_add_test(offline, test_text_that_is_not_utf8_is_refused);
	tcase_add_test(offline, test_version_names_the_protocol);
	suite_add_tcase(suite, offline);

	TCase *online = tcase_create("online");
	tcase_add_checked_fixture(online, start, stop);
	tcase_set_timeout(online, 20);
	tcase_add_test(online, test_ping_through_weft_url_and_url);
	tcase_add_test(online, test_call_prints_an_id_and_result_prints_the_value);
	tcase_add_test(online, test_call_wait_prints_the_result_or_the_failure);
	tcase_add_test(online, test_result_timeout_exits_4_and_leaves_the_job);
	tcase_add_test(online, test_wait_runs_jobs_together_and_reports_pending);
	tcase_add_test(online, test_wait_any_and_first_error);
	tcase_add_test(online, test_cancel_then_result_reports_cancelled);
	tcase_add_test(online, test_status_ls_stats_functions);
	tcase_add_test(online, test_every_daemon_error_reaches_the_cli);
	suite_add_tcase(suite, online);

	TCase *small = tcase_create("small");
	tcase_add_checked_fixture(small, start_small, stop);
	tcase_set_timeout(small, 20);
	tcase_add_test(small, test_too_large_reaches_the_cli);
	suite_add_tcase(suite, small);

	TCase *shutdown = tcase_create("shutdown");
	tcase_add_checked_fixture(shutdown, start, NULL);
	tcase_set_timeout(shutdown, 20);
	tcase_add_test(shutdown, test_shutting_down_reaches_the_cli);
	suite_add_tcase(suite, shutdown);

	TCase *grace = tcase_create("grace");
	tcase_add_checked_fixture(grace, start_long_grace, NULL);
	tcase_set_timeout(grace, 20);
	tcase_add_test(grace, test_shutting_down_refuses_new_jobs_through_the_cli);
	suite_add_tcase(suite, grace);

	TCase *waiters = tcase_create("waiters");
	tcase_add_checked_fixture(waiters, start_one_waiter, stop);
	tcase_set_timeout(waiters, 20);
	tcase_add_test(waiters, test_busy_reaches_the_cli);
	suite_add_tcase(suite, waiters);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(cli_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

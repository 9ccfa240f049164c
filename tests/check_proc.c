/*
 * proc: running one job's process on a private event_base. Each test starts
 * commands through proc_start and runs the loop until the done callback has
 * come (bounded in time); no daemon is involved.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/executors/process/execargs.h"
#include "daemon/executors/process/proc.h"
#include "daemon/core/slots.h"
#include "tests/as_user.h"
#include "weft/error.h"

/* Longest any single command here may take before the test gives up. */
#define RUN_LIMIT_SECONDS 20.0

static char helper_dir[PATH_MAX];

/* What the done callback saw. */
struct run {
	bool done;
	int calls;
	json_t *result;
	enum proc_status status;
	char error_type[32];
	char message[512];
};

static double now(void)
{
	struct timespec time;
	clock_gettime(CLOCK_MONOTONIC, &time);
	return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

static void pause_briefly(void)
{
	struct timespec pause = {0, 2 * 1000 * 1000};
	nanosleep(&pause, NULL);
}

static void on_done(void *arg, json_t *result, const struct proc_outcome *outcome)
{
	struct run *run = arg;
	run->done = true;
	run->calls++;
	run->result = result;
	run->status = outcome->status;
	snprintf(run->error_type, sizeof(run->error_type), "%s",
		outcome->error_type != NULL ? outcome->error_type : "");
	snprintf(run->message, sizeof(run->message), "%s",
		outcome->message != NULL ? outcome->message : "");
	/* The outcome's fields agree with its status. */
	ck_assert((outcome->status == PROC_STATUS_SUCCESS) == (outcome->error_type == NULL));
	ck_assert((outcome->status == PROC_STATUS_SUCCESS) == (outcome->message == NULL));
}

static struct execargs *parse(const char *text)
{
	struct execargs_error error = {0};
	struct execargs *args = NULL;
	json_error_t json_error;
	json_t *json = json_loads(text, 0, &json_error);

	ck_assert_msg(json != NULL, "bad test JSON %s: %s", text, json_error.text);
	ck_assert_msg(execargs_parse(json, &args, &error) == WEFT_OK, "%s refused: %s", text,
		error.message);
	json_decref(json);
	return args;
}

static struct proc *start(struct event_base *base, const char *text,
	const struct proc_options *options, struct run *run)
{
	struct execargs *args = parse(text);
	struct proc *proc = NULL;
	int rv = proc_start(base, args, options, on_done, run, &proc);

	ck_assert_msg(rv == WEFT_OK, "proc_start: %s", weft_error_code(rv));
	ck_assert_msg(!run->done, "done was called from inside proc_start");
	execargs_free(args); /* proc keeps nothing of it */
	return proc;
}

static void loop_until_done(struct event_base *base, struct run *run)
{
	double deadline = now() + RUN_LIMIT_SECONDS;
	while (!run->done) {
		ck_assert_msg(now() < deadline, "the command did not finish in %.0f s",
			RUN_LIMIT_SECONDS);
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (!run->done)
			event_base_loop(base, EVLOOP_ONCE);
	}
	ck_assert_int_eq(run->calls, 1);
}

/* Runs a command to its end; the caller frees run->result. */
static struct run run_command(const char *text, const struct proc_options *options)
{
	struct event_base *base = event_base_new();
	struct run run = {0};

	start(base, text, options, &run);
	loop_until_done(base, &run);
	/* Once done came, nothing of the proc is left on the loop. */
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	event_base_free(base);
	return run;
}

static const char *result_string(const struct run *run, const char *key)
{
	json_t *value = json_object_get(run->result, key);
	ck_assert_msg(json_is_string(value), "result.%s is not a string", key);
	return json_string_value(value);
}

static json_int_t result_integer(const struct run *run, const char *key)
{
	json_t *value = json_object_get(run->result, key);
	ck_assert_msg(json_is_integer(value), "result.%s is not an integer", key);
	return json_integer_value(value);
}

static bool result_is_null(const struct run *run, const char *key)
{
	return json_is_null(json_object_get(run->result, key));
}

static void assert_success(const struct run *run)
{
	ck_assert_msg(run->status == PROC_STATUS_SUCCESS, "failed: %s: %s (stderr: %s)",
		run->error_type, run->message,
		json_is_string(json_object_get(run->result, "stderr"))
			? json_string_value(json_object_get(run->result, "stderr"))
			: "-");
	ck_assert_int_eq(result_integer(run, "exit_code"), 0);
	ck_assert(result_is_null(run, "signal"));
}

/* True when the process `pid` is gone or only a zombie (dead, not yet
 * reaped by whoever inherited it). */
static bool process_is_dead(pid_t pid)
{
	char path[64], text[512], *state;
	FILE *file;
	size_t got;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	file = fopen(path, "r");
	if (file == NULL)
		return true;
	got = fread(text, 1, sizeof(text) - 1, file);
	fclose(file);
	text[got] = '\0';
	state = strrchr(text, ')');
	return state == NULL || state[1] == '\0' || state[2] == 'Z' || state[2] == 'X';
}

/* True when `pid` has been reaped: no process of that pid is left at all. */
static bool process_is_gone(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) != 0 && errno == ENOENT;
}

/* Waits until `pid`, a process of the job's tree that the code under test
 * does not own (a grandchild), is dead and reaped. Orphans come back to the
 * test process (it is a child subreaper, see subreaper_setup), so a dead
 * grandchild is reaped here, by its pid. Its zombie may still belong to the
 * dying shell for a moment and only then pass to us: waiting for the zombie
 * alone would leave it for count_children to find. */
static void assert_dies(pid_t pid)
{
	double deadline = now() + 5;
	while (waitpid(pid, NULL, WNOHANG) != pid && !process_is_gone(pid)) {
		ck_assert_msg(now() < deadline, "process %d is still %s", (int)pid,
			process_is_dead(pid) ? "an unreaped zombie" : "alive");
		pause_briefly();
	}
}

/* Children of this process, and how many of them are zombies. */
static int count_children(int *zombies)
{
	DIR *proc_dir = opendir("/proc");
	struct dirent *entry;
	int children = 0;

	*zombies = 0;
	ck_assert_ptr_nonnull(proc_dir);
	while ((entry = readdir(proc_dir)) != NULL) {
		char path[300], text[512], *after;
		FILE *file;
		size_t got;
		char state;
		int parent;
		if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", entry->d_name);
		if ((file = fopen(path, "r")) == NULL)
			continue;
		got = fread(text, 1, sizeof(text) - 1, file);
		fclose(file);
		text[got] = '\0';
		after = strrchr(text, ')');
		if (after == NULL || sscanf(after + 1, " %c %d", &state, &parent) != 2)
			continue;
		if (parent == (int)getpid()) {
			children++;
			if (state == 'Z')
				(*zombies)++;
		}
	}
	closedir(proc_dir);
	return children;
}

static int count_fds(void)
{
	DIR *fd_dir = opendir("/proc/self/fd");
	struct dirent *entry;
	int count = 0;

	ck_assert_ptr_nonnull(fd_dir);
	while ((entry = readdir(fd_dir)) != NULL)
		if (entry->d_name[0] != '.')
			count++;
	closedir(fd_dir);
	return count - 1; /* the directory's own descriptor */
}

/* ---------------------------------------------------------- what runs */

START_TEST(test_argv_runs_without_a_shell)
{
	struct run run = run_command("{\"argv\": [\"echo\", \"hello\", \"$HOME\", \"*\"]}", NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "hello $HOME *\n");
	ck_assert_str_eq(result_string(&run, "stderr"), "");
	ck_assert(json_is_false(json_object_get(run.result, "truncated")));
	ck_assert_int_gt(result_integer(&run, "pid"), 0);
	ck_assert(json_is_real(json_object_get(run.result, "duration")));
	ck_assert(json_real_value(json_object_get(run.result, "duration")) >= 0);
	json_decref(run.result);
}
END_TEST

START_TEST(test_shell_runs_through_bin_sh)
{
	struct run run = run_command("{\"shell\": \"echo $((6 * 7)); echo oops >&2\"}", NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "42\n");
	ck_assert_str_eq(result_string(&run, "stderr"), "oops\n");
	json_decref(run.result);
}
END_TEST

START_TEST(test_default_environment_is_clean)
{
	struct run run;

	/* The daemon's own environment must not reach jobs. */
	setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	setenv("WEFT_TEST_SECRET", "x", 1);
	run = run_command("{\"argv\": [\"env\"]}", NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"),
		"PATH=/usr/local/bin:/usr/bin:/bin\nSHELL=/bin/sh\nLANG=C.UTF-8\n");
	json_decref(run.result);
}
END_TEST

START_TEST(test_env_is_merged_over_the_default)
{
	struct run run = run_command("{\"shell\": \"echo \\\"$FOO|$PATH|$LANG\\\"\","
				     " \"env\": {\"FOO\": \"bar baz\", \"LANG\": \"C\"}}",
		NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "bar baz|/usr/local/bin:/usr/bin:/bin|C\n");
	json_decref(run.result);
}
END_TEST

START_TEST(test_env_path_is_used_for_the_search)
{
	struct run run = run_command("{\"argv\": [\"env\"], \"env\": {\"PATH\": \"/nonexistent\"}}",
		NULL);
	ck_assert_int_eq(run.status, PROC_STATUS_SPAWN_ERROR);
	ck_assert_str_eq(run.message, "cannot run 'env': No such file or directory");
	json_decref(run.result);
}
END_TEST

START_TEST(test_env_clear_starts_empty)
{
	struct run run = run_command("{\"argv\": [\"/usr/bin/env\"], \"env_clear\": true,"
				     " \"env\": {\"ONLY\": \"1\"}}",
		NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "ONLY=1\n");
	json_decref(run.result);
}
END_TEST

START_TEST(test_identity_fills_home_user_and_shell)
{
	struct account *identity = NULL;
	struct proc_options options = {0};
	struct run run;
	char expected[512];

	ck_assert_int_eq(account_lookup(getuid(), getgid(), false, &identity), WEFT_OK);
	ck_assert_ptr_nonnull(identity->user);
	options.identity = identity;
	run = run_command("{\"shell\": \"echo \\\"$HOME|$USER|$LOGNAME|$SHELL\\\"\"}", &options);
	assert_success(&run);
	snprintf(expected, sizeof(expected), "%s|%s|%s|%s\n", identity->home, identity->user,
		identity->user, identity->shell != NULL ? identity->shell : "/bin/sh");
	ck_assert_str_eq(result_string(&run, "stdout"), expected);
	json_decref(run.result);
	account_free(identity);
}
END_TEST

START_TEST(test_identity_of_an_unknown_uid_has_only_its_group)
{
	struct account *identity = NULL;

	ck_assert_int_eq(account_lookup(54321, 54322, true, &identity), WEFT_OK);
	ck_assert(identity->switch_to);
	ck_assert_ptr_null(identity->user);
	ck_assert_ptr_null(identity->home);
	ck_assert_uint_eq(identity->group_count, 1);
	ck_assert_uint_eq(identity->groups[0], 54322);
	account_free(identity);
}
END_TEST

START_TEST(test_cwd_is_where_it_runs)
{
	struct run run = run_command("{\"argv\": [\"pwd\"], \"cwd\": \"/tmp\"}", NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "/tmp\n");
	json_decref(run.result);

	/* The fork path (an rlimit forces it) too. */
	run = run_command("{\"argv\": [\"pwd\"], \"cwd\": \"/usr\", \"limits\": {\"core\": 0}}", NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "/usr\n");
	json_decref(run.result);
}
END_TEST

START_TEST(test_missing_cwd_is_a_spawn_error)
{
	static const char *const inputs[] = {
		"{\"argv\": [\"pwd\"], \"cwd\": \"/nonexistent-weft\"}",
		"{\"argv\": [\"pwd\"], \"cwd\": \"/nonexistent-weft\", \"limits\": {\"core\": 0}}",
	};
	for (int i = 0; i < 2; i++) {
		struct run run = run_command(inputs[i], NULL);
		ck_assert_int_eq(run.status, PROC_STATUS_SPAWN_ERROR);
		ck_assert_str_eq(run.error_type, "SpawnError");
		ck_assert_str_eq(run.message,
			"cannot change to directory '/nonexistent-weft': No such file or directory");
		ck_assert(result_is_null(&run, "exit_code"));
		json_decref(run.result);
	}
}
END_TEST

START_TEST(test_stdin_is_written_then_closed)
{
	struct run run = run_command("{\"argv\": [\"cat\"], \"stdin\": \"line 1\\nline 2\\n\"}", NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "line 1\nline 2\n");
	json_decref(run.result);

	/* The fork path feeds it the same way. */
	run = run_command("{\"argv\": [\"cat\"], \"stdin\": \"abc\", \"limits\": {\"core\": 0}}",
		NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "abc");
	json_decref(run.result);

	/* Without stdin the command reads /dev/null, so it does not wait. */
	run = run_command("{\"argv\": [\"cat\"]}", NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "");
	json_decref(run.result);
}
END_TEST

START_TEST(test_large_stdin_does_not_block_the_loop)
{
	size_t size = 3 * 1024 * 1024;
	char *text = malloc(size + 64);
	char *json;
	struct run run;

	memset(text, 'x', size);
	text[size] = '\0';
	ck_assert_int_ge(asprintf(&json, "{\"argv\": [\"wc\", \"-c\"], \"stdin\": \"%s\"}", text), 0);
	run = run_command(json, NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "3145728\n");
	json_decref(run.result);

	/* A command that never reads its stdin: the rest is dropped, no SIGPIPE. */
	free(json);
	ck_assert_int_ge(asprintf(&json, "{\"argv\": [\"true\"], \"stdin\": \"%s\"}", text), 0);
	run = run_command(json, NULL);
	assert_success(&run);
	json_decref(run.result);
	free(json);
	free(text);
}
END_TEST

START_TEST(test_capture_false_gives_null_output)
{
	struct run run = run_command("{\"shell\": \"echo out; echo err >&2\", \"capture\": false}",
		NULL);
	assert_success(&run);
	ck_assert(result_is_null(&run, "stdout"));
	ck_assert(result_is_null(&run, "stderr"));
	json_decref(run.result);
}
END_TEST

/* --------------------------------------------------------- how it ends */

START_TEST(test_nonzero_exit_is_exit_status)
{
	struct run run = run_command("{\"shell\": \"echo partial; exit 3\"}", NULL);
	ck_assert_int_eq(run.status, PROC_STATUS_EXIT_STATUS);
	ck_assert_str_eq(run.error_type, "ExitStatus");
	ck_assert_str_eq(run.message, "command exited with status 3");
	ck_assert_int_eq(result_integer(&run, "exit_code"), 3);
	ck_assert(result_is_null(&run, "signal"));
	ck_assert_str_eq(result_string(&run, "stdout"), "partial\n");
	json_decref(run.result);
}
END_TEST

START_TEST(test_death_by_signal_is_signal)
{
	struct run run = run_command("{\"shell\": \"echo before; kill -KILL $$\"}", NULL);
	ck_assert_int_eq(run.status, PROC_STATUS_SIGNAL);
	ck_assert_str_eq(run.error_type, "Signal");
	ck_assert_str_eq(run.message, "command was killed by signal 9 (SIGKILL)");
	ck_assert(result_is_null(&run, "exit_code"));
	ck_assert_int_eq(result_integer(&run, "signal"), 9);
	ck_assert_str_eq(result_string(&run, "stdout"), "before\n");
	json_decref(run.result);
}
END_TEST

START_TEST(test_missing_command_is_a_spawn_error)
{
	struct run run = run_command("{\"argv\": [\"nosuchcmd-weft\", \"x\"]}", NULL);
	ck_assert_int_eq(run.status, PROC_STATUS_SPAWN_ERROR);
	ck_assert_str_eq(run.error_type, "SpawnError");
	ck_assert_str_eq(run.message, "cannot run 'nosuchcmd-weft': No such file or directory");
	ck_assert(result_is_null(&run, "exit_code"));
	ck_assert(result_is_null(&run, "signal"));
	ck_assert(result_is_null(&run, "pid"));
	ck_assert_str_eq(result_string(&run, "stdout"), "");
	json_decref(run.result);

	/* The fork path reports it through its pipe. */
	run = run_command("{\"argv\": [\"nosuchcmd-weft\"], \"limits\": {\"core\": 0}}", NULL);
	ck_assert_int_eq(run.status, PROC_STATUS_SPAWN_ERROR);
	ck_assert_str_eq(run.message, "cannot run 'nosuchcmd-weft': No such file or directory");
	ck_assert(result_is_null(&run, "exit_code"));
	ck_assert_int_gt(result_integer(&run, "pid"), 0);
	json_decref(run.result);

	run = run_command("{\"argv\": [\"/nonexistent/cmd\"]}", NULL);
	ck_assert_str_eq(run.message, "cannot run '/nonexistent/cmd': No such file or directory");
	json_decref(run.result);
}
END_TEST

START_TEST(test_not_executable_is_a_spawn_error)
{
	static const char *const inputs[] = {
		"{\"argv\": [\"/etc/passwd\"]}",
		"{\"argv\": [\"/etc/passwd\"], \"limits\": {\"core\": 0}}",
		"{\"argv\": [\"/tmp\"]}",
	};
	for (int i = 0; i < 3; i++) {
		struct run run = run_command(inputs[i], NULL);
		ck_assert_int_eq(run.status, PROC_STATUS_SPAWN_ERROR);
		ck_assert_msg(strstr(run.message, "Permission denied") != NULL, "%s: %s", inputs[i],
			run.message);
		json_decref(run.result);
	}
}
END_TEST

START_TEST(test_rlimits_are_applied)
{
	struct run run = run_command("{\"shell\": \"ulimit -n; ulimit -c; ulimit -t\","
				     " \"limits\": {\"nofile\": 123, \"core\": 0, \"cpu\": 77}}",
		NULL);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "123\n0\n77\n");
	json_decref(run.result);
}
END_TEST

/* The step from "the group's memory.events counted an oom_kill" to the error
 * type, without a memory controller: a real OOM needs one (check_containment
 * runs it where there is one). */
static struct proc_outcome judge(int code, int status, uint64_t oom_kills, const char *spawn_message,
	char *message, size_t size)
{
	siginfo_t info;
	struct proc_outcome outcome;
	memset(&info, 0, sizeof(info));
	info.si_code = code;
	info.si_status = status;
	proc_judge_end(spawn_message, "memhog", true, &info, oom_kills, &outcome, message, size);
	return outcome;
}

START_TEST(test_an_oom_kill_in_the_group_is_out_of_memory_however_the_command_ended)
{
	char message[512];
	struct proc_outcome outcome;

	/* The leader saw its child killed and still exited 0. */
	outcome = judge(CLD_EXITED, 0, 1, "", message, sizeof(message));
	ck_assert_int_eq(outcome.status, PROC_STATUS_OUT_OF_MEMORY);
	ck_assert_str_eq(outcome.error_type, "OutOfMemory");
	ck_assert_int_eq(outcome.exit_code, 0);
	ck_assert_ptr_eq(outcome.message, message);
	ck_assert_msg(strstr(message, "killed 1 of its processes") != NULL, "%s", message);
	ck_assert_msg(strstr(message, "exited with status 0") != NULL, "%s", message);

	/* The leader itself was the victim: the signal is kept. */
	outcome = judge(CLD_KILLED, SIGKILL, 3, "", message, sizeof(message));
	ck_assert_int_eq(outcome.status, PROC_STATUS_OUT_OF_MEMORY);
	ck_assert_str_eq(outcome.error_type, "OutOfMemory");
	ck_assert_int_eq(outcome.signal, SIGKILL);
	ck_assert_msg(strstr(message, "killed 3 of its processes") != NULL, "%s", message);
	ck_assert_msg(strstr(message, "signal 9 (SIGKILL)") != NULL, "%s", message);

	/* An exit status is kept too. */
	outcome = judge(CLD_EXITED, 2, 1, "", message, sizeof(message));
	ck_assert_int_eq(outcome.status, PROC_STATUS_OUT_OF_MEMORY);
	ck_assert_int_eq(outcome.exit_code, 2);
	ck_assert_msg(strstr(message, "exited with status 2") != NULL, "%s", message);

	/* A command that never started was not killed for memory. */
	outcome = judge(0, 0, 1, "cannot run 'memhog': No such file or directory", message,
		sizeof(message));
	ck_assert_int_eq(outcome.status, PROC_STATUS_SPAWN_ERROR);
	ck_assert_str_eq(outcome.error_type, "SpawnError");

	/* Without a kill, nothing changes. */
	outcome = judge(CLD_EXITED, 0, 0, "", message, sizeof(message));
	ck_assert_int_eq(outcome.status, PROC_STATUS_SUCCESS);
	ck_assert_ptr_null(outcome.error_type);
	ck_assert_ptr_null(outcome.message);
	outcome = judge(CLD_KILLED, SIGTERM, 0, "", message, sizeof(message));
	ck_assert_int_eq(outcome.status, PROC_STATUS_SIGNAL);
	ck_assert_str_eq(outcome.error_type, "Signal");
}
END_TEST

START_TEST(test_refused_rlimit_is_a_spawn_error)
{
	/* More open files than the kernel allows (nr_open): refused even for root. */
	struct run run = run_command("{\"argv\": [\"true\"], \"limits\": {\"nofile\": 1099511627776}}",
		NULL);
	ck_assert_int_eq(run.status, PROC_STATUS_SPAWN_ERROR);
	ck_assert_str_eq(run.message,
		"cannot set limit 'nofile' to '1099511627776': Operation not permitted");
	json_decref(run.result);
}
END_TEST

START_TEST(test_output_that_is_not_utf8_comes_in_base64)
{
	struct run run = run_command("{\"shell\": \"printf 'ok\\\\377\\\\342\\\\202|\\\\303\\\\251|a\\\\000b'\"}",
		NULL);

	assert_success(&run);
	/* Every byte kept: ok \377 \342\202 | é | a NUL b, in base64; stderr too. */
	ck_assert_str_eq(json_string_value(json_object_get(run.result, "encoding")), "base64");
	ck_assert_str_eq(json_string_value(json_object_get(run.result, "stdout")), "b2v/4oJ8w6l8YQBi");
	ck_assert_str_eq(json_string_value(json_object_get(run.result, "stderr")), "");
	json_decref(run.result);
}
END_TEST

START_TEST(test_utf8_output_stays_text)
{
	struct run run = run_command("{\"shell\": \"printf 'caf\\\\303\\\\251 a\\\\000b'\"}", NULL);

	assert_success(&run);
	ck_assert_ptr_null(json_object_get(run.result, "encoding"));
	ck_assert_uint_eq(json_string_length(json_object_get(run.result, "stdout")), 9);
	ck_assert(memcmp(json_string_value(json_object_get(run.result, "stdout")), "caf\xC3\xA9 a\0b", 9) == 0);
	json_decref(run.result);
}
END_TEST

/* --------------------------------------------------------- big output */

START_TEST(test_megabytes_on_both_streams_at_once)
{
	char text[PATH_MAX + 128];
	struct proc_options options = {.output_max = 8 * 1024 * 1024};
	struct run run;

	snprintf(text, sizeof(text), "{\"argv\": [\"%s/outburst\", \"6\"]}", helper_dir);
	run = run_command(text, &options);
	assert_success(&run);
	ck_assert_uint_eq(json_string_length(json_object_get(run.result, "stdout")), 6 * 1024 * 1024);
	ck_assert_uint_eq(json_string_length(json_object_get(run.result, "stderr")), 6 * 1024 * 1024);
	ck_assert(json_is_false(json_object_get(run.result, "truncated")));
	ck_assert_int_eq(result_string(&run, "stdout")[0], 'o');
	ck_assert_int_eq(result_string(&run, "stderr")[0], 'e');
	json_decref(run.result);
}
END_TEST

START_TEST(test_output_past_the_cap_is_truncated_and_drained)
{
	char text[PATH_MAX + 128];
	struct run run;

	/* Default cap 1 MiB per stream; 8 MiB each must still drain and exit 0. */
	snprintf(text, sizeof(text), "{\"argv\": [\"%s/outburst\", \"8\", \"4\"]}", helper_dir);
	run = run_command(text, NULL);
	ck_assert_int_eq(run.status, PROC_STATUS_EXIT_STATUS);
	ck_assert_int_eq(result_integer(&run, "exit_code"), 4);
	ck_assert_uint_eq(json_string_length(json_object_get(run.result, "stdout")),
		PROC_DEFAULT_OUTPUT_MAX);
	ck_assert_uint_eq(json_string_length(json_object_get(run.result, "stderr")),
		PROC_DEFAULT_OUTPUT_MAX);
	ck_assert(json_is_true(json_object_get(run.result, "truncated")));
	json_decref(run.result);
}
END_TEST

/* ---------------------------------------------------- stopping a job */

/* Starts a shell that starts a grandchild and prints its pid into a file;
 * returns the grandchild's pid once the file has it. */
static pid_t start_tree(struct event_base *base, const char *shell_prefix, struct run *run,
	struct proc **proc)
{
	char path[] = "/tmp/weft-proc-XXXXXX";
	char text[512];
	double deadline = now() + 5;
	int fd = mkstemp(path);
	pid_t grandchild = 0;

	ck_assert_int_ge(fd, 0);
	close(fd);
	/* Only builtins after the sleep: an external command (mv) could still be
	 * running when the test kills the group, and become an orphan. echo
	 * writes the line in one write, so a whole line means the whole pid. */
	snprintf(text, sizeof(text), "{\"shell\": \"%s sleep 100 & echo $! > %s; wait\"}",
		shell_prefix, path);
	*proc = start(base, text, NULL, run);
	while (grandchild <= 0) {
		FILE *file = fopen(path, "r");
		if (file != NULL) {
			char line[32] = "";
			if (fgets(line, sizeof(line), file) != NULL && strchr(line, '\n') != NULL)
				grandchild = atoi(line);
			fclose(file);
		}
		ck_assert_msg(now() < deadline, "the shell never wrote its grandchild's pid");
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (grandchild <= 0)
			pause_briefly();
	}
	unlink(path);
	ck_assert(!process_is_dead(grandchild));
	ck_assert(!run->done);
	return grandchild;
}

START_TEST(test_terminate_kills_the_whole_tree)
{
	struct event_base *base = event_base_new();
	struct run run = {0};
	struct proc *proc;
	pid_t grandchild = start_tree(base, "", &run, &proc);

	proc_terminate(proc, 5);
	loop_until_done(base, &run);
	ck_assert_int_eq(run.status, PROC_STATUS_SIGNAL);
	ck_assert_int_eq(result_integer(&run, "signal"), SIGTERM);
	ck_assert_str_eq(run.message, "command was killed by signal 15 (SIGTERM)");
	assert_dies(grandchild);
	json_decref(run.result);
	event_base_free(base);
}
END_TEST

START_TEST(test_terminate_escalates_to_sigkill)
{
	struct event_base *base = event_base_new();
	struct run run = {0};
	struct proc *proc;
	/* The shell and its sleep ignore SIGTERM. */
	pid_t grandchild = start_tree(base, "trap '' TERM;", &run, &proc);
	double begin = now();

	proc_terminate(proc, 0.2);
	loop_until_done(base, &run);
	ck_assert_int_eq(run.status, PROC_STATUS_SIGNAL);
	ck_assert_int_eq(result_integer(&run, "signal"), SIGKILL);
	ck_assert(now() - begin >= 0.15);
	assert_dies(grandchild);
	json_decref(run.result);
	event_base_free(base);
}
END_TEST

START_TEST(test_terminate_with_no_grace_kills_at_once)
{
	struct event_base *base = event_base_new();
	struct run run = {0};
	struct proc *proc;
	pid_t grandchild = start_tree(base, "trap '' TERM;", &run, &proc);

	proc_terminate(proc, 0);
	loop_until_done(base, &run);
	ck_assert_int_eq(result_integer(&run, "signal"), SIGKILL);
	assert_dies(grandchild);
	json_decref(run.result);
	event_base_free(base);
}
END_TEST

START_TEST(test_grandchild_holding_the_pipes_is_cut_off)
{
	struct proc_options options = {.linger = 0.2};
	double begin = now();
	struct run run = run_command("{\"shell\": \"sleep 100 & echo $!\"}", &options);
	pid_t grandchild;

	assert_success(&run);
	ck_assert(now() - begin < 10);
	ck_assert(json_is_true(json_object_get(run.result, "pipes_closed_early")));
	grandchild = (pid_t)atoi(result_string(&run, "stdout"));
	ck_assert_int_gt(grandchild, 0);
	assert_dies(grandchild);
	json_decref(run.result);
}
END_TEST

START_TEST(test_leftover_processes_end_with_the_job)
{
	struct run run = run_command("{\"shell\": \"sleep 100 >/dev/null 2>&1 & echo $!\"}", NULL);
	pid_t grandchild;

	assert_success(&run);
	ck_assert_ptr_null(json_object_get(run.result, "pipes_closed_early"));
	grandchild = (pid_t)atoi(result_string(&run, "stdout"));
	assert_dies(grandchild);
	json_decref(run.result);
}
END_TEST

static void count_reaped(void *arg)
{
	int *reaped = arg;
	(*reaped)++;
}

START_TEST(test_abandon_kills_and_reaps_without_done)
{
	int fds_before = count_fds();
	struct event_base *base = event_base_new();
	struct run run = {0};
	struct proc *proc;
	int zombies;
	pid_t grandchild = start_tree(base, "", &run, &proc);
	pid_t pid = proc_pid(proc);
	double deadline = now() + 10;
	int reaped = 0;

	proc_abandon(proc, 5, count_reaped, &reaped);
	ck_assert_int_eq(reaped, 0);
	/* The loop runs until the proc has nothing left to wait for. */
	while (event_base_loop(base, EVLOOP_ONCE) == 0)
		ck_assert(now() < deadline);
	ck_assert(!run.done);
	ck_assert_int_eq(reaped, 1);
	assert_dies(grandchild);
	ck_assert(process_is_dead(pid));
	ck_assert_int_eq(count_children(&zombies), 0);
	event_base_free(base);
	ck_assert_int_eq(count_fds(), fds_before);
}
END_TEST

START_TEST(test_destroy_kills_and_reaps_at_once)
{
	int fds_before = count_fds();
	struct event_base *base = event_base_new();
	struct run run = {0};
	struct proc *proc;
	int zombies;
	pid_t grandchild = start_tree(base, "trap '' TERM;", &run, &proc);

	proc_destroy(proc);
	ck_assert(!run.done);
	assert_dies(grandchild);
	ck_assert_int_eq(count_children(&zombies), 0);
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	event_base_free(base);
	ck_assert_int_eq(count_fds(), fds_before);
}
END_TEST

START_TEST(test_shutdown_destroys_abandoned_and_running_procs)
{
	int fds_before = count_fds();
	struct event_base *base = event_base_new();
	struct run runs[3] = {{0}};
	struct proc *procs[3];
	int zombies;

	for (int i = 0; i < 3; i++)
		procs[i] = start(base, "{\"shell\": \"trap '' TERM; exec sleep 100\"}", NULL, &runs[i]);
	proc_abandon(procs[0], 100, NULL, NULL); /* nobody holds it any more */
	proc_shutdown(base);
	for (int i = 0; i < 3; i++) {
		ck_assert(!runs[i].done);
	}
	ck_assert_int_eq(count_children(&zombies), 0);
	ck_assert_int_eq(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	event_base_free(base);
	ck_assert_int_eq(count_fds(), fds_before);
}
END_TEST

/* --------------------------------------------------------- hygiene */

START_TEST(test_no_descriptor_of_the_daemon_reaches_the_child)
{
	static const char *const inputs[] = {
		"{\"argv\": [\"ls\", \"/proc/self/fd\"]}",
		"{\"argv\": [\"ls\", \"/proc/self/fd\"], \"limits\": {\"core\": 0}}",
	};
	/* A descriptor someone forgot to mark O_CLOEXEC. */
	int leaky = dup(0);

	ck_assert_int_ge(leaky, 3);
	for (int i = 0; i < 2; i++) {
		struct run run = run_command(inputs[i], NULL);
		assert_success(&run);
		/* 0-2, and the directory ls itself opened. */
		ck_assert_str_eq(result_string(&run, "stdout"), "0\n1\n2\n3\n");
		json_decref(run.result);
	}
	close(leaky);
}
END_TEST

static int thousand_started, thousand_finished;
static struct event_base *thousand_base;

static void thousand_start_one(void);

static void thousand_done(void *arg, json_t *result, const struct proc_outcome *outcome)
{
	(void)arg;
	(void)outcome;
	json_decref(result);
	thousand_finished++;
	if (thousand_started < 1000)
		thousand_start_one();
}

static void thousand_start_one(void)
{
	/* A mix: the fast path, the fork path, a spawn error, a failing command. */
	static const char *const inputs[] = {
		"{\"argv\": [\"/bin/true\"]}",
		"{\"argv\": [\"true\"], \"limits\": {\"core\": 0}}",
		"{\"argv\": [\"nosuchcmd-weft\"]}",
		"{\"shell\": \"echo x; exit 1\", \"stdin\": \"abc\"}",
	};
	struct execargs *args = parse(inputs[thousand_started % 4]);
	struct proc *proc;
	ck_assert_int_eq(proc_start(thousand_base, args, NULL, thousand_done, NULL, &proc), WEFT_OK);
	execargs_free(args);
	thousand_started++;
}

START_TEST(test_a_thousand_processes_leave_no_zombie_and_no_descriptor)
{
	int fds_before, zombies, children;
	double deadline = now() + 120;

	thousand_base = event_base_new();
	fds_before = count_fds();
	for (int i = 0; i < 4; i++)
		thousand_start_one();
	while (thousand_finished < 1000) {
		ck_assert(now() < deadline);
		event_base_loop(thousand_base, EVLOOP_ONCE);
	}
	children = count_children(&zombies);
	ck_assert_msg(children == 0, "%d children left, %d of them zombies", children, zombies);
	ck_assert_int_eq(count_fds(), fds_before);
	event_base_free(thousand_base);
}
END_TEST

/* ------------------------------------------------- with the slot gate */

/* The wiring weftd uses, on one loop: a job takes a slot, then starts its
 * process; its done gives the slot back, which starts the next job. */
struct gated_job {
	struct slots_waiter waiter;
	struct event_base *base;
	struct slots *gate;
	bool finished;
};

static int gated_running, gated_most_running, gated_finished;

static void gated_done(void *arg, json_t *result, const struct proc_outcome *outcome)
{
	struct gated_job *job = arg;
	ck_assert_int_eq(outcome->status, PROC_STATUS_SUCCESS);
	json_decref(result);
	job->finished = true;
	gated_running--;
	gated_finished++;
	slots_release(job->gate);
}

static void gated_start(struct gated_job *job)
{
	struct execargs *args = parse("{\"argv\": [\"sleep\", \"0.02\"]}");
	struct proc *proc;
	ck_assert_int_eq(proc_start(job->base, args, NULL, gated_done, job, &proc), WEFT_OK);
	execargs_free(args);
	if (++gated_running > gated_most_running)
		gated_most_running = gated_running;
}

/* In weftd this runs on the releasing thread and posts to the job's loop;
 * here both are the same thread. */
static void gated_wake(void *arg)
{
	gated_start(arg);
}

START_TEST(test_slot_gate_limits_running_processes)
{
	struct event_base *base = event_base_new();
	struct gated_job jobs[12];
	struct slots *gate = NULL;
	double deadline = now() + 30;

	ck_assert_int_eq(slots_new(3, &gate), WEFT_OK);
	for (int i = 0; i < 12; i++) {
		jobs[i] = (struct gated_job){.base = base, .gate = gate};
		if (slots_acquire(gate, &jobs[i].waiter, 0, gated_wake, &jobs[i]) == SLOTS_ACQUIRED)
			gated_start(&jobs[i]);
	}
	ck_assert_int_eq(gated_running, 3);
	ck_assert_uint_eq(slots_queued(gate), 9);
	while (gated_finished < 12) {
		ck_assert(now() < deadline);
		event_base_loop(base, EVLOOP_ONCE);
	}
	ck_assert_int_eq(gated_most_running, 3);
	ck_assert_uint_eq(slots_held(gate), 0);
	slots_free(gate);
	event_base_free(base);
}
END_TEST

/* --------------------------------------------------------- identity */

START_TEST(test_identity_switch_runs_as_that_user)
{
	struct account *identity = NULL;
	struct proc_options options = {0};
	struct run run;

	if (geteuid() != 0) {
		as_user_skip(1, "test_identity_switch_runs_as_that_user", "needs root to switch users");
		return;
	}
	ck_assert_int_eq(account_lookup(65534, 65534, true, &identity), WEFT_OK);
	options.identity = identity;
	run = run_command("{\"shell\": \"id -u; id -g; id -G; echo $USER\", \"cwd\": \"/\"}", &options);
	assert_success(&run);
	ck_assert_str_eq(result_string(&run, "stdout"), "65534\n65534\n65534\nnobody\n");
	json_decref(run.result);

	/* The switch is done before chdir: root's rights do not open the directory. */
	run = run_command("{\"argv\": [\"true\"], \"cwd\": \"/root\"}", &options);
	ck_assert_int_eq(run.status, PROC_STATUS_SPAWN_ERROR);
	ck_assert_str_eq(run.message, "cannot change to directory '/root': Permission denied");
	json_decref(run.result);
	account_free(identity);
}
END_TEST

/* Threads that keep creating threads and allocating, so that forks land
 * while they hold the C library's locks. */
static atomic_bool churn_stop;

static void *churn_nothing(void *unused)
{
	free(malloc(64));
	return unused;
}

static void *churn_main(void *unused)
{
	while (!atomic_load(&churn_stop)) {
		pthread_t thread;
		if (pthread_create(&thread, NULL, churn_nothing, NULL) == 0)
			pthread_join(thread, NULL);
		free(malloc(4096));
	}
	return unused;
}

static int churn_finished;

static void churn_done(void *arg, json_t *result, const struct proc_outcome *outcome)
{
	const struct account *identity = arg;
	(void)identity;
	ck_assert_msg(outcome->status == PROC_STATUS_SUCCESS, "%s", outcome->message);
	json_decref(result);
	churn_finished++;
}

START_TEST(test_identity_switch_with_busy_threads)
{
	struct account *identity = NULL;
	struct proc_options options = {0};
	struct event_base *base;
	struct execargs *args;
	pthread_t threads[2];
	double deadline = now() + 60;
	int started = 0;

	if (geteuid() != 0) {
		as_user_skip(1, "test_identity_switch_with_busy_threads", "needs root to switch users");
		return;
	}
	ck_assert_int_eq(account_lookup(65534, 65534, true, &identity), WEFT_OK);
	options.identity = identity;
	args = parse("{\"argv\": [\"true\"]}");
	base = event_base_new();
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL, churn_main, NULL), 0);
	while (churn_finished < 300) {
		ck_assert_msg(now() < deadline, "only %d of 300 finished", churn_finished);
		while (started < 300 && started - churn_finished < 2) {
			struct proc *proc;
			ck_assert_int_eq(proc_start(base, args, &options, churn_done, identity, &proc),
				WEFT_OK);
			started++;
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	atomic_store(&churn_stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	event_base_free(base);
	execargs_free(args);
	account_free(identity);
}
END_TEST

/*
 * Runs in each test's own process: orphaned grandchildren are handed to it
 * rather than to init (which may not reap them in a container), so the
 * tests can reap what they killed and leave no zombies behind.
 */
static void subreaper_setup(void)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
}

static Suite *proc_suite(void)
{
	Suite *suite = suite_create("proc");
	TCase *runs = tcase_create("what runs");
	TCase *ends = tcase_create("how it ends");
	TCase *output = tcase_create("output");
	TCase *stopping = tcase_create("stopping");
	TCase *hygiene = tcase_create("hygiene");

	tcase_add_test(runs, test_argv_runs_without_a_shell);
	tcase_add_test(runs, test_shell_runs_through_bin_sh);
	tcase_add_test(runs, test_default_environment_is_clean);
	tcase_add_test(runs, test_env_is_merged_over_the_default);
	tcase_add_test(runs, test_env_path_is_used_for_the_search);
	tcase_add_test(runs, test_env_clear_starts_empty);
	tcase_add_test(runs, test_identity_fills_home_user_and_shell);
	tcase_add_test(runs, test_identity_of_an_unknown_uid_has_only_its_group);
	tcase_add_test(runs, test_cwd_is_where_it_runs);
	tcase_add_test(runs, test_missing_cwd_is_a_spawn_error);
	tcase_add_test(runs, test_stdin_is_written_then_closed);
	tcase_add_test(runs, test_large_stdin_does_not_block_the_loop);
	tcase_add_test(runs, test_capture_false_gives_null_output);
	tcase_add_test(runs, test_rlimits_are_applied);
	tcase_add_test(runs, test_identity_switch_runs_as_that_user);
	tcase_add_test(runs, test_identity_switch_with_busy_threads);
	tcase_add_test(ends, test_nonzero_exit_is_exit_status);
	tcase_add_test(ends, test_death_by_signal_is_signal);
	tcase_add_test(ends, test_missing_command_is_a_spawn_error);
	tcase_add_test(ends, test_not_executable_is_a_spawn_error);
	tcase_add_test(ends, test_refused_rlimit_is_a_spawn_error);
	tcase_add_test(ends, test_an_oom_kill_in_the_group_is_out_of_memory_however_the_command_ended);
	tcase_add_test(output, test_output_that_is_not_utf8_comes_in_base64);
	tcase_add_test(output, test_utf8_output_stays_text);
	tcase_add_test(output, test_megabytes_on_both_streams_at_once);
	tcase_add_test(output, test_output_past_the_cap_is_truncated_and_drained);
	tcase_add_test(stopping, test_terminate_kills_the_whole_tree);
	tcase_add_test(stopping, test_terminate_escalates_to_sigkill);
	tcase_add_test(stopping, test_terminate_with_no_grace_kills_at_once);
	tcase_add_test(stopping, test_grandchild_holding_the_pipes_is_cut_off);
	tcase_add_test(stopping, test_leftover_processes_end_with_the_job);
	tcase_add_test(stopping, test_abandon_kills_and_reaps_without_done);
	tcase_add_test(stopping, test_destroy_kills_and_reaps_at_once);
	tcase_add_test(stopping, test_shutdown_destroys_abandoned_and_running_procs);
	tcase_add_test(hygiene, test_no_descriptor_of_the_daemon_reaches_the_child);
	tcase_add_test(hygiene, test_slot_gate_limits_running_processes);
	tcase_add_test(hygiene, test_a_thousand_processes_leave_no_zombie_and_no_descriptor);
	tcase_set_timeout(runs, 60);
	tcase_set_timeout(ends, 60);
	tcase_set_timeout(output, 60);
	tcase_set_timeout(stopping, 60);
	tcase_set_timeout(hygiene, 300);
	tcase_add_checked_fixture(runs, subreaper_setup, NULL);
	suite_add_tcase(suite, runs);
	tcase_add_checked_fixture(ends, subreaper_setup, NULL);
	suite_add_tcase(suite, ends);
	tcase_add_checked_fixture(output, subreaper_setup, NULL);
	suite_add_tcase(suite, output);
	tcase_add_checked_fixture(stopping, subreaper_setup, NULL);
	suite_add_tcase(suite, stopping);
	tcase_add_checked_fixture(hygiene, subreaper_setup, NULL);
	suite_add_tcase(suite, hygiene);
	return suite;
}

int main(int argc, char **argv)
{
	char self[PATH_MAX];
	ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
	SRunner *runner;
	int failed;

	(void)argc;
	(void)argv;
	if (length <= 0) {
		perror("check_proc: /proc/self/exe");
		return EXIT_FAILURE;
	}
	self[length] = '\0';
	snprintf(helper_dir, sizeof(helper_dir), "%s/helpers", dirname(self));
	/* As weftd does: a job closing its stdin early must not kill us. */
	signal(SIGPIPE, SIG_IGN);

	runner = srunner_create(proc_suite());
	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

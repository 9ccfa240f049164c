/*
 * A job is all of its processes (issue 11): with a cgroup per job, a command
 * that double-forks and calls setsid (leaving its process group) is still
 * killed by a timeout and by cancel, and the processes a SIGKILLed weftd left
 * behind are killed by the next weftd before it serves. Without cgroups
 * (--cgroup off) the process group alone would let the grandchild escape;
 * weftd as a child subreaper gets it back and kills it when its job ends.
 *
 * Every process of the job writes its own pid to a file; the test waits
 * (bounded) until all are there, acts, then waits (bounded) until each pid is
 * gone from /proc or a zombie. No fixed sleeps.
 */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/as_user.h"
#include "tests/fixture.h"
#include "tests/wire.h"

#define DEADLINE_SECONDS 20.0
/* The job: the leader and a double-forked, setsid'd grandchild, each
 * recording its pid and then sleeping as that same process (exec). */
#define ESCAPER                                                                                    \
	"( setsid sh -c 'echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 300' & ) ; "                 \
	"echo $$ > %s.tmp && mv %s.tmp %s; exec sleep 300"
#define PIDS 2

/* pids[0]: the escaper's file, pids[1]: the leader's; each written whole
 * (a rename) so that a reader never sees half a number. */
struct job_files {
	char directory[64];
	char pids[PIDS][128];
};

static void files_make(struct job_files *files)
{
	snprintf(files->directory, sizeof(files->directory), "/tmp/weft-contain-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(files->directory));
	snprintf(files->pids[0], sizeof(files->pids[0]), "%s/escaped", files->directory);
	snprintf(files->pids[1], sizeof(files->pids[1]), "%s/leader", files->directory);
}

static void files_remove(struct job_files *files)
{
	unlink(files->pids[0]);
	/* .tmp files exist only while a job writes: gone by now. */
	unlink(files->pids[1]);
	rmdir(files->directory);
}

static void pause_briefly(void)
{
	struct timespec pause = {0, 2 * 1000 * 1000};
	nanosleep(&pause, NULL);
}

/* How many of the pids are recorded so far. */
static int read_pids(const struct job_files *files, pid_t *pids, int capacity)
{
	int count = 0;
	for (int i = 0; i < capacity; i++) {
		FILE *file = fopen(files->pids[i], "r");
		long pid;
		if (file == NULL)
			continue;
		if (fscanf(file, "%ld", &pid) == 1) {
			pids[i] = (pid_t)pid;
			count++;
		}
		fclose(file);
	}
	return count;
}

static void wait_for_pids(const struct job_files *files, pid_t *pids)
{
	double deadline = fixture_now() + DEADLINE_SECONDS;
	while (read_pids(files, pids, PIDS) < PIDS) {
		ck_assert_msg(fixture_now() < deadline, "the job's processes never all started");
		pause_briefly();
	}
}

/* Alive: in /proc and not a zombie (a zombie is dead, just not yet reaped by
 * whoever inherited it). */
static bool alive(pid_t pid)
{
	char path[64], text[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *file = fopen(path, "r");
	if (file == NULL)
		return false;
	size_t got = fread(text, 1, sizeof(text) - 1, file);
	fclose(file);
	text[got] = '\0';
	const char *end = strrchr(text, ')');
	return end != NULL && end[1] == ' ' && end[2] != 'Z' && end[2] != 'X';
}

/* Waits (bounded) until every pid is dead; returns how many are still alive. */
static int wait_all_dead(const pid_t *pids, int count)
{
	double deadline = fixture_now() + DEADLINE_SECONDS;
	for (;;) {
		int living = 0;
		for (int i = 0; i < count; i++)
			living += alive(pids[i]);
		if (living == 0 || fixture_now() >= deadline)
			return living;
		pause_briefly();
	}
}

static json_t *submit(const char *url, const struct job_files *files, const char *extra)
{
	char command[512], request[1024];
	snprintf(command, sizeof(command), ESCAPER, files->pids[0], files->pids[0], files->pids[0],
	         files->pids[1], files->pids[1], files->pids[1]);
	json_t *shell = json_string(command);
	char *quoted = json_dumps(shell, JSON_ENCODE_ANY);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"exec\",%s\"args\":{\"shell\":%s,\"kill_after\":0.5}}",
	         extra, quoted);
	free(quoted);
	json_decref(shell);
	json_t *reply = wire_call(url, request);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "submit: %s",
	              json_dumps(reply, 0));
	return reply;
}

/* The containment stats says is in use; skips visibly (returns false) unless
 * it is "cgroup". */
static bool have_cgroups(const char *url, const char *what)
{
	json_t *stats = wire_call(url, "{\"op\":\"stats\"}");
	json_t *containment = json_object_get(stats, "containment");
	const char *mode = json_string_value(json_object_get(containment, "mode"));
	bool yes = mode != NULL && strcmp(mode, "cgroup") == 0;
	if (!yes) {
		char why[256];
		snprintf(why, sizeof(why), "weftd cannot make cgroups here (%s)",
		         json_string_value(json_object_get(containment, "reason")));
		as_user_skip(1, what, why);
	}
	json_decref(stats);
	return yes;
}

START_TEST(a_timeout_kills_a_double_forked_setsid_descendant)
{
	struct job_files files;
	files_make(&files);
	fixture daemon;
	fixture_start(&daemon, NULL);
	if (have_cgroups(daemon.url, "timeout kills every descendant")) {
		/* The timeout is a hang guard for the start as much as the thing under
		 * test: the job must have recorded both pids before it fires. */
		json_t *reply = submit(daemon.url, &files, "\"timeout\":3,");
		json_int_t id = json_integer_value(json_object_get(reply, "id"));
		json_decref(reply);
		pid_t pids[PIDS];
		wait_for_pids(&files, pids);
		char wait[128];
		snprintf(wait, sizeof(wait), "{\"op\":\"result\",\"id\":%lld,\"timeout\":%g}",
		         (long long)id, DEADLINE_SECONDS);
		json_t *result = wire_call(daemon.url, wait);
		const char *type =
			json_string_value(json_object_get(json_object_get(result, "error"), "type"));
		ck_assert_msg(type != NULL && strcmp(type, "Timeout") == 0, "result: %s",
		              json_dumps(result, 0));
		json_decref(result);
		/* The job is over only when its cgroup is empty: nothing may be left
		 * now (the wait is only for the zombies' reaping by init). */
		ck_assert_int_eq(wait_all_dead(pids, PIDS), 0);
	}
	fixture_stop(&daemon);
	files_remove(&files);
}
END_TEST

START_TEST(cancel_kills_a_double_forked_setsid_descendant)
{
	struct job_files files;
	files_make(&files);
	fixture daemon;
	fixture_start(&daemon, NULL);
	if (have_cgroups(daemon.url, "cancel kills every descendant")) {
		json_t *reply = submit(daemon.url, &files, "");
		json_int_t id = json_integer_value(json_object_get(reply, "id"));
		json_decref(reply);
		pid_t pids[PIDS];
		wait_for_pids(&files, pids);
		char cancel[96];
		snprintf(cancel, sizeof(cancel), "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
		json_decref(wire_call(daemon.url, cancel));
		ck_assert_int_eq(wait_all_dead(pids, PIDS), 0);
		/* Its --procs slot comes back only once the cgroup is empty. */
		double deadline = fixture_now() + DEADLINE_SECONDS;
		json_int_t running = -1;
		while (running != 0 && fixture_now() < deadline) {
			json_t *stats = wire_call(daemon.url, "{\"op\":\"stats\"}");
			running = json_integer_value(
				json_object_get(json_object_get(stats, "procs"), "running"));
			json_decref(stats);
		}
		ck_assert_int_eq(running, 0);
	}
	fixture_stop(&daemon);
	files_remove(&files);
}
END_TEST

/* Without cgroups (--cgroup off) weftd is a child subreaper: the setsid'd
 * grandchild, which leaves the job's process group, comes back to weftd when
 * its parent exits and is killed when the job ends, by cancel and by a
 * timeout; stats says which containment is in use. */
static void check_subreaper_kills(bool by_timeout)
{
	struct job_files files;
	files_make(&files);
	static const char *const args[] = {"--cgroup", "off", NULL};
	fixture daemon;
	fixture_start(&daemon, args);
	json_t *stats = wire_call(daemon.url, "{\"op\":\"stats\"}");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(stats, "containment"),
	                                                   "mode")),
	                 "subreaper");
	json_decref(stats);
	json_t *reply = submit(daemon.url, &files, by_timeout ? "\"timeout\":3," : "");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	pid_t pids[PIDS];
	wait_for_pids(&files, pids);
	char request[128];
	if (by_timeout) {
		snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":%g}",
		         (long long)id, DEADLINE_SECONDS);
		json_t *result = wire_call(daemon.url, request);
		const char *type =
			json_string_value(json_object_get(json_object_get(result, "error"), "type"));
		ck_assert_msg(type != NULL && strcmp(type, "Timeout") == 0, "result: %s",
		              json_dumps(result, 0));
		json_decref(result);
	} else {
		snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
		json_decref(wire_call(daemon.url, request));
	}
	/* Both die: the leader with its group, the escaper by the subreaper. */
	int left = wait_all_dead(pids, PIDS);
	for (int i = 0; i < PIDS; i++)
		kill(pids[i], SIGKILL);
	ck_assert_msg(left == 0, "%d processes of the job outlived it", left);
	stats = wire_call(daemon.url, "{\"op\":\"stats\"}");
	ck_assert_int_ge(json_integer_value(json_object_get(json_object_get(stats, "containment"),
	                                                    "orphans_killed")),
	                 1);
	json_decref(stats);
	fixture_stop(&daemon);
	files_remove(&files);
}

START_TEST(without_cgroups_the_subreaper_kills_a_setsid_descendant_on_cancel)
{
	check_subreaper_kills(false);
}
END_TEST

START_TEST(without_cgroups_the_subreaper_kills_a_setsid_descendant_on_timeout)
{
	check_subreaper_kills(true);
}
END_TEST

START_TEST(a_restarted_weftd_kills_what_a_sigkilled_one_left)
{
	struct job_files files;
	files_make(&files);
	char cgroup[128];
	snprintf(cgroup, sizeof(cgroup), "/sys/fs/cgroup/unified/weft-test-%d", (int)getpid());
	struct stat status;
	if (stat("/sys/fs/cgroup/unified/cgroup.procs", &status) != 0 || access(cgroup, F_OK) == 0 ||
	    mkdir(cgroup, 0755) != 0) {
		as_user_skip(1, "restart kills leftovers", "no writable cgroup2 tree at "
		                                          "/sys/fs/cgroup/unified");
		files_remove(&files);
		return;
	}
	rmdir(cgroup); /* weftd makes it */
	/* With a journal, so that the job is known after the restart. */
	char state[64];
	snprintf(state, sizeof(state), "/tmp/weft-state-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(state));
	const char *const args[] = {"--cgroup", cgroup, "--state-dir", state, "--sync", "normal",
	                            NULL};
	fixture first;
	fixture_start(&first, args);
	json_t *submitted = submit(first.url, &files, "");
	json_int_t id = json_integer_value(json_object_get(submitted, "id"));
	json_decref(submitted);
	pid_t pids[PIDS];
	wait_for_pids(&files, pids);
	int exit_status;
	fixture_stop_within(&first, SIGKILL, DEADLINE_SECONDS, &exit_status);
	/* The grandchild outlived weftd (the leader died of PR_SET_PDEATHSIG). */
	ck_assert_msg(alive(pids[0]), "nothing was left behind: the test proves nothing");

	fixture second;
	fixture_start(&second, args);
	ck_assert_int_eq(wait_all_dead(pids, PIDS), 0);
	json_t *stats = wire_call(second.url, "{\"op\":\"stats\"}");
	json_t *containment = json_object_get(stats, "containment");
	ck_assert_int_eq(json_integer_value(json_object_get(containment, "leftover_jobs_killed")), 1);
	json_decref(stats);
	/* Replay ended the job Interrupted, and its message says what became of
	 * its processes. */
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}", (long long)id);
	json_t *reply = wire_call(second.url, request);
	json_t *job = json_object_get(reply, "job");
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "failed");
	json_t *error = json_object_get(job, "error");
	ck_assert_str_eq(json_string_value(json_object_get(error, "type")), "Interrupted");
	const char *message = json_string_value(json_object_get(error, "message"));
	ck_assert_msg(strstr(message, "killed what running jobs had left in their cgroups (1 "
	                              "processes in 1 cgroups)") != NULL,
	              "message: %s", message);
	json_decref(reply);
	fixture_stop(&second);
	char command[96];
	snprintf(command, sizeof(command), "rm -rf '%s'", state);
	ck_assert_int_eq(system(command), 0);
	ck_assert_msg(rmdir(cgroup) != 0 && errno == ENOENT, "weftd left %s behind", cgroup);
	files_remove(&files);
}
END_TEST

/*
 * limits.memory and limits.tasks go to the job's cgroup (memory.max,
 * pids.max). Where weftd's job groups lack the controllers (stats says which
 * it has), such a job is refused at submit with bad_arguments naming the
 * controller, never run unlimited.
 */
START_TEST(memory_and_tasks_limits_are_set_on_the_cgroup_or_refused)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *stats = wire_call(daemon.url, "{\"op\":\"stats\"}");
	json_t *containment = json_object_get(stats, "containment");
	bool memory = false, tasks = false;
	json_t *limit;
	size_t i;
	json_array_foreach(json_object_get(containment, "limits"), i, limit) {
		memory = memory || strcmp(json_string_value(limit), "memory") == 0;
		tasks = tasks || strcmp(json_string_value(limit), "tasks") == 0;
	}
	char directory[600];
	snprintf(directory, sizeof(directory), "%s",
	         json_is_string(json_object_get(containment, "directory"))
	                 ? json_string_value(json_object_get(containment, "directory"))
	                 : "");
	json_decref(stats);
	char request[1024];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"exec\",\"wait\":20,\"args\":{\"shell\":"
	         "\"cat %s/job-*/memory.max %s/job-*/pids.max\",\"limits\":"
	         "{\"memory\":67108864,\"tasks\":16}}}",
	         directory, directory);
	json_t *reply = wire_call(daemon.url, request);
	if (memory && tasks) {
		ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", json_dumps(reply, 0));
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(reply, "result"),
		                                                   "stdout")),
		                 "67108864\n16\n");
	} else {
		ck_assert_str_eq(wire_error_code(reply), "bad_arguments");
		const char *message =
			json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
		ck_assert_msg(strstr(message, !memory ? "memory controller" : "pids controller") != NULL,
		              "%s", message);
		as_user_skip(1, "memory and tasks limits enforced",
		             "weftd's job cgroups here have no memory and pids controllers");
	}
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

/*
 * A job over limits.memory is killed by the kernel's OOM killer inside its
 * cgroup and ends failed, type OutOfMemory (not Signal or ExitStatus: the
 * victim here is a child, tail, and the shell above it exits 137). Needs the
 * memory controller in weftd's job groups; skipped visibly elsewhere (the
 * parsing of memory.events is tested everywhere by check_cgroup).
 */
START_TEST(a_job_over_its_memory_limit_ends_out_of_memory)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *stats = wire_call(daemon.url, "{\"op\":\"stats\"}");
	bool memory = false;
	json_t *limit;
	size_t i;
	json_t *limits = json_object_get(json_object_get(stats, "containment"), "limits");
	json_array_foreach(limits, i, limit) {
		memory = memory || strcmp(json_string_value(limit), "memory") == 0;
	}
	json_decref(stats);
	if (!memory) {
		as_user_skip(1, "a job over limits.memory ends OutOfMemory",
		             "weftd's job cgroups here have no memory controller");
		fixture_stop(&daemon);
		return;
	}
	/* tail keeps its one endless line whole: 512 MiB against a 16 MiB limit. */
	json_t *reply = wire_call(daemon.url,
	                          "{\"op\":\"submit\",\"fn\":\"exec\",\"wait\":30,\"args\":{\"shell\":"
	                          "\"head -c 536870912 /dev/zero | tail -n 1 > /dev/null\","
	                          "\"limits\":{\"memory\":16777216}}}");
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", json_dumps(reply, 0));
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "failed");
	json_t *error = json_object_get(reply, "error");
	ck_assert_str_eq(json_string_value(json_object_get(error, "type")), "OutOfMemory");
	const char *message = json_string_value(json_object_get(error, "message"));
	ck_assert_msg(strstr(message, "OOM killer killed 1 of its processes") != NULL, "%s",
	              message);
	ck_assert(json_is_object(json_object_get(error, "details")));
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

static Suite *containment_suite(void)
{
	Suite *suite = suite_create("containment");
	TCase *cases = tcase_create("cgroup");
	tcase_set_timeout(cases, 60);
	tcase_add_test(cases, a_timeout_kills_a_double_forked_setsid_descendant);
	tcase_add_test(cases, cancel_kills_a_double_forked_setsid_descendant);
	tcase_add_test(cases, without_cgroups_the_subreaper_kills_a_setsid_descendant_on_cancel);
	tcase_add_test(cases, without_cgroups_the_subreaper_kills_a_setsid_descendant_on_timeout);
	tcase_add_test(cases, a_restarted_weftd_kills_what_a_sigkilled_one_left);
	tcase_add_test(cases, memory_and_tasks_limits_are_set_on_the_cgroup_or_refused);
	tcase_add_test(cases, a_job_over_its_memory_limit_ends_out_of_memory);
	suite_add_tcase(suite, cases);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(containment_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}

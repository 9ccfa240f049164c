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
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
 * A second weftd of the same instance (here: the same --cgroup DIR) must not
 * take the first one's running jobs for leftovers: it refuses to start, and
 * the first one's job and cgroups are as they were.
 */
START_TEST(a_second_weftd_of_the_same_instance_refuses_and_kills_nothing)
{
	struct job_files files;
	files_make(&files);
	char cgroup[128];
	snprintf(cgroup, sizeof(cgroup), "/sys/fs/cgroup/unified/weft-test-twice-%d", (int)getpid());
	struct stat status;
	if (stat("/sys/fs/cgroup/unified/cgroup.procs", &status) != 0 || access(cgroup, F_OK) == 0) {
		as_user_skip(1, "a second weftd of an instance", "no writable cgroup2 tree at "
		                                                 "/sys/fs/cgroup/unified");
		files_remove(&files);
		return;
	}
	const char *const args[] = {"--cgroup", cgroup, NULL};
	fixture first;
	fixture_start(&first, args);
	json_decref(submit(first.url, &files, ""));
	pid_t pids[PIDS];
	wait_for_pids(&files, pids);

	/* The second one, by hand: it must exit, and say why. */
	char directory[] = "/tmp/weft-twice-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char url[160], log_path[160];
	snprintf(url, sizeof(url), "ipc://%s/weft.sock", directory);
	snprintf(log_path, sizeof(log_path), "%s/weftd.log", directory);
	const char *weftd = getenv("WEFTD");
	ck_assert_ptr_nonnull(weftd);
	int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(log, 0);
	pid_t second = fork();
	ck_assert_int_ge(second, 0);
	if (second == 0) {
		dup2(log, STDERR_FILENO);
		execl(weftd, weftd, "--listen", url, "--cgroup", cgroup, "--state-dir", "none",
		      (char *)NULL);
		_exit(127);
	}
	close(log);
	int exit_status = 0;
	double deadline = fixture_now() + DEADLINE_SECONDS;
	pid_t reaped = 0;
	while ((reaped = waitpid(second, &exit_status, WNOHANG)) == 0 && fixture_now() < deadline)
		pause_briefly();
	if (reaped == 0) {
		kill(second, SIGKILL);
		waitpid(second, &exit_status, 0);
		ck_abort_msg("the second weftd of %s kept running", cgroup);
	}
	ck_assert_msg(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) != 0,
	              "the second weftd exited %d", exit_status);
	char said[2048] = "";
	FILE *file = fopen(log_path, "r");
	ck_assert_ptr_nonnull(file);
	size_t got = fread(said, 1, sizeof(said) - 1, file);
	said[got] = '\0';
	fclose(file);
	ck_assert_msg(strstr(said, "another weftd already runs its jobs in") != NULL, "log: %s",
	              said);
	unlink(log_path);
	rmdir(directory);

	/* The first one's job still runs, and new jobs still get cgroups. */
	for (int i = 0; i < PIDS; i++)
		ck_assert_msg(alive(pids[i]), "the second weftd killed process %d of the first's job",
		              (int)pids[i]);
	json_t *reply = wire_call(first.url, "{\"op\":\"submit\",\"fn\":\"exec\","
	                                     "\"args\":{\"argv\":[\"true\"]},\"wait\":30}");
	const char *state = json_string_value(json_object_get(reply, "state"));
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")) && state != NULL &&
	                      strcmp(state, "done") == 0,
	              "a new job on the first weftd: %s", json_dumps(reply, 0));
	json_decref(reply);
	fixture_stop(&first);
	ck_assert_int_eq(wait_all_dead(pids, PIDS), 0);
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
	ck_assert_msg(strstr(message, "OOM killer killed") != NULL, "%s", message);
	ck_assert(json_is_object(json_object_get(error, "details")));
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

/*
 * weftd under a delegated cgroup, as systemd's Delegate=yes starts it: alone
 * in a group of its own (here one made for the test under the cgroup2 mount,
 * which a wrapper joins before it execs weftd). cgroup v2 lets only a group
 * without processes of its own hand controllers down, so weftd moves itself
 * into <group>/supervisor and keeps the jobs' groups beside it.
 */
#define CGROUP_MOUNT "/sys/fs/cgroup/unified"

struct delegated {
	char group[128];   /* the test's group, absolute */
	char wrapper[128]; /* the script that joins `join` and execs weftd */
	char join[160];    /* the group the wrapper joins */
	char sharer[160];  /* file with the pid of a sleep sharing weftd's group, or "" */
};

/* Makes the group (and, with leaf, group/supervisor for weftd to start in)
 * and the wrapper; with share, the wrapper leaves a sleep in the group
 * beside weftd. Returns false (having skipped visibly) without a writable
 * cgroup2 tree. */
static bool delegated_make(struct delegated *setup, const char *what, bool leaf, bool share)
{
	memset(setup, 0, sizeof(*setup));
	snprintf(setup->group, sizeof(setup->group), CGROUP_MOUNT "/weft-test-leaf-%d",
	         (int)getpid());
	struct stat status;
	if (stat(CGROUP_MOUNT "/cgroup.procs", &status) != 0 || mkdir(setup->group, 0755) != 0) {
		as_user_skip(1, what, "no writable cgroup2 tree at " CGROUP_MOUNT);
		return false;
	}
	snprintf(setup->join, sizeof(setup->join), "%s%s", setup->group, leaf ? "/supervisor" : "");
	if (leaf)
		ck_assert_int_eq(mkdir(setup->join, 0755), 0);
	snprintf(setup->wrapper, sizeof(setup->wrapper), "/tmp/weft-wrap-%d.sh", (int)getpid());
	if (share)
		snprintf(setup->sharer, sizeof(setup->sharer), "/tmp/weft-wrap-%d.pid", (int)getpid());
	FILE *file = fopen(setup->wrapper, "w");
	ck_assert_ptr_nonnull(file);
	fprintf(file, "#!/bin/sh\necho $$ > '%s/cgroup.procs' || exit 126\n", setup->join);
	if (share)
		fprintf(file, "sleep 300 < /dev/null > /dev/null 2>&1 &\necho $! > '%s'\n",
		        setup->sharer);
	fprintf(file, "exec '%s' \"$@\"\n", getenv("WEFTD"));
	ck_assert_int_eq(fclose(file), 0);
	ck_assert_int_eq(chmod(setup->wrapper, 0755), 0);
	return true;
}

static void delegated_start(struct delegated *setup, fixture *daemon)
{
	char *weftd = strdup(getenv("WEFTD"));
	setenv("WEFTD", setup->wrapper, 1);
	fixture_start(daemon, NULL);
	setenv("WEFTD", weftd, 1);
	free(weftd);
}

/* After the daemon stopped: what the test made goes (weftd removed its
 * instance directory itself, or the rmdir of the group fails). */
static void delegated_remove(struct delegated *setup)
{
	if (setup->sharer[0] != '\0') {
		FILE *file = fopen(setup->sharer, "r");
		long pid = 0;
		if (file != NULL) {
			if (fscanf(file, "%ld", &pid) == 1 && pid > 0)
				kill((pid_t)pid, SIGKILL);
			fclose(file);
		}
		unlink(setup->sharer);
		/* Gone from the group once it has died (its parent, the wrapper, is
		 * weftd, which has exited: init reaps it). */
		double deadline = fixture_now() + DEADLINE_SECONDS;
		while (pid > 0 && alive((pid_t)pid) && fixture_now() < deadline)
			pause_briefly();
	}
	unlink(setup->wrapper);
	char leaf[160];
	snprintf(leaf, sizeof(leaf), "%s/supervisor", setup->group);
	(void)rmdir(leaf);
	ck_assert_msg(rmdir(setup->group) == 0, "rmdir %s: %s (weftd left something there)",
	              setup->group, strerror(errno));
}

/* The 0:: line of /proc/PID/cgroup (the path under the mount, which is the
 * mount's root here). */
static void cgroup_of(pid_t pid, char *out, size_t size)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	FILE *file = fopen(path, "r");
	ck_assert_ptr_nonnull(file);
	out[0] = '\0';
	while (fgets(line, sizeof(line), file) != NULL)
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, size, "%s", line + 3);
		}
	fclose(file);
}

/* Where the job runs: the 0:: line of its /proc/self/cgroup. */
static void job_cgroup(const char *url, char *out, size_t size)
{
	json_t *reply = wire_call(url, "{\"op\":\"submit\",\"fn\":\"exec\",\"wait\":20,\"args\":"
	                               "{\"shell\":\"grep ^0:: /proc/self/cgroup\"}}");
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", json_dumps(reply, 0));
	const char *line =
		json_string_value(json_object_get(json_object_get(reply, "result"), "stdout"));
	ck_assert_ptr_nonnull(line);
	snprintf(out, size, "%s", line + (strncmp(line, "0::", 3) == 0 ? 3 : 0));
	out[strcspn(out, "\n")] = '\0';
	json_decref(reply);
}

/* stats.containment's string `key`, or "" when it has none. */
static void containment_string(const char *url, const char *key, char *out, size_t size)
{
	json_t *stats = wire_call(url, "{\"op\":\"stats\"}");
	json_t *containment = json_object_get(stats, "containment");
	ck_assert_str_eq(json_string_value(json_object_get(containment, "mode")), "cgroup");
	const char *value = json_string_value(json_object_get(containment, key));
	snprintf(out, size, "%s", value != NULL ? value : "");
	json_decref(stats);
}

/* weftd runs in `own` (relative to the mount) and a job in a group of the
 * instance directory right under `group`. */
static void assert_layout(const fixture *daemon, const char *own, const char *group)
{
	char found[256], expected[256];
	cgroup_of(daemon->pid, found, sizeof(found));
	ck_assert_str_eq(found, own);
	job_cgroup(daemon->url, found, sizeof(found));
	snprintf(expected, sizeof(expected), "%s/weftd-", group);
	ck_assert_msg(strncmp(found, expected, strlen(expected)) == 0 &&
	                      strstr(found, "/job-") != NULL,
	              "the job ran in %s", found);
}

START_TEST(alone_in_a_delegated_cgroup_weftd_moves_itself_into_a_leaf)
{
	struct delegated setup;
	if (!delegated_make(&setup, "weftd moves into a leaf", false, false))
		return;
	fixture daemon;
	delegated_start(&setup, &daemon);
	const char *relative = setup.group + strlen(CGROUP_MOUNT);
	char expected[256], text[600];
	/* Jobs run in groups beside weftd's leaf, not under it. */
	snprintf(expected, sizeof(expected), "%s/supervisor", relative);
	assert_layout(&daemon, expected, relative);
	/* No process of its own is left in the delegated group. */
	snprintf(text, sizeof(text), "%s/cgroup.procs", setup.group);
	FILE *procs = fopen(text, "r");
	ck_assert_ptr_nonnull(procs);
	ck_assert_int_eq(fgetc(procs), EOF);
	fclose(procs);
	containment_string(daemon.url, "supervisor", text, sizeof(text));
	snprintf(expected, sizeof(expected), "%s/supervisor", setup.group);
	ck_assert_str_eq(text, expected);
	/* Where the group has memory and pids to give, they reach the jobs. */
	snprintf(text, sizeof(text), "%s/cgroup.controllers", setup.group);
	FILE *controllers = fopen(text, "r");
	ck_assert_ptr_nonnull(controllers);
	char available[256] = "";
	if (fgets(available, sizeof(available), controllers) == NULL)
		available[0] = '\0';
	fclose(controllers);
	if (strstr(available, "memory") != NULL) {
		json_t *stats = wire_call(daemon.url, "{\"op\":\"stats\"}");
		json_t *limits = json_object_get(json_object_get(stats, "containment"), "limits");
		ck_assert_msg(json_array_size(limits) >= 1, "%s", json_dumps(limits, 0));
		ck_assert_str_eq(json_string_value(json_array_get(limits, 0)), "memory");
		json_decref(stats);
	} else {
		as_user_skip(1, "controllers handed down past weftd's leaf",
		             "the test's cgroup has no memory controller to hand down");
	}
	fixture_stop(&daemon);
	delegated_remove(&setup);
}
END_TEST

/* Started in a leaf already (systemd's DelegateSubgroup=supervisor): weftd
 * stays, and its groups go beside it, in the parent. */
START_TEST(started_in_a_leaf_weftd_keeps_its_groups_beside_it)
{
	struct delegated setup;
	if (!delegated_make(&setup, "weftd started in a leaf", true, false))
		return;
	fixture daemon;
	delegated_start(&setup, &daemon);
	const char *relative = setup.group + strlen(CGROUP_MOUNT);
	char expected[256];
	snprintf(expected, sizeof(expected), "%s/supervisor", relative);
	assert_layout(&daemon, expected, relative);
	fixture_stop(&daemon);
	delegated_remove(&setup);
}
END_TEST

/* Sharing its group with another process (a shell's session scope): moving
 * would not empty the group, so weftd stays where it is; jobs still get
 * their groups. */
START_TEST(weftd_sharing_its_cgroup_stays_in_it)
{
	struct delegated setup;
	if (!delegated_make(&setup, "weftd sharing its cgroup", false, true))
		return;
	fixture daemon;
	delegated_start(&setup, &daemon);
	const char *relative = setup.group + strlen(CGROUP_MOUNT);
	char text[600];
	assert_layout(&daemon, relative, relative);
	containment_string(daemon.url, "supervisor", text, sizeof(text));
	ck_assert_str_eq(text, "");
	fixture_stop(&daemon);
	delegated_remove(&setup);
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
	tcase_add_test(cases, a_second_weftd_of_the_same_instance_refuses_and_kills_nothing);
	tcase_add_test(cases, memory_and_tasks_limits_are_set_on_the_cgroup_or_refused);
	tcase_add_test(cases, a_job_over_its_memory_limit_ends_out_of_memory);
	tcase_add_test(cases, alone_in_a_delegated_cgroup_weftd_moves_itself_into_a_leaf);
	tcase_add_test(cases, started_in_a_leaf_weftd_keeps_its_groups_beside_it);
	tcase_add_test(cases, weftd_sharing_its_cgroup_stays_in_it);
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

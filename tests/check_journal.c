/*
 * The journal (issue 12), end to end: a real weftd on a state directory of
 * the test's own, killed with SIGKILL or stopped, and started again on it.
 * One test per restart rule, and the kill -9 under load.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/wire.h"

/* A state directory owned by the test; removed at the end. */
struct store {
	char directory[128];
	const char *args[8];
};

static void store_make(struct store *store, const char *extra)
{
	snprintf(store->directory, sizeof(store->directory), "/tmp/weft-journal-XXXXXX");
	ck_assert_msg(mkdtemp(store->directory) != NULL, "mkdtemp: %s", strerror(errno));
	size_t n = 0;
	store->args[n++] = "--state-dir";
	store->args[n++] = store->directory;
	store->args[n++] = "--sync";
	store->args[n++] = "normal";
	if (extra != NULL) {
		store->args[n++] = "--retain-max";
		store->args[n++] = extra;
	}
	store->args[n] = NULL;
}

static void store_remove(struct store *store)
{
	char command[256];
	snprintf(command, sizeof(command), "rm -rf '%s'", store->directory);
	ck_assert_int_eq(system(command), 0);
}

static void kill_daemon(fixture *daemon)
{
	int status;
	fixture_stop_within(daemon, SIGKILL, 10, &status);
}

static json_t *call(fixture *daemon, const char *format, ...)
	__attribute__((format(printf, 2, 3)));
static json_t *call(fixture *daemon, const char *format, ...)
{
	char text[4096];
	va_list list;
	va_start(list, format);
	vsnprintf(text, sizeof(text), format, list);
	va_end(list);
	return wire_call(daemon->url, text);
}

static json_int_t submit_ok(fixture *daemon, const char *text)
{
	json_t *reply = wire_call(daemon->url, text);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "submit %s: %s", text,
	              json_dumps(reply, 0));
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	return id;
}

/* The job object of `id` (new reference), or NULL when unknown. */
static json_t *status_of(fixture *daemon, json_int_t id)
{
	json_t *reply = call(daemon, "{\"op\":\"status\",\"id\":%lld}", (long long)id);
	json_t *job = json_incref(json_object_get(reply, "job"));
	json_decref(reply);
	return job;
}

static const char *state_of(const json_t *job)
{
	return json_string_value(json_object_get(job, "state"));
}

/* Waits (at most 30 s: a hang guard) for the job to finish; its result reply. */
static json_t *result_of(fixture *daemon, json_int_t id)
{
	char text[128];
	snprintf(text, sizeof(text), "{\"op\":\"result\",\"id\":%lld,\"timeout\":30}", (long long)id);
	json_t *reply = wire_call_text(daemon->url, text, strlen(text), 40000);
	ck_assert_ptr_nonnull(reply);
	return reply;
}

/* Waits (30 s hang guard) until the job runs, then until its start is in
 * the journal: a cancel of an unknown id is answered after a commit. */
static void wait_running(fixture *daemon, json_int_t id)
{
	double deadline = fixture_now() + 30;
	for (;;) {
		json_t *job = status_of(daemon, id);
		bool running = strcmp(state_of(job), "running") == 0;
		json_decref(job);
		if (running)
			break;
		ck_assert_msg(fixture_now() < deadline, "job %lld never started", (long long)id);
		usleep(10000);
	}
	json_decref(call(daemon, "{\"op\":\"cancel\",\"id\":999999}"));
}

START_TEST(queued_jobs_run_after_a_kill)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_decref(call(&daemon, "{\"op\":\"queue.set\",\"name\":\"one\",\"max\":1}"));
	json_int_t first = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":"
	                                      "[\"sleep\",\"60\"]},\"queue\":\"one\"}");
	json_int_t second = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":"
	                                       "[\"echo\",\"after the restart\"]},\"queue\":\"one\"}");
	wait_running(&daemon, first);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	json_t *reply = result_of(&daemon, second);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", json_dumps(reply, 0));
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(reply, "result"), "stdout")),
	                 "after the restart\n");
	json_decref(reply);
	json_t *job = status_of(&daemon, first);
	ck_assert_str_eq(state_of(job), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "error"), "type")),
	                 "Interrupted");
	json_decref(job);
	reply = call(&daemon, "{\"op\":\"queues\"}");
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(reply, "queues"), 0), "name")),
	                 "one");
	json_decref(reply);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(a_future_set_after_a_restart_releases_its_dependents)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_int_t future = submit_ok(&daemon, "{\"op\":\"future.new\"}");
	char text[256];
	snprintf(text, sizeof(text),
	         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":7},\"after\":[%lld]}",
	         (long long)future);
	json_int_t dependent = submit_ok(&daemon, text);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	json_t *job = status_of(&daemon, future);
	ck_assert_str_eq(state_of(job), "pending");
	json_decref(job);
	json_t *reply = call(&daemon, "{\"op\":\"future.set\",\"id\":%lld,\"result\":1}",
	                     (long long)future);
	ck_assert(json_is_true(json_object_get(reply, "ok")));
	json_decref(reply);
	reply = result_of(&daemon, dependent);
	ck_assert_msg(json_integer_value(json_object_get(reply, "result")) == 7, "%s",
	              json_dumps(reply, 0));
	json_decref(reply);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(a_delayed_job_keeps_its_time)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_int_t id = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                                   "\"delay\":1.5}");
	json_t *job = status_of(&daemon, id);
	double created = json_real_value(json_object_get(job, "created"));
	json_decref(job);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	json_decref(result_of(&daemon, id));
	job = status_of(&daemon, id);
	ck_assert_str_eq(state_of(job), "done");
	double started = json_real_value(json_object_get(job, "started"));
	ck_assert_msg(started >= created + 1.5 - 0.01, "started %f, created %f", started, created);
	json_decref(job);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(a_running_job_ends_interrupted_or_retries)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_int_t failing = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":"
	                                        "{\"seconds\":60}}");
	json_int_t retrying = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":"
	                                         "{\"seconds\":60},\"retries\":1,"
	                                         "\"on_interrupt\":\"retry\"}");
	/* Both must have started, so that they are running when weftd dies. */
	wait_running(&daemon, failing);
	wait_running(&daemon, retrying);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	json_t *job = status_of(&daemon, failing);
	ck_assert_str_eq(state_of(job), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "error"), "type")),
	                 "Interrupted");
	json_decref(job);
	job = status_of(&daemon, retrying);
	ck_assert_str_eq(state_of(job), "running");
	json_t *attempts = json_object_get(job, "attempts");
	ck_assert_int_eq(json_array_size(attempts), 2);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_array_get(attempts, 0), "error"), "type")),
	                 "Interrupted");
	json_decref(job);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(ids_keep_growing_and_results_stay)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_int_t before = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":"
	                                       "\"kept\"}}");
	fixture_stop(&daemon); /* a clean restart, too */
	fixture_start(&daemon, store.args);
	json_int_t after = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1}}");
	ck_assert_msg(after > before, "id %lld after the restart, %lld before", (long long)after,
	              (long long)before);
	json_t *reply = result_of(&daemon, before);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "result")), "kept");
	json_decref(reply);
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	json_int_t third = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1}}");
	ck_assert(third > after);
	json_t *stats = call(&daemon, "{\"op\":\"stats\"}");
	json_t *journal = json_object_get(stats, "journal");
	ck_assert(json_is_true(json_object_get(journal, "enabled")));
	ck_assert_int_ge(json_integer_value(json_object_get(journal, "commits")), 1);
	ck_assert_int_gt(json_integer_value(json_object_get(journal, "file_bytes")), 0);
	ck_assert_ptr_nonnull(json_object_get(journal, "last_commit_ms"));
	ck_assert_ptr_nonnull(json_object_get(journal, "jobs_per_commit"));
	json_decref(stats);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

/* A job's records coalesce into one row write per commit (its start and its
 * end arrive together), and the spec the writer encodes by hand reads back
 * whole: fn, args (escapes and all), labels, timeout, priority, owner. The
 * journal's stats count it: commits, jobs, records and the fewer rows. */
START_TEST(a_batch_coalesces_and_replays_whole)
{
	struct store store;
	store_make(&store, NULL);
	fixture daemon;
	fixture_start(&daemon, store.args);
	enum { COUNT = 40 };
	char text[16384];
	size_t used = (size_t)snprintf(text, sizeof(text), "{\"op\":\"submit\",\"jobs\":[");
	for (int i = 0; i < COUNT; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used,
		                         "%s{\"fn\":\"echo\",\"args\":{\"value\":{\"n\":%d,\"text\":"
		                         "\"caf\\u00e9 \\\"q\\\" \\\\ \\n\\u0001\\t\",\"x\":0.25,\"neg\":-12,"
		                         "\"list\":[1,\"a\",null,true,false,2.5,{}]}},"
		                         "\"labels\":{\"k\":\"v%d\"},\"timeout\":%s,\"priority\":%d}",
		                         i > 0 ? "," : "", i, i, i % 2 ? "2.5" : "7", i % 3);
	snprintf(text + used, sizeof(text) - used, "]}");
	json_t *reply = wire_call(daemon.url, text);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", json_dumps(reply, 0));
	json_t *ids = json_incref(json_object_get(reply, "ids"));
	json_decref(reply);
	ck_assert_int_eq(json_array_size(ids), COUNT);
	for (size_t i = 0; i < COUNT; i++)
		json_decref(result_of(&daemon, json_integer_value(json_array_get(ids, i))));
	json_decref(call(&daemon, "{\"op\":\"cancel\",\"id\":999999}")); /* a commit barrier */

	json_t *stats = call(&daemon, "{\"op\":\"stats\"}");
	json_t *journal = json_object_get(stats, "journal");
	json_int_t commits = json_integer_value(json_object_get(journal, "commits"));
	json_int_t records = json_integer_value(json_object_get(journal, "records"));
	json_int_t rows = json_integer_value(json_object_get(journal, "rows"));
	ck_assert_int_ge(commits, 1);
	ck_assert_int_ge(json_integer_value(json_object_get(journal, "jobs")), COUNT);
	/* The batch is one commit: the average is above one job. */
	ck_assert_msg(json_real_value(json_object_get(journal, "jobs_per_commit")) > 1.0,
	              "%s", json_dumps(journal, 0));
	ck_assert_msg(rows >= COUNT && rows < records, "rows %lld, records %lld", (long long)rows,
	              (long long)records);
	ck_assert(json_is_number(json_object_get(journal, "last_commit_ms")));
	ck_assert(json_number_value(json_object_get(journal, "last_commit_ms")) >= 0);
	ck_assert_int_gt(json_integer_value(json_object_get(journal, "last_commit_records")), 0);
	ck_assert_int_gt(json_integer_value(json_object_get(journal, "file_bytes")), 0);
	json_decref(stats);
	/* `weft stats` shows them to a user: file size, commits, jobs per
	 * commit, the last commit's latency. */
	char command[512], output[8192];
	snprintf(command, sizeof(command), "'%s' --url '%s' stats", getenv("WEFT_CLI"), daemon.url);
	FILE *cli = popen(command, "r");
	ck_assert_ptr_nonnull(cli);
	size_t got = fread(output, 1, sizeof(output) - 1, cli);
	output[got] = '\0';
	ck_assert_int_eq(pclose(cli), 0);
	const char *line = strstr(output, "journal:");
	ck_assert_msg(line != NULL, "weft stats printed no journal line:\n%s", output);
	const char *keys[] = {"\"file_bytes\"", "\"commits\"", "\"jobs_per_commit\"",
	                      "\"last_commit_ms\"", "\"rows\""};
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		ck_assert_msg(strstr(line, keys[k]) != NULL, "no %s in: %s", keys[k], line);

	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	for (size_t i = 0; i < COUNT; i++) {
		json_int_t id = json_integer_value(json_array_get(ids, i));
		json_t *job = status_of(&daemon, id);
		ck_assert_msg(job != NULL, "job %lld is lost", (long long)id);
		ck_assert_str_eq(state_of(job), "done");
		ck_assert_str_eq(json_string_value(json_object_get(job, "fn")), "echo");
		json_t *value = json_object_get(json_object_get(job, "args"), "value");
		ck_assert_int_eq(json_integer_value(json_object_get(value, "n")), (json_int_t)i);
		ck_assert_str_eq(json_string_value(json_object_get(value, "text")),
		                 "caf\xc3\xa9 \"q\" \\ \n\x01\t");
		ck_assert(json_real_value(json_object_get(value, "x")) == 0.25);
		ck_assert_int_eq(json_integer_value(json_object_get(value, "neg")), -12);
		json_t *expected = json_loads("[1,\"a\",null,true,false,2.5,{}]", 0, NULL);
		ck_assert_msg(json_equal(json_object_get(value, "list"), expected), "list %s",
		              json_dumps(json_object_get(value, "list"), 0));
		json_decref(expected);
		char label[16];
		snprintf(label, sizeof(label), "v%zu", i);
		ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "labels"), "k")),
		                 label);
		ck_assert_int_eq(json_integer_value(json_object_get(job, "owner")), (json_int_t)getuid());
		json_decref(job);
		json_t *result = result_of(&daemon, id);
		ck_assert_int_eq(json_integer_value(json_object_get(
		                         json_object_get(result, "result"), "n")),
		                 (json_int_t)i);
		json_decref(result);
	}
	json_decref(ids);
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

START_TEST(retention_still_evicts_after_a_restart)
{
	struct store store;
	store_make(&store, "2");
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_int_t ids[5];
	for (int i = 0; i < 5; i++)
		ids[i] = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1}}");
	json_decref(call(&daemon, "{\"op\":\"cancel\",\"id\":999999}")); /* a commit barrier */
	kill_daemon(&daemon);
	fixture_start(&daemon, store.args);
	for (int i = 0; i < 5; i++) {
		json_t *job = status_of(&daemon, ids[i]);
		if (i < 3)
			ck_assert_msg(job == NULL, "job %lld was kept", (long long)ids[i]);
		else
			ck_assert_msg(job != NULL, "job %lld was dropped", (long long)ids[i]);
		json_decref(job);
	}
	fixture_stop(&daemon);
	store_remove(&store);
}
END_TEST

/* Runs weftd on the store; its exit status, and its log in out. */
static int weftd_on(struct store *store, char *out, size_t size)
{
	char url[200];
	snprintf(url, sizeof(url), "ipc://%s/weft.sock", store->directory);
	int pipes[2];
	ck_assert_int_eq(pipe(pipes), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipes[1], STDERR_FILENO);
		dup2(pipes[1], STDOUT_FILENO);
		execl(getenv("WEFTD"), "weftd", "--listen", url, "--state-dir", store->directory,
		      (char *)NULL);
		_exit(127);
	}
	close(pipes[1]);
	size_t used = 0;
	ssize_t got;
	while (used + 1 < size && (got = read(pipes[0], out + used, size - 1 - used)) > 0)
		used += (size_t)got;
	out[used] = '\0';
	close(pipes[0]);
	int status;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(a_damaged_store_refuses_to_start)
{
	struct store store;
	store_make(&store, NULL);
	char path[256];
	snprintf(path, sizeof(path), "%s/weft.db", store.directory);
	FILE *file = fopen(path, "w");
	ck_assert_ptr_nonnull(file);
	for (int i = 0; i < 512; i++)
		fputs("not a database at all ", file);
	fclose(file);
	char log[8192];
	ck_assert_int_eq(weftd_on(&store, log, sizeof(log)), 1);
	ck_assert_msg(strstr(log, path) != NULL && strstr(log, "move it aside") != NULL,
	              "weftd said: %s", log);
	store_remove(&store);
}
END_TEST

/* An integer the store's SQL gives (the test reads the file weftd left). */
static long long store_integer(const char *path, const char *sql)
{
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_stmt *statement;
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &statement, NULL) == SQLITE_OK, "%s: %s", sql,
	              sqlite3_errmsg(db));
	ck_assert_int_eq(sqlite3_step(statement), SQLITE_ROW);
	long long value = sqlite3_column_int64(statement, 0);
	sqlite3_finalize(statement);
	sqlite3_close(db);
	return value;
}

/* Schema 1 (before job_states): a job's changes rewrote its row in jobs. A
 * store it wrote is upgraded; its jobs keep their state, and changes from
 * then on go to job_states; eviction deletes from both tables. */
START_TEST(a_store_of_schema_1_is_upgraded)
{
	struct store store;
	store_make(&store, "3");
	char path[256];
	snprintf(path, sizeof(path), "%s/weft.db", store.directory);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	char owner[128];
	snprintf(owner, sizeof(owner), "{\"uid\":%u,\"gid\":%u,\"groups\":[%u]}", (unsigned)getuid(),
	         (unsigned)getgid(), (unsigned)getgid());
	char sql[4096];
	snprintf(sql, sizeof(sql),
	         "PRAGMA journal_mode = WAL;"
	         "BEGIN;"
	         "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	         "CREATE TABLE jobs(id INTEGER PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, "
	         "created REAL, started REAL, finished REAL, result TEXT, error TEXT, attempts TEXT, "
	         "children TEXT);"
	         "CREATE TABLE queues(name TEXT PRIMARY KEY, max INTEGER NOT NULL, "
	         "paused INTEGER NOT NULL);"
	         "CREATE TABLE events(last INTEGER PRIMARY KEY, lane INTEGER NOT NULL, "
	         "first INTEGER NOT NULL, lines TEXT NOT NULL);"
	         "CREATE TABLE event_lanes(lane INTEGER PRIMARY KEY, dropped_upto INTEGER NOT NULL);"
	         "INSERT INTO meta VALUES('next_id', 100);"
	         "INSERT INTO jobs VALUES(5, '{\"fn\":\"echo\",\"args\":{\"value\":\"old\"},"
	         "\"timeout\":0,\"owner\":%s}', 'done', 1000, 1001, 1002, '\"old\"', NULL, NULL, NULL);"
	         "INSERT INTO jobs VALUES(6, '{\"fn\":\"echo\",\"args\":{\"value\":6},"
	         "\"timeout\":0,\"owner\":%s}', 'queued', 1000, NULL, NULL, NULL, NULL, NULL, NULL);"
	         "PRAGMA application_id = 2003134068;" /* "weft" */
	         "PRAGMA user_version = 1;"
	         "COMMIT;",
	         owner, owner);
	char *error = NULL;
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &error) == SQLITE_OK, "%s", error);
	sqlite3_close(db);

	fixture daemon;
	fixture_start(&daemon, store.args);
	json_t *job = status_of(&daemon, 5);
	ck_assert_msg(job != NULL, "job 5 of the old store is lost");
	ck_assert_str_eq(state_of(job), "done");
	json_decref(job);
	json_t *reply = result_of(&daemon, 5);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "result")), "old");
	json_decref(reply);
	reply = result_of(&daemon, 6); /* queued in the old store: it runs now */
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 6);
	json_decref(reply);
	json_decref(call(&daemon, "{\"op\":\"cancel\",\"id\":999999}")); /* a commit barrier */
	fixture_stop(&daemon);
	ck_assert_int_eq(store_integer(path, "PRAGMA user_version"), 2);
	/* The change went to job_states; the row in jobs is the acceptance's. */
	ck_assert_int_eq(store_integer(path, "SELECT count(*) FROM job_states WHERE id = 6 AND "
	                                     "state = 'done' AND result = '6'"), 1);
	ck_assert_int_eq(store_integer(path, "SELECT count(*) FROM jobs WHERE id = 6 AND "
	                                     "state = 'queued'"), 1);

	fixture_start(&daemon, store.args);
	reply = result_of(&daemon, 6); /* read through job_states */
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 6);
	json_decref(reply);
	/* Three more finished jobs: retention (3) evicts 5 and 6. */
	for (int i = 0; i < 3; i++) {
		json_int_t id = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1}}");
		ck_assert_int_ge(id, 100);
		json_decref(result_of(&daemon, id));
	}
	json_decref(call(&daemon, "{\"op\":\"cancel\",\"id\":999999}")); /* a commit barrier */
	ck_assert_ptr_null(status_of(&daemon, 6));
	fixture_stop(&daemon);
	ck_assert_int_eq(store_integer(path, "SELECT count(*) FROM jobs WHERE id IN (5, 6)"), 0);
	ck_assert_int_eq(store_integer(path, "SELECT count(*) FROM job_states WHERE id IN (5, 6)"),
	                 0);
	ck_assert_int_eq(store_integer(path, "SELECT count(*) FROM job_states WHERE id NOT IN "
	                                     "(SELECT id FROM jobs)"), 0);
	store_remove(&store);
}
END_TEST

/* One client of the kill -9 test: submits until the daemon dies. */
struct client {
	const char *url;
	int number;
	json_t *acknowledged; /* {"id": token} */
};

static void *client_main(void *argument)
{
	struct client *client = argument;
	for (int n = 0;; n++) {
		char text[1024];
		bool batch = n % 3 == 2;
		if (batch)
			snprintf(text, sizeof(text),
			         "{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":\"c%d-%da\"}},"
			         "{\"fn\":\"echo\",\"args\":{\"value\":\"c%d-%db\"}},{\"fn\":\"sleep\",\"args\":"
			         "{\"seconds\":30},\"labels\":{\"t\":\"c%d-%dc\"}}]}",
			         client->number, n, client->number, n, client->number, n);
		else
			snprintf(text, sizeof(text),
			         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":\"c%d-%d\"}}",
			         client->number, n);
		json_t *reply = wire_call_text(client->url, text, strlen(text), 3000);
		if (reply == NULL || !json_is_true(json_object_get(reply, "ok"))) {
			json_decref(reply);
			return NULL;
		}
		char key[32], token[48];
		if (batch) {
			const char *suffix[] = {"a", "b", "c"};
			for (size_t i = 0; i < 3; i++) {
				snprintf(key, sizeof(key), "%lld",
				         (long long)json_integer_value(
						 json_array_get(json_object_get(reply, "ids"), i)));
				snprintf(token, sizeof(token), "c%d-%d%s", client->number, n, suffix[i]);
				json_object_set_new(client->acknowledged, key, json_string(token));
			}
		} else {
			snprintf(key, sizeof(key), "%lld",
			         (long long)json_integer_value(json_object_get(reply, "id")));
			snprintf(token, sizeof(token), "c%d-%d", client->number, n);
			json_object_set_new(client->acknowledged, key, json_string(token));
		}
		json_decref(reply);
	}
}

/* The token a job was submitted with (echo's value, or sleep's label). */
static const char *token_of(const json_t *job)
{
	const json_t *value = json_object_get(json_object_get(job, "args"), "value");
	if (json_is_string(value))
		return json_string_value(value);
	return json_string_value(json_object_get(json_object_get(job, "labels"), "t"));
}

enum { CLIENTS = 3, ROUNDS = 20 };

START_TEST(kill_9_under_load_loses_no_acknowledged_job)
{
	struct store store;
	store_make(&store, "1000000");
	store.args[3] = "full";
	json_t *acknowledged = json_object(); /* every round's, by id */
	unsigned seed = (unsigned)getpid();
	for (int round = 0; round < ROUNDS; round++) {
		fixture daemon;
		fixture_start(&daemon, store.args);
		/* The clients found before the kill must all be back. */
		json_t *listed = call(&daemon, "{\"op\":\"list\",\"limit\":1000000}");
		json_t *jobs = json_object_get(listed, "jobs");
		json_t *seen = json_object();
		size_t i;
		json_t *job;
		json_array_foreach(jobs, i, job) {
			const char *token = token_of(job);
			ck_assert_ptr_nonnull(token);
			ck_assert_msg(json_object_get(seen, token) == NULL,
			              "round %d: token %s appears twice", round, token);
			json_object_set_new(seen, token, json_true());
			ck_assert_int_eq(json_integer_value(json_object_get(job, "owner")), (json_int_t)getuid());
		}
		const char *key;
		json_t *token;
		json_object_foreach(acknowledged, key, token) {
			json_t *found = status_of(&daemon, strtoll(key, NULL, 10));
			ck_assert_msg(found != NULL, "round %d: acknowledged job %s is lost", round, key);
			ck_assert_str_eq(token_of(found), json_string_value(token));
			json_decref(found);
		}
		json_decref(seen);
		json_decref(listed);

		struct client clients[CLIENTS];
		pthread_t threads[CLIENTS];
		for (int c = 0; c < CLIENTS; c++) {
			clients[c] = (struct client){.url = daemon.url, .number = round * CLIENTS + c,
			                             .acknowledged = json_object()};
			pthread_create(&threads[c], NULL, client_main, &clients[c]);
		}
		/* A random moment of the load to kill at. */
		usleep(5000 + rand_r(&seed) % 100000);
		kill_daemon(&daemon);
		for (int c = 0; c < CLIENTS; c++) {
			pthread_join(threads[c], NULL);
			json_object_update(acknowledged, clients[c].acknowledged);
			json_decref(clients[c].acknowledged);
		}
	}
	ck_assert_int_gt(json_object_size(acknowledged), 0);
	json_decref(acknowledged);
	store_remove(&store);
}
END_TEST

/* The error code of a refused reply, or "" for an ok one. */
static const char *code_of(const json_t *reply)
{
	const char *code =
		json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
	return code != NULL ? code : "";
}

/* The tmpfs of the full-disk test, detached when its process exits, even
 * after a failed assertion (Check's forked test exits through exit()). */
static char mounted[128];

static void detach_mount(void)
{
	if (mounted[0] != '\0' && umount2(mounted, MNT_DETACH) == 0)
		rmdir(mounted);
}

/*
 * A full disk: the state directory is an 8 MiB tmpfs (root only), filled by
 * a file of the test's. Submits are refused with journal_full and nothing of
 * them is accepted, while status and stats keep answering; once the file is
 * removed, submits are accepted again.
 */
START_TEST(a_full_disk_refuses_submits_and_recovers)
{
	if (geteuid() != 0) {
		printf("SKIP: 1 journal full-disk test: not root (it mounts a small tmpfs)\n");
		return;
	}
	struct store store;
	store_make(&store, NULL);
	if (mount("weft-test", store.directory, "tmpfs", 0, "size=8m,mode=0700") != 0) {
		printf("SKIP: 1 journal full-disk test: cannot mount a tmpfs here (%s)\n",
		       strerror(errno));
		store_remove(&store);
		return;
	}
	snprintf(mounted, sizeof(mounted), "%s", store.directory);
	atexit(detach_mount);
	fixture daemon;
	fixture_start(&daemon, store.args);
	json_int_t first = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1}}");

	char filler[256];
	snprintf(filler, sizeof(filler), "%s/filler", store.directory);
	int fd = open(filler, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	static char block[65536];
	while (write(fd, block, sizeof(block)) > 0)
		;
	ck_assert_int_eq(errno, ENOSPC);
	close(fd);

	/* 4 KB of args each: the journal needs new pages within a few hundred. */
	static char submit[8192];
	int length = snprintf(submit, sizeof(submit),
	                      "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":\"");
	memset(submit + length, 'y', 4096);
	snprintf(submit + length + 4096, sizeof(submit) - (size_t)length - 4096, "\"}}");
	bool refused = false;
	for (int i = 0; i < 4000 && !refused; i++) {
		json_t *reply = wire_call(daemon.url, submit);
		ck_assert_ptr_nonnull(reply);
		refused = !json_is_true(json_object_get(reply, "ok"));
		if (refused)
			ck_assert_msg(strcmp(code_of(reply), "journal_full") == 0, "refused with %s",
			              json_dumps(reply, 0));
		json_decref(reply);
	}
	ck_assert_msg(refused, "4000 submits of 4 KB were accepted on a full 8 MiB disk");
	/* Reads go on. */
	json_t *job = status_of(&daemon, first);
	ck_assert_ptr_nonnull(job);
	ck_assert_str_eq(state_of(job), "done");
	json_decref(job);
	json_t *stats = call(&daemon, "{\"op\":\"stats\"}");
	ck_assert(json_is_true(json_object_get(stats, "ok")));
	json_decref(stats);

	ck_assert_int_eq(unlink(filler), 0);
	json_int_t later = submit_ok(&daemon, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":2}}");
	ck_assert_int_gt(later, first);
	json_t *reply = result_of(&daemon, later);
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 2);
	json_decref(reply);
	fixture_stop(&daemon);
	ck_assert_int_eq(umount(store.directory), 0);
	mounted[0] = '\0';
	store_remove(&store);
}
END_TEST

static Suite *journal_suite(void)
{
	Suite *suite = suite_create("journal");
	TCase *restart = tcase_create("restart");
	tcase_set_timeout(restart, 90);
	tcase_add_test(restart, queued_jobs_run_after_a_kill);
	tcase_add_test(restart, a_future_set_after_a_restart_releases_its_dependents);
	tcase_add_test(restart, a_delayed_job_keeps_its_time);
	tcase_add_test(restart, a_running_job_ends_interrupted_or_retries);
	tcase_add_test(restart, ids_keep_growing_and_results_stay);
	tcase_add_test(restart, retention_still_evicts_after_a_restart);
	tcase_add_test(restart, a_batch_coalesces_and_replays_whole);
	tcase_add_test(restart, a_damaged_store_refuses_to_start);
	tcase_add_test(restart, a_store_of_schema_1_is_upgraded);
	tcase_add_test(restart, a_full_disk_refuses_submits_and_recovers);
	suite_add_tcase(suite, restart);
	TCase *load = tcase_create("load");
	tcase_set_timeout(load, 300);
	tcase_add_test(load, kill_9_under_load_loses_no_acknowledged_job);
	suite_add_tcase(suite, load);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(journal_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

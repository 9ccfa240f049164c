/* weftd's thread functions end to end: the pool's size, loops that never block, cancel. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/wire.h"

static json_int_t submit(const char *url, const char *request)
{
	json_t *reply = wire_call(url, request);
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	ck_assert_msg(id > 0, "submit refused: %s", json_dumps(reply, 0));
	json_decref(reply);
	return id;
}

static json_t *result_of(const char *url, json_int_t id)
{
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":30}",
	         (long long)id);
	return wire_call(url, request);
}

static json_int_t pool_busy(const char *url)
{
	json_t *stats = wire_call(url, "{\"op\":\"stats\"}");
	json_int_t busy = json_integer_value(json_object_get(json_object_get(stats, "threads"), "busy"));
	json_decref(stats);
	return busy;
}

static const char *state_of(json_t *reply)
{
	return json_string_value(json_object_get(reply, "state"));
}

/* A job's own started or finished time (wall clock, from its status). */
static double job_time(const char *url, json_int_t id, const char *which)
{
	char request[64];
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}", (long long)id);
	json_t *reply = wire_call(url, request);
	json_t *value = json_object_get(json_object_get(reply, "job"), which);
	ck_assert_msg(json_is_number(value), "job %lld has no '%s'", (long long)id, which);
	double time = json_number_value(value);
	json_decref(reply);
	return time;
}

/* Polls stats until the pool has `busy` calls running (bounded: a hang guard). */
static void wait_for_busy(const char *url, json_int_t busy)
{
	double deadline = fixture_now() + 10;
	while (pool_busy(url) != busy)
		ck_assert_msg(fixture_now() < deadline, "the pool never had %lld calls running",
		              (long long)busy);
}

START_TEST(test_blocking_calls_run_as_many_at_once_as_threads)
{
	fixture daemon;
	const char *const args[] = {"--threads", "2", NULL};
	fixture_start(&daemon, args);
	json_int_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep.blocking\","
		                            "\"args\":{\"seconds\":0.5}}");
	/* Two run at once (the pool's own counter says so)... */
	wait_for_busy(daemon.url, 2);
	json_int_t most = 0;
	double finished[4], first = 1e300;
	for (int i = 0; i < 4; i++) {
		json_int_t busy = pool_busy(daemon.url);
		most = busy > most ? busy : most;
		json_t *reply = result_of(daemon.url, ids[i]);
		ck_assert_str_eq(state_of(reply), "done");
		json_decref(reply);
		finished[i] = job_time(daemon.url, ids[i], "finished");
		first = finished[i] < first ? finished[i] : first;
	}
	ck_assert_int_le(most, 2);
	/* ...and never more: two calls waited for a thread, so they ended a
	 * whole call (0.5 s) after the first ones did; with more threads none
	 * would, with one thread three would. Ordering, by the jobs' own times. */
	int later = 0;
	for (int i = 0; i < 4; i++)
		later += finished[i] >= first + 0.45;
	ck_assert_int_eq(later, 2);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_loop_jobs_finish_on_time_while_every_thread_blocks)
{
	fixture daemon;
	const char *const args[] = {"--threads", "2", NULL};
	fixture_start(&daemon, args);
	json_int_t blocking[2];
	for (int i = 0; i < 2; i++)
		blocking[i] = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep.blocking\","
		                                 "\"args\":{\"seconds\":2}}");
	wait_for_busy(daemon.url, 2);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
	                                      "\"args\":{\"seconds\":0.1},\"wait\":10}");
	ck_assert_str_eq(state_of(reply), "done");
	json_int_t loop_sleep = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	/* The loop sleep ended while every pool thread was still blocked: before
	 * either 2 s call did, by the jobs' own times. */
	double slept = job_time(daemon.url, loop_sleep, "finished");
	for (int i = 0; i < 2; i++) {
		json_decref(result_of(daemon.url, blocking[i]));
		ck_assert(slept < job_time(daemon.url, blocking[i], "finished"));
	}
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_cancel_of_a_running_call_ends_the_job_at_once)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t id = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep.blocking\","
	                                   "\"args\":{\"seconds\":3}}");
	double deadline = fixture_now() + 10;
	while (pool_busy(daemon.url) < 1)
		ck_assert_msg(fixture_now() < deadline, "the call never started");
	char request[64];
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
	json_t *reply = wire_call(daemon.url, request);
	ck_assert(json_is_true(json_object_get(reply, "cancelled")));
	json_decref(reply);
	reply = result_of(daemon.url, id);
	ck_assert_str_eq(state_of(reply), "cancelled");
	json_decref(reply);
	/* By the job's own times, it ended well before its 3 s call could have:
	 * cancel did not wait for the call. */
	double ran = job_time(daemon.url, id, "finished") - job_time(daemon.url, id, "started");
	ck_assert_msg(ran < 2.5, "the cancelled job ran %.3f s: cancel waited for the call", ran);
	/* The call itself completes later and is dropped; the thread comes back. */
	deadline = fixture_now() + 10;
	while (pool_busy(daemon.url) > 0)
		ck_assert_msg(fixture_now() < deadline, "the pool thread never came back");
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_timeout_fails_a_blocking_call)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep.blocking\","
	                                      "\"args\":{\"seconds\":2},\"timeout\":0.2,\"wait\":10}");
	ck_assert_str_eq(state_of(reply), "failed");
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(reply, "error"), "type")),
		"Timeout");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_file_sha256_and_dns_resolve_through_the_daemon)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	char path[256], request[512];
	snprintf(path, sizeof(path), "%s/data", daemon.directory);
	FILE *file = fopen(path, "w");
	fputs("abc", file);
	fclose(file);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"file.sha256\",\"args\":{\"path\":\"%s\"},\"wait\":10}",
	         path);
	json_t *reply = wire_call(daemon.url, request);
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(reply, "result"), "sha256")),
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	json_decref(reply);
	reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"dns.resolve\","
	                              "\"args\":{\"host\":\"localhost\",\"family\":\"inet\"},\"wait\":10}");
	json_t *addresses = json_object_get(json_object_get(reply, "result"), "addresses");
	ck_assert_str_eq(json_string_value(json_array_get(addresses, 0)), "127.0.0.1");
	json_decref(reply);
	reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"file.sha256\",\"args\":{\"path\":7}}");
	ck_assert_str_eq(wire_error_code(reply), "bad_arguments");
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(reply, "error"), "field")),
		"args.path");
	json_decref(reply);
	unlink(path); /* the fixture removes its directory only when empty */
	fixture_stop(&daemon);
}
END_TEST

/* The shutdown order: the pool is closed to the workers before they stop, so
 * a call that ends after they stopped is dropped instead of being posted to a
 * worker that is gone. debug.block (--test-hooks) ignores the cancel of
 * shutdown and ends only once the workers have stopped. */
START_TEST(test_a_call_that_ends_after_the_workers_stopped_is_dropped)
{
	static const char *const args[] = {"--test-hooks", NULL};
	fixture daemon;
	fixture_start(&daemon, args);
	json_decref(wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"debug.block\"}"));
	wait_for_busy(daemon.url, 1);
	FILE *log = fopen(daemon.log_path, "r"); /* read after the fixture removed it */
	ck_assert_ptr_nonnull(log);
	int status;
	/* A hang guard, not a timing assertion. */
	bool exited = fixture_stop_within(&daemon, SIGTERM, 30.0, &status);
	ck_assert_msg(exited, "weftd did not exit");
	char line[1024];
	bool dropped = false, stopped = false;
	while (fgets(line, sizeof(line), log) != NULL) {
		dropped = dropped ||
		          strstr(line, "a debug.block call ended after the thread pool closed") != NULL;
		stopped = stopped || strstr(line, "stopped") != NULL;
	}
	fclose(log);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status %d", status);
	ck_assert_msg(dropped, "no log line for the call that ended after the workers stopped");
	ck_assert_msg(stopped, "weftd did not log that it stopped");
}
END_TEST

static Suite *threaded_suite(void)
{
	Suite *suite = suite_create("threaded");
	TCase *pool = tcase_create("pool");
	tcase_set_timeout(pool, 60);
	tcase_add_test(pool, test_blocking_calls_run_as_many_at_once_as_threads);
	tcase_add_test(pool, test_loop_jobs_finish_on_time_while_every_thread_blocks);
	tcase_add_test(pool, test_cancel_of_a_running_call_ends_the_job_at_once);
	tcase_add_test(pool, test_timeout_fails_a_blocking_call);
	tcase_add_test(pool, test_file_sha256_and_dns_resolve_through_the_daemon);
	tcase_add_test(pool, test_a_call_that_ends_after_the_workers_stopped_is_dropped);
	suite_add_tcase(suite, pool);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(threaded_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

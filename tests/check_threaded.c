/* weftd's thread functions end to end: the pool's size, loops that never block, cancel. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

START_TEST(test_blocking_calls_run_as_many_at_once_as_threads)
{
	fixture daemon;
	const char *const args[] = {"--threads", "2", NULL};
	fixture_start(&daemon, args);
	double started = fixture_now();
	json_int_t ids[4];
	for (int i = 0; i < 4; i++)
		ids[i] = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep.blocking\","
		                            "\"args\":{\"seconds\":0.5}}");
	json_int_t most = 0;
	for (int i = 0; i < 4; i++) {
		json_int_t busy = pool_busy(daemon.url);
		most = busy > most ? busy : most;
		json_t *reply = result_of(daemon.url, ids[i]);
		ck_assert_str_eq(state_of(reply), "done");
		json_decref(reply);
	}
	double took = fixture_now() - started;
	ck_assert_int_le(most, 2);
	/* Two at a time: two rounds of 0.5 s, neither one round nor four. */
	ck_assert_msg(took > 0.9 && took < 1.8, "4 calls of 0.5 s on 2 threads took %.3f s", took);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_loop_jobs_finish_on_time_while_every_thread_blocks)
{
	fixture daemon;
	const char *const args[] = {"--threads", "2", NULL};
	fixture_start(&daemon, args);
	for (int i = 0; i < 2; i++)
		submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep.blocking\",\"args\":{\"seconds\":2}}");
	double deadline = fixture_now() + 10;
	while (pool_busy(daemon.url) < 2)
		ck_assert_msg(fixture_now() < deadline, "the pool never got busy");
	double started = fixture_now();
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
	                                      "\"args\":{\"seconds\":0.1},\"wait\":10}");
	double took = fixture_now() - started;
	ck_assert_str_eq(state_of(reply), "done");
	ck_assert_msg(took < 0.6, "a 0.1 s loop sleep took %.3f s while the pool was busy", took);
	json_decref(reply);
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
	double started = fixture_now();
	json_t *reply = wire_call(daemon.url, request);
	ck_assert(json_is_true(json_object_get(reply, "cancelled")));
	json_decref(reply);
	reply = result_of(daemon.url, id);
	ck_assert_str_eq(state_of(reply), "cancelled");
	ck_assert_msg(fixture_now() - started < 1.0, "cancel waited for the call");
	json_decref(reply);
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

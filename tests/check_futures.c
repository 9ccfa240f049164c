/* Bare futures across processes: made by one client, set by another, awaited by any. */
#include <check.h>
#include <pthread.h>
#include <grp.h>
#include <pwd.h>
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

static json_int_t new_future(const char *url)
{
	json_t *reply = wire_call(url, "{\"op\":\"future.new\",\"labels\":{\"who\":\"test\"}}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	ck_assert_int_gt(id, 0);
	json_decref(reply);
	return id;
}

static json_t *set_future(const char *url, json_int_t id, const char *what)
{
	char request[256];
	snprintf(request, sizeof(request), "{\"op\":\"future.set\",\"id\":%lld,%s}", (long long)id,
	         what);
	return wire_call(url, request);
}

struct setter {
	char url[160];
	json_int_t id;
};

/* asyncio's set_after: another client sets the future after 2 s. The pause is
 * the scenario itself, not a wait for something to settle. */
static void *set_after_two_seconds(void *argument)
{
	struct setter *setter = argument;
	struct timespec pause = {.tv_sec = 2};
	nanosleep(&pause, NULL);
	json_decref(set_future(setter->url, setter->id, "\"result\":\"666\""));
	return NULL;
}

START_TEST(test_waiter_gets_the_value_the_moment_another_client_sets_it)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	struct setter setter = {.id = new_future(daemon.url)};
	snprintf(setter.url, sizeof(setter.url), "%s", daemon.url);
	json_t *status = wire_call(daemon.url, "{\"op\":\"list\",\"state\":\"pending\"}");
	ck_assert_uint_eq(json_array_size(json_object_get(status, "jobs")), 1);
	json_decref(status);
	pthread_t thread;
	pthread_create(&thread, NULL, set_after_two_seconds, &setter);
	double started = fixture_now();
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld}", (long long)setter.id);
	json_t *reply = wire_call_text(daemon.url, request, strlen(request), 20000);
	double took = fixture_now() - started;
	pthread_join(thread, NULL);
	ck_assert_ptr_nonnull(reply);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	ck_assert_str_eq(json_string_value(json_object_get(reply, "result")), "666");
	/* Not before it was set (the setter waits 2 s); the moment it is set,
	 * since the reply is the value and not a timeout. */
	ck_assert_msg(took > 1.9, "the waiter got the value after only %.3f s", took);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_a_future_is_set_once)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t id = new_future(daemon.url);
	json_t *reply = set_future(daemon.url, id, "\"error\":{\"type\":\"ValueError\",\"message\":\"no\"}");
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "failed");
	json_decref(reply);
	reply = set_future(daemon.url, id, "\"result\":1");
	ck_assert_str_eq(wire_error_code(reply), "already_set");
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(reply, "error"), "state")), "failed");
	json_decref(reply);
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld}", (long long)id);
	reply = wire_call(daemon.url, request);
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(reply, "error"), "type")), "ValueError");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_cancelled_future_cannot_be_set_and_wait_sees_it)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t first = new_future(daemon.url);
	json_int_t second = new_future(daemon.url);
	char request[128];
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)first);
	json_decref(wire_call(daemon.url, request));
	json_t *reply = set_future(daemon.url, first, "\"result\":1");
	ck_assert_str_eq(wire_error_code(reply), "already_set");
	json_decref(reply);
	snprintf(request, sizeof(request),
	         "{\"op\":\"wait\",\"ids\":[%lld,%lld],\"return_when\":\"FIRST_COMPLETED\","
	         "\"timeout\":5}",
	         (long long)second, (long long)first);
	reply = wire_call(daemon.url, request);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(reply, "done"), 0)), first);
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(reply, "pending"), 0)),
	                 second);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_bad_future_requests_are_refused)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t id = new_future(daemon.url);
	json_t *reply = set_future(daemon.url, id, "\"result\":1,\"error\":{\"type\":\"E\",\"message\":\"m\"}");
	ck_assert_str_eq(wire_error_code(reply), "bad_field");
	json_decref(reply);
	reply = set_future(daemon.url, id, "\"error\":{\"type\":\"\",\"message\":\"m\"}");
	ck_assert_str_eq(wire_error_code(reply), "bad_field");
	json_decref(reply);
	reply = set_future(daemon.url, 999999, "\"result\":1");
	ck_assert_str_eq(wire_error_code(reply), "unknown_id");
	json_decref(reply);
	json_t *job = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1}}");
	reply = set_future(daemon.url, json_integer_value(json_object_get(job, "id")), "\"result\":1");
	ck_assert_str_eq(wire_error_code(reply), "bad_field");
	json_decref(reply);
	json_decref(job);
	reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"future\"}");
	ck_assert_str_eq(wire_error_code(reply), "unknown_function");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_only_the_creator_or_root_sets_a_future)
{
	if (geteuid() != 0) {
		as_user_skip(1, "test_only_the_creator_or_root_sets_a_future",
		             "not root, cannot act as another user");
		return;
	}
	fixture daemon;
	fixture_start(&daemon, NULL);
	chmod(daemon.directory, 0755);
	json_int_t id = new_future(daemon.url);
	struct passwd *nobody = getpwnam("nobody");
	ck_assert_ptr_nonnull(nobody);
	char request[128];
	snprintf(request, sizeof(request), "{\"op\":\"future.set\",\"id\":%lld,\"result\":1}",
	         (long long)id);
	char *argv[] = {getenv("WEFT_CLI"), (char *)"--url", daemon.url, (char *)"request", request,
	                NULL};
	char text[4096];
	int status = as_user_run(nobody->pw_uid, nobody->pw_gid, argv[0], argv, text, sizeof(text));
	ck_assert_msg(status == 5, "nobody's future.set ended with %d, not the daemon error exit 5: %s",
	              status, text);
	/* Still pending; its creator (root here) may set it. */
	json_t *reply = set_future(daemon.url, id, "\"result\":2");
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_a_task_awaits_a_future)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t id = new_future(daemon.url);
	char request[160];
	snprintf(request, sizeof(request), "{\"op\":\"submit\",\"fn\":\"await\",\"args\":{\"id\":%lld}}",
	         (long long)id);
	json_t *reply = wire_call(daemon.url, request);
	json_int_t waiting = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	json_decref(set_future(daemon.url, id, "\"result\":\"666\""));
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":10}",
	         (long long)waiting);
	reply = wire_call(daemon.url, request);
	json_t *outcome = json_object_get(reply, "result");
	ck_assert_str_eq(json_string_value(json_object_get(outcome, "state")), "done");
	ck_assert_str_eq(json_string_value(json_object_get(outcome, "result")), "666");
	json_decref(reply);
	/* A timeout fails the awaiting job with Timeout; the future goes on. */
	json_int_t other = new_future(daemon.url);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"await\",\"args\":{\"id\":%lld,\"timeout\":0.1},"
	         "\"wait\":10}",
	         (long long)other);
	reply = wire_call(daemon.url, request);
	ck_assert_str_eq(
		json_string_value(json_object_get(json_object_get(reply, "error"), "type")), "Timeout");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

static Suite *futures_suite(void)
{
	Suite *suite = suite_create("futures");
	TCase *futures = tcase_create("futures");
	tcase_set_timeout(futures, 60);
	tcase_add_test(futures, test_waiter_gets_the_value_the_moment_another_client_sets_it);
	tcase_add_test(futures, test_a_future_is_set_once);
	tcase_add_test(futures, test_cancelled_future_cannot_be_set_and_wait_sees_it);
	tcase_add_test(futures, test_bad_future_requests_are_refused);
	tcase_add_test(futures, test_only_the_creator_or_root_sets_a_future);
	tcase_add_test(futures, test_a_task_awaits_a_future);
	suite_add_tcase(suite, futures);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(futures_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* gather and race end to end: children are real jobs, failures and cancels propagate. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fixture.h"
#include "tests/wire.h"

static json_t *status(const char *url, json_int_t id)
{
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}", (long long)id);
	json_t *reply = wire_call(url, request);
	json_t *job = json_incref(json_object_get(reply, "job"));
	json_decref(reply);
	return job;
}

static const char *state_of(const char *url, json_int_t id, char *buffer, size_t size)
{
	json_t *job = status(url, id);
	snprintf(buffer, size, "%s", json_string_value(json_object_get(job, "state")));
	json_decref(job);
	return buffer;
}

static const char *text(json_t *object, const char *name)
{
	return json_string_value(json_object_get(object, name));
}

START_TEST(test_gather_returns_results_in_order_of_its_children)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url,
	        "{\"op\":\"submit\",\"fn\":\"gather\",\"args\":{\"jobs\":["
	        "{\"fn\":\"sleep\",\"args\":{\"seconds\":0.3,\"result\":\"a\"}},"
	        "{\"fn\":\"echo\",\"args\":{\"value\":\"b\"}},"
	        "{\"fn\":\"sleep\",\"args\":{\"seconds\":0.2,\"result\":\"c\"}}]},\"wait\":30}");
	json_t *result = json_object_get(reply, "result");
	ck_assert_str_eq(json_string_value(json_array_get(result, 0)), "a");
	ck_assert_str_eq(json_string_value(json_array_get(result, 1)), "b");
	ck_assert_str_eq(json_string_value(json_array_get(result, 2)), "c");
	json_t *parent = status(daemon.url, json_integer_value(json_object_get(reply, "id")));
	json_t *children = json_object_get(parent, "children");
	ck_assert_uint_eq(json_array_size(children), 3);
	/* Concurrently, by the children's own times: each sleeper started before
	 * the other finished (one after the other, the second would start after
	 * the first's end). */
	json_t *first = status(daemon.url, json_integer_value(json_array_get(children, 0)));
	json_t *third = status(daemon.url, json_integer_value(json_array_get(children, 2)));
	double first_started = json_number_value(json_object_get(first, "started"));
	double first_finished = json_number_value(json_object_get(first, "finished"));
	double third_started = json_number_value(json_object_get(third, "started"));
	double third_finished = json_number_value(json_object_get(third, "finished"));
	ck_assert(first_started < third_finished && third_started < first_finished);
	json_decref(first);
	json_decref(third);
	json_t *child = status(daemon.url, json_integer_value(json_array_get(children, 1)));
	ck_assert_str_eq(text(child, "fn"), "echo");
	ck_assert_str_eq(text(child, "state"), "done");
	json_decref(child);
	json_decref(parent);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_first_failure_fails_the_gather_and_cancels_the_rest)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url,
	        "{\"op\":\"submit\",\"fn\":\"gather\",\"args\":{\"jobs\":["
	        "{\"fn\":\"sleep\",\"args\":{\"seconds\":30}},"
	        "{\"fn\":\"exec\",\"args\":{\"shell\":\"exit 2\"}}]},\"wait\":30}");
	ck_assert_str_eq(text(reply, "state"), "failed");
	ck_assert_str_eq(text(json_object_get(reply, "error"), "type"), "ExitStatus");
	json_t *parent = status(daemon.url, json_integer_value(json_object_get(reply, "id")));
	json_int_t sleeper = json_integer_value(json_array_get(json_object_get(parent, "children"), 0));
	char state[16];
	double deadline = fixture_now() + 10;
	while (strcmp(state_of(daemon.url, sleeper, state, sizeof(state)), "cancelled") != 0)
		ck_assert_msg(fixture_now() < deadline, "the other child is still %s", state);
	json_decref(parent);
	json_decref(reply);
	/* return_exceptions: the failure takes its place in the results. */
	reply = wire_call(daemon.url,
	        "{\"op\":\"submit\",\"fn\":\"gather\",\"args\":{\"return_exceptions\":true,\"jobs\":["
	        "{\"fn\":\"exec\",\"args\":{\"shell\":\"exit 2\"}},"
	        "{\"fn\":\"echo\",\"args\":{\"value\":1}}]},\"wait\":30}");
	ck_assert_str_eq(text(reply, "state"), "done");
	json_t *result = json_object_get(reply, "result");
	ck_assert_str_eq(text(json_object_get(json_array_get(result, 0), "error"), "type"),
	                 "ExitStatus");
	ck_assert_int_eq(json_integer_value(json_array_get(result, 1)), 1);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_race_takes_the_first_and_cancels_the_others)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url,
	        "{\"op\":\"submit\",\"fn\":\"race\",\"args\":{\"jobs\":["
	        "{\"fn\":\"sleep\",\"args\":{\"seconds\":30,\"result\":\"slow\"}},"
	        "{\"fn\":\"sleep\",\"args\":{\"seconds\":0.1,\"result\":\"fast\"}}]},\"wait\":30}");
	ck_assert_str_eq(text(reply, "result"), "fast");
	json_t *parent = status(daemon.url, json_integer_value(json_object_get(reply, "id")));
	json_int_t slow = json_integer_value(json_array_get(json_object_get(parent, "children"), 0));
	char state[16];
	double deadline = fixture_now() + 10;
	while (strcmp(state_of(daemon.url, slow, state, sizeof(state)), "cancelled") != 0)
		ck_assert_msg(fixture_now() < deadline, "the slow child is still %s", state);
	json_decref(parent);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_cancelling_the_parent_cancels_its_children)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url,
	        "{\"op\":\"submit\",\"fn\":\"gather\",\"args\":{\"jobs\":["
	        "{\"fn\":\"sleep\",\"args\":{\"seconds\":30}},"
	        "{\"fn\":\"exec\",\"args\":{\"argv\":[\"sleep\",\"30\"]}}]}}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	json_t *parent = NULL;
	double deadline = fixture_now() + 10;
	for (;;) { /* until the children exist */
		parent = status(daemon.url, id);
		if (json_object_get(parent, "children") != NULL)
			break;
		json_decref(parent);
		ck_assert(fixture_now() < deadline);
	}
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
	json_decref(wire_call(daemon.url, request));
	json_t *children = json_object_get(parent, "children");
	for (size_t i = 0; i < 2; i++) {
		char state[16];
		json_int_t child = json_integer_value(json_array_get(children, i));
		while (strcmp(state_of(daemon.url, child, state, sizeof(state)), "cancelled") != 0)
			ck_assert_msg(fixture_now() < deadline, "child %lld is still %s",
			              (long long)child, state);
	}
	json_decref(parent);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_children_are_checked_at_submit)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	static const char *const bad[][2] = {
		{"{\"jobs\":[]}", "args.jobs"},
		{"{\"jobs\":[{\"fn\":\"slep\"}]}", "args.jobs[0].fn"},
		{"{\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1}},{\"fn\":\"sleep\",\"args\":{}}]}",
		 "args.jobs[1].args.seconds"},
		{"{\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":[1]}]}", "args.jobs[0]"},
		{"{\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1}}],\"return_exceptions\":1}",
		 "args.return_exceptions"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char request[256];
		snprintf(request, sizeof(request), "{\"op\":\"submit\",\"fn\":\"gather\",\"args\":%s}",
		         bad[i][0]);
		json_t *reply = wire_call(daemon.url, request);
		ck_assert_msg(wire_error_code(reply) != NULL &&
		                      strcmp(wire_error_code(reply), "bad_arguments") == 0,
		              "%s was not refused with bad_arguments", bad[i][0]);
		ck_assert_str_eq(text(json_object_get(reply, "error"), "field"), bad[i][1]);
		json_decref(reply);
	}
	fixture_stop(&daemon);
}
END_TEST

/*
 * Issue 18: a gather or race whose attempts fail and are retried at once
 * while children of the failed attempt are still ending, on both workers.
 * Each parent's first child fails at once (its timeout), which decides the
 * parent's attempt and cancels the other children (tasks and pool calls that
 * end on any worker); the retry starts while their ends come back. Every
 * parent must end after its four attempts, with every child finished, and
 * weftd must stay clean (a sanitizer report makes it exit non-zero).
 */
#define RETRIED_GROUPS 300

/* A gather's children: one fails at once (its timeout), others end on their
 * own on either worker meanwhile, or are cancelled; one never ends by itself,
 * so the gather cannot succeed whatever the order. */
#define GROUP_CHILDREN                                                                      \
	"[{\"fn\":\"sleep\",\"args\":{\"seconds\":1},\"timeout\":0.001},"                         \
	"{\"fn\":\"sleep\",\"args\":{\"seconds\":0.02}},"                                         \
	"{\"fn\":\"sleep\",\"args\":{\"seconds\":0.03}},"                                         \
	"{\"fn\":\"sleep.blocking\",\"args\":{\"seconds\":0.03}},"                                \
	"{\"fn\":\"sleep\",\"args\":{\"seconds\":0.04},\"timeout\":0.035},"                       \
	"{\"fn\":\"sleep\",\"args\":{\"seconds\":5}},"                                            \
	"{\"fn\":\"echo\",\"args\":{\"value\":1},\"delay\":3}]"
#define GROUP_CHILD_COUNT 7

/* A race's: every child that can end by itself fails (a timeout, as a task
 * and as a pool call), so whichever is first, the race fails. */
#define RACE_CHILDREN                                                                       \
	"[{\"fn\":\"sleep\",\"args\":{\"seconds\":1},\"timeout\":0.001},"                         \
	"{\"fn\":\"sleep\",\"args\":{\"seconds\":1},\"timeout\":0.01},"                           \
	"{\"fn\":\"sleep.blocking\",\"args\":{\"seconds\":1},\"timeout\":0.005},"                 \
	"{\"fn\":\"sleep.blocking\",\"args\":{\"seconds\":1},\"timeout\":0.02},"                  \
	"{\"fn\":\"sleep\",\"args\":{\"seconds\":1},\"timeout\":0.03},"                           \
	"{\"fn\":\"sleep\",\"args\":{\"seconds\":5}},"                                            \
	"{\"fn\":\"echo\",\"args\":{\"value\":1},\"delay\":3}]"

/* Submits RETRIED_GROUPS parents made from `parent` (a batch element) and
 * checks that each ends with `state` after its every attempt, with every
 * child of its last attempt finished. */
static void run_retried_groups(const char *parent, const char *state, size_t attempts)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t ids[RETRIED_GROUPS];
	char request[1024];
	const size_t per_batch = 10;
	for (size_t first = 0; first < RETRIED_GROUPS; first += per_batch) {
		size_t size = 64 + per_batch * (strlen(parent) + 1);
		char *batch = malloc(size);
		size_t used = (size_t)snprintf(batch, size, "{\"op\":\"submit\",\"jobs\":[");
		for (size_t i = 0; i < per_batch; i++)
			used += (size_t)snprintf(batch + used, size - used, "%s%s", i ? "," : "", parent);
		snprintf(batch + used, size - used, "]}");
		json_t *reply = wire_call(daemon.url, batch);
		json_t *batch_ids = json_object_get(reply, "ids");
		ck_assert_msg(json_array_size(batch_ids) == per_batch, "batch refused");
		for (size_t i = 0; i < per_batch; i++)
			ids[first + i] = json_integer_value(json_array_get(batch_ids, i));
		json_decref(reply);
		free(batch);
	}
	for (size_t i = 0; i < RETRIED_GROUPS; i++) {
		/* The timeout is a hang guard only. */
		snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":120}",
		         (long long)ids[i]);
		json_t *reply = wire_call_text(daemon.url, request, strlen(request), 130 * 1000);
		ck_assert_msg(reply != NULL, "no reply for parent %lld", (long long)ids[i]);
		json_t *job = status(daemon.url, ids[i]);
		char *dump = json_dumps(job, 0);
		ck_assert_msg(strcmp(text(job, "state"), state) == 0, "parent: %s", dump);
		ck_assert_msg(json_array_size(json_object_get(job, "attempts")) == attempts,
		              "parent: %s", dump);
		json_t *children = json_object_get(job, "children");
		ck_assert_uint_eq(json_array_size(children), GROUP_CHILD_COUNT);
		/* The last attempt's children were cancelled when it ended, and its
		 * end does not wait for them (PROTOCOL: gather and race): a pool
		 * call may still be noticing its cancel. Each must end; the deadline
		 * is a hang guard. */
		double deadline = fixture_now() + 60;
		for (size_t c = 0; c < json_array_size(children); c++) {
			char child_state[32];
			json_int_t child = json_integer_value(json_array_get(children, c));
			while (strcmp(state_of(daemon.url, child, child_state, sizeof(child_state)),
			              "running") == 0 ||
			       strcmp(child_state, "queued") == 0 || strcmp(child_state, "waiting") == 0)
				ck_assert_msg(fixture_now() < deadline, "child %zu of %s is still %s", c,
				              dump, child_state);
			ck_assert_msg(strcmp(child_state, "done") == 0 ||
			                      strcmp(child_state, "failed") == 0 ||
			                      strcmp(child_state, "cancelled") == 0,
			              "child %zu of %s is %s", c, dump, child_state);
		}
		free(dump);
		json_decref(job);
		json_decref(reply);
	}
	fixture_stop(&daemon);
}

START_TEST(test_race_retried_at_once_while_children_end_on_both_workers)
{
	run_retried_groups("{\"fn\":\"race\",\"retries\":3,\"retry_backoff\":0,"
	                   "\"args\":{\"jobs\":" RACE_CHILDREN "}}",
	                   "failed", 4);
}
END_TEST

START_TEST(test_gather_retried_at_once_while_children_end_on_both_workers)
{
	run_retried_groups("{\"fn\":\"gather\",\"retries\":3,\"retry_backoff\":0,"
	                   "\"args\":{\"jobs\":" GROUP_CHILDREN "}}",
	                   "failed", 4);
}
END_TEST

/* The parent's own timeout ends each attempt while its children (none fails
 * at once here) end by themselves on both workers. */
START_TEST(test_timed_out_gather_retried_at_once_while_children_end)
{
	run_retried_groups("{\"fn\":\"gather\",\"retries\":3,\"retry_backoff\":0,\"timeout\":0.025,"
	                   "\"args\":{\"jobs\":["
	                   "{\"fn\":\"sleep\",\"args\":{\"seconds\":0.01}},"
	                   "{\"fn\":\"sleep\",\"args\":{\"seconds\":0.02}},"
	                   "{\"fn\":\"sleep.blocking\",\"args\":{\"seconds\":0.02}},"
	                   "{\"fn\":\"sleep\",\"args\":{\"seconds\":0.03}},"
	                   "{\"fn\":\"sleep.blocking\",\"args\":{\"seconds\":0.03}},"
	                   "{\"fn\":\"sleep\",\"args\":{\"seconds\":0.04}},"
	                   "{\"fn\":\"sleep\",\"args\":{\"seconds\":5}}]}}",
	                   "failed", 4);
}
END_TEST

static Suite *gather_suite(void)
{
	Suite *suite = suite_create("gather");
	TCase *gather = tcase_create("gather");
	tcase_set_timeout(gather, 60);
	tcase_add_test(gather, test_gather_returns_results_in_order_of_its_children);
	tcase_add_test(gather, test_first_failure_fails_the_gather_and_cancels_the_rest);
	tcase_add_test(gather, test_race_takes_the_first_and_cancels_the_others);
	tcase_add_test(gather, test_cancelling_the_parent_cancels_its_children);
	tcase_add_test(gather, test_children_are_checked_at_submit);
	suite_add_tcase(suite, gather);
	TCase *retried = tcase_create("retried groups");
	tcase_set_timeout(retried, 300);
	tcase_add_test(retried, test_race_retried_at_once_while_children_end_on_both_workers);
	tcase_add_test(retried, test_gather_retried_at_once_while_children_end_on_both_workers);
	tcase_add_test(retried, test_timed_out_gather_retried_at_once_while_children_end);
	suite_add_tcase(suite, retried);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(gather_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

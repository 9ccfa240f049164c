/* Coroutine jobs end to end: spawn_tree runs as runtime tasks spread over every worker. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fixture.h"
#include "tests/wire.h"

START_TEST(test_spawn_tree_counts_its_tasks_and_spreads_over_workers)
{
	fixture daemon;
	const char *const args[] = {"--workers", "2", NULL};
	fixture_start(&daemon, args);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"spawn_tree\","
	                                      "\"args\":{\"depth\":5,\"fanout\":10},\"wait\":60}");
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 111111);
	json_decref(reply);
	json_t *stats = wire_call(daemon.url, "{\"op\":\"stats\"}");
	json_t *workers = json_object_get(stats, "workers");
	ck_assert_uint_eq(json_array_size(workers), 2);
	json_int_t tasks = 0, stolen = 0;
	for (size_t i = 0; i < 2; i++) {
		json_t *worker = json_array_get(workers, i);
		json_int_t ran = json_integer_value(json_object_get(worker, "tasks_run"));
		ck_assert_msg(ran > 0, "worker %zu ran no task of the tree", i);
		tasks += ran;
		stolen += json_integer_value(json_object_get(worker, "stolen_by"));
		ck_assert_ptr_nonnull(json_object_get(worker, "parks"));
		ck_assert_ptr_nonnull(json_object_get(worker, "stolen_from"));
	}
	ck_assert_int_ge(tasks, 111111);
	ck_assert_msg(stolen > 0, "no task was stolen");
	json_decref(stats);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_cancel_stops_a_tree_at_once)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"spawn_tree\","
	                                      "\"args\":{\"depth\":6,\"fanout\":10}}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
	json_decref(wire_call(daemon.url, request));
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":10}",
	         (long long)id);
	reply = wire_call(daemon.url, request);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "cancelled");
	json_decref(reply);
	/* The daemon goes on: the cancelled tree's tasks wind down and new jobs run. */
	reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"spawn_tree\","
	                              "\"args\":{\"depth\":2,\"fanout\":3},\"wait\":30}");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 13);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_spawn_tree_arguments_are_checked)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	static const char *const bad[][2] = {
		{"{\"depth\":21,\"fanout\":2}", "args.depth"},
		{"{\"depth\":2}", "args.fanout"},
		{"{\"depth\":2,\"fanout\":0}", "args.fanout"},
		{"{\"depth\":8,\"fanout\":64}", "args.depth"}, /* far more than 10 million tasks */
		{"{\"depth\":1,\"fanout\":2,\"width\":3}", "args.width"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char request[160];
		snprintf(request, sizeof(request), "{\"op\":\"submit\",\"fn\":\"spawn_tree\",\"args\":%s}",
		         bad[i][0]);
		json_t *reply = wire_call(daemon.url, request);
		ck_assert_msg(wire_error_code(reply) != NULL &&
		                      strcmp(wire_error_code(reply), "bad_arguments") == 0,
		              "%s was not refused", bad[i][0]);
		const char *field =
			json_string_value(json_object_get(json_object_get(reply, "error"), "field"));
		ck_assert_str_eq(field != NULL ? field : "", bad[i][1]);
		json_decref(reply);
	}
	fixture_stop(&daemon);
}
END_TEST

static Suite *tasks_suite(void)
{
	Suite *suite = suite_create("tasks");
	TCase *tree = tcase_create("spawn_tree");
	tcase_set_timeout(tree, 60);
	tcase_add_test(tree, test_spawn_tree_counts_its_tasks_and_spreads_over_workers);
	tcase_add_test(tree, test_cancel_stops_a_tree_at_once);
	tcase_add_test(tree, test_spawn_tree_arguments_are_checked);
	suite_add_tcase(suite, tree);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(tasks_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

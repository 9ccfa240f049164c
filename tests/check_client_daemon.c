/*
 * libweft against a real weftd (tests/fixture.h): concurrency, wait's three
 * conditions, cancel, per-job timeouts, long polls, every error the daemon
 * answers, bad messages, many threads and clients, and allocation failures.
 */
#include <check.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "tests/fixture.h"
#include "tests/weft_assert.h"
#include "weft/weft.h"

static fixture daemon;
static weft_client *client;

static void start_daemon_with(const char *const *extra_args)
{
	fixture_start(&daemon, extra_args);
	assert_weft(weft_connect(daemon.url, &client), WEFT_OK);
}

static void start_daemon(void)
{
	start_daemon_with(NULL);
}

static void stop_daemon(void)
{
	weft_close(client);
	client = NULL;
	fixture_stop(&daemon);
}

/* A spec for fn with args given as a jansson pack format. */
static weft_job_spec *spec_of(const char *fn, json_t *args /* stolen */, double timeout)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new(fn, &spec), WEFT_OK);
	if (args != NULL)
		assert_weft(weft_job_spec_set_args(spec, args), WEFT_OK);
	json_decref(args);
	if (timeout > 0)
		assert_weft(weft_job_spec_set_timeout(spec, timeout), WEFT_OK);
	return spec;
}

static uint64_t submit(const char *fn, json_t *args /* stolen */, double timeout)
{
	weft_job_spec *spec = spec_of(fn, args, timeout);
	uint64_t id = 0;
	assert_weft(weft_submit(client, spec, &id), WEFT_OK);
	weft_job_spec_free(spec);
	ck_assert_uint_gt(id, 0);
	return id;
}

static uint64_t submit_sleep(double seconds)
{
	return submit("sleep", json_pack("{s:f}", "seconds", seconds), 0);
}

static weft_outcome *result_of(uint64_t id, double timeout)
{
	weft_outcome *outcome = NULL;
	assert_weft(weft_result(client, id, timeout, &outcome), WEFT_OK);
	ck_assert_uint_eq(outcome->id, id);
	return outcome;
}

/* ------------------------------------------------------------ basics */

START_TEST(test_ping_reports_the_protocol_and_limit)
{
	json_t *reply = NULL;
	assert_weft(weft_ping(client, &reply), WEFT_OK);
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "protocol")), 1);
	ck_assert_uint_eq(weft_client_max_message(client), 1024 * 1024);
	ck_assert_str_eq(weft_client_url(client), daemon.url);
	json_decref(reply);
}
END_TEST

START_TEST(test_echo_returns_its_value)
{
	uint64_t id = submit("echo", json_pack("{s:{s:[i,s]}}", "value", "a", 1, "two"), 0);
	weft_outcome *outcome = result_of(id, -1);
	ck_assert_int_eq(outcome->state, WEFT_STATE_DONE);
	json_t *expected = json_pack("{s:[i,s]}", "a", 1, "two");
	ck_assert(json_equal(outcome->result, expected));
	json_decref(expected);
	weft_outcome_free(outcome);
}
END_TEST

START_TEST(test_submit_wait_returns_the_outcome_of_a_short_job)
{
	weft_job_spec *spec = spec_of("echo", json_pack("{s:i}", "value", 42), 0);
	weft_outcome *outcome = NULL;
	assert_weft(weft_submit_wait(client, spec, 10, &outcome), WEFT_OK);
	ck_assert_int_eq(outcome->state, WEFT_STATE_DONE);
	ck_assert_int_eq(json_integer_value(outcome->result), 42);
	weft_outcome_free(outcome);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_submit_wait_leaves_a_long_job_running)
{
	weft_job_spec *spec = spec_of("sleep", json_pack("{s:i}", "seconds", 5), 0);
	weft_outcome *outcome = NULL;
	assert_weft(weft_submit_wait(client, spec, 0.1, &outcome), WEFT_OK);
	ck_assert_msg(!weft_state_is_finished(outcome->state), "state %s",
	              weft_state_name(outcome->state));
	ck_assert_ptr_null(outcome->result);
	assert_weft(weft_cancel(client, outcome->id, NULL, NULL), WEFT_OK);
	weft_outcome_free(outcome);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_status_describes_the_job)
{
	weft_job_spec *spec = spec_of("sleep", json_pack("{s:i}", "seconds", 5), 3);
	assert_weft(weft_job_spec_set_label(spec, "team", "ci"), WEFT_OK);
	uint64_t id = 0;
	assert_weft(weft_submit(client, spec, &id), WEFT_OK);
	weft_job_spec_free(spec);
	json_t *job = NULL;
	assert_weft(weft_status(client, id, &job), WEFT_OK);
	ck_assert_int_eq(json_integer_value(json_object_get(job, "id")), (json_int_t)id);
	ck_assert_str_eq(json_string_value(json_object_get(job, "fn")), "sleep");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "labels"), "team")),
	                 "ci");
	ck_assert(json_is_number(json_object_get(job, "created")));
	weft_state state = weft_state_from_name(json_string_value(json_object_get(job, "state")));
	ck_assert(state == WEFT_STATE_QUEUED || state == WEFT_STATE_RUNNING);
	json_decref(job);
}
END_TEST

START_TEST(test_list_filters_on_labels_and_pages)
{
	uint64_t ids[3];
	for (int i = 0; i < 3; i++) {
		weft_job_spec *spec = spec_of("echo", json_pack("{s:i}", "value", i), 0);
		assert_weft(weft_job_spec_set_label(spec, "batch", i < 2 ? "a" : "b"), WEFT_OK);
		assert_weft(weft_submit(client, spec, &ids[i]), WEFT_OK);
		weft_job_spec_free(spec);
	}
	json_t *filter = json_pack("{s:{s:s}, s:i, s:s}", "labels", "batch", "a", "limit", 1, "order",
	                           "oldest");
	json_t *jobs = NULL;
	bool more = false;
	assert_weft(weft_list(client, filter, &jobs, &more), WEFT_OK);
	ck_assert_uint_eq(json_array_size(jobs), 1);
	ck_assert(more);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")),
	                 (json_int_t)ids[0]);
	json_decref(jobs);
	json_object_set_new(filter, "after", json_integer((json_int_t)ids[0]));
	assert_weft(weft_list(client, filter, &jobs, &more), WEFT_OK);
	ck_assert_uint_eq(json_array_size(jobs), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")),
	                 (json_int_t)ids[1]);
	ck_assert(!more);
	json_decref(jobs);
	json_decref(filter);
}
END_TEST

/* The default is newest first (as ps shows), paged back with the cursor. */
START_TEST(test_list_pages_newest_first)
{
	uint64_t ids[3];
	for (int i = 0; i < 3; i++) {
		weft_job_spec *spec = spec_of("echo", json_pack("{s:i}", "value", i), 0);
		assert_weft(weft_job_spec_set_label(spec, "page", "newest"), WEFT_OK);
		assert_weft(weft_submit(client, spec, &ids[i]), WEFT_OK);
		weft_job_spec_free(spec);
	}
	json_t *filter = json_pack("{s:{s:s}, s:i}", "labels", "page", "newest", "limit", 2);
	json_t *jobs = NULL;
	bool more = false;
	uint64_t cursor = 0;
	assert_weft(weft_list_page(client, filter, &jobs, &more, &cursor), WEFT_OK);
	ck_assert_uint_eq(json_array_size(jobs), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")),
	                 (json_int_t)ids[2]);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(jobs, 1), "id")),
	                 (json_int_t)ids[1]);
	ck_assert(more);
	json_decref(jobs);
	json_object_set_new(filter, "before", json_integer((json_int_t)cursor));
	assert_weft(weft_list_page(client, filter, &jobs, &more, &cursor), WEFT_OK);
	ck_assert_uint_eq(json_array_size(jobs), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(jobs, 0), "id")),
	                 (json_int_t)ids[0]);
	ck_assert(!more);
	json_decref(jobs);
	json_decref(filter);
}
END_TEST

START_TEST(test_functions_and_stats)
{
	json_t *functions = NULL;
	assert_weft(weft_functions(client, &functions), WEFT_OK);
	bool echo = false, sleep = false;
	size_t index;
	json_t *function;
	json_array_foreach(functions, index, function)
	{
		const char *name = json_string_value(json_object_get(function, "name"));
		echo = echo || strcmp(name, "echo") == 0;
		sleep = sleep || strcmp(name, "sleep") == 0;
	}
	ck_assert(echo && sleep);
	json_decref(functions);
	json_t *stats = NULL;
	assert_weft(weft_stats(client, &stats), WEFT_OK);
	ck_assert(json_is_object(json_object_get(stats, "jobs")));
	ck_assert(json_is_array(json_object_get(stats, "workers")));
	ck_assert_ptr_null(json_object_get(stats, "ok"));
	json_decref(stats);
}
END_TEST

/* ------------------------------------------------------- concurrency */

/* A job's own started or finished time (wall clock), from weft_status. */
static double job_time(uint64_t id, const char *which)
{
	json_t *job = NULL;
	assert_weft(weft_status(client, id, &job), WEFT_OK);
	json_t *value = json_object_get(job, which);
	ck_assert_msg(json_is_number(value), "job %llu has no '%s'", (unsigned long long)id, which);
	double time = json_number_value(value);
	json_decref(job);
	return time;
}

START_TEST(test_two_sleeps_run_at_the_same_time)
{
	weft_job_spec *spec = spec_of("sleep", json_pack("{s:i}", "seconds", 1), 0);
	const weft_job_spec *specs[] = {spec, spec};
	uint64_t ids[2];
	assert_weft(weft_submit_batch(client, specs, 2, ids), WEFT_OK);
	weft_wait_result *result = NULL;
	assert_weft(weft_wait(client, ids, 2, -1, WEFT_ALL_COMPLETED, &result), WEFT_OK);
	ck_assert_uint_eq(result->done_count, 2);
	ck_assert_uint_eq(result->pending_count, 0);
	/* By their own times: each started before the other finished. */
	ck_assert(job_time(ids[0], "started") < job_time(ids[1], "finished"));
	ck_assert(job_time(ids[1], "started") < job_time(ids[0], "finished"));
	/* And each slept its second. */
	for (int i = 0; i < 2; i++)
		ck_assert(job_time(ids[i], "finished") - job_time(ids[i], "started") >= 0.99);
	weft_wait_result_free(result);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_wait_with_a_short_timeout_returns_them_pending)
{
	uint64_t ids[2] = {submit_sleep(1), submit_sleep(1)};
	double started = fixture_now();
	weft_wait_result *result = NULL;
	assert_weft(weft_wait(client, ids, 2, 0.2, WEFT_ALL_COMPLETED, &result), WEFT_OK);
	double elapsed = fixture_now() - started;
	ck_assert_uint_eq(result->done_count, 0);
	ck_assert_uint_eq(result->pending_count, 2);
	ck_assert_uint_eq(result->pending[0], ids[0]);
	ck_assert_uint_eq(result->pending[1], ids[1]);
	/* It waited its timeout (a lower bound: a slow machine may add to it). */
	ck_assert_msg(elapsed >= 0.15, "wait took only %.3f s", elapsed);
	weft_wait_result_free(result);
}
END_TEST

START_TEST(test_wait_first_completed)
{
	uint64_t ids[2] = {submit_sleep(60), submit_sleep(0.2)};
	weft_wait_result *result = NULL;
	assert_weft(weft_wait(client, ids, 2, 30, WEFT_FIRST_COMPLETED, &result), WEFT_OK);
	/* The wait ended at the short job's end, not at its 30 s timeout: the
	 * long one is still pending. */
	ck_assert_uint_eq(result->done_count, 1);
	ck_assert_uint_eq(result->done[0], ids[1]);
	ck_assert_uint_eq(result->pending_count, 1);
	ck_assert_uint_eq(result->pending[0], ids[0]);
	weft_wait_result_free(result);
}
END_TEST

START_TEST(test_wait_first_exception)
{
	/* A cancelled job is not an exception; a timed-out one is. */
	uint64_t cancelled = submit_sleep(5);
	uint64_t ids[3] = {submit_sleep(5), cancelled,
	                   submit("sleep", json_pack("{s:i}", "seconds", 5), 0.3)};
	assert_weft(weft_cancel(client, cancelled, NULL, NULL), WEFT_OK);
	weft_wait_result *result = NULL;
	assert_weft(weft_wait(client, ids, 3, 30, WEFT_FIRST_EXCEPTION, &result), WEFT_OK);
	/* It waited past the cancelled job for the timed-out one (whose own
	 * times show its 0.3 s timeout), and not for the 5 s sleep. */
	ck_assert(job_time(ids[2], "finished") - job_time(ids[2], "started") >= 0.29);
	ck_assert_uint_eq(result->done_count, 2);
	ck_assert_uint_eq(result->done[0], cancelled);
	ck_assert_uint_eq(result->done[1], ids[2]);
	ck_assert_uint_eq(result->pending_count, 1);
	ck_assert_uint_eq(result->pending[0], ids[0]);
	weft_wait_result_free(result);
}
END_TEST

START_TEST(test_wait_all_completed_with_finished_jobs)
{
	uint64_t ids[3] = {submit("echo", json_pack("{s:i}", "value", 1), 0), submit_sleep(0.1),
	                   submit("echo", json_pack("{s:i}", "value", 3), 0)};
	weft_wait_result *result = NULL;
	assert_weft(weft_wait(client, ids, 3, 60, WEFT_ALL_COMPLETED, &result), WEFT_OK);
	ck_assert_uint_eq(result->done_count, 3);
	ck_assert_ptr_null(result->pending);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(result->done[i], ids[i]);
	weft_wait_result_free(result);
}
END_TEST

START_TEST(test_wait_all_completed_follows_jobs_that_finish_out_of_order)
{
	/* The daemon watches one unfinished job at a time: the first ends last,
	 * after the others, and the wait moves past them all at once. */
	uint64_t ids[4] = {submit_sleep(0.4), submit_sleep(0.1), submit_sleep(0.2),
	                   submit("echo", json_pack("{s:i}", "value", 4), 0)};
	weft_wait_result *result = NULL;
	assert_weft(weft_wait(client, ids, 4, 30, WEFT_ALL_COMPLETED, &result), WEFT_OK);
	ck_assert_uint_eq(result->done_count, 4);
	ck_assert_uint_eq(result->pending_count, 0);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(result->done[i], ids[i]);
	weft_wait_result_free(result);
}
END_TEST

START_TEST(test_cancel_a_sleeping_job)
{
	uint64_t id = submit_sleep(30);
	bool cancelled = false;
	weft_state state = WEFT_STATE_UNKNOWN;
	assert_weft(weft_cancel(client, id, &cancelled, &state), WEFT_OK);
	ck_assert(cancelled);
	ck_assert_int_eq(state, WEFT_STATE_CANCELLED);
	weft_outcome *outcome = result_of(id, 0);
	ck_assert_int_eq(outcome->state, WEFT_STATE_CANCELLED);
	ck_assert_str_eq(outcome->error_type, "Cancelled");
	weft_outcome_free(outcome);
	assert_weft(weft_cancel(client, id, &cancelled, &state), WEFT_OK);
	ck_assert(!cancelled);
	ck_assert_int_eq(state, WEFT_STATE_CANCELLED);
}
END_TEST

START_TEST(test_a_job_past_its_timeout_fails_with_timeout)
{
	uint64_t id = submit("sleep", json_pack("{s:i}", "seconds", 60), 0.2);
	weft_outcome *outcome = result_of(id, 30);
	ck_assert_int_eq(outcome->state, WEFT_STATE_FAILED);
	ck_assert_str_eq(outcome->error_type, "Timeout");
	ck_assert_ptr_nonnull(outcome->error_message);
	weft_outcome_free(outcome);
}
END_TEST

START_TEST(test_a_timed_out_result_leaves_the_job_running)
{
	uint64_t id = submit("sleep", json_pack("{s:f, s:s}", "seconds", 3.0, "result", "woke"), 0);
	weft_outcome *outcome = NULL;
	assert_weft(weft_result(client, id, 0, &outcome), WEFT_ETIMEOUT);
	ck_assert_ptr_null(outcome);
	ck_assert_uint_eq(weft_last_error()->id, id);
	ck_assert_msg(strcmp(weft_last_error()->state, "running") == 0 ||
	                      strcmp(weft_last_error()->state, "queued") == 0,
	              "state '%s'", weft_last_error()->state);
	double started = fixture_now();
	assert_weft(weft_result(client, id, 0.1, &outcome), WEFT_ETIMEOUT);
	double elapsed = fixture_now() - started;
	ck_assert_msg(elapsed >= 0.09, "a 0.1 s result wait took only %.3f s", elapsed);
	outcome = result_of(id, -1);
	ck_assert_int_eq(outcome->state, WEFT_STATE_DONE);
	ck_assert_str_eq(json_string_value(outcome->result), "woke");
	weft_outcome_free(outcome);
}
END_TEST

/* ----------------------------------------------------- daemon errors */

START_TEST(test_unknown_ids_are_named)
{
	weft_outcome *outcome = NULL;
	assert_weft(weft_result(client, 999999, 0, &outcome), WEFT_EUNKNOWNID);
	ck_assert_uint_eq(weft_last_error()->id, 999999);
	json_t *job = NULL;
	assert_weft(weft_status(client, 999999, &job), WEFT_EUNKNOWNID);
	assert_weft(weft_cancel(client, 999999, NULL, NULL), WEFT_EUNKNOWNID);
	uint64_t ids[] = {submit_sleep(0), 999999};
	weft_wait_result *result = NULL;
	assert_weft(weft_wait(client, ids, 2, 0, WEFT_ALL_COMPLETED, &result), WEFT_EUNKNOWNID);
	ck_assert_uint_eq(weft_last_error()->id, 999999);
}
END_TEST

START_TEST(test_unknown_functions_and_bad_arguments)
{
	weft_job_spec *spec = spec_of("slep", NULL, 0);
	uint64_t id = 0;
	assert_weft(weft_submit(client, spec, &id), WEFT_EUNKNOWNFN);
	ck_assert_str_eq(weft_last_error()->field, "fn");
	weft_job_spec_free(spec);
	spec = spec_of("sleep", json_pack("{s:s}", "seconds", "long"), 0);
	assert_weft(weft_submit(client, spec, &id), WEFT_EBADARGS);
	ck_assert_msg(strstr(weft_last_error()->message, "seconds") != NULL, "message: %s",
	              weft_last_error()->message);
	weft_job_spec_free(spec);
	spec = spec_of("echo", json_pack("{s:i, s:i}", "value", 1, "extra", 2), 0);
	assert_weft(weft_submit(client, spec, &id), WEFT_EBADARGS);
	weft_job_spec_free(spec);
	ck_assert_uint_eq(id, 0);
}
END_TEST

START_TEST(test_a_batch_with_one_bad_job_accepts_none)
{
	json_t *stats = NULL;
	assert_weft(weft_stats(client, &stats), WEFT_OK);
	json_int_t before =
		json_integer_value(json_object_get(json_object_get(stats, "jobs"), "submitted"));
	json_decref(stats);
	weft_job_spec *good = spec_of("echo", json_pack("{s:i}", "value", 1), 0);
	weft_job_spec *bad = spec_of("slep", NULL, 0);
	const weft_job_spec *specs[] = {good, bad, good};
	uint64_t ids[3] = {0, 0, 0};
	assert_weft(weft_submit_batch(client, specs, 3, ids), WEFT_EUNKNOWNFN);
	ck_assert_int_eq(weft_last_error()->index, 1);
	ck_assert_str_eq(weft_last_error()->field, "jobs[1].fn");
	ck_assert_uint_eq(ids[0], 0);
	assert_weft(weft_stats(client, &stats), WEFT_OK);
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(stats, "jobs"), "submitted")),
		before);
	json_decref(stats);
	weft_job_spec_free(good);
	weft_job_spec_free(bad);
}
END_TEST

/* Sends request (stolen) with weft_request and returns the wire error code
 * of the reply ("ok" when it succeeded). */
static const char *error_of(json_t *request)
{
	static char code[64];
	json_t *reply = NULL;
	assert_weft(weft_request(client, request, 0, &reply), WEFT_OK);
	json_decref(request);
	const char *found = json_is_true(json_object_get(reply, "ok"))
	                            ? "ok"
	                            : json_string_value(json_object_get(
	                                      json_object_get(reply, "error"), "code"));
	snprintf(code, sizeof(code), "%s", found != NULL ? found : "(none)");
	json_decref(reply);
	return code;
}

START_TEST(test_bad_requests_get_their_own_codes)
{
	ck_assert_str_eq(error_of(json_pack("{s:s}", "op", "stat")), "unknown_op");
	ck_assert_str_eq(error_of(json_pack("{s:s, s:i}", "op", "status", "idd", 1)),
	                 "unknown_field");
	ck_assert_str_eq(error_of(json_pack("{s:s, s:s}", "op", "status", "id", "x")), "bad_field");
	ck_assert_str_eq(error_of(json_pack("{s:s, s:i}", "op", "status", "id", -3)), "bad_field");
	ck_assert_str_eq(error_of(json_pack("{s:i}", "id", 1)), "bad_field");
	ck_assert_str_eq(error_of(json_pack("{s:s, s:s, s:i}", "op", "submit", "fn", "echo",
	                                    "timeout", -1)),
	                 "bad_field");
	ck_assert_str_eq(error_of(json_pack("{s:s, s:s, s:[]}", "op", "submit", "fn", "echo",
	                                    "jobs")),
	                 "bad_field");
	ck_assert_str_eq(error_of(json_pack("{s:s, s:[i], s:s}", "op", "wait", "ids", 1,
	                                    "return_when", "SOMETIMES")),
	                 "bad_field");
	ck_assert_str_eq(error_of(json_pack("{s:s, s:s}", "op", "list", "state", "asleep")),
	                 "bad_field");
	ck_assert_str_eq(error_of(json_pack("{s:s}", "op", "ping")), "ok");
}
END_TEST

/* Sends bytes as they are; returns the reply's error code. */
static const char *error_of_bytes(const char *bytes, size_t size)
{
	static char code[64];
	json_t *reply = NULL;
	assert_weft(weft_request_bytes(client, bytes, size, 0, &reply), WEFT_OK);
	const char *found =
		json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
	snprintf(code, sizeof(code), "%s", found != NULL ? found : "(none)");
	json_decref(reply);
	return code;
}

START_TEST(test_garbage_and_truncated_json_are_malformed)
{
	static const char *const inputs[] = {
		"garbage", "{\"op\":\"pi", "[1,2]", "42", "\"ping\"", "{\"op\":\"ping\"} trailing",
		"{\"op\":\"\xff\"}", "",
	};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		ck_assert_msg(strcmp(error_of_bytes(inputs[i], strlen(inputs[i])), "malformed_json") ==
		                      0,
		              "input %zu ('%s') got %s", i, inputs[i],
		              error_of_bytes(inputs[i], strlen(inputs[i])));
	static const char with_nul[] = "{\"op\":\"ping\"}\0junk";
	ck_assert_str_eq(error_of_bytes(with_nul, sizeof(with_nul) - 1), "malformed_json");
	assert_weft(weft_ping(client, NULL), WEFT_OK);
}
END_TEST

START_TEST(test_oversized_messages)
{
	/* --max-message 65536: above it the daemon answers too_large, and a
	 * raw socket can send it past libweft's own 4x check. */
	size_t limit = weft_client_max_message(client);
	ck_assert_uint_eq(limit, 65536);
	size_t size = limit + 1;
	char *big = malloc(4 * limit + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, ' ', 4 * limit + 1);
	static const char ping[] = "{\"op\":\"ping\"}";
	memcpy(big, ping, sizeof(ping) - 1);
	ck_assert_str_eq(error_of_bytes(big, size), "too_large");

	nng_socket raw;
	ck_assert_int_eq(nng_req0_open(&raw), 0);
	nng_socket_set_ms(raw, NNG_OPT_RECVTIMEO, 5000);
	ck_assert_int_eq(nng_dial(raw, daemon.url, NULL, 0), 0);
	ck_assert_int_eq(nng_send(raw, big, size, 0), 0);
	char *reply = NULL;
	size_t reply_size = 0;
	ck_assert_int_eq(nng_recv(raw, &reply, &reply_size, NNG_FLAG_ALLOC), 0);
	ck_assert_msg(memmem(reply, reply_size, "too_large", 9) != NULL, "reply: %.*s",
	              (int)reply_size, reply);
	nng_free(reply, reply_size);
	/* Beyond 4x the transport drops the connection unread; libweft refuses
	 * to send it at all. */
	json_t *ignored = NULL;
	assert_weft(weft_request_bytes(client, big, 4 * limit + 1, 0, &ignored), WEFT_ETOOLARGE);
	nng_close(raw);
	free(big);
	assert_weft(weft_ping(client, NULL), WEFT_OK);
}
END_TEST

START_TEST(test_the_daemon_serves_on_after_a_peer_sends_too_much)
{
	size_t limit = weft_client_max_message(client);
	char *huge = calloc(1, 8 * limit);
	ck_assert_ptr_nonnull(huge);
	nng_socket raw;
	ck_assert_int_eq(nng_req0_open(&raw), 0);
	nng_socket_set_ms(raw, NNG_OPT_RECVTIMEO, 500);
	/* No redial once the daemon hangs up: nng 1.5.2 leaks a connection in
	 * progress when the socket is closed under it, and the REQ socket would
	 * resend the huge message on every new pipe meanwhile. */
	nng_socket_set_ms(raw, NNG_OPT_RECONNMINT, 60000);
	nng_socket_set_ms(raw, NNG_OPT_RECONNMAXT, 60000);
	ck_assert_int_eq(nng_dial(raw, daemon.url, NULL, 0), 0);
	ck_assert_int_eq(nng_send(raw, huge, 8 * limit, 0), 0);
	char *reply = NULL;
	size_t reply_size = 0;
	/* No reply: the daemon's transport hung up. */
	ck_assert_int_ne(nng_recv(raw, &reply, &reply_size, NNG_FLAG_ALLOC), 0);
	nng_close(raw);
	free(huge);
	assert_weft(weft_ping(client, NULL), WEFT_OK);
	uint64_t id = submit("echo", json_pack("{s:i}", "value", 7), 0);
	weft_outcome *outcome = result_of(id, 5);
	ck_assert_int_eq(json_integer_value(outcome->result), 7);
	weft_outcome_free(outcome);
}
END_TEST

/* ------------------------------------------------------ many threads */

#define STRESS_CLIENTS 20
#define STRESS_JOBS 1000
#define STRESS_BATCH 250

typedef struct stress_worker {
	const char *url;
	weft_client *shared; /* NULL: the worker connects on its own */
	int number;
	int wrong;   /* results that did not match */
	int failed;  /* calls that failed */
	int first_error;
	char message[256];
} stress_worker;

static void stress_note_failure(stress_worker *worker, int rv)
{
	if (worker->failed++ == 0) {
		worker->first_error = rv;
		snprintf(worker->message, sizeof(worker->message), "%s", weft_last_error()->message);
	}
}

static void *stress_run(void *argument)
{
	stress_worker *worker = argument;
	weft_client *own = worker->shared;
	int rv;
	if (own == NULL && (rv = weft_connect(worker->url, &own)) != 0) {
		stress_note_failure(worker, rv);
		return NULL;
	}
	uint64_t *ids = calloc(STRESS_JOBS, sizeof(*ids));
	weft_job_spec **specs = calloc(STRESS_BATCH, sizeof(*specs));
	for (int start = 0; start < STRESS_JOBS; start += STRESS_BATCH) {
		for (int i = 0; i < STRESS_BATCH; i++) {
			weft_job_spec_new("echo", &specs[i]);
			json_t *args = json_pack("{s:i}", "value", worker->number * 100000 + start + i);
			weft_job_spec_set_args(specs[i], args);
			json_decref(args);
		}
		if ((rv = weft_submit_batch(own, (const weft_job_spec *const *)specs, STRESS_BATCH,
		                            ids + start)) != 0)
			stress_note_failure(worker, rv);
		for (int i = 0; i < STRESS_BATCH; i++)
			weft_job_spec_free(specs[i]);
	}
	for (int i = 0; i < STRESS_JOBS; i++) {
		weft_outcome *outcome = NULL;
		if (ids[i] == 0)
			continue;
		if ((rv = weft_result(own, ids[i], 30, &outcome)) != 0) {
			stress_note_failure(worker, rv);
			continue;
		}
		if (outcome->state != WEFT_STATE_DONE ||
		    json_integer_value(outcome->result) != worker->number * 100000 + i)
			worker->wrong++;
		weft_outcome_free(outcome);
	}
	free(specs);
	free(ids);
	if (worker->shared == NULL)
		weft_close(own);
	return NULL;
}

static void run_stress(weft_client *shared)
{
	stress_worker workers[STRESS_CLIENTS];
	pthread_t threads[STRESS_CLIENTS];
	double started = fixture_now();
	for (int i = 0; i < STRESS_CLIENTS; i++) {
		workers[i] = (stress_worker){.url = daemon.url, .shared = shared, .number = i};
		ck_assert_int_eq(pthread_create(&threads[i], NULL, stress_run, &workers[i]), 0);
	}
	for (int i = 0; i < STRESS_CLIENTS; i++)
		pthread_join(threads[i], NULL);
	double elapsed = fixture_now() - started;
	for (int i = 0; i < STRESS_CLIENTS; i++) {
		ck_assert_msg(workers[i].failed == 0, "client %d: %d calls failed, first %s: %s", i,
		              workers[i].failed, weft_error_code(workers[i].first_error),
		              workers[i].message);
		ck_assert_msg(workers[i].wrong == 0, "client %d: %d wrong results", i,
		              workers[i].wrong);
	}
	fprintf(stderr, "stress: %d x %d echo jobs submitted and fetched in %.2f s (%s)\n",
	        STRESS_CLIENTS, STRESS_JOBS, elapsed, shared ? "one shared client" : "own clients");
	json_t *stats = NULL;
	assert_weft(weft_stats(client, &stats), WEFT_OK);
	ck_assert_int_ge(
		json_integer_value(json_object_get(json_object_get(stats, "jobs"), "done")),
		STRESS_CLIENTS * STRESS_JOBS);
	json_decref(stats);
}

START_TEST(test_twenty_clients_times_a_thousand_jobs)
{
	run_stress(NULL);
}
END_TEST

START_TEST(test_twenty_threads_share_one_client)
{
	run_stress(client);
}
END_TEST

typedef struct long_poll {
	uint64_t id;
	int rv;
	weft_state state;
	double finished_at;
	char error_type[32];
} long_poll;

static void *long_poll_run(void *argument)
{
	long_poll *poll = argument;
	weft_outcome *outcome = NULL;
	poll->rv = weft_result(client, poll->id, -1, &outcome);
	poll->finished_at = fixture_now();
	if (poll->rv == 0) {
		poll->state = outcome->state;
		snprintf(poll->error_type, sizeof(poll->error_type), "%s",
		         outcome->error_type != NULL ? outcome->error_type : "");
	}
	weft_outcome_free(outcome);
	return NULL;
}

START_TEST(test_a_long_poll_does_not_delay_other_threads)
{
	long_poll poll = {.id = submit_sleep(1)};
	pthread_t thread;
	double started = fixture_now();
	ck_assert_int_eq(pthread_create(&thread, NULL, long_poll_run, &poll), 0);
	for (int i = 0; i < 100; i++) {
		uint64_t id = submit("echo", json_pack("{s:i}", "value", i), 0);
		weft_outcome *outcome = result_of(id, 5);
		ck_assert_int_eq(json_integer_value(outcome->result), i);
		weft_outcome_free(outcome);
	}
	double busy = fixture_now() - started;
	pthread_join(thread, NULL);
	assert_weft(poll.rv, WEFT_OK);
	ck_assert_int_eq(poll.state, WEFT_STATE_DONE);
	ck_assert_msg(busy < poll.finished_at - started,
	              "100 round trips (%.3f s) waited for the long poll (%.3f s)", busy,
	              poll.finished_at - started);
}
END_TEST

START_TEST(test_shutdown_answers_open_long_polls)
{
	long_poll poll = {.id = submit_sleep(30)};
	pthread_t thread;
	ck_assert_int_eq(pthread_create(&thread, NULL, long_poll_run, &poll), 0);
	/* Wait until the daemon holds the long poll, then stop it. */
	double deadline = fixture_now() + 5;
	for (;;) {
		json_t *stats = NULL;
		assert_weft(weft_stats(client, &stats), WEFT_OK);
		json_int_t waiters = json_integer_value(json_object_get(stats, "waiters"));
		json_decref(stats);
		if (waiters >= 1)
			break;
		ck_assert_msg(fixture_now() < deadline, "the long poll never reached the daemon");
		struct timespec pause = {0, 10 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	weft_client *other = client;
	client = NULL;
	fixture_stop(&daemon);
	pthread_join(thread, NULL);
	ck_assert_msg(poll.rv == WEFT_ESHUTDOWN ||
	                      (poll.rv == WEFT_OK && poll.state != WEFT_STATE_DONE),
	              "a long poll across shutdown gave %s, state %s", weft_error_code(poll.rv),
	              weft_state_name(poll.state));
	weft_close(other);
}
END_TEST

/* ------------------------------------------------- allocation failures */

static atomic_long allocations_until_failure = -1;
static atomic_long allocations_live;

/* jansson 2.14 asserts (lex_unget_unsave: c == d) when an allocation fails
 * while json_loadb reads a string: a defect of jansson that aborts the
 * process, which no caller can prevent. Allocations made under json_loadb
 * are therefore never failed here. */
static bool inside_json_loadb(void)
{
	void *frames[48];
	int count = backtrace(frames, 48);
	for (int i = 0; i < count; i++) {
		Dl_info info;
		if (dladdr(frames[i], &info) != 0 && info.dli_sname != NULL &&
		    strcmp(info.dli_sname, "json_loadb") == 0)
			return true;
	}
	return false;
}

static void *failing_malloc(size_t size)
{
	long left = atomic_load(&allocations_until_failure);
	if (left >= 0 && inside_json_loadb())
		left = -1;
	if (left == 0)
		return NULL;
	if (left > 0)
		atomic_fetch_sub(&allocations_until_failure, 1);
	char *memory = malloc(size + 16);
	if (memory == NULL)
		return NULL;
	atomic_fetch_add(&allocations_live, 1);
	return memory + 16;
}

static void failing_free(void *pointer)
{
	if (pointer == NULL)
		return;
	atomic_fetch_sub(&allocations_live, 1);
	free((char *)pointer - 16);
}

/* Every call either succeeds or reports WEFT_ENOMEM; returns the first error. */
static int scenario(const char *url)
{
	weft_client *own = NULL;
	int rv = weft_connect(url, &own);
	if (rv != 0)
		return rv;
	weft_job_spec *spec = NULL;
	json_t *args = NULL, *job = NULL, *jobs = NULL, *stats = NULL, *filter = NULL;
	weft_outcome *outcome = NULL;
	weft_wait_result *waited = NULL;
	uint64_t ids[2] = {0, 0};
	if ((rv = weft_job_spec_new("echo", &spec)) != 0)
		goto done;
	if ((args = json_pack("{s:[i,s,{s:b}]}", "value", 1, "two", "three", 1)) == NULL) {
		rv = WEFT_ENOMEM;
		goto done;
	}
	if ((rv = weft_job_spec_set_args(spec, args)) != 0 ||
	    (rv = weft_job_spec_set_label(spec, "team", "ci")) != 0 ||
	    (rv = weft_submit(own, spec, &ids[0])) != 0 ||
	    (rv = weft_submit_batch(own, (const weft_job_spec *const[]){spec}, 1, &ids[1])) != 0 ||
	    (rv = weft_result(own, ids[0], 5, &outcome)) != 0 ||
	    (rv = weft_wait(own, ids, 2, 5, WEFT_ALL_COMPLETED, &waited)) != 0 ||
	    (rv = weft_status(own, ids[1], &job)) != 0)
		goto done;
	/* A short list: every earlier iteration left jobs with this label. */
	if ((filter = json_pack("{s:{s:s}, s:i, s:I}", "labels", "team", "ci", "limit", 2, "after",
	                        (json_int_t)ids[0] - 1)) == NULL) {
		rv = WEFT_ENOMEM;
		goto done;
	}
	if ((rv = weft_list(own, filter, &jobs, NULL)) != 0 || (rv = weft_stats(own, &stats)) != 0 ||
	    (rv = weft_cancel(own, ids[1], NULL, NULL)) != 0)
		goto done;
	weft_outcome_free(outcome);
	outcome = NULL;
	rv = weft_submit_wait(own, spec, 5, &outcome);
done:
	json_decref(stats);
	json_decref(jobs);
	json_decref(filter);
	json_decref(job);
	weft_wait_result_free(waited);
	weft_outcome_free(outcome);
	json_decref(args);
	weft_job_spec_free(spec);
	weft_close(own);
	return rv;
}

START_TEST(test_every_allocation_failure_is_reported_without_leaks)
{
	/* backtrace loads its unwinder on first use: do it before counting. */
	void *frame[1];
	backtrace(frame, 1);
	weft_set_alloc_funcs(failing_malloc, failing_free);
	json_set_alloc_funcs(failing_malloc, failing_free);
	long failures = 0;
	for (long fail_at = 0;; fail_at++) {
		atomic_store(&allocations_until_failure, fail_at);
		int rv = scenario(daemon.url);
		ck_assert_msg(rv == WEFT_OK || rv == WEFT_ENOMEM, "allocation %ld: %s: %s", fail_at,
		              weft_error_code(rv), weft_last_error()->message);
		ck_assert_msg(atomic_load(&allocations_live) == 0,
		              "allocation %ld: %ld blocks leaked", fail_at,
		              atomic_load(&allocations_live));
		if (atomic_load(&allocations_until_failure) > 0) {
			ck_assert_int_eq(rv, WEFT_OK);
			break;
		}
		failures++;
		ck_assert_msg(fail_at < 100000, "no end to the allocations");
	}
	atomic_store(&allocations_until_failure, -1);
	fprintf(stderr, "allocation failures: %ld points each reported as no_memory\n", failures);
	json_set_alloc_funcs(malloc, free);
	weft_set_alloc_funcs(NULL, NULL);
}
END_TEST

static const char *const small_limit[] = {"--max-message", "65536", NULL};

static void start_small_daemon(void)
{
	start_daemon_with(small_limit);
}

static Suite *daemon_suite(void)
{
	Suite *suite = suite_create("client_daemon");
	TCase *basics = tcase_create("basics");
	tcase_add_checked_fixture(basics, start_daemon, stop_daemon);
	tcase_set_timeout(basics, 20);
	tcase_add_test(basics, test_ping_reports_the_protocol_and_limit);
	tcase_add_test(basics, test_echo_returns_its_value);
	tcase_add_test(basics, test_submit_wait_returns_the_outcome_of_a_short_job);
	tcase_add_test(basics, test_submit_wait_leaves_a_long_job_running);
	tcase_add_test(basics, test_status_describes_the_job);
	tcase_add_test(basics, test_list_filters_on_labels_and_pages);
	tcase_add_test(basics, test_list_pages_newest_first);
	tcase_add_test(basics, test_functions_and_stats);
	tcase_add_test(basics, test_two_sleeps_run_at_the_same_time);
	tcase_add_test(basics, test_wait_with_a_short_timeout_returns_them_pending);
	tcase_add_test(basics, test_wait_first_completed);
	tcase_add_test(basics, test_wait_first_exception);
	tcase_add_test(basics, test_wait_all_completed_with_finished_jobs);
	tcase_add_test(basics, test_wait_all_completed_follows_jobs_that_finish_out_of_order);
	tcase_add_test(basics, test_cancel_a_sleeping_job);
	tcase_add_test(basics, test_a_job_past_its_timeout_fails_with_timeout);
	tcase_add_test(basics, test_a_timed_out_result_leaves_the_job_running);
	tcase_add_test(basics, test_unknown_ids_are_named);
	tcase_add_test(basics, test_unknown_functions_and_bad_arguments);
	tcase_add_test(basics, test_a_batch_with_one_bad_job_accepts_none);
	tcase_add_test(basics, test_bad_requests_get_their_own_codes);
	tcase_add_test(basics, test_garbage_and_truncated_json_are_malformed);
	tcase_add_test(basics, test_a_long_poll_does_not_delay_other_threads);
	tcase_add_test(basics, test_every_allocation_failure_is_reported_without_leaks);
	suite_add_tcase(suite, basics);

	TCase *limits = tcase_create("limits");
	tcase_add_checked_fixture(limits, start_small_daemon, stop_daemon);
	tcase_set_timeout(limits, 20);
	tcase_add_test(limits, test_oversized_messages);
	tcase_add_test(limits, test_the_daemon_serves_on_after_a_peer_sends_too_much);
	suite_add_tcase(suite, limits);

	TCase *load = tcase_create("load");
	tcase_add_checked_fixture(load, start_daemon, stop_daemon);
	tcase_set_timeout(load, 60);
	tcase_add_test(load, test_twenty_clients_times_a_thousand_jobs);
	tcase_add_test(load, test_twenty_threads_share_one_client);
	suite_add_tcase(suite, load);

	/* Stops the daemon itself, so no checked teardown. */
	TCase *shutdown = tcase_create("shutdown");
	tcase_add_checked_fixture(shutdown, start_daemon, NULL);
	tcase_set_timeout(shutdown, 20);
	tcase_add_test(shutdown, test_shutdown_answers_open_long_polls);
	suite_add_tcase(suite, shutdown);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(daemon_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Scheduling fields end to end: after, delay/at, retries, deadline, as_completed. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/wire.h"

static json_int_t submit(const char *url, const char *request)
{
	json_t *reply = wire_call(url, request);
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	char *text = json_dumps(reply, 0);
	ck_assert_msg(id > 0, "submit refused: %s", text);
	free(text);
	json_decref(reply);
	return id;
}

static json_t *result(const char *url, json_int_t id)
{
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":30}",
	         (long long)id);
	return wire_call(url, request);
}

static json_t *status(const char *url, json_int_t id)
{
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}", (long long)id);
	json_t *reply = wire_call(url, request);
	json_t *job = json_incref(json_object_get(reply, "job"));
	json_decref(reply);
	return job;
}

static const char *field(json_t *object, const char *name)
{
	return json_string_value(json_object_get(object, name));
}

static const char *error_type(json_t *reply)
{
	return field(json_object_get(reply, "error"), "type");
}

START_TEST(test_after_waits_for_its_dependencies)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t first = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":0.3}}");
	char request[256];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":\"then\"},\"after\":[%lld]}",
	         (long long)first);
	json_int_t second = submit(daemon.url, request);
	json_t *job = status(daemon.url, second);
	ck_assert_str_eq(field(job, "state"), "waiting");
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(job, "after"), 0)), first);
	json_decref(job);
	json_t *reply = result(daemon.url, second);
	ck_assert_str_eq(field(reply, "result"), "then");
	json_decref(reply);
	/* It ran only after its dependency finished. */
	json_t *before = status(daemon.url, first);
	json_t *after = status(daemon.url, second);
	ck_assert(json_real_value(json_object_get(after, "started")) >=
	          json_real_value(json_object_get(before, "finished")));
	json_decref(before);
	json_decref(after);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_failed_dependency_fails_the_job_unless_always)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t failing = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"exec\","
	                                        "\"args\":{\"shell\":\"exit 3\"}}");
	char request[256];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":[%lld],"
	         "\"wait\":30}",
	         (long long)failing);
	json_t *reply = wire_call(daemon.url, request);
	ck_assert_str_eq(field(reply, "state"), "failed");
	ck_assert_str_eq(error_type(reply), "DependencyFailed");
	json_decref(reply);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":[%lld],"
	         "\"after_policy\":\"always\",\"wait\":30}",
	         (long long)failing);
	reply = wire_call(daemon.url, request);
	ck_assert_str_eq(field(reply, "state"), "done");
	json_decref(reply);
	reply = wire_call(daemon.url, "{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":"
	                              "{\"value\":1}},{\"fn\":\"echo\",\"args\":{\"value\":2},"
	                              "\"after\":[999999]}]}");
	ck_assert_str_eq(wire_error_code(reply), "unknown_id");
	ck_assert_str_eq(field(json_object_get(reply, "error"), "field"), "jobs[1].after[0]");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_delay_and_at_hold_the_job)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                                      "\"delay\":0.4,\"wait\":30}");
	ck_assert_str_eq(field(reply, "state"), "done");
	json_t *job = status(daemon.url, json_integer_value(json_object_get(reply, "id")));
	double waited = json_real_value(json_object_get(job, "started")) -
	                json_real_value(json_object_get(job, "created"));
	ck_assert_msg(waited >= 0.39, "a 0.4 s delay started after %.3f s", waited);
	json_decref(job);
	json_decref(reply);
	char request[256];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"at\":%.3f,\"wait\":30}",
	         (double)time(NULL) + 1.0);
	reply = wire_call(daemon.url, request);
	ck_assert_str_eq(field(reply, "state"), "done");
	json_decref(reply);
	reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                              "\"delay\":1,\"at\":2000000000}");
	ck_assert_str_eq(wire_error_code(reply), "bad_field");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_fails_twice_then_succeeds_with_retries)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	char request[512];
	/* Counts its runs in a file: fails on the first two, succeeds on the third. */
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"shell\":\"n=$(cat %s/count "
	         "2>/dev/null || echo 0); n=$((n+1)); echo $n > %s/count; test $n -ge 3\"},"
	         "\"retries\":3,\"retry_backoff\":0.05,\"wait\":30}",
	         daemon.directory, daemon.directory);
	json_t *reply = wire_call(daemon.url, request);
	ck_assert_str_eq(field(reply, "state"), "done");
	json_t *job = status(daemon.url, json_integer_value(json_object_get(reply, "id")));
	json_t *attempts = json_object_get(job, "attempts");
	ck_assert_uint_eq(json_array_size(attempts), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *attempt = json_array_get(attempts, i);
		ck_assert_int_eq(json_integer_value(json_object_get(attempt, "number")), (int)i + 1);
		ck_assert(json_is_real(json_object_get(attempt, "finished")));
		if (i < 2)
			ck_assert_str_eq(error_type(attempt), "ExitStatus");
		else
			ck_assert_ptr_null(json_object_get(attempt, "error"));
	}
	json_decref(job);
	json_decref(reply);
	char count[160];
	snprintf(count, sizeof(count), "%s/count", daemon.directory);
	unlink(count); /* the fixture removes its directory only when empty */
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_retry_on_and_timeout_per_attempt)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	/* A type not in retry_on fails at once. */
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"shell\":"
	                                      "\"exit 1\"},\"retries\":3,\"retry_backoff\":0.05,"
	                                      "\"retry_on\":[\"Timeout\"],\"wait\":30}");
	ck_assert_str_eq(error_type(reply), "ExitStatus");
	json_t *job = status(daemon.url, json_integer_value(json_object_get(reply, "id")));
	ck_assert_uint_eq(json_array_size(json_object_get(job, "attempts")), 1);
	json_decref(job);
	json_decref(reply);
	/* The timeout is per attempt: two attempts, each stopped. */
	reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":5},"
	                              "\"timeout\":0.1,\"retries\":1,\"retry_backoff\":0.05,"
	                              "\"wait\":30}");
	ck_assert_str_eq(error_type(reply), "Timeout");
	job = status(daemon.url, json_integer_value(json_object_get(reply, "id")));
	ck_assert_uint_eq(json_array_size(json_object_get(job, "attempts")), 2);
	json_decref(job);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_deadline_bounds_the_whole_job)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	char request[256];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":30},\"deadline\":%.3f,"
	         "\"wait\":30}",
	         (double)time(NULL) + 1.0);
	json_t *reply = wire_call(daemon.url, request);
	ck_assert_str_eq(field(reply, "state"), "failed");
	ck_assert_str_eq(error_type(reply), "Deadline");
	/* It ended at its deadline, not after its 30 s sleep (the submit waited
	 * at most 30 s and got the final state, so the sleep did not finish). */
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_cancelled_waiting_job_stays_cancelled)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t first = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":0.3}}");
	char request[256];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":[%lld]}",
	         (long long)first);
	json_int_t second = submit(daemon.url, request);
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)second);
	json_decref(wire_call(daemon.url, request));
	json_decref(result(daemon.url, first));
	json_t *reply = result(daemon.url, second);
	ck_assert_str_eq(field(reply, "state"), "cancelled");
	json_decref(reply);
	json_t *job = status(daemon.url, second);
	ck_assert(json_is_null(json_object_get(job, "started")));
	json_decref(job);
	fixture_stop(&daemon);
}
END_TEST

/* Polls `stats` until `wanted` timers are armed; a bounded number of round
 * trips. Returns the last count seen. */
static json_int_t timers_settle_at(const char *url, json_int_t wanted)
{
	json_int_t timers = -1;
	for (int round = 0; round < 20000 && timers != wanted; round++) {
		json_t *stats = wire_call(url, "{\"op\":\"stats\"}");
		json_t *count = json_object_get(json_object_get(stats, "schedule"), "timers");
		ck_assert_msg(json_is_integer(count), "stats has no schedule.timers");
		timers = json_integer_value(count);
		json_decref(stats);
	}
	return timers;
}

/* A job that ends before its deadline or delay takes its timers with it: they
 * held a reference to the job until they fired, so a far deadline kept every
 * finished job alive past --retain (review of issue 9). */
START_TEST(test_timers_go_when_their_job_ends)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	double far = (double)time(NULL) + 1e6;
	char request[256];
	json_int_t last = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(request, sizeof(request),
		         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":%d},"
		         "\"deadline\":%.0f}",
		         i, far);
		last = submit(daemon.url, request);
	}
	json_decref(result(daemon.url, last));
	json_int_t delayed = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\","
	                                        "\"args\":{\"value\":1},\"delay\":1000000}");
	/* The 200 finished jobs' deadline timers go; the waiting job's delay stays. */
	ck_assert_int_eq(timers_settle_at(daemon.url, 1), 1);
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)delayed);
	json_decref(wire_call(daemon.url, request));
	ck_assert_int_eq(timers_settle_at(daemon.url, 0), 0);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_as_completed_yields_in_completion_order)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	const double seconds[3] = {0.3, 0.1, 0.2};
	json_int_t ids[3];
	for (int i = 0; i < 3; i++) {
		char request[128];
		snprintf(request, sizeof(request),
		         "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":%g}}", seconds[i]);
		ids[i] = submit(daemon.url, request);
	}
	json_int_t order[3];
	int yielded = 0;
	json_int_t pending[3] = {ids[0], ids[1], ids[2]};
	int pending_count = 3;
	while (pending_count > 0) {
		char request[256];
		int used = snprintf(request, sizeof(request), "{\"op\":\"as_completed\",\"ids\":[");
		for (int i = 0; i < pending_count; i++)
			used += snprintf(request + used, sizeof(request) - (size_t)used, "%s%lld",
			                 i ? "," : "", (long long)pending[i]);
		snprintf(request + used, sizeof(request) - (size_t)used, "],\"timeout\":10}");
		json_t *reply = wire_call(daemon.url, request);
		json_t *done = json_object_get(reply, "done");
		ck_assert_uint_gt(json_array_size(done), 0);
		for (size_t i = 0; i < json_array_size(done); i++)
			order[yielded++] = json_integer_value(json_array_get(done, i));
		json_t *still = json_object_get(reply, "pending");
		pending_count = (int)json_array_size(still);
		for (int i = 0; i < pending_count; i++)
			pending[i] = json_integer_value(json_array_get(still, (size_t)i));
		json_decref(reply);
	}
	ck_assert_int_eq(yielded, 3);
	ck_assert_int_eq(order[0], ids[1]);
	ck_assert_int_eq(order[1], ids[2]);
	ck_assert_int_eq(order[2], ids[0]);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_shutdown_with_waiting_jobs_is_clean)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	/* Timers still armed and dependencies still watched when weftd stops: the
	 * jobs end cancelled and nothing leaks (the sanitizer builds check). */
	json_int_t far = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
	                                    "\"delay\":3600,\"deadline\":4000000000}");
	json_int_t future = submit(daemon.url, "{\"op\":\"future.new\"}");
	char request[160];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":[%lld,%lld]}",
	         (long long)far, (long long)future);
	submit(daemon.url, request);
	fixture_stop(&daemon); /* checks weftd exits 0 */
}
END_TEST

START_TEST(test_a_chain_of_ten_thousand_jobs_runs_in_order)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	/* Each job runs after the one before; ids come back as the chain is built. */
	json_int_t previous = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
	                                         "\"args\":{\"seconds\":0.2,\"result\":0}}");
	json_int_t first = previous;
	for (int i = 1; i < 10000; i++) {
		char request[160];
		snprintf(request, sizeof(request),
		         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":%d},"
		         "\"after\":[%lld]}",
		         i, (long long)previous);
		previous = submit(daemon.url, request);
	}
	json_t *reply = result(daemon.url, previous);
	ck_assert_str_eq(field(reply, "state"), "done");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 9999);
	json_decref(reply);
	/* Every link started after the one before it finished. */
	json_t *before = status(daemon.url, first);
	for (json_int_t id = first + 1; id <= previous; id += 999) {
		json_t *link = status(daemon.url, id);
		json_t *prior = status(daemon.url, id - 1);
		ck_assert(json_real_value(json_object_get(link, "started")) >=
		          json_real_value(json_object_get(prior, "finished")));
		json_decref(link);
		json_decref(prior);
	}
	json_decref(before);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_a_diamond_joins_both_branches)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_int_t top = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":0.1}}");
	char request[200];
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":0.2},\"after\":[%lld]}",
	         (long long)top);
	json_int_t left = submit(daemon.url, request);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":0.1},\"after\":[%lld]}",
	         (long long)top);
	json_int_t right = submit(daemon.url, request);
	snprintf(request, sizeof(request),
	         "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":\"joined\"},"
	         "\"after\":[%lld,%lld],\"wait\":30}",
	         (long long)left, (long long)right);
	json_t *reply = wire_call(daemon.url, request);
	ck_assert_str_eq(field(reply, "result"), "joined");
	json_t *bottom = status(daemon.url, json_integer_value(json_object_get(reply, "id")));
	json_t *slow = status(daemon.url, left);
	ck_assert(json_real_value(json_object_get(bottom, "started")) >=
	          json_real_value(json_object_get(slow, "finished")));
	json_decref(slow);
	json_decref(bottom);
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_priority_orders_jobs_waiting_for_one_slot)
{
	fixture daemon;
	const char *const args[] = {"--procs", "1", NULL};
	fixture_start(&daemon, args);
	json_int_t holder = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"exec\","
	                                       "\"args\":{\"argv\":[\"sleep\",\"0.5\"]}}");
	const int priorities[3] = {0, 5, 10};
	json_int_t ids[3];
	for (int i = 0; i < 3; i++) {
		char request[160];
		snprintf(request, sizeof(request),
		         "{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"true\"]},"
		         "\"priority\":%d}",
		         priorities[i]);
		ids[i] = submit(daemon.url, request);
	}
	json_t *job = status(daemon.url, ids[1]);
	ck_assert_int_eq(json_integer_value(json_object_get(job, "priority")), 5);
	json_decref(job);
	double started[3];
	json_decref(result(daemon.url, holder));
	for (int i = 0; i < 3; i++) {
		json_decref(result(daemon.url, ids[i]));
		job = status(daemon.url, ids[i]);
		started[i] = json_real_value(json_object_get(job, "started"));
		json_decref(job);
	}
	/* Higher first: 10, then 5, then 0, though they came in the other order. */
	ck_assert(started[2] < started[1]);
	ck_assert(started[1] < started[0]);
	fixture_stop(&daemon);
}
END_TEST

static json_t *queue_entry(const char *url, const char *name)
{
	json_t *reply = wire_call(url, "{\"op\":\"queues\"}");
	json_t *found = NULL;
	json_t *queues = json_object_get(reply, "queues");
	for (size_t i = 0; i < json_array_size(queues); i++)
		if (strcmp(field(json_array_get(queues, i), "name"), name) == 0)
			found = json_incref(json_array_get(queues, i));
	json_decref(reply);
	ck_assert_msg(found != NULL, "no queue %s", name);
	return found;
}

START_TEST(test_a_named_queue_limits_its_running_jobs)
{
	fixture daemon;
	const char *const args[] = {"--queue", "builds=2", NULL};
	fixture_start(&daemon, args);
	json_int_t ids[5];
	for (int i = 0; i < 5; i++)
		ids[i] = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"sleep\","
		                            "\"args\":{\"seconds\":0.3},\"queue\":\"builds\"}");
	json_int_t most = 0;
	for (int i = 0; i < 5; i++) {
		json_t *queue = queue_entry(daemon.url, "builds");
		json_int_t running = json_integer_value(json_object_get(queue, "running"));
		most = running > most ? running : most;
		json_decref(queue);
		json_decref(result(daemon.url, ids[i]));
	}
	ck_assert_int_le(most, 2);
	/* Two at a time: the fifth starts only after two others ended. */
	json_t *fifth = status(daemon.url, ids[4]);
	json_t *first = status(daemon.url, ids[0]);
	ck_assert(json_real_value(json_object_get(fifth, "started")) >=
	          json_real_value(json_object_get(first, "finished")));
	ck_assert_str_eq(field(fifth, "queue"), "builds");
	json_decref(fifth);
	json_decref(first);
	json_t *reply = wire_call(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\","
	                                      "\"args\":{\"value\":1},\"queue\":\"bulids\"}");
	ck_assert_str_eq(wire_error_code(reply), "bad_field");
	json_decref(reply);
	fixture_stop(&daemon);
}
END_TEST

START_TEST(test_a_paused_queue_holds_its_jobs_until_resumed)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	json_decref(wire_call(daemon.url, "{\"op\":\"queue.set\",\"name\":\"nightly\",\"max\":1}"));
	json_decref(wire_call(daemon.url, "{\"op\":\"queue.pause\",\"name\":\"nightly\"}"));
	json_int_t held = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\","
	                                     "\"args\":{\"value\":\"ran\"},\"queue\":\"nightly\"}");
	json_int_t cancelled = submit(daemon.url, "{\"op\":\"submit\",\"fn\":\"echo\","
	                                          "\"args\":{\"value\":1},\"queue\":\"nightly\"}");
	char request[128];
	snprintf(request, sizeof(request), "{\"op\":\"result\",\"id\":%lld,\"timeout\":0.3}",
	         (long long)held);
	json_t *reply = wire_call(daemon.url, request);
	ck_assert_str_eq(wire_error_code(reply), "timeout");
	ck_assert_str_eq(field(json_object_get(reply, "error"), "state"), "queued");
	json_decref(reply);
	json_t *queue = queue_entry(daemon.url, "nightly");
	ck_assert(json_is_true(json_object_get(queue, "paused")));
	ck_assert_int_eq(json_integer_value(json_object_get(queue, "queued")), 2);
	json_decref(queue);
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)cancelled);
	json_decref(wire_call(daemon.url, request));
	json_decref(wire_call(daemon.url, "{\"op\":\"queue.resume\",\"name\":\"nightly\"}"));
	reply = result(daemon.url, held);
	ck_assert_str_eq(field(reply, "result"), "ran");
	json_decref(reply);
	reply = result(daemon.url, cancelled);
	ck_assert_str_eq(field(reply, "state"), "cancelled");
	json_decref(reply);
	queue = queue_entry(daemon.url, "nightly");
	ck_assert_int_eq(json_integer_value(json_object_get(queue, "running")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(queue, "queued")), 0);
	json_decref(queue);
	fixture_stop(&daemon);
}
END_TEST

/* ---- issue 18: retries with retry_backoff 0 under load ---- */

#define STORM_JOBS 2000
#define STORM_SUBMITTERS 4
#define STORM_BATCH 25

struct storm {
	const char *url;
	const char *job;         /* one batch element, submitted STORM_JOBS times in all */
	json_int_t *ids;         /* STORM_JOBS slots */
	atomic_int next;         /* slots handed out */
	atomic_bool submitted;   /* every storm job is in: the noise stops */
};

/* A submitting client: batches of the storm's job until STORM_JOBS are in. */
static void *storm_submitter(void *argument)
{
	struct storm *storm = argument;
	for (;;) {
		int first = atomic_fetch_add(&storm->next, STORM_BATCH);
		if (first >= STORM_JOBS)
			return NULL;
		int count = first + STORM_BATCH <= STORM_JOBS ? STORM_BATCH : STORM_JOBS - first;
		size_t size = 64 + (size_t)count * (strlen(storm->job) + 1);
		char *request = malloc(size);
		size_t used = (size_t)snprintf(request, size, "{\"op\":\"submit\",\"jobs\":[");
		for (int i = 0; i < count; i++)
			used += (size_t)snprintf(request + used, size - used, "%s%s", i ? "," : "",
			                         storm->job);
		snprintf(request + used, size - used, "]}");
		json_t *reply = wire_call(storm->url, request);
		json_t *ids = json_object_get(reply, "ids");
		ck_assert_msg(json_array_size(ids) == (size_t)count, "batch refused");
		for (int i = 0; i < count; i++)
			storm->ids[first + i] = json_integer_value(json_array_get(ids, (size_t)i));
		json_decref(reply);
		free(request);
	}
}

/* Another client: short jobs that keep both workers busy meanwhile. */
static void *storm_noise(void *argument)
{
	struct storm *storm = argument;
	while (!atomic_load(&storm->submitted)) {
		json_t *reply = wire_call(storm->url,
		                          "{\"op\":\"submit\",\"jobs\":["
		                          "{\"fn\":\"sleep\",\"args\":{\"seconds\":0}},"
		                          "{\"fn\":\"echo\",\"args\":{\"value\":1}},"
		                          "{\"fn\":\"sleep\",\"args\":{\"seconds\":0}},"
		                          "{\"fn\":\"echo\",\"args\":{\"value\":2}}]}");
		json_decref(reply);
	}
	return NULL;
}

/*
 * Issue 18's reproduction: STORM_JOBS jobs whose every attempt times out,
 * retried at once, submitted by four clients while two others add short jobs;
 * then one wait on them all. Every job must end failed with Timeout after
 * exactly `attempts` attempts, each attempt closed before the next started.
 * The wait's timeout is only a hang guard.
 */
static void run_storm(const char *job, size_t attempts)
{
	fixture daemon;
	fixture_start(&daemon, NULL);
	struct storm storm = {.url = daemon.url, .job = job};
	storm.ids = calloc(STORM_JOBS, sizeof(*storm.ids));
	atomic_init(&storm.next, 0);
	atomic_init(&storm.submitted, false);
	pthread_t submitters[STORM_SUBMITTERS], noise[2];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&noise[i], NULL, storm_noise, &storm), 0);
	for (int i = 0; i < STORM_SUBMITTERS; i++)
		ck_assert_int_eq(pthread_create(&submitters[i], NULL, storm_submitter, &storm), 0);
	for (int i = 0; i < STORM_SUBMITTERS; i++)
		pthread_join(submitters[i], NULL);
	atomic_store(&storm.submitted, true);
	for (int i = 0; i < 2; i++)
		pthread_join(noise[i], NULL);

	size_t size = 64 + STORM_JOBS * 12;
	char *request = malloc(size);
	size_t used = (size_t)snprintf(request, size, "{\"op\":\"wait\",\"timeout\":240,\"ids\":[");
	for (int i = 0; i < STORM_JOBS; i++)
		used += (size_t)snprintf(request + used, size - used, "%s%lld", i ? "," : "",
		                         (long long)storm.ids[i]);
	snprintf(request + used, size - used, "]}");
	json_t *reply = wire_call_text(daemon.url, request, strlen(request), 250 * 1000);
	ck_assert_msg(reply != NULL, "no reply to the wait");
	json_t *pending = json_object_get(reply, "pending");
	if (json_array_size(pending) > 0) {
		json_t *stuck = status(daemon.url, json_integer_value(json_array_get(pending, 0)));
		char *text = json_dumps(stuck, 0);
		ck_abort_msg("%zu of %d jobs never finished; the first: %s", json_array_size(pending),
		             STORM_JOBS, text);
	}
	json_decref(reply);
	free(request);

	for (int i = 0; i < STORM_JOBS; i++) {
		json_t *one = status(daemon.url, storm.ids[i]);
		char *text = json_dumps(one, 0);
		ck_assert_msg(strcmp(field(one, "state"), "failed") == 0, "not failed: %s", text);
		ck_assert_msg(strcmp(error_type(one), "Timeout") == 0, "not a timeout: %s", text);
		json_t *tries = json_object_get(one, "attempts");
		ck_assert_msg(json_array_size(tries) == attempts, "%zu attempts: %s",
		              json_array_size(tries), text);
		double previous_end = 0;
		for (size_t a = 0; a < attempts; a++) {
			json_t *attempt = json_array_get(tries, a);
			double started = json_real_value(json_object_get(attempt, "started"));
			ck_assert_msg(json_is_real(json_object_get(attempt, "finished")),
			              "attempt %zu never closed: %s", a + 1, text);
			ck_assert_msg(started >= previous_end, "attempt %zu overlaps: %s", a + 1, text);
			previous_end = json_real_value(json_object_get(attempt, "finished"));
		}
		free(text);
		json_decref(one);
	}
	free(storm.ids);
	fixture_stop(&daemon); /* a sanitizer report makes weftd exit non-zero */
}

START_TEST(test_timed_out_attempts_retried_at_once_all_end)
{
	run_storm("{\"fn\":\"sleep\",\"args\":{\"seconds\":0.1},\"timeout\":0.02,\"retries\":1,"
	          "\"retry_backoff\":0}",
	          2);
}
END_TEST

START_TEST(test_timed_out_blocking_calls_retried_at_once_all_end)
{
	run_storm("{\"fn\":\"sleep.blocking\",\"args\":{\"seconds\":0.1},\"timeout\":0.01,"
	          "\"retries\":2,\"retry_backoff\":0}",
	          3);
}
END_TEST

static Suite *schedule_suite(void)
{
	Suite *suite = suite_create("schedule");
	TCase *schedule = tcase_create("schedule");
	tcase_set_timeout(schedule, 60);
	tcase_add_test(schedule, test_after_waits_for_its_dependencies);
	tcase_add_test(schedule, test_failed_dependency_fails_the_job_unless_always);
	tcase_add_test(schedule, test_delay_and_at_hold_the_job);
	tcase_add_test(schedule, test_fails_twice_then_succeeds_with_retries);
	tcase_add_test(schedule, test_retry_on_and_timeout_per_attempt);
	tcase_add_test(schedule, test_deadline_bounds_the_whole_job);
	tcase_add_test(schedule, test_cancelled_waiting_job_stays_cancelled);
	tcase_add_test(schedule, test_timers_go_when_their_job_ends);
	tcase_add_test(schedule, test_as_completed_yields_in_completion_order);
	tcase_add_test(schedule, test_shutdown_with_waiting_jobs_is_clean);
	tcase_add_test(schedule, test_a_chain_of_ten_thousand_jobs_runs_in_order);
	tcase_add_test(schedule, test_a_diamond_joins_both_branches);
	tcase_add_test(schedule, test_priority_orders_jobs_waiting_for_one_slot);
	tcase_add_test(schedule, test_a_named_queue_limits_its_running_jobs);
	tcase_add_test(schedule, test_a_paused_queue_holds_its_jobs_until_resumed);
	suite_add_tcase(suite, schedule);
	/* Thousands of jobs: slow under ThreadSanitizer. */
	TCase *storm = tcase_create("retry storm");
	tcase_set_timeout(storm, 300);
	tcase_add_test(storm, test_timed_out_attempts_retried_at_once_all_end);
	tcase_add_test(storm, test_timed_out_blocking_calls_retried_at_once_all_end);
	suite_add_tcase(suite, storm);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(schedule_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * Jobs that yield items (`next`, the `count` generator, backpressure) and the
 * event feed (`events`, cursors), end to end against a real weftd. Timing is
 * asserted through the jobs' own counters (the "items" of a job's status:
 * count, held, bytes, pauses), never through wall-clock bounds. The tests
 * about other users make throwaway users and need root; elsewhere they are
 * skipped and counted.
 */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/as_user.h"
#include "tests/as_user_call.h"
#include "tests/fixture.h"
#include "tests/wire.h"

static fixture weftd;

/* Sends a request made with printf's format; returns the reply (new reference). */
static json_t *ask(const char *format, ...) __attribute__((format(printf, 1, 2)));
static json_t *ask(const char *format, ...)
{
	char text[4096];
	va_list args;
	va_start(args, format);
	vsnprintf(text, sizeof(text), format, args);
	va_end(args);
	json_t *reply = wire_call(weftd.url, text);
	ck_assert_msg(reply != NULL, "no reply to %s", text);
	return reply;
}

static json_int_t submit(const char *text)
{
	json_t *reply = wire_call(weftd.url, text);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "submit %s refused: %s", text,
	              wire_error_code(reply));
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	return id;
}

/* The job's status object (new reference). */
static json_t *status_of(json_int_t id)
{
	json_t *reply = ask("{\"op\":\"status\",\"id\":%lld}", (long long)id);
	json_t *job = json_incref(json_object_get(reply, "job"));
	ck_assert_msg(job != NULL, "no status for job %lld: %s", (long long)id,
	              wire_error_code(reply));
	json_decref(reply);
	return job;
}

/* One of the job's item counters (0 when it has no items yet). */
static json_int_t items_counter(json_int_t id, const char *name)
{
	json_t *job = status_of(id);
	json_int_t value = json_integer_value(json_object_get(json_object_get(job, "items"), name));
	json_decref(job);
	return value;
}

/* Polls until the job's producer has been paused `pauses` times; fails after
 * 10 s (a guard against a hang, not a timing assertion). */
static void await_pauses(json_int_t id, json_int_t pauses)
{
	double give_up = fixture_now() + 10;
	while (items_counter(id, "pauses") < pauses) {
		ck_assert_msg(fixture_now() < give_up, "job %lld was never paused %lld times",
		              (long long)id, (long long)pauses);
		usleep(2000);
	}
}

static void daemon_up(void)
{
	fixture_start(&weftd, NULL);
}

static void daemon_down(void)
{
	fixture_stop(&weftd);
}

/* ---------------------------------------------------------------- items */

START_TEST(items_arrive_while_the_job_still_runs)
{
	/* The second item comes a minute after the first: the first is read while
	 * the job certainly runs. */
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":2,\"interval\":60}}");
	json_t *reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":0,\"wait\":10}", (long long)id);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "item")), 1);
	json_decref(reply);
	json_t *job = status_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "running");
	ck_assert(json_is_null(json_object_get(job, "finished")));
	json_decref(job);
	/* Not yet: a poll that does not wait says so with `timeout`. */
	reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":1,\"wait\":0}", (long long)id);
	ck_assert_str_eq(wire_error_code(reply), "timeout");
	json_decref(reply);
	/* The job's error comes after its last item. */
	json_decref(ask("{\"op\":\"cancel\",\"id\":%lld}", (long long)id));
	reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":1,\"wait\":10}", (long long)id);
	ck_assert(json_is_true(json_object_get(reply, "done")));
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "count")), 1);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "cancelled");
	ck_assert_ptr_nonnull(json_object_get(reply, "error"));
	json_decref(reply);
}
END_TEST

START_TEST(count_yields_one_to_99_then_its_result)
{
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":99}}");
	for (int i = 0; i < 99; i++) {
		json_t *reply =
			ask("{\"op\":\"next\",\"id\":%lld,\"index\":%d,\"wait\":10}", (long long)id, i);
		ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "item %d: %s", i,
		              wire_error_code(reply));
		ck_assert_int_eq(json_integer_value(json_object_get(reply, "item")), i + 1);
		json_decref(reply);
	}
	json_t *reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":99,\"wait\":10}", (long long)id);
	ck_assert(json_is_true(json_object_get(reply, "done")));
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "count")), 99);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 99);
	json_decref(reply);
}
END_TEST

START_TEST(a_batch_of_items_comes_in_one_reply)
{
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":10}}");
	json_t *reply =
		ask("{\"op\":\"next\",\"id\":%lld,\"index\":0,\"max\":4,\"wait\":10}", (long long)id);
	json_t *items = json_object_get(reply, "items");
	ck_assert_msg(json_array_size(items) >= 1 && json_array_size(items) <= 4, "%s",
	              wire_error_code(reply));
	for (size_t i = 0; i < json_array_size(items); i++)
		ck_assert_int_eq(json_integer_value(json_array_get(items, i)), (json_int_t)i + 1);
	json_decref(reply);
}
END_TEST

START_TEST(a_full_buffer_pauses_the_producer_until_the_reader_takes_an_item)
{
	json_int_t id = submit(
		"{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":10},\"buffer\":2}");
	await_pauses(id, 1);
	/* Paused with two unread items: no third exists, and the job still runs. */
	ck_assert_int_eq(items_counter(id, "count"), 2);
	ck_assert_int_eq(items_counter(id, "held"), 2);
	json_t *reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":2,\"wait\":0}", (long long)id);
	/* Asking for item 2 takes items 0 and 1: that is what resumes it. */
	json_decref(reply);
	await_pauses(id, 2);
	ck_assert_int_eq(items_counter(id, "count"), 4);
	ck_assert_int_le(items_counter(id, "held"), 2);
	json_t *job = status_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "running");
	ck_assert_int_eq(json_integer_value(json_object_get(job, "buffer")), 2);
	json_decref(job);
	/* Read to the end: all ten come, in order. */
	for (int i = 2; i < 10; i++) {
		reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":%d,\"wait\":10}", (long long)id, i);
		ck_assert_int_eq(json_integer_value(json_object_get(reply, "item")), i + 1);
		json_decref(reply);
	}
	reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":10,\"wait\":10}", (long long)id);
	ck_assert(json_is_true(json_object_get(reply, "done")));
	json_decref(reply);
}
END_TEST

START_TEST(a_thread_function_yields_with_backpressure_on_its_pool_thread)
{
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"count.blocking\",\"args\":{\"to\":20},"
	                       "\"buffer\":3}");
	await_pauses(id, 1);
	ck_assert_int_eq(items_counter(id, "count"), 3);
	for (int i = 0; i < 20; i++) {
		json_t *reply =
			ask("{\"op\":\"next\",\"id\":%lld,\"index\":%d,\"wait\":10}", (long long)id, i);
		ck_assert_int_eq(json_integer_value(json_object_get(reply, "item")), i + 1);
		json_decref(reply);
	}
	json_t *reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":20,\"wait\":10}", (long long)id);
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "result")), 20);
	json_decref(reply);
}
END_TEST

/* A paused producer that is cancelled lets go of its pool thread: a yield
 * on a closed stream fails, so the call returns. */
START_TEST(cancelling_a_paused_thread_generator_frees_its_pool_thread)
{
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"count.blocking\",\"args\":{\"to\":1000},"
	                       "\"buffer\":1}");
	await_pauses(id, 1);
	json_decref(ask("{\"op\":\"cancel\",\"id\":%lld}", (long long)id));
	double give_up = fixture_now() + 10;
	for (;;) {
		json_t *stats = ask("{\"op\":\"stats\"}");
		json_int_t busy = json_integer_value(json_object_get(json_object_get(stats, "threads"), "busy"));
		json_int_t held = json_integer_value(
			json_object_get(json_object_get(stats, "threads"), "held_by_cancelled"));
		json_decref(stats);
		if (busy == 0 && held == 0)
			break;
		ck_assert_msg(fixture_now() < give_up, "the pool thread is still busy");
		usleep(2000);
	}
	ck_assert_int_eq(items_counter(id, "count"), 1);
}
END_TEST

START_TEST(a_job_holds_at_most_its_byte_budget_of_unread_items)
{
	fixture small;
	const char *args[] = {"--max-item-bytes-per-job", "4096", NULL};
	fixture_start(&small, args);
	json_t *reply = wire_call(small.url, "{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":100000}}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	char request[128];
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}", (long long)id);
	double give_up = fixture_now() + 10;
	json_int_t pauses = 0, bytes = 0, count = 0;
	while (pauses == 0) {
		ck_assert(fixture_now() < give_up);
		reply = wire_call(small.url, request);
		json_t *items = json_object_get(json_object_get(reply, "job"), "items");
		pauses = json_integer_value(json_object_get(items, "pauses"));
		bytes = json_integer_value(json_object_get(items, "bytes"));
		count = json_integer_value(json_object_get(items, "count"));
		json_decref(reply);
		usleep(2000);
	}
	ck_assert_int_le(bytes, 4096);
	ck_assert_int_gt(count, 10);
	ck_assert_int_lt(count, 1000);
	fixture_stop(&small);
}
END_TEST

START_TEST(a_read_item_is_gone_and_the_reply_names_the_first_held)
{
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":10}}");
	json_t *reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":5,\"wait\":10}", (long long)id);
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "item")), 6);
	json_decref(reply);
	/* The same request again is answered the same (a retried request is safe). */
	reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":5,\"wait\":10}", (long long)id);
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "item")), 6);
	json_decref(reply);
	reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":3}", (long long)id);
	ck_assert_str_eq(wire_error_code(reply), "item_gone");
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "first")), 5);
	json_decref(reply);
}
END_TEST

START_TEST(a_job_that_yields_nothing_ends_its_stream_with_its_result)
{
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":7}}");
	json_t *reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":0,\"wait\":10}", (long long)id);
	ck_assert(json_is_true(json_object_get(reply, "done")));
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "count")), 0);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	json_decref(reply);
}
END_TEST

START_TEST(unread_items_count_against_their_owners_share)
{
	fixture small;
	const char *args[] = {"--max-item-bytes-per-user", "2048", NULL};
	fixture_start(&small, args);
	json_t *reply = wire_call(small.url, "{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":1000},"
	                                     "\"wait\":10}");
	/* Nobody reads: past the user's share the yield fails, and so the job. */
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "failed");
	const char *message =
		json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
	ck_assert_msg(message != NULL && strstr(message, "at a limit") != NULL, "%s", message);
	json_decref(reply);
	fixture_stop(&small);
}
END_TEST

START_TEST(bad_next_requests_are_refused_with_the_field)
{
	static const char *const cases[][2] = {
		{"{\"op\":\"next\",\"id\":1}", "index"},
		{"{\"op\":\"next\",\"id\":1,\"index\":-1}", "index"},
		{"{\"op\":\"next\",\"id\":1,\"index\":0,\"max\":0}", "max"},
		{"{\"op\":\"next\",\"id\":1,\"index\":0,\"wait\":-2}", "wait"},
		{"{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":1},\"buffer\":0}", "buffer"},
		{"{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":-1}}", "args.to"},
		{"{\"op\":\"events\",\"after\":\"nonsense\"}", "after"},
		{"{\"op\":\"events\",\"filter\":{\"owner\":0}}", "owner"},
		{"{\"op\":\"events\",\"limit\":0}", "limit"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *reply = wire_call(weftd.url, cases[i][0]);
		ck_assert_msg(!json_is_true(json_object_get(reply, "ok")), "accepted: %s", cases[i][0]);
		const char *field =
			json_string_value(json_object_get(json_object_get(reply, "error"), "field"));
		ck_assert_msg(field != NULL && strstr(field, cases[i][1]) != NULL,
		              "%s: field %s, wanted %s", cases[i][0], field, cases[i][1]);
		json_decref(reply);
	}
	json_t *reply = wire_call(weftd.url, "{\"op\":\"next\",\"id\":999,\"index\":0}");
	ck_assert_str_eq(wire_error_code(reply), "unknown_id");
	json_decref(reply);
}
END_TEST

/* --------------------------------------------------------------- events */

/* The events of job id in a reply, as "state,state,...". */
static void states_of(json_t *reply, json_int_t id, char *out, size_t size)
{
	out[0] = '\0';
	json_t *event;
	size_t i;
	json_array_foreach(json_object_get(reply, "events"), i, event)
	{
		if (json_integer_value(json_object_get(event, "id")) != id)
			continue;
		if (out[0] != '\0')
			strncat(out, ",", size - strlen(out) - 1);
		strncat(out, json_string_value(json_object_get(event, "state")), size - strlen(out) - 1);
	}
}

START_TEST(events_tell_each_state_change_of_a_job)
{
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"wait\":10}");
	json_t *reply = ask("{\"op\":\"events\"}");
	char states[256];
	states_of(reply, id, states, sizeof(states));
	ck_assert_str_eq(states, "queued,running,done");
	json_t *first = json_array_get(json_object_get(reply, "events"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(first, "fn")), "echo");
	ck_assert_int_eq(json_integer_value(json_object_get(first, "owner")), (json_int_t)geteuid());
	ck_assert(json_is_number(json_object_get(first, "time")));
	json_decref(reply);
}
END_TEST

START_TEST(a_follower_waits_for_the_next_event)
{
	json_int_t id = submit("{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":0.3}}");
	/* Read up to the job's start, then wait: what comes is its end. */
	json_t *reply = NULL;
	char cursor[64] = "";
	double give_up = fixture_now() + 10;
	for (;;) {
		ck_assert(fixture_now() < give_up);
		reply = cursor[0] != '\0'
		                ? ask("{\"op\":\"events\",\"after\":\"%s\",\"filter\":{\"ids\":[%lld]},"
		                      "\"wait\":10}",
		                      cursor, (long long)id)
		                : ask("{\"op\":\"events\",\"filter\":{\"ids\":[%lld]},\"wait\":10}",
		                      (long long)id);
		snprintf(cursor, sizeof(cursor), "%s",
		         json_string_value(json_object_get(reply, "cursor")));
		json_t *events = json_object_get(reply, "events");
		ck_assert_int_ge(json_array_size(events), 1);
		const char *last = json_string_value(
			json_object_get(json_array_get(events, json_array_size(events) - 1), "state"));
		bool done = strcmp(last, "done") == 0;
		json_decref(reply);
		if (done)
			break;
	}
	json_t *job = status_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "done");
	json_decref(job);
}
END_TEST

START_TEST(a_cursor_that_fell_off_the_ring_is_expired_with_the_oldest)
{
	fixture small;
	const char *args[] = {"--events-max", "10", NULL};
	fixture_start(&small, args);
	json_t *reply = wire_call(small.url, "{\"op\":\"events\"}");
	char epoch_cursor[64];
	snprintf(epoch_cursor, sizeof(epoch_cursor), "%s",
	         json_string_value(json_object_get(reply, "cursor")));
	json_decref(reply);
	for (int i = 0; i < 10; i++)
		json_decref(wire_call(small.url, "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":"
		                                 "{\"value\":1},\"wait\":10}"));
	/* 30 events were made, 10 are held: a cursor at the start is stale. */
	char request[160];
	/* "E:0" reads from the oldest; the first event's cursor is stale. */
	char *colon = strchr(epoch_cursor, ':');
	ck_assert_ptr_nonnull(colon);
	strcpy(colon, ":1");
	snprintf(request, sizeof(request), "{\"op\":\"events\",\"after\":\"%s\"}", epoch_cursor);
	reply = wire_call(small.url, request);
	ck_assert_str_eq(wire_error_code(reply), "cursor_expired");
	const char *oldest = json_string_value(json_object_get(reply, "oldest"));
	ck_assert_ptr_nonnull(oldest);
	snprintf(request, sizeof(request), "{\"op\":\"events\",\"after\":\"%s\"}", oldest);
	json_decref(reply);
	/* From the oldest cursor the reader gets what is held, all ten. */
	reply = wire_call(small.url, request);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	ck_assert_int_eq(json_array_size(json_object_get(reply, "events")), 10);
	json_decref(reply);
	/* A cursor of another run (another epoch) is expired too. */
	reply = wire_call(small.url, "{\"op\":\"events\",\"after\":\"12345:3\"}");
	ck_assert_str_eq(wire_error_code(reply), "cursor_expired");
	json_decref(reply);
	fixture_stop(&small);
}
END_TEST

START_TEST(queue_changes_are_events)
{
	json_decref(ask("{\"op\":\"queue.set\",\"name\":\"builds\",\"max\":2}"));
	json_decref(ask("{\"op\":\"queue.pause\",\"name\":\"builds\"}"));
	json_t *reply = ask("{\"op\":\"events\",\"filter\":{\"type\":\"queue\"}}");
	json_t *events = json_object_get(reply, "events");
	ck_assert_int_eq(json_array_size(events), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(events, 0), "change")), "set");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(events, 0), "max")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(events, 1), "change")),
	                 "pause");
	json_decref(reply);
}
END_TEST

START_TEST(a_jobs_buffer_survives_a_restart)
{
	char directory[] = "/tmp/weft-stream-state-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	const char *args[] = {"--state-dir", directory, NULL};
	fixture durable;
	fixture_start(&durable, args);
	json_t *reply = wire_call(durable.url, "{\"op\":\"submit\",\"fn\":\"count\",\"args\":"
	                                       "{\"to\":3},\"buffer\":3,\"delay\":3600}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	fixture_stop(&durable);
	fixture_start(&durable, args);
	char request[96];
	snprintf(request, sizeof(request), "{\"op\":\"status\",\"id\":%lld}", (long long)id);
	reply = wire_call(durable.url, request);
	json_t *job = json_object_get(reply, "job");
	ck_assert_msg(job != NULL, "%s", wire_error_code(reply));
	ck_assert_int_eq(json_integer_value(json_object_get(job, "buffer")), 3);
	json_decref(reply);
	fixture_stop(&durable);
	char command[128];
	snprintf(command, sizeof(command), "rm -rf '%s'", directory);
	ck_assert_int_eq(system(command), 0);
}
END_TEST

/* ------------------------------------------------------------------ CLI */

/* Runs the weft CLI with a shell command line after "weft --url URL";
 * stdout into out; returns the exit status. */
static int weft(char *out, size_t size, const char *arguments)
{
	char command[1024];
	snprintf(command, sizeof(command), "'%s' --url '%s' %s", getenv("WEFT_CLI"), weftd.url,
	         arguments);
	FILE *pipe = popen(command, "r");
	ck_assert_ptr_nonnull(pipe);
	size_t used = fread(out, 1, size - 1, pipe);
	out[used] = '\0';
	int status = pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

START_TEST(the_cli_prints_items_one_a_line_and_the_events)
{
	char out[4096];
	ck_assert_int_eq(weft(out, sizeof(out), "call count '{\"to\":3}' --iter"), 0);
	ck_assert_str_eq(out, "1\n2\n3\n");
	ck_assert_int_eq(weft(out, sizeof(out), "call count '{\"to\":2,\"interval\":60}'"), 0);
	json_int_t id = atoll(out);
	ck_assert_int_gt(id, 0);
	char arguments[128];
	snprintf(arguments, sizeof(arguments), "cancel %lld >/dev/null", (long long)id);
	ck_assert_int_eq(weft(out, sizeof(out), arguments), 0);
	/* Its one item, then its error: exit code 1. */
	snprintf(arguments, sizeof(arguments), "iter %lld 2>/dev/null", (long long)id);
	ck_assert_int_eq(weft(out, sizeof(out), arguments), 1);
	ck_assert_str_eq(out, "1\n");
	snprintf(arguments, sizeof(arguments), "events --json --id %lld", (long long)id);
	ck_assert_int_eq(weft(out, sizeof(out), arguments), 0);
	int lines = 0;
	for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n"), lines++) {
		json_t *event = json_loads(line, 0, NULL);
		ck_assert_msg(event != NULL, "not JSON: %s", line);
		ck_assert_int_eq(json_integer_value(json_object_get(event, "id")), id);
		json_decref(event);
	}
	ck_assert_int_eq(lines, 3); /* queued, running, cancelled */
}
END_TEST

/* ---------------------------------------------------------- other users */

static struct user alice, bob;
static char sender[PATH_MAX];
static char skip_reason[256];

static json_t *call_as(const struct user *user, const char *url, const char *request)
{
	return as_user_call(user, sender, url, request);
}

START_TEST(a_stranger_sees_none_of_your_events_and_cannot_read_your_items)
{
	fixture shared;
	fixture_start(&shared, NULL);
	ck_assert_int_eq(chmod(shared.directory, 0755), 0);
	json_t *reply = call_as(&alice, shared.url,
	                        "{\"op\":\"submit\",\"fn\":\"count\",\"args\":{\"to\":3,"
	                        "\"interval\":60}}");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	ck_assert_int_gt(id, 0);
	json_decref(reply);
	char request[160];
	snprintf(request, sizeof(request), "{\"op\":\"next\",\"id\":%lld,\"index\":0,\"wait\":10}",
	         (long long)id);
	reply = call_as(&alice, shared.url, request);
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "item")), 1);
	json_decref(reply);
	/* Bob may neither read the items nor see the job's events. */
	reply = call_as(&bob, shared.url, request);
	ck_assert_str_eq(wire_error_code(reply), "permission_denied");
	json_decref(reply);
	reply = call_as(&bob, shared.url, "{\"op\":\"events\"}");
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	ck_assert_int_eq(json_array_size(json_object_get(reply, "events")), 0);
	json_decref(reply);
	/* A follow for bob waits for bob's events only: alice's end does not wake it. */
	snprintf(request, sizeof(request), "{\"op\":\"cancel\",\"id\":%lld}", (long long)id);
	json_decref(call_as(&alice, shared.url, request));
	reply = call_as(&bob, shared.url, "{\"op\":\"events\",\"wait\":0.2}");
	ck_assert_int_eq(json_array_size(json_object_get(reply, "events")), 0);
	json_decref(reply);
	/* Alice sees her own; root sees everyone's. */
	char states[256];
	reply = call_as(&alice, shared.url, "{\"op\":\"events\"}");
	states_of(reply, id, states, sizeof(states));
	ck_assert_str_eq(states, "queued,running,cancelled");
	json_decref(reply);
	reply = wire_call(shared.url, "{\"op\":\"events\"}");
	states_of(reply, id, states, sizeof(states));
	ck_assert_str_eq(states, "queued,running,cancelled");
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(json_object_get(reply, "events"), 0), "owner")),
	                 (json_int_t)alice.uid);
	json_decref(reply);
	fixture_stop(&shared);
}
END_TEST

/* Polls root's stats until the feed has appended `count` events; fails
 * after 30 s (a guard against a hang, not a timing assertion). */
static void await_appended(const char *url, json_int_t count)
{
	double give_up = fixture_now() + 30;
	for (;;) {
		json_t *stats = wire_call(url, "{\"op\":\"stats\"}");
		json_int_t appended = json_integer_value(
			json_object_get(json_object_get(stats, "events"), "appended"));
		json_decref(stats);
		if (appended >= count)
			return;
		ck_assert_msg(fixture_now() < give_up, "the feed appended %lld of %lld events",
		              (long long)appended, (long long)count);
		usleep(5000);
	}
}

START_TEST(one_users_flood_of_events_drops_only_that_users_oldest)
{
	fixture shared;
	const char *args[] = {"--events-max", "200", "--events-max-per-user", "50", NULL};
	fixture_start(&shared, args);
	ck_assert_int_eq(chmod(shared.directory, 0755), 0);
	/* Bob's cursor before anything, then his two jobs (six events). */
	json_t *reply = call_as(&bob, shared.url, "{\"op\":\"events\"}");
	char before[64];
	snprintf(before, sizeof(before), "%s", json_string_value(json_object_get(reply, "cursor")));
	json_decref(reply);
	json_int_t mine[2];
	for (int i = 0; i < 2; i++) {
		reply = call_as(&bob, shared.url,
		                "{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},"
		                "\"wait\":10}");
		mine[i] = json_integer_value(json_object_get(reply, "id"));
		ck_assert_int_gt(mine[i], 0);
		json_decref(reply);
	}
	await_appended(shared.url, 6);
	/* Alice floods: 300 jobs, 900 events, 18 times her share and 4.5 times the feed. */
	char batch[16384] = "{\"op\":\"submit\",\"jobs\":[";
	for (int i = 0; i < 300; i++)
		strcat(batch, i == 0 ? "{\"fn\":\"echo\",\"args\":{\"value\":1}}"
		                     : ",{\"fn\":\"echo\",\"args\":{\"value\":1}}");
	strcat(batch, "]}");
	reply = call_as(&alice, shared.url, batch);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	json_decref(reply);
	await_appended(shared.url, 906);
	/* Bob's old cursor is still good and every one of his events is there. */
	char request[160];
	snprintf(request, sizeof(request), "{\"op\":\"events\",\"after\":\"%s\"}", before);
	reply = call_as(&bob, shared.url, request);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	char states[256];
	for (int i = 0; i < 2; i++) {
		states_of(reply, mine[i], states, sizeof(states));
		ck_assert_str_eq(states, "queued,running,done");
	}
	ck_assert_int_eq(json_array_size(json_object_get(reply, "events")), 6);
	json_decref(reply);
	/* Alice's own flood pushed out her own oldest: a cursor from before it expired. */
	char *colon = strchr(before, ':');
	ck_assert_ptr_nonnull(colon);
	strcpy(colon, ":6");
	snprintf(request, sizeof(request), "{\"op\":\"events\",\"after\":\"%s\"}", before);
	reply = call_as(&alice, shared.url, request);
	ck_assert_str_eq(wire_error_code(reply), "cursor_expired");
	json_decref(reply);
	reply = call_as(&alice, shared.url, "{\"op\":\"stats\"}");
	json_t *events = json_object_get(reply, "events");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(events, "yours"), "held")),
	                 50);
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(events, "yours"), "dropped")), 850);
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(events, "per_user"), "max")), 50);
	json_decref(reply);
	reply = call_as(&bob, shared.url, "{\"op\":\"stats\"}");
	events = json_object_get(reply, "events");
	ck_assert_int_eq(
		json_integer_value(json_object_get(json_object_get(events, "yours"), "dropped")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(events, "users")), 2);
	json_decref(reply);
	fixture_stop(&shared);
}
END_TEST

static void prepare_users(void)
{
	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "not root: needs throwaway users");
		return;
	}
	if (as_user_shell("command -v useradd && command -v userdel") != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "useradd/userdel are not installed");
		return;
	}
	const char *build = getenv("WEFT_BUILD");
	if (build == NULL) {
		snprintf(skip_reason, sizeof(skip_reason), "WEFT_BUILD is unset (make check sets it)");
		return;
	}
	snprintf(sender, sizeof(sender), "%s/tests/helpers/wire_send", build);
	if (!as_user_create(&alice, "wsa") || !as_user_create(&bob, "wsb"))
		snprintf(skip_reason, sizeof(skip_reason), "useradd failed");
}

int main(void)
{
	/* Other users must reach the fixture's socket: keep it under /tmp. */
	setenv("TMPDIR", "/tmp", 1);
	prepare_users();
	Suite *suite = suite_create("stream");
	TCase *items = tcase_create("items and events");
	tcase_set_timeout(items, 60);
	tcase_add_checked_fixture(items, daemon_up, daemon_down);
	tcase_add_test(items, items_arrive_while_the_job_still_runs);
	tcase_add_test(items, count_yields_one_to_99_then_its_result);
	tcase_add_test(items, a_batch_of_items_comes_in_one_reply);
	tcase_add_test(items, a_full_buffer_pauses_the_producer_until_the_reader_takes_an_item);
	tcase_add_test(items, a_thread_function_yields_with_backpressure_on_its_pool_thread);
	tcase_add_test(items, cancelling_a_paused_thread_generator_frees_its_pool_thread);
	tcase_add_test(items, a_job_holds_at_most_its_byte_budget_of_unread_items);
	tcase_add_test(items, a_read_item_is_gone_and_the_reply_names_the_first_held);
	tcase_add_test(items, a_job_that_yields_nothing_ends_its_stream_with_its_result);
	tcase_add_test(items, unread_items_count_against_their_owners_share);
	tcase_add_test(items, bad_next_requests_are_refused_with_the_field);
	tcase_add_test(items, events_tell_each_state_change_of_a_job);
	tcase_add_test(items, a_follower_waits_for_the_next_event);
	tcase_add_test(items, a_cursor_that_fell_off_the_ring_is_expired_with_the_oldest);
	tcase_add_test(items, queue_changes_are_events);
	tcase_add_test(items, a_jobs_buffer_survives_a_restart);
	if (getenv("WEFT_CLI") != NULL)
		tcase_add_test(items, the_cli_prints_items_one_a_line_and_the_events);
	else
		as_user_skip(1, "stream CLI test", "WEFT_CLI is unset (make check sets it)");
	suite_add_tcase(suite, items);
	TCase *users = tcase_create("other users");
	tcase_set_timeout(users, 60);
	if (skip_reason[0] == '\0') {
		tcase_add_test(users, a_stranger_sees_none_of_your_events_and_cannot_read_your_items);
		tcase_add_test(users, one_users_flood_of_events_drops_only_that_users_oldest);
	} else {
		as_user_skip(2, "stream tests with other users", skip_reason);
	}
	suite_add_tcase(suite, users);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	as_user_remove(&alice);
	as_user_remove(&bob);
	return failed == 0 ? 0 : 1;
}

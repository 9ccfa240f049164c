/*
 * Exec jobs whose stdout lines are their items (`"items": "lines"`), end to
 * end against a real weftd: the lines in order, a line read while the
 * command still runs, bytes that are not UTF-8, long lines cut, and
 * backpressure that stops reading the pipe. Timing is asserted through
 * handshakes (a FIFO) and the job's own counters, never wall-clock bounds.
 */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/wire.h"

static fixture weftd;

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

/* Sends the request (stolen); returns the reply (new reference). */
static json_t *send_json(json_t *request)
{
	char *text = json_dumps(request, JSON_COMPACT);
	json_decref(request);
	json_t *reply = wire_call(weftd.url, text);
	ck_assert_msg(reply != NULL, "no reply to %s", text);
	free(text);
	return reply;
}

/* Submits `sh -c script` with items "lines" (buffer 0: none). */
static json_int_t submit_lines(const char *script, int buffer)
{
	json_t *request = json_pack("{s:s, s:s, s:{s:[s,s,s], s:s}}", "op", "submit", "fn", "exec",
	                            "args", "argv", "sh", "-c", script, "items", "lines");
	if (buffer > 0)
		json_object_set_new(request, "buffer", json_integer(buffer));
	json_t *reply = send_json(request);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "submit refused: %s",
	              wire_error_code(reply));
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	return id;
}

/* Item `index` of job id (new reference), waiting for it. */
static json_t *next_item(json_int_t id, int index)
{
	json_t *reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":%d,\"wait\":20}", (long long)id,
	                    index);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "item %d: %s", index,
	              wire_error_code(reply));
	ck_assert_msg(!json_is_true(json_object_get(reply, "done")), "item %d: the stream ended",
	              index);
	json_t *item = json_incref(json_object_get(reply, "item"));
	json_decref(reply);
	return item;
}

static void expect_text_item(json_int_t id, int index, const char *text)
{
	json_t *item = next_item(id, index);
	ck_assert_msg(json_is_string(item), "item %d is not a string", index);
	ck_assert_str_eq(json_string_value(item), text);
	json_decref(item);
}

/* The stream's end at index: done with count items and the job's state. */
static void expect_end(json_int_t id, int index, const char *state)
{
	json_t *reply = ask("{\"op\":\"next\",\"id\":%lld,\"index\":%d,\"wait\":20}", (long long)id,
	                    index);
	ck_assert_msg(json_is_true(json_object_get(reply, "done")), "no end at %d: %s", index,
	              wire_error_code(reply));
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "count")), index);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), state);
	json_decref(reply);
}

static json_t *status_of(json_int_t id)
{
	json_t *reply = ask("{\"op\":\"status\",\"id\":%lld}", (long long)id);
	json_t *job = json_incref(json_object_get(reply, "job"));
	ck_assert_msg(job != NULL, "no status: %s", wire_error_code(reply));
	json_decref(reply);
	return job;
}

static json_int_t items_counter(json_int_t id, const char *name)
{
	json_t *job = status_of(id);
	json_int_t value = json_integer_value(json_object_get(json_object_get(job, "items"), name));
	json_decref(job);
	return value;
}

static void daemon_up(void)
{
	fixture_start(&weftd, NULL);
}

static void daemon_down(void)
{
	fixture_stop(&weftd);
}

static void small_items_up(void)
{
	static const char *const args[] = {"--max-item-bytes", "256", NULL};
	fixture_start(&weftd, args);
}

START_TEST(each_stdout_line_is_an_item_then_the_result)
{
	json_int_t id = submit_lines("for i in 1 2 3; do echo $i; done", 0);
	expect_text_item(id, 0, "1");
	expect_text_item(id, 1, "2");
	expect_text_item(id, 2, "3");
	expect_end(id, 3, "done");
	/* The result is as without items. */
	json_t *reply = ask("{\"op\":\"result\",\"id\":%lld,\"timeout\":20}", (long long)id);
	json_t *result = json_object_get(reply, "result");
	ck_assert_msg(result != NULL, "no result: %s", wire_error_code(reply));
	ck_assert_str_eq(json_string_value(json_object_get(result, "stdout")), "1\n2\n3\n");
	json_decref(reply);
}
END_TEST

START_TEST(a_last_line_without_newline_counts_at_the_end)
{
	json_int_t id = submit_lines("printf 'a\\n\\nb'", 0);
	expect_text_item(id, 0, "a");
	expect_text_item(id, 1, "");
	expect_text_item(id, 2, "b");
	expect_end(id, 3, "done");
}
END_TEST

START_TEST(a_line_is_read_while_the_command_still_runs)
{
	char fifo[256];
	snprintf(fifo, sizeof(fifo), "%s/gate", weftd.directory);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	char script[512];
	/* The command blocks on the FIFO until the test has read the first line. */
	snprintf(script, sizeof(script), "echo first; read x < %s; echo second", fifo);
	json_int_t id = submit_lines(script, 0);
	expect_text_item(id, 0, "first");
	json_t *job = status_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "running");
	json_decref(job);
	int fd = open(fifo, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "go\n", 3), 3);
	close(fd);
	expect_text_item(id, 1, "second");
	expect_end(id, 2, "done");
}
END_TEST

START_TEST(a_line_that_is_not_utf8_comes_as_base64)
{
	json_int_t id = submit_lines("printf 'ok\\n\\377\\376\\n'", 0);
	expect_text_item(id, 0, "ok");
	json_t *item = next_item(id, 1);
	ck_assert_msg(json_is_object(item), "item 1 is not an object");
	ck_assert_str_eq(json_string_value(json_object_get(item, "base64")), "//4=");
	json_decref(item);
	expect_end(id, 2, "done");
}
END_TEST

START_TEST(a_long_line_is_cut_into_pieces_of_the_item_budget)
{
	/* --max-item-bytes 256: pieces of (256 - 16) / 4 * 3 = 180 bytes. */
	json_int_t id = submit_lines("head -c 500 /dev/zero | tr '\\0' a; echo; echo tail", 0);
	size_t sizes[] = {180, 180, 140};
	for (int i = 0; i < 3; i++) {
		json_t *item = next_item(id, i);
		ck_assert_msg(json_is_string(item), "piece %d is not text", i);
		ck_assert_uint_eq(json_string_length(item), sizes[i]);
		ck_assert_int_eq(json_string_value(item)[0], 'a');
		json_decref(item);
	}
	expect_text_item(id, 3, "tail");
	expect_end(id, 4, "done");
}
END_TEST

START_TEST(a_full_buffer_stops_reading_the_pipe_and_every_line_arrives_in_order)
{
	json_int_t id = submit_lines("seq 1 10000", 2);
	/* The producer pauses once the two unread items are there. */
	double give_up = fixture_now() + 20;
	while (items_counter(id, "pauses") < 1) {
		ck_assert_msg(fixture_now() < give_up, "job %lld was never paused", (long long)id);
		usleep(2000);
	}
	for (int i = 0; i < 10000; i++) {
		if (i % 500 == 0) {
			json_int_t held = items_counter(id, "held");
			ck_assert_msg(held <= 2, "job holds %lld unread items, buffer 2", (long long)held);
		}
		char expected[16];
		snprintf(expected, sizeof(expected), "%d", i + 1);
		expect_text_item(id, i, expected);
	}
	expect_end(id, 10000, "done");
	ck_assert_int_gt(items_counter(id, "pauses"), 0);
	ck_assert_int_le(items_counter(id, "held"), 2);
}
END_TEST

/* A job nobody reads stays paused with its command blocked; cancel and
 * timeout still end it (its unread lines are not waited for). */
static void await_paused(json_int_t id)
{
	double give_up = fixture_now() + 20;
	while (items_counter(id, "pauses") < 1) {
		ck_assert_msg(fixture_now() < give_up, "job %lld was never paused", (long long)id);
		usleep(2000);
	}
}

START_TEST(a_paused_job_nobody_reads_is_cancelled)
{
	json_int_t id = submit_lines("yes", 1);
	await_paused(id);
	json_decref(ask("{\"op\":\"cancel\",\"id\":%lld}", (long long)id));
	expect_text_item(id, 0, "y");
	expect_end(id, 1, "cancelled");
	ck_assert_int_le(items_counter(id, "held"), 1);
}
END_TEST

START_TEST(a_paused_job_nobody_reads_times_out)
{
	json_t *reply = ask("{\"op\":\"submit\",\"fn\":\"exec\",\"timeout\":1,\"buffer\":1,"
	                    "\"args\":{\"argv\":[\"yes\"],\"items\":\"lines\"}}");
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	reply = ask("{\"op\":\"result\",\"id\":%lld,\"timeout\":30}", (long long)id);
	json_t *error = json_object_get(reply, "error");
	ck_assert_msg(error != NULL, "no error: %s", wire_error_code(reply));
	json_decref(reply);
	json_t *job = status_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "error"), "type")),
	                 "Timeout");
	json_decref(job);
}
END_TEST

START_TEST(bad_items_values_are_refused)
{
	static const char *const bad[] = {"\"words\"", "1", "true", "null", "[\"lines\"]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *reply = ask("{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"true\"],"
		                    "\"items\":%s}}",
		                    bad[i]);
		ck_assert_msg(!json_is_true(json_object_get(reply, "ok")), "items %s accepted", bad[i]);
		ck_assert_str_eq(wire_error_code(reply), "bad_arguments");
		json_t *error = json_object_get(reply, "error");
		ck_assert_str_eq(json_string_value(json_object_get(error, "field")), "args.items");
		json_decref(reply);
	}
	json_t *reply = ask("{\"op\":\"submit\",\"fn\":\"exec\",\"args\":{\"argv\":[\"true\"],"
	                    "\"items\":\"lines\",\"capture\":false}}");
	ck_assert_str_eq(wire_error_code(reply), "bad_arguments");
	json_decref(reply);
}
END_TEST

static void small_share_up(void)
{
	static const char *const args[] = {"--max-item-bytes-per-user", "256", NULL};
	fixture_start(&weftd, args);
}

START_TEST(lines_past_the_owners_share_fail_the_job_after_the_items_kept)
{
	/* Each one-digit line costs 3 + 64 bytes of the 256: the fourth does not fit. */
	json_int_t id = submit_lines("seq 1 9", 0);
	json_t *reply = ask("{\"op\":\"result\",\"id\":%lld,\"timeout\":20}", (long long)id);
	json_decref(reply);
	json_t *job = status_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(job, "state")), "failed");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(job, "error"), "type")),
	                 "ItemError");
	json_decref(job);
	expect_text_item(id, 0, "1");
	expect_text_item(id, 1, "2");
	expect_text_item(id, 2, "3");
	expect_end(id, 3, "failed");
}
END_TEST

START_TEST(a_long_text_line_is_cut_between_characters)
{
	/* "a" and 100 three-byte characters: the cut at 180 would split one, so
	 * it comes 2 bytes earlier, and both pieces stay text. */
	json_int_t id = submit_lines("printf a; i=0; while [ $i -lt 100 ]; do printf '\\342\\202\\254';"
	                             " i=$((i + 1)); done; echo",
	                             0);
	size_t sizes[] = {178, 123};
	for (int i = 0; i < 2; i++) {
		json_t *item = next_item(id, i);
		ck_assert_msg(json_is_string(item), "piece %d is not text", i);
		ck_assert_uint_eq(json_string_length(item), sizes[i]);
		json_decref(item);
	}
	expect_end(id, 2, "done");
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("exec_lines");
	TCase *lines = tcase_create("stdout lines as items");
	tcase_set_timeout(lines, 120);
	tcase_add_checked_fixture(lines, daemon_up, daemon_down);
	tcase_add_test(lines, each_stdout_line_is_an_item_then_the_result);
	tcase_add_test(lines, a_last_line_without_newline_counts_at_the_end);
	tcase_add_test(lines, a_line_is_read_while_the_command_still_runs);
	tcase_add_test(lines, a_line_that_is_not_utf8_comes_as_base64);
	tcase_add_test(lines, a_full_buffer_stops_reading_the_pipe_and_every_line_arrives_in_order);
	tcase_add_test(lines, a_paused_job_nobody_reads_is_cancelled);
	tcase_add_test(lines, a_paused_job_nobody_reads_times_out);
	tcase_add_test(lines, bad_items_values_are_refused);
	suite_add_tcase(suite, lines);
	TCase *small = tcase_create("a small item budget");
	tcase_set_timeout(small, 60);
	tcase_add_checked_fixture(small, small_items_up, daemon_down);
	tcase_add_test(small, a_long_line_is_cut_into_pieces_of_the_item_budget);
	tcase_add_test(small, a_long_text_line_is_cut_between_characters);
	suite_add_tcase(suite, small);
	TCase *share = tcase_create("a small share of item bytes");
	tcase_set_timeout(share, 60);
	tcase_add_checked_fixture(share, small_share_up, daemon_down);
	tcase_add_test(share, lines_past_the_owners_share_fail_the_job_after_the_items_kept);
	suite_add_tcase(suite, share);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}

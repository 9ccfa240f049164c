/*
 * Exec output as a stream of bytes against a real weftd: the `output` op
 * through libweft (lines arriving while the command runs, binary and NUL
 * bytes exact, 20 MB exact, the merged order of both streams, output kept on
 * cancel, a reader that fell behind the window, the per-user budget, refusals),
 * streamed stdin (the `input` op: 20 MB exact with flow control), and the CLI
 * (`weft run` byte for byte and live, Ctrl-C, `--stdin` streaming, `weft logs`,
 * another user refused).
 *
 * No test sleeps to let things settle: where an order matters the job waits
 * for a file that the test makes once it has seen what came before (a
 * handshake), and time is compared between the job's own clock readings and
 * the reader's.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#include "tests/as_user.h"
#include "tests/fixture.h"
#include "tests/wire.h"

#define WAIT_SECONDS 20.0

static fixture weftd;
static weft_client *client;
static char directory[64];

static void start_with(const char *const *options)
{
	fixture_start(&weftd, options);
	ck_assert_msg(weft_connect(weftd.url, &client) == WEFT_OK, "connect: %s",
	              weft_last_error()->message);
	snprintf(directory, sizeof(directory), "/tmp/weft-stream-XXXXXX");
	ck_assert(mkdtemp(directory) != NULL);
}

static void setup(void)
{
	start_with(NULL);
}

static void teardown(void)
{
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	(void)as_user_shell(command);
	weft_close(client);
	client = NULL;
	if (weftd.pid != 0)
		fixture_stop(&weftd);
}

static double wall_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Sends request (stolen) and returns the reply (new reference), which must say ok. */
static json_t *request_ok(json_t *request, double reply_wait)
{
	ck_assert(request != NULL);
	json_t *reply = NULL;
	int rv = weft_request(client, request, reply_wait, &reply);
	json_decref(request);
	ck_assert_msg(rv == WEFT_OK, "request: %s", weft_last_error()->message);
	char *text = json_dumps(reply, JSON_COMPACT);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "reply: %.300s", text);
	free(text);
	return reply;
}

/* Submits an exec job with args (stolen); returns its id. */
static uint64_t submit(json_t *args)
{
	json_t *reply = request_ok(json_pack("{s:s, s:s, s:o}", "op", "submit", "fn", "exec", "args",
	                                     args),
	                           0);
	uint64_t id = (uint64_t)json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	ck_assert(id > 0);
	return id;
}

static uint64_t submit_shell(const char *line, bool wait_for_readers)
{
	return submit(json_pack("{s:s, s:b}", "shell", line, "output_wait", wait_for_readers));
}

/* The job's finished reply (new reference). */
static json_t *result_of(uint64_t id)
{
	return request_ok(json_pack("{s:s, s:I, s:f}", "op", "result", "id", (json_int_t)id,
	                            "timeout", WAIT_SECONDS),
	                  WAIT_SECONDS);
}

static weft_output *read_output(uint64_t id, weft_stream stream, int64_t offset, double wait)
{
	weft_output *output = NULL;
	int rv = weft_output_read(client, id, stream, offset, 0, wait, &output);
	ck_assert_msg(rv == WEFT_OK, "output of job %llu: %s (%s)", (unsigned long long)id,
	              weft_strerror(rv), weft_last_error()->message);
	return output;
}

/* Reads stream from offset until the text holds `count` newlines (or the end),
 * waiting for each piece. Returns the bytes (malloc'd, NUL added) and their
 * length; *next is where to go on. */
static char *read_lines(uint64_t id, weft_stream stream, uint64_t *offset, int count,
                        size_t *length)
{
	char *text = malloc(1);
	size_t used = 0;
	int lines = 0;
	double deadline = fixture_now() + WAIT_SECONDS;
	while (lines < count) {
		ck_assert_msg(fixture_now() < deadline, "only %d of %d lines came", lines, count);
		weft_output *output = read_output(id, stream, (int64_t)*offset, 5);
		ck_assert_uint_eq(output->lost, 0);
		text = realloc(text, used + output->length + 1);
		if (output->length > 0)
			memcpy(text + used, output->data, output->length);
		for (size_t i = 0; i < output->length; i++)
			lines += output->data[i] == '\n';
		used += output->length;
		*offset = output->next;
		bool eof = output->eof;
		weft_output_free(output);
		if (eof)
			break;
	}
	text[used] = '\0';
	*length = used;
	return text;
}

static void make_file(const char *name)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", directory, name);
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	close(fd);
}

/* A shell line that waits until the test makes file `name`. */
static const char *wait_for(const char *name)
{
	static char line[8][160];
	static int turn;
	char *text = line[turn++ % 8];
	snprintf(text, 160, "while [ ! -e %s/%s ]; do sleep 0.005; done", directory, name);
	return text;
}

static weft_state job_state(uint64_t id)
{
	json_t *job = NULL;
	ck_assert_int_eq(weft_status(client, id, &job), WEFT_OK);
	weft_state state = weft_state_from_name(json_string_value(json_object_get(job, "state")));
	json_decref(job);
	return state;
}

/* ------------------------------------------------------------ the op */

START_TEST(test_lines_arrive_while_the_command_still_runs)
{
	char line[512];
	snprintf(line, sizeof(line),
	         "echo \"1 $(date +%%s.%%N)\"; %s; echo \"2 $(date +%%s.%%N)\"; %s; "
	         "echo \"3 $(date +%%s.%%N)\"",
	         wait_for("one"), wait_for("two"));
	uint64_t id = submit_shell(line, false);
	uint64_t offset = 0;
	size_t length;
	double seen[3], printed[3];
	const char *names[] = {"one", "two"};
	for (int i = 0; i < 3; i++) {
		uint64_t before = offset;
		char *text = read_lines(id, WEFT_STREAM_STDOUT, &offset, 1, &length);
		seen[i] = wall_now();
		int number = 0;
		ck_assert_msg(sscanf(text, "%d %lf", &number, &printed[i]) == 2 && number == i + 1,
		              "line %d: '%s' (from offset %llu)", i + 1, text,
		              (unsigned long long)before);
		free(text);
		if (i < 2) {
			/* The command is blocked on the handshake: it still runs. */
			ck_assert_int_eq(job_state(id), WEFT_STATE_RUNNING);
			make_file(names[i]);
		}
	}
	/* Each line was in the reader's hands before the job printed the next. */
	ck_assert_msg(seen[0] < printed[1] && seen[1] < printed[2],
	              "seen %.6f %.6f, printed %.6f %.6f", seen[0], seen[1], printed[1], printed[2]);
	json_decref(result_of(id));
}
END_TEST

START_TEST(test_binary_and_nul_bytes_are_exact)
{
	static const unsigned char expected[] = {'a', 0, 'b', 0xff, 0xfe, '\n', 0, 0xc3};
	uint64_t id = submit(json_pack("{s:[s,s]}", "argv", "printf", "a\\0b\\377\\376\\n\\0\\303"));
	json_t *reply = result_of(id);
	const json_t *result = json_object_get(reply, "result");
	/* The retained result says base64, since the bytes are not UTF-8. */
	ck_assert_str_eq(json_string_value(json_object_get(result, "encoding")), "base64");
	ck_assert_str_eq(json_string_value(json_object_get(result, "stdout")), "YQBi//4KAMM=");
	ck_assert_str_eq(json_string_value(json_object_get(result, "stderr")), "");
	json_decref(reply);
	weft_output *output = read_output(id, WEFT_STREAM_STDOUT, 0, 0);
	ck_assert_uint_eq(output->length, sizeof(expected));
	ck_assert(memcmp(output->data, expected, sizeof(expected)) == 0);
	ck_assert(output->eof);
	ck_assert_uint_eq(output->next, sizeof(expected));
	weft_output_free(output);
	/* Text that is UTF-8 stays text, with no encoding field. */
	id = submit(json_pack("{s:[s,s]}", "argv", "printf", "caf\\303\\251"));
	reply = result_of(id);
	result = json_object_get(reply, "result");
	ck_assert_str_eq(json_string_value(json_object_get(result, "stdout")), "caf\xc3\xa9");
	ck_assert_ptr_null(json_object_get(result, "encoding"));
	json_decref(reply);
}
END_TEST

/* The output op's two forms, as any nng client sees them: "binary" puts the
 * bytes after the JSON and one NUL, exactly, and "bytes" counts them; without
 * it they are base64 in "data". Both say the same. */
START_TEST(test_binary_replies_carry_the_bytes_after_the_json)
{
	static const unsigned char out[] = {'a', 0, 'b', 0xff, '\n'};
	static const unsigned char err[] = {0, 'e', 0xfe};
	uint64_t id = submit(json_pack("{s:s}", "shell",
	                               "printf 'a\\0b\\377\\n'; printf '\\0e\\376' >&2"));
	json_decref(result_of(id));
	const unsigned char *expected[] = {out, err};
	size_t sizes[] = {sizeof(out), sizeof(err)};
	const char *streams[] = {"stdout", "stderr"};
	for (int i = 0; i < 2; i++) {
		char text[160];
		snprintf(text, sizeof(text),
		         "{\"op\":\"output\",\"id\":%llu,\"stream\":\"%s\",\"binary\":true}",
		         (unsigned long long)id, streams[i]);
		size_t length = 0;
		char *raw = wire_call_raw(weftd.url, text, strlen(text), 10000, &length);
		ck_assert_ptr_nonnull(raw);
		char *nul = memchr(raw, '\0', length);
		ck_assert_msg(nul != NULL, "no NUL after the JSON: %.200s", raw);
		size_t header = (size_t)(nul - raw);
		json_t *reply = json_loadb(raw, header, 0, NULL);
		ck_assert_msg(reply != NULL, "the JSON before the NUL does not parse: %.200s", raw);
		ck_assert(json_is_true(json_object_get(reply, "ok")));
		ck_assert_ptr_null(json_object_get(reply, "data"));
		ck_assert_int_eq(json_integer_value(json_object_get(reply, "bytes")), (json_int_t)sizes[i]);
		ck_assert_int_eq(json_integer_value(json_object_get(reply, "next")), (json_int_t)sizes[i]);
		ck_assert(json_is_true(json_object_get(reply, "eof")));
		ck_assert_uint_eq(length - header - 1, sizes[i]);
		ck_assert(memcmp(nul + 1, expected[i], sizes[i]) == 0);
		json_decref(reply);
		free(raw);

		/* Without "binary": base64 in "data", and nothing after the JSON. */
		snprintf(text, sizeof(text), "{\"op\":\"output\",\"id\":%llu,\"stream\":\"%s\"}",
		         (unsigned long long)id, streams[i]);
		raw = wire_call_raw(weftd.url, text, strlen(text), 10000, &length);
		ck_assert_ptr_nonnull(raw);
		ck_assert_ptr_null(memchr(raw, '\0', length));
		reply = json_loadb(raw, length, 0, NULL);
		ck_assert_ptr_nonnull(reply);
		ck_assert_ptr_null(json_object_get(reply, "bytes"));
		ck_assert_str_eq(json_string_value(json_object_get(reply, "data")),
		                 i == 0 ? "YQBi/wo=" : "AGX+");
		json_decref(reply);
		free(raw);
	}
	/* Both streams, binary: the runs add up to the bytes after the NUL. */
	char text[160];
	snprintf(text, sizeof(text), "{\"op\":\"output\",\"id\":%llu,\"binary\":true}",
	         (unsigned long long)id);
	size_t length = 0;
	char *raw = wire_call_raw(weftd.url, text, strlen(text), 10000, &length);
	ck_assert_ptr_nonnull(raw);
	char *nul = memchr(raw, '\0', length);
	ck_assert_ptr_nonnull(nul);
	json_t *reply = json_loadb(raw, (size_t)(nul - raw), 0, NULL);
	ck_assert_ptr_nonnull(reply);
	json_int_t sum = 0;
	size_t index;
	json_t *run;
	json_array_foreach(json_object_get(reply, "runs"), index, run)
		sum += json_integer_value(json_array_get(run, 1));
	ck_assert_int_eq(sum, (json_int_t)(sizeof(out) + sizeof(err)));
	ck_assert_uint_eq(length - (size_t)(nul - raw) - 1, sizeof(out) + sizeof(err));
	json_decref(reply);
	free(raw);
}
END_TEST

START_TEST(test_twenty_megabytes_through_stdout_are_exact)
{
	enum { SIZE = 20 * 1000 * 1000 };
	char path[128], line[256];
	snprintf(path, sizeof(path), "%s/big", directory);
	unsigned char *expected = malloc(SIZE);
	uint32_t state = 2463534242u;
	for (size_t i = 0; i < SIZE; i++) {
		state ^= state << 13;
		state ^= state >> 17;
		state ^= state << 5;
		expected[i] = (unsigned char)state;
	}
	FILE *file = fopen(path, "w");
	ck_assert(file != NULL && fwrite(expected, 1, SIZE, file) == SIZE);
	fclose(file);
	snprintf(line, sizeof(line), "cat %s", path);
	/* Backpressure: the reader takes every byte whatever the window. */
	uint64_t id = submit_shell(line, true);
	uint64_t offset = 0;
	double deadline = fixture_now() + 60;
	for (;;) {
		ck_assert_msg(fixture_now() < deadline, "only %llu bytes came",
		              (unsigned long long)offset);
		weft_output *output = read_output(id, WEFT_STREAM_STDOUT, (int64_t)offset, 5);
		ck_assert_uint_eq(output->lost, 0);
		ck_assert_uint_eq(output->offset, offset);
		ck_assert_uint_le(offset + output->length, SIZE);
		ck_assert_msg(output->length == 0 ||
		                      memcmp(output->data, expected + offset, output->length) == 0,
		              "bytes differ in %llu..%llu", (unsigned long long)offset,
		              (unsigned long long)(offset + output->length));
		offset = output->next;
		bool eof = output->eof;
		weft_output_free(output);
		if (eof)
			break;
	}
	ck_assert_uint_eq(offset, SIZE);
	free(expected);
	json_t *reply = result_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	json_decref(reply);
}
END_TEST

START_TEST(test_both_streams_merge_in_the_order_written)
{
	char line[512];
	snprintf(line, sizeof(line),
	         "printf o1; %s; printf e1 >&2; %s; printf o2; %s; printf e2 >&2", wait_for("a"),
	         wait_for("b"), wait_for("c"));
	uint64_t id = submit_shell(line, false);
	const char *pieces[] = {"o1", "e1", "o2", "e2"};
	const char *files[] = {"a", "b", "c"};
	uint64_t offset = 0;
	for (int i = 0; i < 4; i++) {
		weft_output *output = read_output(id, WEFT_STREAM_BOTH, (int64_t)offset, WAIT_SECONDS);
		ck_assert_uint_eq(output->length, 2);
		ck_assert(memcmp(output->data, pieces[i], 2) == 0);
		ck_assert_uint_eq(output->run_count, 1);
		ck_assert_int_eq(output->runs[0].stream, i % 2 ? WEFT_STREAM_STDERR : WEFT_STREAM_STDOUT);
		offset = output->next;
		weft_output_free(output);
		if (i < 3)
			make_file(files[i]);
	}
	json_decref(result_of(id));
	/* Read again at once: the runs keep the order; each stream has its own numbering. */
	weft_output *all = read_output(id, WEFT_STREAM_BOTH, 0, 0);
	ck_assert_uint_eq(all->length, 8);
	ck_assert(memcmp(all->data, "o1e1o2e2", 8) == 0);
	ck_assert_uint_eq(all->run_count, 4);
	for (size_t i = 0; i < 4; i++) {
		ck_assert_int_eq(all->runs[i].stream, i % 2 ? WEFT_STREAM_STDERR : WEFT_STREAM_STDOUT);
		ck_assert_uint_eq(all->runs[i].length, 2);
	}
	ck_assert(all->eof);
	weft_output_free(all);
	weft_output *err = read_output(id, WEFT_STREAM_STDERR, 0, 0);
	ck_assert_uint_eq(err->length, 4);
	ck_assert(memcmp(err->data, "e1e2", 4) == 0);
	ck_assert_uint_eq(err->next, 4);
	weft_output_free(err);
	weft_output *out = read_output(id, WEFT_STREAM_STDOUT, -2, 0);
	ck_assert_uint_eq(out->offset, 2);
	ck_assert(out->length == 2 && memcmp(out->data, "o2", 2) == 0);
	weft_output_free(out);
}
END_TEST

START_TEST(test_output_is_kept_when_the_job_is_cancelled)
{
	char line[256];
	snprintf(line, sizeof(line), "echo before; %s; echo never", wait_for("never"));
	uint64_t id = submit_shell(line, false);
	uint64_t offset = 0;
	size_t length;
	char *text = read_lines(id, WEFT_STREAM_STDOUT, &offset, 1, &length);
	ck_assert_str_eq(text, "before\n");
	free(text);
	bool cancelled = false;
	ck_assert_int_eq(weft_cancel(client, id, &cancelled, NULL), WEFT_OK);
	ck_assert(cancelled);
	/* The end comes once the process is reaped; what it wrote stays. */
	offset = 0;
	text = read_lines(id, WEFT_STREAM_BOTH, &offset, 100, &length);
	ck_assert_str_eq(text, "before\n");
	free(text);
	weft_output *output = read_output(id, WEFT_STREAM_BOTH, 0, 0);
	ck_assert(output->eof);
	ck_assert_uint_eq(output->length, 7);
	weft_output_free(output);
	ck_assert_int_eq(job_state(id), WEFT_STATE_CANCELLED);
}
END_TEST

static void start_small_window(void)
{
	static const char *const options[] = {"--output-window", "262144", "--output-budget",
	                                      "600000", NULL};
	start_with(options);
}

/* With backpressure, a slow reader loses nothing even when a whole pipe's
 * worth (256 KiB, as big as this window) is ready at once: weftd reads no
 * more than the window keeps room for. A read of a full pipe in one go
 * pushed unread bytes out (weft run lost 64 KiB under load). */
START_TEST(test_a_slow_reader_of_a_waiting_window_loses_nothing_of_a_full_pipe)
{
	enum { SIZE = 3 * 1000 * 1000, PIECE = 4096 };
	uint64_t id = submit_shell("head -c 3000000 /dev/zero | tr '\\0' x", true);
	uint64_t offset = 0;
	double deadline = fixture_now() + 120; /* a hang guard */
	for (;;) {
		ck_assert_msg(fixture_now() < deadline, "only %llu bytes came",
		              (unsigned long long)offset);
		weft_output *output = NULL;
		ck_assert_int_eq(weft_output_read(client, id, WEFT_STREAM_STDOUT, (int64_t)offset, PIECE,
		                                  5, &output),
		                 WEFT_OK);
		ck_assert_msg(output->lost == 0, "%llu bytes lost at %llu",
		              (unsigned long long)output->lost, (unsigned long long)offset);
		ck_assert_uint_eq(output->offset, offset);
		for (size_t i = 0; i < output->length; i++)
			ck_assert_int_eq(output->data[i], 'x');
		offset = output->next;
		bool eof = output->eof;
		weft_output_free(output);
		if (eof)
			break;
	}
	ck_assert_uint_eq(offset, SIZE);
	json_t *reply = result_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	json_decref(reply);
}
END_TEST

START_TEST(test_a_reader_behind_the_window_is_told_what_it_lost)
{
	/* 1,000,000 bytes without backpressure: the 256 KiB window keeps the last ones. */
	uint64_t id = submit_shell("head -c 1000000 /dev/zero | tr '\\0' x", false);
	json_decref(result_of(id));
	weft_output *output = read_output(id, WEFT_STREAM_STDOUT, 0, 0);
	ck_assert_uint_gt(output->lost, 0);
	ck_assert_uint_eq(output->offset, output->lost);
	ck_assert_uint_eq(output->next, 1000000);
	ck_assert_uint_eq(output->length, 1000000 - output->lost);
	ck_assert_uint_le(output->length, 262144);
	ck_assert(output->eof);
	weft_output_free(output);
	/* A reader at the end loses nothing. */
	output = read_output(id, WEFT_STREAM_STDOUT, 1000000, 0);
	ck_assert_uint_eq(output->lost, 0);
	ck_assert_uint_eq(output->length, 0);
	ck_assert(output->eof);
	weft_output_free(output);
}
END_TEST

START_TEST(test_a_users_windows_stay_within_the_budget)
{
	/* Three jobs of ~250 KB each against a budget of 600,000 bytes: the
	 * oldest finished window is dropped; its bytes count as lost. */
	uint64_t ids[3];
	for (int i = 0; i < 3; i++) {
		ids[i] = submit_shell("head -c 250000 /dev/zero", false);
		json_decref(result_of(ids[i]));
	}
	weft_output *first = read_output(ids[0], WEFT_STREAM_STDOUT, 0, 0);
	ck_assert_uint_eq(first->lost, 250000);
	ck_assert_uint_eq(first->length, 0);
	weft_output_free(first);
	weft_output *last = read_output(ids[2], WEFT_STREAM_STDOUT, 0, 0);
	ck_assert_uint_eq(last->lost, 0);
	ck_assert_uint_eq(last->length, 250000);
	weft_output_free(last);
	/* stats says what the windows hold: within the budget, headers included. */
	json_t *stats = NULL;
	ck_assert_int_eq(weft_stats(client, &stats), WEFT_OK);
	const json_t *output = json_object_get(stats, "output");
	json_int_t yours = json_integer_value(json_object_get(output, "yours_bytes"));
	ck_assert_int_ge(yours, 500000);
	ck_assert_int_le(yours, 600000);
	ck_assert_int_eq(json_integer_value(json_object_get(output, "held_bytes")), yours);
	json_decref(stats);
}
END_TEST

static json_int_t my_output_bytes(void)
{
	json_t *stats = NULL;
	ck_assert_int_eq(weft_stats(client, &stats), WEFT_OK);
	json_int_t yours =
		json_integer_value(json_object_get(json_object_get(stats, "output"), "yours_bytes"));
	json_decref(stats);
	return yours;
}

/* --retain-max 1: when retention drops a job, its output window goes too
 * (nobody can ask for it any more), rather than holding the user's budget. */
START_TEST(test_a_dropped_jobs_window_is_freed)
{
	uint64_t first = submit_shell("head -c 100000 /dev/zero", false);
	json_decref(result_of(first));
	ck_assert_int_ge(my_output_bytes(), 100000);
	uint64_t second = submit_shell("true", false);
	json_decref(result_of(second));
	json_t *job = NULL;
	double deadline = fixture_now() + WAIT_SECONDS;
	while (weft_status(client, first, &job) == WEFT_OK) {
		json_decref(job);
		job = NULL;
		ck_assert_msg(fixture_now() < deadline, "job %llu was never dropped",
		              (unsigned long long)first);
	}
	ck_assert_int_eq(weft_last_error()->code, WEFT_EUNKNOWNID);
	ck_assert_int_eq(my_output_bytes(), 0);
}
END_TEST

static void start_retain_one(void)
{
	static const char *const options[] = {"--retain-max", "1", NULL};
	start_with(options);
}

/* Reads the whole of stream from offset 0 (the job has ended); *lost gets
 * what the replies said was lost. A new string (*length bytes). */
static char *read_all(uint64_t id, weft_stream stream, size_t *length, uint64_t *lost)
{
	char *text = malloc(1);
	size_t used = 0;
	uint64_t offset = 0;
	*lost = 0;
	for (int round = 0; round < 100000; round++) {
		weft_output *output = read_output(id, stream, (int64_t)offset, 0);
		*lost += output->lost;
		text = realloc(text, used + output->length + 1);
		if (output->length > 0)
			memcpy(text + used, output->data, output->length);
		used += output->length;
		offset = output->next;
		bool done = output->eof || output->length == 0;
		weft_output_free(output);
		if (done)
			break;
	}
	text[used] = '\0';
	*length = used;
	return text;
}

static char *expected_seq(int to, size_t *length)
{
	size_t capacity = (size_t)to * 8 + 1, used = 0;
	char *text = malloc(capacity);
	for (int i = 1; i <= to; i++)
		used += (size_t)snprintf(text + used, capacity - used, "%d\n", i);
	*length = used;
	return text;
}

static json_int_t my_spool_bytes(void)
{
	json_t *stats = NULL;
	ck_assert_int_eq(weft_stats(client, &stats), WEFT_OK);
	json_int_t bytes = json_integer_value(
		json_object_get(json_object_get(stats, "output"), "yours_spool_bytes"));
	json_decref(stats);
	return bytes;
}

/* A window of 256 KiB and a spool: 2.7 MB of output read afterwards from
 * byte 0 are all there, exact; without output_spool the start is lost. */
START_TEST(test_a_spooled_jobs_output_is_whole_after_it_left_the_window)
{
	size_t want_length;
	char *want = expected_seq(400000, &want_length);
	uint64_t spooled = submit(json_pack("{s:[s,s,s], s:b}", "argv", "seq", "1", "400000",
	                                    "output_spool", 1));
	uint64_t plain = submit(json_pack("{s:[s,s,s]}", "argv", "seq", "1", "400000"));
	json_decref(result_of(spooled));
	json_decref(result_of(plain));
	ck_assert_int_gt(my_spool_bytes(), (json_int_t)want_length - 300000);

	size_t length;
	uint64_t lost;
	char *text = read_all(spooled, WEFT_STREAM_STDOUT, &length, &lost);
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(length, want_length);
	ck_assert(memcmp(text, want, want_length) == 0);
	free(text);
	/* Merged, the same bytes (all stdout, one run at a time). */
	text = read_all(spooled, WEFT_STREAM_BOTH, &length, &lost);
	ck_assert_uint_eq(lost, 0);
	ck_assert_uint_eq(length, want_length);
	ck_assert(memcmp(text, want, want_length) == 0);
	free(text);

	text = read_all(plain, WEFT_STREAM_STDOUT, &length, &lost);
	ck_assert_uint_gt(lost, 0);
	ck_assert_uint_eq(length + lost, want_length);
	free(text);
	free(want);
}
END_TEST

/* Both streams through the spool: each read alone, and merged with runs that
 * put every byte back in its stream. */
START_TEST(test_both_streams_come_back_from_the_spool_in_their_runs)
{
	uint64_t id = submit(json_pack(
		"{s:s, s:b}", "shell",
		"i=0; while [ $i -lt 20000 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done",
		"output_spool", 1));
	json_decref(result_of(id));
	size_t out_length, err_length;
	uint64_t lost;
	char *out = read_all(id, WEFT_STREAM_STDOUT, &out_length, &lost);
	ck_assert_uint_eq(lost, 0);
	char *err = read_all(id, WEFT_STREAM_STDERR, &err_length, &lost);
	ck_assert_uint_eq(lost, 0);
	ck_assert_ptr_nonnull(strstr(out, "out-0\nout-1\n"));
	ck_assert_ptr_nonnull(strstr(out, "out-19999\n"));
	ck_assert_ptr_null(strstr(out, "err-"));
	ck_assert_ptr_nonnull(strstr(err, "err-19999\n"));

	/* Merged: split the runs back into their streams. */
	char *split[2] = {malloc(out_length + 1), malloc(err_length + 1)};
	size_t split_length[2] = {0, 0};
	uint64_t offset = 0;
	for (int round = 0; round < 100000; round++) {
		weft_output *output = read_output(id, WEFT_STREAM_BOTH, (int64_t)offset, 0);
		ck_assert_uint_eq(output->lost, 0);
		size_t at = 0;
		for (size_t i = 0; i < output->run_count; i++) {
			int which = output->runs[i].stream == WEFT_STREAM_STDERR;
			size_t part = output->runs[i].length;
			ck_assert_uint_le(split_length[which] + part, which ? err_length : out_length);
			memcpy(split[which] + split_length[which], output->data + at, part);
			split_length[which] += part;
			at += part;
		}
		offset = output->next;
		bool done = output->eof || output->length == 0;
		weft_output_free(output);
		if (done)
			break;
	}
	ck_assert_uint_eq(split_length[0], out_length);
	ck_assert_uint_eq(split_length[1], err_length);
	ck_assert(memcmp(split[0], out, out_length) == 0);
	ck_assert(memcmp(split[1], err, err_length) == 0);
	free(split[0]);
	free(split[1]);
	free(out);
	free(err);
}
END_TEST

/* A spool that would pass the user's --output-spool is dropped whole: the
 * reader is told what was lost, as without one, and the bytes come back. */
START_TEST(test_a_spool_over_the_budget_is_dropped_and_told_as_lost)
{
	uint64_t id = submit(json_pack("{s:s, s:b}", "shell", "head -c 30000000 /dev/zero",
	                               "output_spool", 1));
	json_decref(result_of(id));
	ck_assert_int_eq(my_spool_bytes(), 0);
	weft_output *output = read_output(id, WEFT_STREAM_STDOUT, 0, 0);
	ck_assert_uint_gt(output->lost, 0);
	weft_output_free(output);
}
END_TEST

/* Without --output-spool a job may not ask for one: refused at submit. */
START_TEST(test_output_spool_is_refused_without_a_spool)
{
	json_t *reply = NULL;
	json_t *request = json_pack("{s:s, s:s, s:{s:[s], s:b}}", "op", "submit", "fn", "exec",
	                            "args", "argv", "true", "output_spool", 1);
	ck_assert_int_eq(weft_request(client, request, 0, &reply), WEFT_OK);
	json_decref(request);
	const json_t *error = json_object_get(reply, "error");
	ck_assert_str_eq(json_string_value(json_object_get(error, "code")), "bad_arguments");
	ck_assert_str_eq(json_string_value(json_object_get(error, "field")), "args.output_spool");
	json_decref(reply);
}
END_TEST

static char spool_state[64];

static void start_spooling(void)
{
	snprintf(spool_state, sizeof(spool_state), "/tmp/weft-spool-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(spool_state));
	static const char *options[] = {"--output-window", "262144", "--output-spool", "20000000",
	                                "--state-dir", NULL, NULL};
	options[5] = spool_state;
	start_with(options);
}

static void stop_spooling(void)
{
	teardown();
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", spool_state);
	ck_assert_int_eq(system(command), 0);
}

START_TEST(test_a_reader_of_a_job_that_has_not_started_waits)
{
	uint64_t future = 0;
	ck_assert_int_eq(weft_future_new(client, NULL, &future), WEFT_OK);
	json_t *reply = request_ok(json_pack("{s:s, s:s, s:{s:s}, s:[I]}", "op", "submit", "fn",
	                                     "exec", "args", "shell", "echo late", "after",
	                                     (json_int_t)future),
	                           0);
	uint64_t id = (uint64_t)json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	weft_output *output = read_output(id, WEFT_STREAM_STDOUT, 0, 0);
	ck_assert(!output->started);
	ck_assert(!output->eof);
	ck_assert_uint_eq(output->length, 0);
	weft_output_free(output);
	ck_assert_int_eq(weft_future_set_result(client, future, json_true()), WEFT_OK);
	uint64_t offset = 0;
	size_t length;
	char *text = read_lines(id, WEFT_STREAM_STDOUT, &offset, 1, &length);
	ck_assert_str_eq(text, "late\n");
	free(text);
}
END_TEST

START_TEST(test_bad_output_requests_are_refused_with_the_field)
{
	uint64_t id = submit_shell("true", false);
	json_decref(result_of(id));
	struct {
		const char *request;
		const char *code;
		const char *field;
	} cases[] = {
		{"{\"op\":\"output\",\"id\":%llu,\"stream\":\"stdin\"}", "bad_field", "stream"},
		{"{\"op\":\"output\",\"id\":%llu,\"max\":0}", "bad_field", "max"},
		{"{\"op\":\"output\",\"id\":%llu,\"wait\":301}", "bad_field", "wait"},
		{"{\"op\":\"output\",\"id\":%llu,\"offset\":1.5}", "bad_field", "offset"},
		{"{\"op\":\"output\",\"id\":%llu,\"colour\":1}", "unknown_field", "colour"},
		{"{\"op\":\"output\",\"id\":%llu,\"binary\":1}", "bad_field", "binary"},
		{"{\"op\":\"output\",\"id\":99999%llu}", "unknown_id", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text), cases[i].request, (unsigned long long)id);
		json_t *reply = NULL;
		ck_assert_int_eq(weft_request_bytes(client, text, strlen(text), 0, &reply), WEFT_OK);
		const json_t *error = json_object_get(reply, "error");
		ck_assert_msg(json_is_false(json_object_get(reply, "ok")), "%s was accepted", text);
		ck_assert_str_eq(json_string_value(json_object_get(error, "code")), cases[i].code);
		if (cases[i].field != NULL)
			ck_assert_str_eq(json_string_value(json_object_get(error, "field")),
			                 cases[i].field);
		json_decref(reply);
	}
	/* A job that is not exec has no output. */
	json_t *echo = request_ok(json_pack("{s:s, s:s, s:{s:i}, s:f}", "op", "submit", "fn",
	                                    "echo", "args", "value", 1, "wait", WAIT_SECONDS),
	                          WAIT_SECONDS);
	uint64_t echo_id = (uint64_t)json_integer_value(json_object_get(echo, "id"));
	json_decref(echo);
	weft_output *output = NULL;
	ck_assert_int_eq(weft_output_read(client, echo_id, WEFT_STREAM_BOTH, 0, 0, 0, &output),
	                 WEFT_EBADFIELD);
	ck_assert_ptr_null(output);
}
END_TEST

/* ------------------------------------------------------------ the CLI */

typedef struct cli_run {
	int status;  /* exit code, or 128 + signal */
	char *out;   /* malloc'd, NUL added */
	size_t out_length;
	char *err;
} cli_run;

/* The whole file; empty when it does not exist yet. */
static char *slurp(const char *path, size_t *length)
{
	size_t used = 0, capacity = 65536;
	char *text = malloc(capacity + 1);
	FILE *file = fopen(path, "r");
	if (file == NULL) {
		text[0] = '\0';
		if (length != NULL)
			*length = 0;
		return text;
	}
	size_t got;
	while ((got = fread(text + used, 1, capacity - used, file)) > 0) {
		used += got;
		if (used == capacity) {
			capacity *= 2;
			text = realloc(text, capacity + 1);
		}
	}
	fclose(file);
	text[used] = '\0';
	if (length != NULL)
		*length = used;
	return text;
}

/* Starts the CLI with argv (after "weft --url URL") and its stdout/stderr in
 * files of the test's directory; returns the pid. */
static pid_t cli_start(const char *const *words, const char *stdin_path)
{
	const char *cli = getenv("WEFT_CLI");
	ck_assert_msg(cli != NULL && cli[0] == '/', "set WEFT_CLI (make check does)");
	char out_path[128], err_path[128];
	snprintf(out_path, sizeof(out_path), "%s/cli.out", directory);
	snprintf(err_path, sizeof(err_path), "%s/cli.err", directory);
	char *argv[32];
	int argc = 0;
	argv[argc++] = (char *)cli;
	argv[argc++] = (char *)"--url";
	argv[argc++] = weftd.url;
	for (int i = 0; words[i] != NULL && argc < 31; i++)
		argv[argc++] = (char *)words[i];
	argv[argc] = NULL;
	pid_t pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		int in = open(stdin_path != NULL ? stdin_path : "/dev/null", O_RDONLY);
		int out = open(out_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		int err = open(err_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		if (in < 0 || out < 0 || err < 0)
			_exit(120);
		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		execv(cli, argv);
		_exit(121);
	}
	return pid;
}

static cli_run cli_finish(pid_t pid)
{
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	cli_run run;
	run.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	char path[128];
	snprintf(path, sizeof(path), "%s/cli.out", directory);
	run.out = slurp(path, &run.out_length);
	snprintf(path, sizeof(path), "%s/cli.err", directory);
	run.err = slurp(path, NULL);
	return run;
}

static cli_run cli(const char *const *words)
{
	return cli_finish(cli_start(words, NULL));
}

static void cli_free(cli_run *run)
{
	free(run->out);
	free(run->err);
}

START_TEST(test_weft_run_copies_bytes_that_are_not_utf8_exactly)
{
	const char *const words[] = {"run", "--", "printf", "a\\377b\\0c\\303", NULL};
	cli_run run = cli(words);
	ck_assert_msg(run.status == 0, "status %d: %s", run.status, run.err);
	ck_assert_uint_eq(run.out_length, 6);
	ck_assert(memcmp(run.out, "a\377b\0c\303", 6) == 0);
	cli_free(&run);
	/* And the whole outcome with --json carries it in base64. */
	const char *const json_words[] = {"--json", "run", "--", "printf", "\\377", NULL};
	run = cli(json_words);
	ck_assert_msg(strstr(run.out, "\"encoding\":\"base64\"") != NULL &&
	                      strstr(run.out, "\"stdout\":\"/w==\"") != NULL,
	              "%s", run.out);
	cli_free(&run);
}
END_TEST

START_TEST(test_weft_run_shows_lines_while_the_command_runs)
{
	char line[256];
	snprintf(line, sizeof(line), "echo first; %s; echo second", wait_for("go"));
	const char *const words[] = {"run", "--shell", "--", line, NULL};
	pid_t pid = cli_start(words, NULL);
	char path[128];
	snprintf(path, sizeof(path), "%s/cli.out", directory);
	double deadline = fixture_now() + WAIT_SECONDS;
	for (;;) {
		size_t length = 0;
		char *text = slurp(path, &length);
		bool seen = strcmp(text, "first\n") == 0;
		free(text);
		if (seen)
			break;
		ck_assert_msg(fixture_now() < deadline, "weft run showed nothing while the job ran");
		struct timespec pause = {0, 5 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	make_file("go");
	cli_run run = cli_finish(pid);
	ck_assert_int_eq(run.status, 0);
	ck_assert_str_eq(run.out, "first\nsecond\n");
	cli_free(&run);
}
END_TEST

START_TEST(test_weft_run_keeps_the_output_on_ctrl_c)
{
	char line[256];
	snprintf(line, sizeof(line), "echo partial; echo to-stderr >&2; %s", wait_for("never"));
	const char *const words[] = {"run", "--shell", "--", line, NULL};
	pid_t pid = cli_start(words, NULL);
	char path[128], err_path[128];
	snprintf(path, sizeof(path), "%s/cli.out", directory);
	snprintf(err_path, sizeof(err_path), "%s/cli.err", directory);
	double deadline = fixture_now() + WAIT_SECONDS;
	/* Both lines shown, so the command is past them and in its wait. */
	for (;;) {
		char *text = slurp(path, NULL), *err = slurp(err_path, NULL);
		bool seen = strcmp(text, "partial\n") == 0 && strcmp(err, "to-stderr\n") == 0;
		free(text);
		free(err);
		if (seen)
			break;
		ck_assert_msg(fixture_now() < deadline, "weft run showed nothing");
		struct timespec pause = {0, 5 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	ck_assert_int_eq(kill(pid, SIGINT), 0);
	cli_run run = cli_finish(pid);
	ck_assert_msg(run.status == 130, "status %d: %s", run.status, run.err);
	ck_assert_str_eq(run.out, "partial\n");
	ck_assert_msg(strstr(run.err, "to-stderr\n") != NULL && strstr(run.err, "cancelled") != NULL,
	              "stderr: %s", run.err);
	cli_free(&run);
}
END_TEST

START_TEST(test_weft_run_passes_twenty_megabytes_exactly)
{
	char path[128], command[256];
	snprintf(path, sizeof(path), "%s/big", directory);
	snprintf(command, sizeof(command), "head -c 20000000 /dev/urandom > %s", path);
	ck_assert_int_eq(as_user_shell(command), 0);
	const char *const words[] = {"run", "--", "cat", path, NULL};
	cli_run run = cli(words);
	ck_assert_msg(run.status == 0, "status %d: %s", run.status, run.err);
	size_t length = 0;
	char *expected = slurp(path, &length);
	ck_assert_uint_eq(run.out_length, 20000000);
	ck_assert(memcmp(run.out, expected, length) == 0);
	free(expected);
	cli_free(&run);
}
END_TEST

START_TEST(test_weft_run_warns_that_piped_stdin_is_not_forwarded)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/input", directory);
	FILE *file = fopen(path, "w");
	fputs("some input\n", file);
	fclose(file);
	const char *const words[] = {"run", "--", "cat", NULL};
	cli_run run = cli_finish(cli_start(words, path));
	ck_assert_int_eq(run.status, 0);
	ck_assert_str_eq(run.out, "");
	ck_assert_msg(strstr(run.err, "stdin is not forwarded") != NULL, "stderr: %s", run.err);
	cli_free(&run);
	/* /dev/null is nothing to warn about. */
	run = cli_finish(cli_start(words, NULL));
	ck_assert_str_eq(run.err, "");
	cli_free(&run);
}
END_TEST

START_TEST(test_weft_logs_prints_follows_and_tails)
{
	uint64_t id = submit_shell("for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2", false);
	json_decref(result_of(id));
	char id_text[32];
	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);
	const char *const all[] = {"logs", id_text, NULL};
	cli_run run = cli(all);
	ck_assert_int_eq(run.status, 0);
	ck_assert_str_eq(run.out, "line1\nline2\nline3\nline4\nline5\n");
	ck_assert_str_eq(run.err, "oops\n");
	cli_free(&run);
	const char *const tail[] = {"logs", "--stream", "stdout", "--tail", "2", id_text, NULL};
	run = cli(tail);
	ck_assert_str_eq(run.out, "line4\nline5\n");
	cli_free(&run);
	/* -f on a running job prints until it ends. */
	char line[256];
	snprintf(line, sizeof(line), "echo early; %s; echo late", wait_for("go"));
	uint64_t running = submit_shell(line, false);
	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)running);
	const char *const follow[] = {"logs", "-f", id_text, NULL};
	pid_t pid = cli_start(follow, NULL);
	uint64_t offset = 0;
	size_t length;
	free(read_lines(running, WEFT_STREAM_STDOUT, &offset, 1, &length));
	make_file("go");
	run = cli_finish(pid);
	ck_assert_int_eq(run.status, 0);
	ck_assert_str_eq(run.out, "early\nlate\n");
	cli_free(&run);
}
END_TEST

START_TEST(test_weft_logs_says_when_output_was_lost)
{
	uint64_t id = submit_shell("head -c 1000000 /dev/zero", false);
	json_decref(result_of(id));
	char id_text[32];
	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);
	const char *const words[] = {"logs", id_text, NULL};
	cli_run run = cli(words);
	ck_assert_int_eq(run.status, 1);
	ck_assert_msg(strstr(run.err, "were lost") != NULL, "stderr: %s", run.err);
	ck_assert_uint_le(run.out_length, 262144);
	cli_free(&run);
}
END_TEST

START_TEST(test_another_user_cannot_read_a_jobs_output)
{
	if (geteuid() != 0) {
		as_user_skip(1, "test_another_user_cannot_read_a_jobs_output", "not root");
		return;
	}
	struct user stranger;
	if (!as_user_create(&stranger, "wstr")) {
		as_user_skip(1, "test_another_user_cannot_read_a_jobs_output", "cannot make a user");
		return;
	}
	uint64_t id = submit_shell("echo secret", false);
	json_decref(result_of(id));
	ck_assert_int_eq(chmod(weftd.directory, 0755), 0);
	const char *cli_path = getenv("WEFT_CLI");
	char id_text[32], text[4096];
	snprintf(id_text, sizeof(id_text), "%llu", (unsigned long long)id);
	char *argv[] = {(char *)cli_path, (char *)"--url", weftd.url, (char *)"logs", id_text, NULL};
	int status = as_user_run(stranger.uid, stranger.gid, cli_path, argv, text, sizeof(text));
	as_user_remove(&stranger);
	ck_assert_msg(status == 5, "status %d: %s", status, text);
	ck_assert_msg(strstr(text, "secret") == NULL, "leaked: %s", text);
	ck_assert_msg(strstr(text, "belongs to another user") != NULL, "said: %s", text);
}
END_TEST


/* ------------------------------------------------------------ stdin */

START_TEST(test_stdin_streams_twenty_megabytes_exactly)
{
	enum { SIZE = 20 * 1000 * 1000, PIECE = 512 * 1024 };
	unsigned char *input = malloc(SIZE);
	uint32_t state = 88172645u;
	for (size_t i = 0; i < SIZE; i++) {
		state ^= state << 13;
		state ^= state >> 17;
		state ^= state << 5;
		input[i] = (unsigned char)state;
	}
	uint64_t id = submit(json_pack("{s:[s], s:b, s:b}", "argv", "cat", "stdin_stream", 1,
	                               "output_wait", 1));
	size_t sent = 0;
	uint64_t got = 0;
	bool eof_sent = false, eof_seen = false;
	double deadline = fixture_now() + 120;
	/* One thread, both ways: send what the job takes, read what it gave. */
	while (!eof_seen) {
		ck_assert_msg(fixture_now() < deadline, "sent %zu, got %llu", sent,
		              (unsigned long long)got);
		if (!eof_sent) {
			size_t piece = SIZE - sent < PIECE ? SIZE - sent : PIECE;
			size_t accepted = 0;
			bool started = false, closed = false;
			ck_assert_int_eq(weft_input_write(client, id, input + sent, piece, sent + piece == SIZE,
			                                  &accepted, &started, &closed),
			                 WEFT_OK);
			ck_assert(!closed);
			sent += accepted;
			eof_sent = started && sent == SIZE && accepted == piece;
		}
		weft_output *output = read_output(id, WEFT_STREAM_STDOUT, (int64_t)got, eof_sent ? 5 : 0);
		ck_assert_uint_eq(output->lost, 0);
		ck_assert_uint_le(got + output->length, sent);
		ck_assert_msg(output->length == 0 || memcmp(output->data, input + got, output->length) == 0,
		              "bytes differ at %llu", (unsigned long long)got);
		got = output->next;
		eof_seen = output->eof;
		weft_output_free(output);
	}
	ck_assert_uint_eq(got, SIZE);
	free(input);
	json_t *reply = result_of(id);
	ck_assert_str_eq(json_string_value(json_object_get(reply, "state")), "done");
	json_decref(reply);
}
END_TEST

START_TEST(test_input_takes_base64_and_bytes_after_the_json)
{
	/* Any nng client may send base64 in "data"; libweft sends the bytes
	 * after the JSON and a NUL. Both into one job, NUL and 0xff included. */
	uint64_t id = submit(json_pack("{s:[s], s:b}", "argv", "cat", "stdin_stream", 1));
	char text[160];
	int length = snprintf(text, sizeof(text),
	                      "{\"op\":\"input\",\"id\":%llu,\"data\":\"QQBC\"}",
	                      (unsigned long long)id);
	double deadline = fixture_now() + 60;
	for (;;) { /* until the job has started and taken them */
		json_t *reply = wire_call_text(weftd.url, text, (size_t)length, 10000);
		ck_assert_ptr_nonnull(reply);
		ck_assert(json_is_true(json_object_get(reply, "ok")));
		json_int_t accepted = json_integer_value(json_object_get(reply, "accepted"));
		json_decref(reply);
		if (accepted == 3)
			break;
		ck_assert_int_eq(accepted, 0);
		ck_assert(fixture_now() < deadline);
		struct timespec pause = {0, 10 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	/* The binary form: {...,"bytes":3} NUL then "\xff\0C". */
	char message[200];
	int head = snprintf(message, sizeof(message),
	                    "{\"id\":%llu,\"op\":\"input\",\"eof\":true,\"bytes\":3}",
	                    (unsigned long long)id);
	memcpy(message + head + 1, "\xff\0C", 3);
	json_t *reply = wire_call_text(weftd.url, message, (size_t)head + 1 + 3, 10000);
	ck_assert_ptr_nonnull(reply);
	ck_assert_msg(json_is_true(json_object_get(reply, "ok")), "%s", wire_error_code(reply));
	ck_assert_int_eq(json_integer_value(json_object_get(reply, "accepted")), 3);
	json_decref(reply);
	/* "bytes" must count them; "data" does not come with them; other ops carry none. */
	static const struct { const char *json; size_t after; const char *code, *field; } bad[] = {
		{"{\"id\":%llu,\"op\":\"input\",\"bytes\":2}", 3, "bad_field", "bytes"},
		{"{\"id\":%llu,\"op\":\"input\",\"bytes\":3,\"data\":\"QQ==\"}", 3, "bad_field", "data"},
		{"{\"id\":%llu,\"op\":\"input\",\"bytes\":3}", (size_t)-1, "bad_field", "bytes"},
		{"{\"id\":%llu,\"op\":\"status\"}", 3, "malformed_json", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		head = snprintf(message, sizeof(message), bad[i].json, (unsigned long long)id);
		size_t size = bad[i].after == (size_t)-1 ? (size_t)head : (size_t)head + 1 + bad[i].after;
		memcpy(message + head + 1, "xyz", 3);
		reply = wire_call_text(weftd.url, message, size, 10000);
		ck_assert_ptr_nonnull(reply);
		ck_assert_str_eq(wire_error_code(reply), bad[i].code);
		if (bad[i].field != NULL)
			ck_assert_str_eq(json_string_value(json_object_get(json_object_get(reply, "error"),
			                                                   "field")),
			                 bad[i].field);
		json_decref(reply);
	}
	json_decref(result_of(id));
	weft_output *output = read_output(id, WEFT_STREAM_STDOUT, 0, 0);
	ck_assert_uint_eq(output->length, 6);
	ck_assert(memcmp(output->data, "A\0B\xff\0C", 6) == 0);
	weft_output_free(output);
}
END_TEST

START_TEST(test_a_result_without_the_output)
{
	/* "output": false: the outcome without stdout and stderr, waited for or
	 * not, for a job that ended well and for one that failed. */
	uint64_t done = submit_shell("sleep 0.2; printf out; printf err >&2", false);
	uint64_t failed = submit_shell("printf out; exit 3", false);
	for (int round = 0; round < 2; round++) {
		json_t *reply = request_ok(json_pack("{s:s, s:I, s:b, s:f}", "op", "result", "id",
		                                     (json_int_t)done, "output", 0, "timeout",
		                                     WAIT_SECONDS),
		                           WAIT_SECONDS);
		const json_t *result = json_object_get(reply, "result");
		ck_assert_int_eq(json_integer_value(json_object_get(result, "exit_code")), 0);
		ck_assert_ptr_null(json_object_get(result, "stdout"));
		ck_assert_ptr_null(json_object_get(result, "stderr"));
		json_decref(reply);
		reply = request_ok(json_pack("{s:s, s:I, s:b, s:f}", "op", "result", "id",
		                             (json_int_t)failed, "output", 0, "timeout", WAIT_SECONDS),
		                   WAIT_SECONDS);
		const json_t *error = json_object_get(reply, "error");
		const json_t *details = json_object_get(error, "details");
		ck_assert_int_eq(json_integer_value(json_object_get(details, "exit_code")), 3);
		ck_assert_ptr_null(json_object_get(details, "stdout"));
		json_decref(reply);
	}
	/* The job keeps them: without the field, or true, they are there. */
	json_t *reply = result_of(done);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(reply, "result"),
	                                                   "stdout")),
	                 "out");
	json_decref(reply);
	reply = request_ok(json_pack("{s:s, s:I, s:b}", "op", "result", "id", (json_int_t)failed,
	                             "output", 1),
	                   0);
	ck_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(json_object_get(reply, "error"), "details"), "stdout")),
	                 "out");
	json_decref(reply);
}
END_TEST

START_TEST(test_input_says_when_the_job_takes_none)
{
	/* A job without stdin_stream: its stdin is closed to the input op. */
	uint64_t plain = submit_shell("sleep 0.001", false);
	json_decref(result_of(plain));
	size_t accepted = 1;
	bool started = false, closed = false;
	ck_assert_int_eq(weft_input_write(client, plain, "x", 1, false, &accepted, &started, &closed),
	                 WEFT_OK);
	ck_assert_uint_eq(accepted, 0);
	ck_assert(closed);
	/* A job that has not started takes nothing yet. */
	uint64_t future = 0;
	ck_assert_int_eq(weft_future_new(client, NULL, &future), WEFT_OK);
	json_t *reply = request_ok(json_pack("{s:s, s:s, s:{s:[s], s:b}, s:[I]}", "op", "submit",
	                                     "fn", "exec", "args", "argv", "cat", "stdin_stream", 1,
	                                     "after", (json_int_t)future),
	                           0);
	uint64_t id = (uint64_t)json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	ck_assert_int_eq(weft_input_write(client, id, "x", 1, false, &accepted, &started, &closed),
	                 WEFT_OK);
	ck_assert(!started && !closed && accepted == 0);
	ck_assert_int_eq(weft_cancel(client, id, NULL, NULL), WEFT_OK);
	/* stdin and stdin_stream do not go together. */
	json_t *refused = NULL;
	json_t *request = json_pack("{s:s, s:s, s:{s:[s], s:s, s:b}}", "op", "submit", "fn", "exec",
	                            "args", "argv", "cat", "stdin", "x", "stdin_stream", 1);
	ck_assert_int_eq(weft_request(client, request, 0, &refused), WEFT_OK);
	json_decref(request);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(refused, "error"), "field")),
	                 "args.stdin_stream");
	json_decref(refused);
}
END_TEST

START_TEST(test_weft_run_stdin_streams_binary_input)
{
	char path[128], command[384], digest_path[128];
	snprintf(path, sizeof(path), "%s/input", directory);
	snprintf(digest_path, sizeof(digest_path), "%s/expected", directory);
	snprintf(command, sizeof(command),
	         "head -c 20000000 /dev/urandom > %s && sha256sum < %s > %s", path, path,
	         digest_path);
	ck_assert_int_eq(as_user_shell(command), 0);
	const char *const words[] = {"run", "--stdin", "--", "sha256sum", NULL};
	cli_run run = cli_finish(cli_start(words, path));
	ck_assert_msg(run.status == 0, "status %d: %s", run.status, run.err);
	char *expected = slurp(digest_path, NULL);
	ck_assert_str_eq(run.out, expected);
	free(expected);
	cli_free(&run);
}
END_TEST

static void start_idle_window(void)
{
	static const char *const options[] = {"--output-window", "262144", "--output-idle", "0.3",
	                                      NULL};
	start_with(options);
}

/* weft run's stdout is a pipe nobody reads: weft blocks writing it, reads
 * nothing from weftd, and after --output-idle the job runs free and its
 * window drops bytes weft never got. Once they are gone the test drains the
 * pipe: weft must say so on stderr and exit 122. */
START_TEST(test_weft_run_says_when_it_fell_behind)
{
	const char *cli_path = getenv("WEFT_CLI");
	ck_assert(cli_path != NULL);
	int ends[2];
	ck_assert_int_eq(pipe(ends), 0);
	char err_path[128];
	snprintf(err_path, sizeof(err_path), "%s/cli.err", directory);
	pid_t pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		int err = open(err_path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
		int in = open("/dev/null", O_RDONLY);
		if (err < 0 || in < 0)
			_exit(120);
		dup2(in, 0);
		dup2(ends[1], 1);
		dup2(err, 2);
		close(ends[0]);
		execl(cli_path, cli_path, "--url", weftd.url, "run", "--", "head", "-c", "3000000",
		      "/dev/zero", (char *)NULL);
		_exit(121);
	}
	close(ends[1]);
	/* The job's id: the only job. */
	uint64_t id = 0;
	double deadline = fixture_now() + WAIT_SECONDS;
	while (id == 0) {
		ck_assert_msg(fixture_now() < deadline, "weft run submitted nothing");
		json_t *jobs = NULL;
		bool more = false;
		ck_assert_int_eq(weft_list(client, NULL, &jobs, &more), WEFT_OK);
		if (json_array_size(jobs) > 0)
			id = (uint64_t)json_integer_value(json_object_get(json_array_get(jobs, 0), "id"));
		json_decref(jobs);
	}
	/* Until the job is over and its first bytes are gone. */
	for (;;) {
		ck_assert_msg(fixture_now() < deadline, "the window never dropped bytes");
		json_t *job = NULL;
		ck_assert_int_eq(weft_status(client, id, &job), WEFT_OK);
		bool done = strcmp(json_string_value(json_object_get(job, "state")), "done") == 0;
		json_decref(job);
		if (done) {
			weft_output *output = read_output(id, WEFT_STREAM_STDOUT, 0, 0);
			bool gone = output->lost > 0;
			weft_output_free(output);
			if (gone)
				break;
		}
		struct timespec pause = {0, 5 * 1000 * 1000};
		nanosleep(&pause, NULL);
	}
	size_t drained = 0;
	char buffer[65536];
	ssize_t got;
	while ((got = read(ends[0], buffer, sizeof(buffer))) > 0)
		drained += (size_t)got;
	close(ends[0]);
	int status = 0;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	char *err = slurp(err_path, NULL);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 122, "status %d: %s", status, err);
	ck_assert_msg(strstr(err, "were lost") != NULL &&
	                      strstr(err, "the command's own exit code was 0") != NULL,
	              "stderr: %s", err);
	ck_assert_uint_lt(drained, 3000000);
	free(err);
}
END_TEST

static Suite *stream_suite(void)
{
	Suite *suite = suite_create("stream");
	TCase *op = tcase_create("op");
	tcase_add_checked_fixture(op, setup, teardown);
	tcase_set_timeout(op, 90);
	tcase_add_test(op, test_lines_arrive_while_the_command_still_runs);
	tcase_add_test(op, test_binary_and_nul_bytes_are_exact);
	tcase_add_test(op, test_binary_replies_carry_the_bytes_after_the_json);
	tcase_add_test(op, test_output_spool_is_refused_without_a_spool);
	tcase_add_test(op, test_twenty_megabytes_through_stdout_are_exact);
	tcase_add_test(op, test_both_streams_merge_in_the_order_written);
	tcase_add_test(op, test_output_is_kept_when_the_job_is_cancelled);
	tcase_add_test(op, test_a_reader_of_a_job_that_has_not_started_waits);
	tcase_add_test(op, test_bad_output_requests_are_refused_with_the_field);
	tcase_add_test(op, test_stdin_streams_twenty_megabytes_exactly);
	tcase_add_test(op, test_input_takes_base64_and_bytes_after_the_json);
	tcase_add_test(op, test_input_says_when_the_job_takes_none);
	tcase_add_test(op, test_a_result_without_the_output);
	suite_add_tcase(suite, op);

	TCase *bounds = tcase_create("bounds");
	TCase *spool = tcase_create("spool");
	tcase_add_checked_fixture(spool, start_spooling, stop_spooling);
	tcase_set_timeout(spool, 120);
	tcase_add_test(spool, test_a_spooled_jobs_output_is_whole_after_it_left_the_window);
	tcase_add_test(spool, test_both_streams_come_back_from_the_spool_in_their_runs);
	tcase_add_test(spool, test_a_spool_over_the_budget_is_dropped_and_told_as_lost);
	suite_add_tcase(suite, spool);

	TCase *retention = tcase_create("retention");
	tcase_add_checked_fixture(retention, start_retain_one, teardown);
	tcase_add_test(retention, test_a_dropped_jobs_window_is_freed);
	suite_add_tcase(suite, retention);

	tcase_add_checked_fixture(bounds, start_small_window, teardown);
	tcase_set_timeout(bounds, 30);
	tcase_add_test(bounds, test_a_reader_behind_the_window_is_told_what_it_lost);
	tcase_add_test(bounds, test_a_slow_reader_of_a_waiting_window_loses_nothing_of_a_full_pipe);
	tcase_add_test(bounds, test_a_users_windows_stay_within_the_budget);
	tcase_add_test(bounds, test_weft_logs_says_when_output_was_lost);
	suite_add_tcase(suite, bounds);

	TCase *idle = tcase_create("idle reader");
	tcase_add_checked_fixture(idle, start_idle_window, teardown);
	tcase_set_timeout(idle, 30);
	tcase_add_test(idle, test_weft_run_says_when_it_fell_behind);
	suite_add_tcase(suite, idle);

	TCase *cli_case = tcase_create("cli");
	tcase_add_checked_fixture(cli_case, setup, teardown);
	tcase_set_timeout(cli_case, 90);
	tcase_add_test(cli_case, test_weft_run_copies_bytes_that_are_not_utf8_exactly);
	tcase_add_test(cli_case, test_weft_run_shows_lines_while_the_command_runs);
	tcase_add_test(cli_case, test_weft_run_keeps_the_output_on_ctrl_c);
	tcase_add_test(cli_case, test_weft_run_passes_twenty_megabytes_exactly);
	tcase_add_test(cli_case, test_weft_run_warns_that_piped_stdin_is_not_forwarded);
	tcase_add_test(cli_case, test_weft_run_stdin_streams_binary_input);
	tcase_add_test(cli_case, test_weft_logs_prints_follows_and_tails);
	tcase_add_test(cli_case, test_another_user_cannot_read_a_jobs_output);
	suite_add_tcase(suite, cli_case);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(stream_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

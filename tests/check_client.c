/*
 * libweft without weftd: job specs, states, the last error, connection
 * failures, and the handling of replies from a scripted fake daemon (an nng
 * REP socket in a thread) for what a real daemon never sends: another
 * protocol version, replies that are not weft's, a dropped connection.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "client/job_spec.h"
#include "client/json_check.h"
#include "tests/weft_assert.h"
#include "weft/weft.h"

/* ----------------------------------------------------------------- states */

START_TEST(test_state_names_round_trip)
{
	for (int state = WEFT_STATE_QUEUED; state < WEFT_STATE_UNKNOWN; state++)
		ck_assert_int_eq(weft_state_from_name(weft_state_name(state)), state);
	ck_assert_str_eq(weft_state_name(WEFT_STATE_CANCELLED), "cancelled");
	ck_assert_int_eq(weft_state_from_name("sleeping"), WEFT_STATE_UNKNOWN);
	ck_assert_int_eq(weft_state_from_name("waiting"), WEFT_STATE_WAITING);
	ck_assert_int_eq(weft_state_from_name("pending"), WEFT_STATE_PENDING);
	ck_assert(!weft_state_is_finished(WEFT_STATE_WAITING));
	ck_assert_int_eq(weft_state_from_name(NULL), WEFT_STATE_UNKNOWN);
	ck_assert_str_eq(weft_state_name((weft_state)99), "unknown");
	ck_assert(weft_state_is_finished(WEFT_STATE_FAILED));
	ck_assert(!weft_state_is_finished(WEFT_STATE_RUNNING));
}
END_TEST

/* -------------------------------------------------------------- job specs */

START_TEST(test_job_spec_rejects_a_missing_function)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new(NULL, &spec), WEFT_EINVAL);
	assert_weft(weft_job_spec_new("", &spec), WEFT_EINVAL);
	assert_weft(weft_job_spec_new("\xff", &spec), WEFT_EINVAL);
	ck_assert_ptr_null(spec);
	ck_assert_int_eq(weft_last_error()->code, WEFT_EINVAL);
}
END_TEST

START_TEST(test_job_spec_encodes_every_field)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("sleep", &spec), WEFT_OK);
	json_t *args = json_pack("{s:f}", "seconds", 1.5);
	assert_weft(weft_job_spec_set_args(spec, args), WEFT_OK);
	assert_weft(weft_job_spec_set_args(spec, args), WEFT_OK); /* the same object again */
	json_decref(args); /* the spec holds its own reference */
	ck_assert_int_eq(args->refcount, 1);
	assert_weft(weft_job_spec_set_timeout(spec, 2.5), WEFT_OK);
	assert_weft(weft_job_spec_set_label(spec, "team", "ci"), WEFT_OK);
	assert_weft(weft_job_spec_set_label(spec, "team", "ops"), WEFT_OK);
	json_t *job = NULL;
	assert_weft(job_spec_to_json(spec, &job), WEFT_OK);
	json_t *expected = json_pack("{s:s, s:{s:f}, s:f, s:{s:s}}", "fn", "sleep", "args",
	                             "seconds", 1.5, "timeout", 2.5, "labels", "team", "ops");
	ck_assert_msg(json_equal(job, expected), "encoded %s", json_dumps(job, JSON_COMPACT));
	json_decref(expected);
	json_decref(job);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_job_spec_leaves_out_unset_options)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("echo", &spec), WEFT_OK);
	json_t *job = NULL;
	assert_weft(job_spec_to_json(spec, &job), WEFT_OK);
	ck_assert_int_eq(json_object_size(job), 1);
	json_decref(job);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_job_spec_rejects_bad_options)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("echo", &spec), WEFT_OK);
	json_t *array = json_array();
	assert_weft(weft_job_spec_set_args(spec, array), WEFT_EINVAL);
	json_decref(array);
	assert_weft(weft_job_spec_set_timeout(spec, -1), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_timeout(spec, NAN), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_timeout(spec, INFINITY), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_label(spec, "", "x"), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_label(spec, "k", NULL), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_label(spec, "k", "\xc3\x28"), WEFT_EINVAL);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_utf8_check)
{
	static const struct {
		const char *text;
		bool valid;
	} cases[] = {
		{"plain", true},          {"caf\xc3\xa9", true},     {"\xe2\x82\xac", true},
		{"\xf0\x9f\x98\x80", true}, {"\xc3", false},         {"\xc0\xaf", false},
		{"\xed\xa0\x80", false},  {"\xf4\x90\x80\x80", false}, {"\x80", false},
		{"\xe2\x82", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(job_spec_is_utf8(cases[i].text, strlen(cases[i].text)) ==
		                      cases[i].valid,
		              "case %zu", i);
}
END_TEST

START_TEST(test_json_syntax_check_agrees_with_jansson)
{
	static const char *const cases[] = {
		"{}", "[]", " {\"a\" : [1, -2.5e+3, true, false, null, \"x\\n\\u00e9\"]} ", "0", "\"s\"",
		"{\"a\":{\"b\":[[]]}}", "\"\\ud83d\\ude00\"", "-0.0E-0",
		"", " ", "{", "[1,]", "{\"a\"}", "{\"a\":1,}", "01", "1.", "-", "1e", "tru", "nul",
		"\"\\x\"", "\"\\u12\"", "\"\\u0000\"", "\"\\udc00\"", "\"\\ud800\"", "\"a\tb\"",
		"\"\xff\"", "[1] [2]", "{\"a\":1}x", "{1:2}", "[\"\xc3\xa9\"]",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_error_t error;
		json_t *parsed = json_loads(cases[i], JSON_DECODE_ANY, &error);
		bool jansson_accepts = parsed != NULL;
		json_decref(parsed);
		ck_assert_msg(json_check_syntax(cases[i], strlen(cases[i])) == jansson_accepts,
		              "case %zu '%s': jansson says %d", i, cases[i], jansson_accepts);
	}
	char deep[5000];
	memset(deep, '[', 2500);
	memset(deep + 2500, ']', 2500);
	ck_assert(!json_check_syntax(deep, sizeof(deep)));
	ck_assert(json_check_syntax(deep + 500, 4000));
}
END_TEST

/* ------------------------------------------------------------ scheduling */

START_TEST(test_job_spec_encodes_scheduling_fields)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("exec", &spec), WEFT_OK);
	assert_weft(weft_job_spec_add_after(spec, 7), WEFT_OK);
	assert_weft(weft_job_spec_add_after(spec, 8), WEFT_OK);
	assert_weft(weft_job_spec_add_after(spec, 7), WEFT_OK); /* counts once */
	assert_weft(weft_job_spec_set_after_always(spec, true), WEFT_OK);
	assert_weft(weft_job_spec_set_delay(spec, 30), WEFT_OK);
	assert_weft(weft_job_spec_set_retries(spec, 3, 2, 10), WEFT_OK);
	assert_weft(weft_job_spec_add_retry_on(spec, "ExitStatus"), WEFT_OK);
	assert_weft(weft_job_spec_add_retry_on(spec, "Timeout"), WEFT_OK);
	assert_weft(weft_job_spec_add_retry_on(spec, "Timeout"), WEFT_OK);
	assert_weft(weft_job_spec_set_deadline(spec, 1764119000), WEFT_OK);
	json_t *job = NULL;
	assert_weft(job_spec_to_json(spec, &job), WEFT_OK);
	json_t *expected = json_loads(
		"{\"fn\": \"exec\", \"after\": [7, 8], \"after_policy\": \"always\", \"delay\": 30.0,"
		" \"retries\": 3, \"retry_backoff\": 2.0, \"retry_backoff_max\": 10.0,"
		" \"retry_on\": [\"ExitStatus\", \"Timeout\"], \"deadline\": 1764119000.0}",
		0, NULL);
	ck_assert_msg(json_equal(job, expected), "encoded %s", json_dumps(job, JSON_COMPACT));
	json_decref(expected);
	json_decref(job);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_job_spec_sends_at_and_leaves_default_backoffs_out)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("echo", &spec), WEFT_OK);
	assert_weft(weft_job_spec_set_at(spec, 1764115200.5), WEFT_OK);
	assert_weft(weft_job_spec_set_retries(spec, 0, -1, -1), WEFT_OK);
	/* after_policy goes with after only */
	assert_weft(weft_job_spec_set_after_always(spec, true), WEFT_OK);
	json_t *job = NULL;
	assert_weft(job_spec_to_json(spec, &job), WEFT_OK);
	json_t *expected =
		json_loads("{\"fn\": \"echo\", \"at\": 1764115200.5, \"retries\": 0}", 0, NULL);
	ck_assert_msg(json_equal(job, expected), "encoded %s", json_dumps(job, JSON_COMPACT));
	json_decref(expected);
	json_decref(job);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_job_spec_rejects_bad_scheduling)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("echo", &spec), WEFT_OK);
	assert_weft(weft_job_spec_add_after(spec, 0), WEFT_EINVAL);
	ck_assert_msg(strstr(weft_last_error()->message, "after") != NULL, "message: %s",
	              weft_last_error()->message);
	assert_weft(weft_job_spec_add_after(spec, (1ULL << 53) + 1), WEFT_EINVAL);
	for (uint64_t id = 1; id <= 1000; id++)
		assert_weft(weft_job_spec_add_after(spec, id), WEFT_OK);
	assert_weft(weft_job_spec_add_after(spec, 1001), WEFT_EINVAL);
	assert_weft(weft_job_spec_add_after(spec, 1000), WEFT_OK); /* already there */
	assert_weft(weft_job_spec_set_delay(spec, -1), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_delay(spec, NAN), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_delay(spec, 315360001), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_at(spec, 0), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_at(spec, INFINITY), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_delay(spec, 5), WEFT_OK);
	assert_weft(weft_job_spec_set_at(spec, 1764115200), WEFT_EINVAL); /* not both */
	ck_assert_msg(strstr(weft_last_error()->message, "not both") != NULL, "message: %s",
	              weft_last_error()->message);
	assert_weft(weft_job_spec_set_retries(spec, -1, 1, 60), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_retries(spec, 101, 1, 60), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_retries(spec, 1, NAN, 60), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_retries(spec, 1, 1, 1e12), WEFT_EINVAL);
	assert_weft(weft_job_spec_add_retry_on(spec, ""), WEFT_EINVAL);
	assert_weft(weft_job_spec_add_retry_on(spec, NULL), WEFT_EINVAL);
	assert_weft(weft_job_spec_add_retry_on(spec, "\xff"), WEFT_EINVAL);
	char long_type[66];
	memset(long_type, 'E', 65);
	long_type[65] = '\0';
	assert_weft(weft_job_spec_add_retry_on(spec, long_type), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_deadline(spec, -5), WEFT_EINVAL);
	assert_weft(weft_job_spec_set_deadline(spec, NAN), WEFT_EINVAL);
	weft_job_spec_free(spec);
}
END_TEST

/* ------------------------------------------------------------ last error */

static void *fail_in_thread(void *unused)
{
	(void)unused;
	weft_job_spec *spec = NULL;
	weft_job_spec_new(NULL, &spec);
	return (void *)(intptr_t)weft_last_error()->code;
}

START_TEST(test_last_error_is_per_thread)
{
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("echo", &spec), WEFT_OK);
	pthread_t thread;
	void *their_code = NULL;
	ck_assert_int_eq(pthread_create(&thread, NULL, fail_in_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(thread, &their_code), 0);
	ck_assert_int_eq((int)(intptr_t)their_code, WEFT_EINVAL);
	ck_assert_int_eq(weft_last_error()->code, WEFT_OK);
	weft_job_spec_free(spec);
}
END_TEST

/* ----------------------------------------------------------- connecting */

START_TEST(test_connect_to_nothing_names_the_url)
{
	weft_client *client = NULL;
	const char *url = "ipc:///nonexistent-weft-dir/weft.sock";
	assert_weft(weft_connect(url, &client), WEFT_ECONNECT);
	ck_assert_ptr_null(client);
	ck_assert_msg(strstr(weft_last_error()->message, url) != NULL, "message: %s",
	              weft_last_error()->message);
	ck_assert_str_eq(weft_last_error()->wire_code, "cannot_connect");
}
END_TEST

START_TEST(test_connect_honours_weft_url)
{
	setenv("WEFT_URL", "ipc:///nonexistent-weft-dir/from-env.sock", 1);
	weft_client *client = NULL;
	assert_weft(weft_connect(NULL, &client), WEFT_ECONNECT);
	ck_assert_msg(strstr(weft_last_error()->message, "from-env.sock") != NULL, "message: %s",
	              weft_last_error()->message);
}
END_TEST

START_TEST(test_connect_rejects_a_bad_url)
{
	weft_client *client = NULL;
	assert_weft(weft_connect("carrier-pigeon://home", &client), WEFT_EINVAL);
	assert_weft(weft_connect("", &client), WEFT_EINVAL);
}
END_TEST

/* ------------------------------------------------------ the fake daemon */

/* Replies the fake daemon gives, one per request in order. DROP closes the
 * connection instead of answering. */
#define DROP NULL
#define PING_REPLY "{\"ok\":true,\"version\":\"0.1.0\",\"protocol\":1,\"max_message\":1000}"

typedef struct fake_daemon {
	char url[128];
	char directory[64];
	nng_socket socket;
	const char *const *replies;
	size_t reply_count;
	size_t served;
	pthread_t thread;
	json_t *requests; /* every request received, parsed (own reference; JSON null when not JSON) */
} fake_daemon;

static void *fake_daemon_run(void *argument)
{
	fake_daemon *fake = argument;
	for (size_t i = 0; i < fake->reply_count; i++) {
		nng_msg *request = NULL;
		if (nng_recvmsg(fake->socket, &request, 0) != 0)
			return NULL;
		fake->served++;
		json_t *parsed = json_loadb(nng_msg_body(request), nng_msg_len(request), 0, NULL);
		json_array_append_new(fake->requests, parsed != NULL ? parsed : json_null());
		if (fake->replies[i] == DROP) {
			nng_pipe pipe = nng_msg_get_pipe(request);
			nng_msg_free(request);
			nng_pipe_close(pipe);
			continue;
		}
		nng_msg_free(request);
		nng_send(fake->socket, (void *)fake->replies[i], strlen(fake->replies[i]), 0);
	}
	return NULL;
}

static void fake_daemon_start(fake_daemon *fake, const char *const *replies, size_t count)
{
	memset(fake, 0, sizeof(*fake));
	snprintf(fake->directory, sizeof(fake->directory), "/tmp/weft-fake-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fake->directory));
	snprintf(fake->url, sizeof(fake->url), "ipc://%s/fake.sock", fake->directory);
	fake->replies = replies;
	fake->reply_count = count;
	fake->requests = json_array();
	ck_assert_int_eq(nng_rep0_open(&fake->socket), 0);
	ck_assert_int_eq(nng_listen(fake->socket, fake->url, NULL, 0), 0);
	ck_assert_int_eq(pthread_create(&fake->thread, NULL, fake_daemon_run, fake), 0);
}

static void fake_daemon_stop(fake_daemon *fake)
{
	nng_close(fake->socket);
	pthread_join(fake->thread, NULL);
	char path[128];
	snprintf(path, sizeof(path), "%s/fake.sock", fake->directory);
	unlink(path);
	rmdir(fake->directory);
	json_decref(fake->requests);
}

/* Asserts that the fake daemon's request number `index` (0 is the ping)
 * equals the JSON text `expected`. Call it after the call whose request it
 * is has returned: the reply was sent after the request was recorded. */
static void assert_request(const fake_daemon *fake, size_t index, const char *expected)
{
	json_t *wanted = json_loads(expected, 0, NULL);
	ck_assert_msg(wanted != NULL, "bad expected JSON %s", expected);
	json_t *got = json_array_get(fake->requests, index);
	char *text = got != NULL ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	ck_assert_msg(got != NULL && json_equal(got, wanted), "request %zu was %s, wanted %s",
	              index, text != NULL ? text : "(none)", expected);
	free(text);
	json_decref(wanted);
}

START_TEST(test_connect_refuses_another_protocol_version)
{
	static const char *const replies[] = {"{\"ok\":true,\"version\":\"9\",\"protocol\":2}"};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 1);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_EPROTO);
	ck_assert_msg(strstr(weft_last_error()->message, "protocol 2") != NULL, "message: %s",
	              weft_last_error()->message);
	fake_daemon_stop(&fake);
}
END_TEST

START_TEST(test_a_reply_that_is_not_weft_is_a_protocol_error)
{
	static const char *const replies[] = {PING_REPLY, "not json", "[1]", "{\"ok\":false}",
	                                      "{\"ok\":true}"};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 5);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	ck_assert_uint_eq(weft_client_max_message(client), 1000);
	json_t *stats = NULL;
	assert_weft(weft_stats(client, &stats), WEFT_EPROTO);
	assert_weft(weft_stats(client, &stats), WEFT_EPROTO);
	assert_weft(weft_stats(client, &stats), WEFT_EPROTO);
	uint64_t id = 0;
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("echo", &spec), WEFT_OK);
	assert_weft(weft_submit(client, spec, &id), WEFT_EPROTO); /* ok but no id */
	ck_assert_uint_eq(id, 0);
	weft_job_spec_free(spec);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

START_TEST(test_daemon_error_details_reach_the_caller)
{
	static const char *const replies[] = {
		PING_REPLY,
		"{\"ok\":false,\"error\":{\"code\":\"unknown_function\",\"message\":\"jobs[1]: no "
		"function 'slep'\",\"index\":1,\"field\":\"jobs[1].fn\"}}",
		"{\"ok\":false,\"error\":{\"code\":\"timeout\",\"message\":\"job 7 is still running "
		"after 0 s\",\"id\":7,\"state\":\"running\"}}",
		"{\"ok\":false,\"error\":{\"code\":\"brand_new_code\",\"message\":\"from the future\"}}",
	};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 4);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("slep", &spec), WEFT_OK);
	const weft_job_spec *specs[] = {spec, spec};
	uint64_t ids[2] = {0, 0};
	assert_weft(weft_submit_batch(client, specs, 2, ids), WEFT_EUNKNOWNFN);
	const weft_error_info *error = weft_last_error();
	ck_assert_int_eq(error->index, 1);
	ck_assert_str_eq(error->field, "jobs[1].fn");
	ck_assert_str_eq(error->message, "jobs[1]: no function 'slep'");
	ck_assert_uint_eq(ids[0], 0);

	weft_outcome *outcome = NULL;
	assert_weft(weft_result(client, 7, 0, &outcome), WEFT_ETIMEOUT);
	ck_assert_ptr_null(outcome);
	ck_assert_uint_eq(weft_last_error()->id, 7);
	ck_assert_str_eq(weft_last_error()->state, "running");

	json_t *stats = NULL;
	assert_weft(weft_stats(client, &stats), WEFT_EINTERNAL);
	ck_assert_str_eq(weft_last_error()->wire_code, "brand_new_code");
	weft_job_spec_free(spec);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

START_TEST(test_a_dropped_connection_fails_the_call_without_resending)
{
	static const char *const replies[] = {PING_REPLY, DROP, PING_REPLY};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 3);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	weft_outcome *outcome = NULL;
	assert_weft(weft_result(client, 3, -1, &outcome), WEFT_ECLOSED);
	ck_assert_msg(strstr(weft_last_error()->message, "not sent again") != NULL, "message: %s",
	              weft_last_error()->message);
	/* nng dials again on its own; the next call goes through. */
	assert_weft(weft_ping(client, NULL), WEFT_OK);
	ck_assert_uint_eq(fake.served, 3);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

START_TEST(test_an_oversized_request_is_refused_locally)
{
	static const char *const replies[] = {PING_REPLY};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 1);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	char big[4001];
	memset(big, 'x', sizeof(big));
	json_t *reply = NULL;
	/* max_message is 1000 here: above 4 x 1000 nothing is sent. */
	assert_weft(weft_request_bytes(client, big, sizeof(big), 0, &reply), WEFT_ETOOLARGE);
	ck_assert_uint_eq(fake.served, 1);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

START_TEST(test_submits_carry_the_scheduling_fields)
{
	static const char *const replies[] = {PING_REPLY, "{\"ok\":true,\"id\":9}",
	                                      "{\"ok\":true,\"ids\":[10,11]}"};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 3);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("echo", &spec), WEFT_OK);
	assert_weft(weft_job_spec_add_after(spec, 3), WEFT_OK);
	assert_weft(weft_job_spec_set_retries(spec, 2, 0.5, -1), WEFT_OK);
	assert_weft(weft_job_spec_set_deadline(spec, 2e9), WEFT_OK);
	uint64_t id = 0;
	assert_weft(weft_submit(client, spec, &id), WEFT_OK);
	ck_assert_uint_eq(id, 9);
	assert_request(&fake, 1,
	               "{\"op\": \"submit\", \"fn\": \"echo\", \"after\": [3], \"retries\": 2,"
	               " \"retry_backoff\": 0.5, \"deadline\": 2000000000.0}");
	weft_job_spec *plain = NULL;
	assert_weft(weft_job_spec_new("echo", &plain), WEFT_OK);
	const weft_job_spec *specs[] = {plain, spec};
	uint64_t ids[2] = {0, 0};
	assert_weft(weft_submit_batch(client, specs, 2, ids), WEFT_OK);
	assert_request(&fake, 2,
	               "{\"op\": \"submit\", \"jobs\": [{\"fn\": \"echo\"}, {\"fn\": \"echo\","
	               " \"after\": [3], \"retries\": 2, \"retry_backoff\": 0.5,"
	               " \"deadline\": 2000000000.0}]}");
	weft_job_spec_free(plain);
	weft_job_spec_free(spec);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

START_TEST(test_futures_send_their_requests)
{
	static const char *const replies[] = {
		PING_REPLY,
		"{\"ok\":true,\"id\":21}",
		"{\"ok\":true,\"id\":22}",
		"{\"ok\":true,\"id\":21,\"state\":\"done\"}",
		"{\"ok\":true,\"id\":22,\"state\":\"failed\"}",
		"{\"ok\":false,\"error\":{\"code\":\"already_set\",\"message\":\"future 21 is "
		"already done\",\"field\":\"id\",\"id\":21,\"state\":\"done\"}}",
		"{\"ok\":false,\"error\":{\"code\":\"permission_denied\",\"message\":\"not yours\","
		"\"field\":\"id\"}}",
		"{\"ok\":false,\"error\":{\"code\":\"unknown_id\",\"message\":\"no job 99\","
		"\"id\":99}}",
	};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 8);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	uint64_t id = 0;
	json_t *labels = json_pack("{s:s}", "who", "me");
	assert_weft(weft_future_new(client, labels, &id), WEFT_OK);
	ck_assert_uint_eq(id, 21);
	ck_assert_int_eq(labels->refcount, 1); /* borrowed */
	json_decref(labels);
	assert_request(&fake, 1, "{\"op\": \"future.new\", \"labels\": {\"who\": \"me\"}}");
	assert_weft(weft_future_new(client, NULL, &id), WEFT_OK);
	ck_assert_uint_eq(id, 22);
	assert_request(&fake, 2, "{\"op\": \"future.new\"}");

	json_t *result = json_string("666");
	assert_weft(weft_future_set_result(client, 21, result), WEFT_OK);
	ck_assert_int_eq(result->refcount, 1); /* borrowed */
	assert_request(&fake, 3, "{\"op\": \"future.set\", \"id\": 21, \"result\": \"666\"}");
	assert_weft(weft_future_set_error(client, 22, "ValueError", "no such user"), WEFT_OK);
	assert_request(&fake, 4,
	               "{\"op\": \"future.set\", \"id\": 22, \"error\": {\"type\": \"ValueError\","
	               " \"message\": \"no such user\"}}");

	assert_weft(weft_future_set_result(client, 21, result), WEFT_EALREADYSET);
	ck_assert_str_eq(weft_last_error()->state, "done");
	ck_assert_uint_eq(weft_last_error()->id, 21);
	ck_assert_str_eq(weft_last_error()->message, "future 21 is already done");
	assert_weft(weft_future_set_result(client, 23, result), WEFT_EPERM);
	ck_assert_uint_eq(weft_last_error()->id, 23); /* added by the library */
	assert_weft(weft_future_set_error(client, 99, "E", ""), WEFT_EUNKNOWNID);
	ck_assert_uint_eq(weft_last_error()->id, 99);
	json_decref(result);

	/* Refused before anything is sent. */
	json_t *array = json_array();
	assert_weft(weft_future_new(client, array, &id), WEFT_EINVAL);
	json_decref(array);
	assert_weft(weft_future_set_result(client, 21, NULL), WEFT_EINVAL);
	assert_weft(weft_future_set_result(client, 0, json_null()), WEFT_EINVAL);
	assert_weft(weft_future_set_error(client, 21, "", "x"), WEFT_EINVAL);
	assert_weft(weft_future_set_error(client, 21, "E", NULL), WEFT_EINVAL);
	assert_weft(weft_future_set_error(client, 21, "E", "\xc3\x28"), WEFT_EINVAL);
	ck_assert_uint_eq(fake.served, 8);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

START_TEST(test_as_completed_yields_each_id_once_in_order)
{
	static const char *const replies[] = {
		PING_REPLY,
		"{\"ok\":true,\"done\":[3,1],\"pending\":[2,4]}",
		/* 1 again (a daemon must not, but the iterator must not care), and an
		 * id it never asked about */
		"{\"ok\":true,\"done\":[1,4,77],\"pending\":[2]}",
		"{\"ok\":true,\"done\":[2],\"pending\":[]}",
	};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 4);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	const uint64_t ids[] = {1, 2, 3, 2, 4}; /* 2 twice: yielded once */
	weft_as_completed *iterator = NULL;
	assert_weft(weft_as_completed_new(client, ids, 5, -1, &iterator), WEFT_OK);
	ck_assert_uint_eq(fake.served, 1); /* nothing asked yet */
	uint64_t yielded[4] = {0};
	for (int i = 0; i < 4; i++)
		assert_weft(weft_as_completed_next(iterator, &yielded[i]), WEFT_OK);
	ck_assert_uint_eq(yielded[0], 3);
	ck_assert_uint_eq(yielded[1], 1);
	ck_assert_uint_eq(yielded[2], 4);
	ck_assert_uint_eq(yielded[3], 2);
	uint64_t end = 99;
	assert_weft(weft_as_completed_next(iterator, &end), WEFT_OK);
	ck_assert_uint_eq(end, 0);
	end = 99;
	assert_weft(weft_as_completed_next(iterator, &end), WEFT_OK); /* stays at the end */
	ck_assert_uint_eq(end, 0);
	ck_assert_uint_eq(fake.served, 4); /* the end asks nothing */
	assert_request(&fake, 1, "{\"op\": \"as_completed\", \"ids\": [1, 2, 3, 4]}");
	assert_request(&fake, 2, "{\"op\": \"as_completed\", \"ids\": [2, 4]}");
	assert_request(&fake, 3, "{\"op\": \"as_completed\", \"ids\": [2]}");
	weft_as_completed_free(iterator);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

START_TEST(test_as_completed_times_out_and_survives_errors)
{
	static const char *const replies[] = {
		PING_REPLY,
		"{\"ok\":true,\"done\":[5],\"pending\":[6]}",
		"{\"ok\":false,\"error\":{\"code\":\"unknown_id\",\"message\":\"no job 6\",\"id\":6}}",
		"{\"ok\":true,\"pending\":[6]}", /* no done list */
		"{\"ok\":true,\"done\":[],\"pending\":[6]}",
		"{\"ok\":true,\"done\":[6],\"pending\":[]}",
	};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 6);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	const uint64_t ids[] = {5, 6};
	weft_as_completed *iterator = NULL;
	assert_weft(weft_as_completed_new(client, ids, 2, 0, &iterator), WEFT_OK);
	uint64_t id = 0;
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_OK);
	ck_assert_uint_eq(id, 5);
	assert_request(&fake, 1, "{\"op\": \"as_completed\", \"ids\": [5, 6], \"timeout\": 0.0}");
	id = 0;
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_EUNKNOWNID);
	ck_assert_uint_eq(weft_last_error()->id, 6);
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_EPROTO);
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_ETIMEOUT);
	ck_assert_uint_eq(id, 0); /* not written on failure */
	/* past the time: one more look, which finds 6 finished */
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_OK);
	ck_assert_uint_eq(id, 6);
	assert_request(&fake, 5, "{\"op\": \"as_completed\", \"ids\": [6], \"timeout\": 0.0}");
	assert_weft(weft_as_completed_next(iterator, &id), WEFT_OK);
	ck_assert_uint_eq(id, 0);
	weft_as_completed_free(iterator);

	assert_weft(weft_as_completed_new(client, ids, 0, -1, &iterator), WEFT_EINVAL);
	assert_weft(weft_as_completed_new(client, NULL, 2, -1, &iterator), WEFT_EINVAL);
	assert_weft(weft_as_completed_new(client, ids, 2, NAN, &iterator), WEFT_EINVAL);
	const uint64_t bad[] = {5, 0};
	assert_weft(weft_as_completed_new(client, bad, 2, -1, &iterator), WEFT_EINVAL);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

/* ------------------------------------------------------ allocation failures */

static long allocations_until_failure = -1; /* -1: never fail */
static long allocations_live;

static void *failing_malloc(size_t size)
{
	if (allocations_until_failure == 0)
		return NULL;
	if (allocations_until_failure > 0)
		allocations_until_failure--;
	void *memory = malloc(size + 16);
	if (memory == NULL)
		return NULL;
	allocations_live++;
	return (char *)memory + 16;
}

static void failing_free(void *pointer)
{
	if (pointer == NULL)
		return;
	allocations_live--;
	free((char *)pointer - 16);
}

/* Builds a spec with every option and encodes it; returns the first error. */
static int build_and_encode(void)
{
	weft_job_spec *spec = NULL;
	int rv = weft_job_spec_new("sleep", &spec);
	if (rv != 0)
		return rv;
	json_t *args = json_pack("{s:i}", "seconds", 1);
	if (args == NULL)
		rv = WEFT_ENOMEM;
	if (rv == 0)
		rv = weft_job_spec_set_args(spec, args);
	json_decref(args);
	if (rv == 0)
		rv = weft_job_spec_set_label(spec, "team", "ci");
	if (rv == 0)
		rv = weft_job_spec_set_label(spec, "owner", "me");
	/* Five ids: the list grows once. */
	for (uint64_t id = 1; id <= 5 && rv == 0; id++)
		rv = weft_job_spec_add_after(spec, id);
	if (rv == 0)
		rv = weft_job_spec_set_after_always(spec, true);
	if (rv == 0)
		rv = weft_job_spec_set_delay(spec, 1);
	if (rv == 0)
		rv = weft_job_spec_set_retries(spec, 2, 1, 10);
	if (rv == 0)
		rv = weft_job_spec_add_retry_on(spec, "Timeout");
	if (rv == 0)
		rv = weft_job_spec_add_retry_on(spec, "ExitStatus");
	if (rv == 0)
		rv = weft_job_spec_set_deadline(spec, 2e9);
	json_t *job = NULL;
	if (rv == 0)
		rv = job_spec_to_json(spec, &job);
	json_decref(job);
	weft_job_spec_free(spec);
	return rv;
}

START_TEST(test_job_specs_survive_every_allocation_failure)
{
	weft_set_alloc_funcs(failing_malloc, failing_free);
	json_set_alloc_funcs(failing_malloc, failing_free);
	for (long fail_at = 0;; fail_at++) {
		allocations_until_failure = fail_at;
		int rv = build_and_encode();
		ck_assert_msg(rv == WEFT_OK || rv == WEFT_ENOMEM, "allocation %ld: %s", fail_at,
		              weft_error_code(rv));
		ck_assert_msg(allocations_live == 0, "allocation %ld: %ld blocks leaked", fail_at,
		              allocations_live);
		if (allocations_until_failure > 0) {
			ck_assert_int_eq(rv, WEFT_OK);
			break; /* nothing failed: every allocation point is covered */
		}
		ck_assert_msg(fail_at < 1000, "no end to the allocations");
	}
	allocations_until_failure = -1;
}
END_TEST

/* Starts an iterator over duplicated ids; returns the first error. as_completed_new
 * never talks to the daemon, so any non-NULL client does. */
static int start_and_free_an_iterator(void)
{
	static char not_a_client;
	const uint64_t ids[] = {4, 2, 4, 9, 2};
	weft_as_completed *iterator = NULL;
	int rv = weft_as_completed_new((weft_client *)(void *)&not_a_client, ids, 5, 10, &iterator);
	weft_as_completed_free(iterator);
	return rv;
}

START_TEST(test_as_completed_survives_every_allocation_failure)
{
	weft_set_alloc_funcs(failing_malloc, failing_free);
	for (long fail_at = 0;; fail_at++) {
		allocations_until_failure = fail_at;
		int rv = start_and_free_an_iterator();
		ck_assert_msg(rv == WEFT_OK || rv == WEFT_ENOMEM, "allocation %ld: %s", fail_at,
		              weft_error_code(rv));
		ck_assert_msg(allocations_live == 0, "allocation %ld: %ld blocks leaked", fail_at,
		              allocations_live);
		if (allocations_until_failure > 0) {
			ck_assert_int_eq(rv, WEFT_OK);
			break;
		}
		ck_assert_msg(fail_at < 100, "no end to the allocations");
	}
	allocations_until_failure = -1;
}
END_TEST

/* Asserts that the last error's message contains part. */
static void assert_message_has(const char *part)
{
	ck_assert_msg(strstr(weft_last_error()->message, part) != NULL, "message '%s' lacks '%s'",
	              weft_last_error()->message, part);
}

START_TEST(test_a_null_client_is_an_error)
{
	json_t *reply = NULL;
	json_t *request = json_pack("{s:s}", "op", "ping");
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("sleep", &spec), WEFT_OK);
	uint64_t id = 0;
	const uint64_t ids[] = {1};
	weft_wait_result *waited = NULL;
	assert_weft(weft_ping(NULL, &reply), WEFT_EINVAL);
	assert_message_has("no client given");
	assert_weft(weft_submit(NULL, spec, &id), WEFT_EINVAL);
	assert_message_has("no client given");
	assert_weft(weft_status(NULL, 1, &reply), WEFT_EINVAL);
	assert_message_has("no client given");
	assert_weft(weft_wait(NULL, ids, 1, 0, WEFT_ALL_COMPLETED, &waited), WEFT_EINVAL);
	assert_message_has("no client given");
	assert_weft(weft_queue_set(NULL, "q", 1), WEFT_EINVAL);
	assert_message_has("no client given");
	assert_weft(weft_future_set_result(NULL, 1, json_null()), WEFT_EINVAL);
	assert_message_has("no client given");
	assert_weft(weft_request(NULL, request, 0, &reply), WEFT_EINVAL);
	assert_message_has("no client given");
	assert_weft(weft_request_bytes(NULL, "{}", 2, 0, &reply), WEFT_EINVAL);
	assert_message_has("no client given");
	ck_assert_ptr_null(reply);
	ck_assert_ptr_null(waited);
	ck_assert_uint_eq(id, 0);
	/* The request is stolen even when nothing is sent: no leak, no double free. */
	assert_weft(weft_stats(NULL, &reply), WEFT_EINVAL);
	json_decref(request);
	weft_job_spec_free(spec);
}
END_TEST

START_TEST(test_wait_checks_its_ids)
{
	weft_wait_result *waited = NULL;
	const uint64_t zero[] = {1, 0};
	const uint64_t huge[] = {(1ULL << 53) + 1};
	assert_weft(weft_wait(NULL, zero, 2, 0, WEFT_ALL_COMPLETED, &waited), WEFT_EINVAL);
	assert_message_has("job id 0 is out of range");
	assert_weft(weft_wait(NULL, huge, 1, 0, WEFT_ALL_COMPLETED, &waited), WEFT_EINVAL);
	assert_message_has("out of range (1 to 2^53)");
	ck_assert_ptr_null(waited);
}
END_TEST

/* A NULL spec or output is caught before anything is sent to a live client. */
START_TEST(test_null_inputs_and_outputs_are_errors)
{
	static const char *const replies[] = {PING_REPLY};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 1);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	weft_job_spec *spec = NULL;
	assert_weft(weft_job_spec_new("sleep", &spec), WEFT_OK);
	uint64_t id = 0;
	weft_outcome *outcome = NULL;
	assert_weft(weft_submit(client, NULL, &id), WEFT_EINVAL);
	assert_message_has("no job spec given");
	assert_weft(weft_submit_wait(client, NULL, 1, &outcome), WEFT_EINVAL);
	assert_message_has("no job spec given");
	assert_weft(weft_submit(client, spec, NULL), WEFT_EINVAL);
	assert_message_has("id is NULL");
	assert_weft(weft_status(client, 1, NULL), WEFT_EINVAL);
	assert_message_has("job is NULL");
	assert_weft(weft_list(client, NULL, NULL, NULL), WEFT_EINVAL);
	assert_message_has("jobs is NULL");
	assert_weft(weft_functions(client, NULL), WEFT_EINVAL);
	assert_message_has("functions is NULL");
	assert_weft(weft_queues(client, NULL), WEFT_EINVAL);
	assert_message_has("queues is NULL");
	ck_assert_uint_eq(fake.served, 1);
	ck_assert_ptr_null(outcome);
	weft_job_spec_free(spec);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

/* An ok reply without the member an op promises names what is missing. */
START_TEST(test_a_reply_lacking_its_answer_is_a_protocol_error)
{
	static const char *const replies[] = {
		PING_REPLY,
		"{\"ok\":true,\"job\":[]}",
		"{\"ok\":true}",
		"{\"ok\":true,\"functions\":{}}",
		"{\"ok\":true,\"queues\":null}",
		"{\"ok\":true,\"jobs\":[{\"id\":1}],\"more\":true}",
	};
	fake_daemon fake;
	fake_daemon_start(&fake, replies, 6);
	weft_client *client = NULL;
	assert_weft(weft_connect(fake.url, &client), WEFT_OK);
	json_t *answer = NULL;
	assert_weft(weft_status(client, 1, &answer), WEFT_EPROTO);
	assert_message_has("reply to 'status' lacks the job object");
	assert_weft(weft_list(client, NULL, &answer, NULL), WEFT_EPROTO);
	assert_message_has("reply to 'list' lacks the jobs");
	assert_weft(weft_functions(client, &answer), WEFT_EPROTO);
	assert_message_has("reply to 'functions' lacks the functions");
	assert_weft(weft_queues(client, &answer), WEFT_EPROTO);
	assert_message_has("reply to 'queues' lacks the list");
	ck_assert_ptr_null(answer);
	bool more = false;
	assert_weft(weft_list(client, NULL, &answer, &more), WEFT_OK);
	ck_assert(more);
	ck_assert_uint_eq(json_array_size(answer), 1);
	ck_assert_int_eq(answer->refcount, 1);
	json_decref(answer);
	weft_close(client);
	fake_daemon_stop(&fake);
}
END_TEST

static Suite *client_suite(void)
{
	Suite *suite = suite_create("client");
	TCase *units = tcase_create("units");
	tcase_add_test(units, test_state_names_round_trip);
	tcase_add_test(units, test_job_spec_rejects_a_missing_function);
	tcase_add_test(units, test_job_spec_encodes_every_field);
	tcase_add_test(units, test_job_spec_leaves_out_unset_options);
	tcase_add_test(units, test_job_spec_rejects_bad_options);
	tcase_add_test(units, test_job_spec_encodes_scheduling_fields);
	tcase_add_test(units, test_job_spec_sends_at_and_leaves_default_backoffs_out);
	tcase_add_test(units, test_job_spec_rejects_bad_scheduling);
	tcase_add_test(units, test_utf8_check);
	tcase_add_test(units, test_json_syntax_check_agrees_with_jansson);
	tcase_add_test(units, test_last_error_is_per_thread);
	tcase_add_test(units, test_job_specs_survive_every_allocation_failure);
	tcase_add_test(units, test_as_completed_survives_every_allocation_failure);
	tcase_add_test(units, test_a_null_client_is_an_error);
	tcase_add_test(units, test_wait_checks_its_ids);
	suite_add_tcase(suite, units);
	TCase *connection = tcase_create("connection");
	tcase_set_timeout(connection, 20);
	tcase_add_test(connection, test_connect_to_nothing_names_the_url);
	tcase_add_test(connection, test_connect_honours_weft_url);
	tcase_add_test(connection, test_connect_rejects_a_bad_url);
	tcase_add_test(connection, test_connect_refuses_another_protocol_version);
	tcase_add_test(connection, test_a_reply_that_is_not_weft_is_a_protocol_error);
	tcase_add_test(connection, test_daemon_error_details_reach_the_caller);
	tcase_add_test(connection, test_a_dropped_connection_fails_the_call_without_resending);
	tcase_add_test(connection, test_an_oversized_request_is_refused_locally);
	tcase_add_test(connection, test_submits_carry_the_scheduling_fields);
	tcase_add_test(connection, test_futures_send_their_requests);
	tcase_add_test(connection, test_as_completed_yields_each_id_once_in_order);
	tcase_add_test(connection, test_as_completed_times_out_and_survives_errors);
	tcase_add_test(connection, test_null_inputs_and_outputs_are_errors);
	tcase_add_test(connection, test_a_reply_lacking_its_answer_is_a_protocol_error);
	suite_add_tcase(suite, connection);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(client_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

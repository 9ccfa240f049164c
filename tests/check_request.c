/* The request decoder: every op's good form, and every way a request can be wrong. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/core/jobspec.h"
#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/server/request.h"
#include "tests/stand_ins.h"

struct bad_case {
	const char *request;
	int code;
	const char *field; /* expected field, or NULL when none is reported */
};

/* Each request must be refused with exactly this code (and field). */
static const struct bad_case bad_cases[] = {
	{"", WEFT_EMALFORMED, NULL},
	{"garbage", WEFT_EMALFORMED, NULL},
	{"{\"op\":\"ping\"", WEFT_EMALFORMED, NULL},                  /* truncated */
	{"{\"op\":\"ping\"} trailing", WEFT_EMALFORMED, NULL},
	{"[1,2]", WEFT_EMALFORMED, NULL},
	{"\"ping\"", WEFT_EMALFORMED, NULL},
	{"{\"op\":\"ping\",\"op\":\"ping\"}", WEFT_EMALFORMED, NULL}, /* duplicate key */
	{"{\"op\":\"\xff\"}", WEFT_EMALFORMED, NULL},                 /* not UTF-8 */
	{"{}", WEFT_EBADFIELD, "op"},
	{"{\"op\":7}", WEFT_EBADFIELD, "op"},
	{"{\"op\":\"stat\"}", WEFT_EUNKNOWNOP, "op"},
	{"{\"op\":\"ping\",\"extra\":1}", WEFT_EUNKNOWNFIELD, "extra"},
	{"{\"op\":\"status\",\"idd\":1}", WEFT_EUNKNOWNFIELD, "idd"},
	{"{\"op\":\"status\"}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"status\",\"id\":0}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"status\",\"id\":-3}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"status\",\"id\":1.5}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"status\",\"id\":\"7\"}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"status\",\"id\":9007199254740993}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"submit\"}", WEFT_EBADFIELD, "fn"},
	{"{\"op\":\"submit\",\"fn\":3}", WEFT_EBADFIELD, "fn"},
	{"{\"op\":\"submit\",\"fn\":\"slep\"}", WEFT_EUNKNOWNFN, "fn"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":[1]}", WEFT_EBADFIELD, "args"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{}}", WEFT_EBADARGS, "args.value"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1,\"x\":2}}", WEFT_EBADARGS, "args.x"},
	{"{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":-1}}", WEFT_EBADARGS,
	 "args.seconds"},
	{"{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":\"1\"}}", WEFT_EBADARGS,
	 "args.seconds"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"timeout\":0}", WEFT_EBADFIELD,
	 "timeout"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"timeout\":\"5\"}",
	 WEFT_EBADFIELD, "timeout"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"labels\":{\"a\":1}}",
	 WEFT_EBADFIELD, "labels.a"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"labels\":[]}", WEFT_EBADFIELD,
	 "labels"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"wait\":-1}", WEFT_EBADFIELD,
	 "wait"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"colour\":1}",
	 WEFT_EUNKNOWNFIELD, "colour"},
	{"{\"op\":\"submit\",\"jobs\":[]}", WEFT_EBADFIELD, "jobs"},
	{"{\"op\":\"submit\",\"jobs\":{}}", WEFT_EBADFIELD, "jobs"},
	{"{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1}}],\"fn\":\"echo\"}",
	 WEFT_EBADFIELD, "fn"},
	{"{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1}}],\"wait\":1}",
	 WEFT_EBADFIELD, "wait"},
	{"{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1}},5]}", WEFT_EBADFIELD,
	 "jobs[1]"},
	{"{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1}},{\"fn\":\"nope\"}]}",
	 WEFT_EUNKNOWNFN, "jobs[1].fn"},
	{"{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1},\"op\":\"x\"}]}",
	 WEFT_EUNKNOWNFIELD, "jobs[0].op"},
	{"{\"op\":\"result\"}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"result\",\"id\":1,\"timeout\":-0.5}", WEFT_EBADFIELD, "timeout"},
	{"{\"op\":\"result\",\"id\":1,\"ids\":[1]}", WEFT_EBADFIELD, "ids"},
	{"{\"op\":\"wait\"}", WEFT_EBADFIELD, "ids"},
	{"{\"op\":\"wait\",\"ids\":[]}", WEFT_EBADFIELD, "ids"},
	{"{\"op\":\"wait\",\"ids\":[1,\"2\"]}", WEFT_EBADFIELD, "ids[1]"},
	{"{\"op\":\"wait\",\"ids\":[1],\"return_when\":\"FIRST\"}", WEFT_EBADFIELD, "return_when"},
	{"{\"op\":\"cancel\",\"id\":null}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"list\",\"state\":\"sleeping\"}", WEFT_EBADFIELD, "state"},
	{"{\"op\":\"list\",\"limit\":0}", WEFT_EBADFIELD, "limit"},
	{"{\"op\":\"list\",\"limit\":100001}", WEFT_EBADFIELD, "limit"},
	{"{\"op\":\"list\",\"after\":-1}", WEFT_EBADFIELD, "after"},
	{"{\"op\":\"list\",\"before\":0}", WEFT_EBADFIELD, "before"},
	{"{\"op\":\"list\",\"order\":\"sideways\"}", WEFT_EBADFIELD, "order"},
	{"{\"op\":\"list\",\"fn\":1}", WEFT_EBADFIELD, "fn"},
	{"{\"op\":\"future.new\",\"fn\":\"x\"}", WEFT_EUNKNOWNFIELD, "fn"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":7}", WEFT_EBADFIELD, "after"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":[0]}", WEFT_EBADFIELD, "after[0]"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"after\":[1],\"after_policy\":\"x\"}",
	 WEFT_EBADFIELD, "after_policy"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"delay\":-1}", WEFT_EBADFIELD, "delay"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"at\":\"soon\"}", WEFT_EBADFIELD, "at"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"retries\":101}", WEFT_EBADFIELD, "retries"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"retry_backoff\":5,\"retry_backoff_max\":1}",
	 WEFT_EBADFIELD, "retry_backoff_max"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"retry_on\":[1]}", WEFT_EBADFIELD, "retry_on"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"deadline\":-5}", WEFT_EBADFIELD, "deadline"},
	{"{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1}}],\"after\":[1]}", WEFT_EBADFIELD, "after"},
	{"{\"op\":\"as_completed\",\"ids\":[1],\"return_when\":\"ALL_COMPLETED\"}", WEFT_EUNKNOWNFIELD, "return_when"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"priority\":1001}", WEFT_EBADFIELD, "priority"},
	{"{\"op\":\"submit\",\"fn\":\"echo\",\"args\":{\"value\":1},\"priority\":1.5}", WEFT_EBADFIELD, "priority"},
	{"{\"op\":\"future.new\",\"labels\":{\"a\":[]}}", WEFT_EBADFIELD, "labels.a"},
	{"{\"op\":\"future.set\",\"result\":1}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"future.set\",\"id\":1}", WEFT_EBADFIELD, "result"},
	{"{\"op\":\"future.set\",\"id\":1,\"result\":1,\"error\":{}}", WEFT_EBADFIELD, "result"},
	{"{\"op\":\"future.set\",\"id\":1,\"error\":\"bad\"}", WEFT_EBADFIELD, "error"},
	{"{\"op\":\"future.set\",\"id\":1,\"error\":{\"type\":\"E\"}}", WEFT_EBADFIELD, "error"},
	{"{\"op\":\"output\",\"id\":1,\"stream\":\"stdin\"}", WEFT_EBADFIELD, "stream"},
	{"{\"op\":\"output\",\"id\":1,\"max\":16777217}", WEFT_EBADFIELD, "max"},
	{"{\"op\":\"output\",\"id\":1,\"wait\":-1}", WEFT_EBADFIELD, "wait"},
	{"{\"op\":\"output\",\"id\":1,\"offset\":\"0\"}", WEFT_EBADFIELD, "offset"},
	{"{\"op\":\"output\"}", WEFT_EBADFIELD, "id"},
	{"{\"op\":\"result\",\"id\":1,\"output\":0}", WEFT_EBADFIELD, "output"},
	{"{\"op\":\"result\",\"ids\":[1],\"output\":false}", WEFT_EBADFIELD, "output"},
	/* The input op's bytes, in the form libweft writes and in any other. */
	{"{\"op\":\"input\",\"id\":1,\"eof\":false,\"data\":\"QQ=\"}", WEFT_EBADFIELD, "data"},
	{"{\"op\":\"input\",\"id\":1,\"eof\":false,\"data\":\"Q!==\"}", WEFT_EBADFIELD, "data"},
	{"{\"op\":\"input\",\"id\":1,\"data\":\"QUJD", WEFT_EMALFORMED, NULL}, /* unended */
	{"{\"id\":1,\"op\":\"input\",\"data\":\"QQ=\"}", WEFT_EBADFIELD, "data"},
	{"{\"op\":\"input\",\"id\":1,\"data\":7}", WEFT_EBADFIELD, "data"},
	{"{\"op\":\"input\",\"id\":1,\"eof\":1}", WEFT_EBADFIELD, "eof"},
	{"{\"op\":\"input\",\"id\":1,\"x\":{\"data\":\"QUJD\"}}", WEFT_EUNKNOWNFIELD, "x"},
	{"{\"op\":\"input\",\"id\":1,\"data\":\"QUJD\",\"data\":\"QUJD\"}", WEFT_EMALFORMED, NULL},
};

START_TEST(test_bad_request_is_refused_with_its_code)
{
	const struct bad_case *bad = &bad_cases[_i];
	struct request request;
	struct problem problem;
	problem_init(&problem);
	int rv = request_decode(bad->request, strlen(bad->request), &request, &problem);
	ck_assert_msg(rv == bad->code, "%s: got %s (%s), want %s", bad->request,
	              weft_error_code(rv), problem.message, weft_error_code(bad->code));
	ck_assert_int_eq(problem.code, bad->code);
	ck_assert_msg(problem.message[0] != '\0', "%s: no message", bad->request);
	if (bad->field != NULL)
		ck_assert_msg(strcmp(problem.field, bad->field) == 0, "%s: field '%s', want '%s'",
		              bad->request, problem.field, bad->field);
	ck_assert_ptr_null(request.root);
	ck_assert_ptr_null(request.jobs);
}
END_TEST

static void decode_ok(const char *text, struct request *request)
{
	struct problem problem;
	problem_init(&problem);
	int rv = request_decode(text, strlen(text), request, &problem);
	ck_assert_msg(rv == WEFT_OK, "%s: %s: %s", text, weft_error_code(rv), problem.message);
}

START_TEST(test_submit_single_with_everything)
{
	struct request request;
	decode_ok("{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":2,\"result\":[1]},"
	          "\"timeout\":5,\"labels\":{\"team\":\"ci\"},\"wait\":0.5}",
	          &request);
	ck_assert_int_eq(request.op, REQUEST_SUBMIT);
	ck_assert(!request.batch);
	ck_assert_uint_eq(request.job_count, 1);
	ck_assert_str_eq(functions_name_of(request.jobs[0].function), "sleep");
	ck_assert(json_is_object(request.jobs[0].args));
	ck_assert_str_eq(json_string_value(json_object_get(request.jobs[0].labels, "team")), "ci");
	ck_assert_double_eq(request.jobs[0].timeout, 5);
	ck_assert(request.has_wait);
	ck_assert_double_eq(request.wait, 0.5);
	request_clear(&request);
}
END_TEST

START_TEST(test_submit_without_args_gets_an_empty_object)
{
	struct request request;
	decode_ok("{\"op\":\"submit\",\"fn\":\"sleep\",\"args\":{\"seconds\":0}}", &request);
	ck_assert(json_is_object(request.jobs[0].args));
	ck_assert_ptr_null(request.jobs[0].labels);
	ck_assert_double_eq(request.jobs[0].timeout, 0);
	request_clear(&request);
}
END_TEST

START_TEST(test_submit_batch)
{
	struct request request;
	decode_ok("{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":1}},"
	          "{\"fn\":\"sleep\",\"args\":{\"seconds\":1},\"timeout\":2}]}",
	          &request);
	ck_assert(request.batch);
	ck_assert_uint_eq(request.job_count, 2);
	ck_assert_str_eq(functions_name_of(request.jobs[1].function), "sleep");
	ck_assert_double_eq(request.jobs[1].timeout, 2);
	request_clear(&request);
}
END_TEST

START_TEST(test_wait_removes_duplicate_ids_keeping_order)
{
	struct request request;
	decode_ok("{\"op\":\"wait\",\"ids\":[5,3,5,9,3],\"timeout\":1,"
	          "\"return_when\":\"FIRST_EXCEPTION\"}",
	          &request);
	ck_assert_uint_eq(request.id_count, 3);
	ck_assert_uint_eq(request.ids[0], 5);
	ck_assert_uint_eq(request.ids[1], 3);
	ck_assert_uint_eq(request.ids[2], 9);
	ck_assert(request.has_timeout);
	ck_assert_int_eq(request.return_when, REQUEST_FIRST_EXCEPTION);
	request_clear(&request);
}
END_TEST

START_TEST(test_wait_defaults_to_all_completed_without_timeout)
{
	struct request request;
	decode_ok("{\"op\":\"wait\",\"ids\":[1]}", &request);
	ck_assert_int_eq(request.return_when, REQUEST_ALL_COMPLETED);
	ck_assert(!request.has_timeout);
	request_clear(&request);
}
END_TEST

START_TEST(test_result_forms)
{
	struct request request;
	decode_ok("{\"op\":\"result\",\"id\":7,\"timeout\":0}", &request);
	ck_assert_uint_eq(request.id, 7);
	ck_assert(request.has_timeout);
	ck_assert_double_eq(request.timeout, 0);
	request_clear(&request);
	decode_ok("{\"op\":\"result\",\"ids\":[7,8]}", &request);
	ck_assert_uint_eq(request.id_count, 2);
	ck_assert(!request.has_timeout);
	request_clear(&request);
}
END_TEST

START_TEST(test_list_filters_and_defaults)
{
	struct request request;
	decode_ok("{\"op\":\"list\"}", &request);
	ck_assert_int_eq(request.state, -1);
	ck_assert_uint_eq(request.limit, REQUEST_DEFAULT_LIST);
	request_clear(&request);
	decode_ok("{\"op\":\"list\",\"state\":\"running\",\"fn\":\"sleep\","
	          "\"labels\":{\"a\":\"b\"},\"after\":10,\"limit\":5}",
	          &request);
	ck_assert_int_eq(request.state, JOB_RUNNING);
	ck_assert_str_eq(request.function, "sleep");
	ck_assert_uint_eq(request.after, 10);
	ck_assert_uint_eq(request.limit, 5);
	request_clear(&request);
}
END_TEST

START_TEST(test_problem_becomes_a_reply_with_context)
{
	struct problem problem;
	problem_init(&problem);
	problem_set(&problem, WEFT_EUNKNOWNFN, "fn", "no function '%s'", "x");
	problem_in_batch(&problem, 3);
	problem.id = 9;
	json_t *reply = problem_to_reply(&problem);
	json_t *error = json_object_get(reply, "error");
	ck_assert(json_is_false(json_object_get(reply, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(error, "code")), "unknown_function");
	ck_assert_str_eq(json_string_value(json_object_get(error, "message")),
	                 "jobs[3]: no function 'x'");
	ck_assert_str_eq(json_string_value(json_object_get(error, "field")), "jobs[3].fn");
	ck_assert_int_eq(json_integer_value(json_object_get(error, "index")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(error, "id")), 9);
	json_decref(reply);
}
END_TEST

START_TEST(test_error_table_round_trips)
{
	for (int code = 0; code < WEFT_ERROR_COUNT_; code++) {
		ck_assert_int_eq(weft_error_from_code(weft_error_code(code)), code);
		ck_assert(strlen(weft_strerror(code)) > 0);
	}
	ck_assert_int_eq(weft_error_from_code("no such code"), WEFT_EINTERNAL);
	ck_assert_str_eq(weft_error_code(-1), "internal");
}
END_TEST

/*
 * Out of memory while decoding (jansson's test_chaos.c): the nth allocation
 * fails, for every n until a decode needs fewer. Each attempt either
 * succeeds whole or is refused with WEFT_ENOMEM, never aborts or crashes;
 * the sanitizer builds check that a refused one leaks nothing.
 */
START_TEST(test_running_out_of_memory_refuses_the_request)
{
	static const char *const requests[] = {
		"{\"op\":\"submit\",\"jobs\":[{\"fn\":\"echo\",\"args\":{\"value\":[1,{\"a\":\"b\"}]},"
		"\"labels\":{\"team\":\"ci\"}},{\"fn\":\"sleep\",\"args\":{\"seconds\":1},"
		"\"after\":[1,2],\"queue\":\"builds\",\"retries\":2}]}",
		"{\"op\":\"wait\",\"ids\":[5,3,5,9,3],\"timeout\":1}",
		"{\"op\":\"submit\",\"fn\":\"sleep\"}",
	};
	for (size_t r = 0; r < sizeof(requests) / sizeof(requests[0]); r++) {
		unsigned long refused = 0;
		bool whole = false;
		for (unsigned long nth = 1; nth < 1000 && !whole; nth++) {
			struct request request;
			struct problem problem;
			problem_init(&problem);
			memory_fail_nth(nth);
			int rv = request_decode(requests[r], strlen(requests[r]), &request, &problem);
			memory_fail_nth(0);
			if (rv == WEFT_OK) {
				whole = true;
				request_clear(&request);
				continue;
			}
			/* The third request is wrong (no args for sleep): its own error, or ENOMEM. */
			ck_assert_msg(rv == WEFT_ENOMEM || (r == 2 && rv == WEFT_EBADARGS),
			              "request %zu, allocation %lu failed: %s (%s)", r, nth,
			              weft_error_code(rv), problem.message);
			if (rv == WEFT_ENOMEM) {
				ck_assert_msg(strstr(problem.message, "out of memory") != NULL, "%s",
				              problem.message);
				refused++;
			}
			if (r == 2 && rv == WEFT_EBADARGS)
				whole = true;
		}
		ck_assert_msg(whole, "request %zu never decoded", r);
		ck_assert_msg(refused > 0, "request %zu: no allocation was failed", r);
	}
}
END_TEST

START_TEST(test_input_bytes_are_decoded_in_either_form)
{
	static const char *const forms[] = {
		"{\"op\":\"input\",\"id\":3,\"eof\":true,\"data\":\"QQBC/w==\"}",
		"{\"id\":3,\"eof\":true,\"op\":\"input\",\"data\":\"QQBC/w==\"}",
	};
	for (size_t i = 0; i < 2; i++) {
		struct request request;
		decode_ok(forms[i], &request);
		ck_assert_int_eq(request.op, REQUEST_INPUT);
		ck_assert_uint_eq(request.id, 3);
		ck_assert(request.input_eof);
		ck_assert_uint_eq(request.input_length, 4);
		ck_assert(memcmp(request.input_data, "A\0B\xff", 4) == 0);
		request_clear(&request);
	}
	/* The binary form: the bytes after the JSON and a NUL, borrowed. */
	static const char binary[] = "{\"id\":3,\"op\":\"input\",\"bytes\":4}\0A\0B\xff";
	struct request request;
	struct problem problem;
	problem_init(&problem);
	ck_assert_int_eq(request_decode(binary, sizeof(binary) - 1, &request, &problem), WEFT_OK);
	ck_assert_int_eq(request.op, REQUEST_INPUT);
	ck_assert(request.input_borrowed);
	ck_assert(!request.input_eof);
	ck_assert_uint_eq(request.input_length, 4);
	ck_assert_ptr_eq(request.input_data, (const unsigned char *)binary + sizeof(binary) - 5);
	request_clear(&request);
	/* Miscounted, with "data" too, or after another op: refused. */
	static const struct {
		const char *json;
		long after; /* bytes after the JSON and its NUL; -1: no NUL */
		int code;
		const char *field;
	} bad[] = {
		{"{\"id\":3,\"op\":\"input\",\"bytes\":5}", 4, WEFT_EBADFIELD, "bytes"},
		{"{\"id\":3,\"op\":\"input\",\"bytes\":-1}", 0, WEFT_EBADFIELD, "bytes"},
		{"{\"id\":3,\"op\":\"input\",\"bytes\":\"1\"}", 1, WEFT_EBADFIELD, "bytes"},
		{"{\"id\":3,\"op\":\"input\",\"bytes\":1,\"data\":\"QQ==\"}", 1, WEFT_EBADFIELD, "data"},
		{"{\"id\":3,\"op\":\"input\",\"bytes\":0}", -1, WEFT_EBADFIELD, "bytes"},
		{"{\"op\":\"ping\"}", 1, WEFT_EMALFORMED, NULL},
		{"{\"op\":\"in", 7, WEFT_EMALFORMED, NULL}, /* a NUL inside the JSON */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128] = {0};
		size_t size = strlen(bad[i].json);
		memcpy(text, bad[i].json, size);
		if (bad[i].after >= 0) {
			memcpy(text + size + 1, "put\"}AB", 6);
			size += 1 + (size_t)bad[i].after;
		}
		problem_init(&problem);
		int rv = request_decode(text, size, &request, &problem);
		ck_assert_msg(rv == bad[i].code, "case %zu: got %d (%s)", i, rv, problem.message);
		if (bad[i].field != NULL)
			ck_assert_str_eq(problem.field, bad[i].field);
	}
	struct request output;
	decode_ok("{\"op\":\"output\",\"id\":2,\"offset\":-5}", &output);
	ck_assert_int_eq(output.output_stream, 2);
	ck_assert_int_eq(output.output_offset, -5);
	ck_assert_uint_eq(output.output_max, 1024 * 1024);
	ck_assert(!output.has_wait);
	request_clear(&output);
}
END_TEST

static Suite *request_suite(void)
{
	Suite *suite = suite_create("request");
	TCase *bad = tcase_create("bad requests");
	tcase_add_loop_test(bad, test_bad_request_is_refused_with_its_code, 0,
	                    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	suite_add_tcase(suite, bad);
	TCase *good = tcase_create("good requests");
	tcase_add_test(good, test_submit_single_with_everything);
	tcase_add_test(good, test_submit_without_args_gets_an_empty_object);
	tcase_add_test(good, test_submit_batch);
	tcase_add_test(good, test_wait_removes_duplicate_ids_keeping_order);
	tcase_add_test(good, test_wait_defaults_to_all_completed_without_timeout);
	tcase_add_test(good, test_result_forms);
	tcase_add_test(good, test_list_filters_and_defaults);
	tcase_add_test(good, test_input_bytes_are_decoded_in_either_form);
	suite_add_tcase(suite, good);
	TCase *errors = tcase_create("errors");
	tcase_add_test(errors, test_problem_becomes_a_reply_with_context);
	tcase_add_test(errors, test_error_table_round_trips);
	tcase_add_test(errors, test_running_out_of_memory_refuses_the_request);
	suite_add_tcase(suite, errors);
	return suite;
}

int main(void)
{
	memory_init(); /* jansson's allocations too, so that they can be failed */
	stand_ins_register();
	SRunner *runner = srunner_create(request_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

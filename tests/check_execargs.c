/* execargs: which exec arguments are accepted, what they become, and what a
 * refusal says. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/executors/process/execargs.h"
#include "weft/error.h"

static struct execargs *parse_ok(const char *text)
{
	struct execargs_error error = {0};
	struct execargs *args = NULL;
	json_error_t json_error;
	json_t *json = json_loads(text, 0, &json_error);
	int rv;

	ck_assert_msg(json != NULL, "bad test JSON %s: %s", text, json_error.text);
	rv = execargs_parse(json, &args, &error);
	ck_assert_msg(rv == WEFT_OK, "%s refused: %s (%s at %s)", text, weft_error_code(rv),
		error.message, error.field);
	json_decref(json);
	return args;
}

/* ------------------------------------------------------------ good inputs */

START_TEST(test_argv_is_copied_and_terminated)
{
	struct execargs *args = parse_ok("{\"argv\": [\"ls\", \"-l\", \"\"]}");
	ck_assert_uint_eq(args->argc, 3);
	ck_assert_str_eq(args->argv[0], "ls");
	ck_assert_str_eq(args->argv[1], "-l");
	ck_assert_str_eq(args->argv[2], "");
	ck_assert_ptr_null(args->argv[3]);
	ck_assert(!args->shell);
	execargs_free(args);
}
END_TEST

START_TEST(test_defaults)
{
	struct execargs *args = parse_ok("{\"argv\": [\"true\"]}");
	ck_assert(args->capture);
	ck_assert(!args->env_clear);
	ck_assert(args->kill_after == EXECARGS_DEFAULT_KILL_AFTER);
	ck_assert_ptr_null(args->cwd);
	ck_assert_ptr_null(args->stdin_data);
	ck_assert_uint_eq(args->env_count, 0);
	ck_assert_uint_eq(args->limit_count, 0);
	ck_assert(!args->item_lines);
	execargs_free(args);
	args = parse_ok("{\"argv\": [\"true\"], \"items\": \"lines\"}");
	ck_assert(args->item_lines);
	execargs_free(args);
}
END_TEST

START_TEST(test_shell_runs_through_bin_sh)
{
	struct execargs *args = parse_ok("{\"shell\": \"echo hi | wc -c\"}");
	ck_assert(args->shell);
	ck_assert_uint_eq(args->argc, 3);
	ck_assert_str_eq(args->argv[0], "/bin/sh");
	ck_assert_str_eq(args->argv[1], "-c");
	ck_assert_str_eq(args->argv[2], "echo hi | wc -c");
	ck_assert_ptr_null(args->argv[3]);
	execargs_free(args);
}
END_TEST

START_TEST(test_every_argument)
{
	struct execargs *args = parse_ok(
		"{\"argv\": [\"cat\"], \"env\": {\"B\": \"2\", \"A\": \"1=one\"}, \"env_clear\": true,"
		" \"cwd\": \"/tmp\", \"stdin\": \"hello\\n\", \"capture\": false, \"kill_after\": 0.5,"
		" \"limits\": {\"nofile\": 64, \"core\": 0, \"cpu\": \"unlimited\","
		" \"memory\": 268435456, \"tasks\": 32}}");
	ck_assert_uint_eq(args->env_count, 2);
	ck_assert_str_eq(args->env[0], "A=1=one"); /* sorted by key */
	ck_assert_str_eq(args->env[1], "B=2");
	ck_assert_ptr_null(args->env[2]);
	ck_assert(args->env_clear);
	ck_assert_str_eq(args->cwd, "/tmp");
	ck_assert_str_eq(args->stdin_data, "hello\n");
	ck_assert_uint_eq(args->stdin_length, 6);
	ck_assert(!args->capture);
	ck_assert(args->kill_after == 0.5);
	ck_assert_uint_eq(args->limit_count, 3); /* memory and tasks are no rlimits */
	ck_assert_uint_eq(args->memory_max, 268435456);
	ck_assert_uint_eq(args->tasks_max, 32);
	for (size_t i = 0; i < args->limit_count; i++) {
		const struct execargs_limit *limit = &args->limits[i];
		if (strcmp(limit->name, "nofile") == 0) {
			ck_assert_int_eq(limit->resource, RLIMIT_NOFILE);
			ck_assert(limit->value == 64);
		} else if (strcmp(limit->name, "core") == 0) {
			ck_assert_int_eq(limit->resource, RLIMIT_CORE);
			ck_assert(limit->value == 0);
		} else {
			ck_assert_str_eq(limit->name, "cpu");
			ck_assert_int_eq(limit->resource, RLIMIT_CPU);
			ck_assert(limit->value == RLIM_INFINITY);
		}
	}
	execargs_free(args);
}
END_TEST

START_TEST(test_every_limit_name_is_known)
{
	static const char *const names[] = {"as", "core", "cpu", "data", "fsize", "locks", "memlock",
		"msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_msg(execargs_limit_find(names[i]) != NULL, "limit %s unknown", names[i]);
	ck_assert_ptr_null(execargs_limit_find("files"));
}
END_TEST

/* ------------------------------------------------------------- bad inputs */

struct bad_case {
	const char *input;   /* the args object, as JSON */
	const char *field;   /* expected error.field */
	const char *message; /* a piece the message must contain */
};

static const struct bad_case bad_cases[] = {
	{"{}", "args", "argv (an array of strings) or shell"},
	{"[]", "args", "args must be an object"},
	{"{\"argv\": [\"a\"], \"shell\": \"b\"}", "args.shell", "not both"},
	{"{\"argv\": \"ls\"}", "args.argv", "array of strings"},
	{"{\"argv\": []}", "args.argv", "at least the command"},
	{"{\"argv\": [\"ls\", \"-l\", 3]}", "args.argv[2]", "argv[2] must be a string"},
	{"{\"argv\": [\"\"]}", "args.argv[0]", "empty"},
	{"{\"argv\": [\"a\\u0000b\"]}", "args.argv[0]", "NUL"},
	{"{\"shell\": 1}", "args.shell", "must be a string"},
	{"{\"shell\": \"\"}", "args.shell", "empty"},
	{"{\"argv\": [\"a\"], \"argvv\": 1}", "args.argvv", "no argument 'argvv'"},
	{"{\"argv\": [\"a\"], \"env\": []}", "args.env", "object of strings"},
	{"{\"argv\": [\"a\"], \"env\": {\"A\": 1}}", "args.env.A", "env.A must be a string"},
	{"{\"argv\": [\"a\"], \"env\": {\"A=B\": \"1\"}}", "args.env.A=B", "'='"},
	{"{\"argv\": [\"a\"], \"env\": {\"\": \"1\"}}", "args.env", "empty variable name"},
	{"{\"argv\": [\"a\"], \"env\": {\"NOTIFY_SOCKET\": \"/x\"}}", "args.env.NOTIFY_SOCKET",
		"service manager"},
	{"{\"argv\": [\"a\"], \"env\": {\"WATCHDOG_USEC\": \"1\"}}", "args.env.WATCHDOG_USEC",
		"service manager"},
	{"{\"argv\": [\"a\"], \"env\": {\"A\": \"x\\u0000\"}}", "args.env.A", "NUL"},
	{"{\"argv\": [\"a\"], \"env_clear\": 1}", "args.env_clear", "true or false"},
	{"{\"argv\": [\"a\"], \"limits\": {\"memory\": 4096}}", "args.limits.memory", "1 MiB"},
	{"{\"argv\": [\"a\"], \"limits\": {\"memory\": \"1G\"}}", "args.limits.memory", "bytes"},
	{"{\"argv\": [\"a\"], \"limits\": {\"tasks\": 0}}", "args.limits.tasks", "from 1"},
	{"{\"argv\": [\"a\"], \"cwd\": 5}", "args.cwd", "must be a string"},
	{"{\"argv\": [\"a\"], \"cwd\": \"\"}", "args.cwd", "empty"},
	{"{\"argv\": [\"a\"], \"stdin\": [\"x\"]}", "args.stdin", "must be a string"},
	{"{\"argv\": [\"a\"], \"capture\": \"yes\"}", "args.capture", "true or false"},
	{"{\"argv\": [\"a\"], \"kill_after\": -1}", "args.kill_after", "from 0 to 86400"},
	{"{\"argv\": [\"a\"], \"kill_after\": \"5\"}", "args.kill_after", "number of seconds"},
	{"{\"argv\": [\"a\"], \"kill_after\": 100000}", "args.kill_after", "86400"},
	{"{\"argv\": [\"a\"], \"limits\": 5}", "args.limits", "object"},
	{"{\"argv\": [\"a\"], \"limits\": {\"files\": 5}}", "args.limits.files", "unknown limit"},
	{"{\"argv\": [\"a\"], \"limits\": {\"nofile\": -1}}", "args.limits.nofile", "whole number"},
	{"{\"argv\": [\"a\"], \"limits\": {\"nofile\": 1.5}}", "args.limits.nofile", "whole number"},
	{"{\"argv\": [\"a\"], \"limits\": {\"cpu\": \"lots\"}}", "args.limits.cpu", "\"unlimited\""},
	{"{\"argv\": [\"a\"], \"limits\": {\"as\": 18014398509481984}}", "args.limits.as", "2^53"},
	{"{\"argv\": [\"a\"], \"items\": \"words\"}", "args.items", "must be \"lines\""},
	{"{\"argv\": [\"a\"], \"items\": true}", "args.items", "must be \"lines\""},
	{"{\"argv\": [\"a\"], \"items\": \"lines\", \"capture\": false}", "args.items",
		"capture false"},
};

START_TEST(test_bad_input_is_refused_with_its_field)
{
	const struct bad_case *bad = &bad_cases[_i];
	struct execargs_error error = {0};
	struct execargs *args = (struct execargs *)0x1;
	json_error_t json_error;
	json_t *json = json_loads(bad->input, JSON_DECODE_ANY | JSON_ALLOW_NUL, &json_error);
	int rv;

	ck_assert_msg(json != NULL, "bad test JSON %s: %s", bad->input, json_error.text);
	rv = execargs_parse(json, &args, &error);
	ck_assert_msg(rv == WEFT_EBADARGS, "%s: got %s, want bad_arguments", bad->input,
		weft_error_code(rv));
	ck_assert_int_eq(error.code, WEFT_EBADARGS);
	ck_assert_msg(args == (struct execargs *)0x1, "%s: *out written on failure", bad->input);
	ck_assert_msg(strcmp(error.field, bad->field) == 0, "%s: field '%s', want '%s'", bad->input,
		error.field, bad->field);
	ck_assert_msg(strstr(error.message, bad->message) != NULL, "%s: message '%s' lacks '%s'",
		bad->input, error.message, bad->message);
	json_decref(json);
}
END_TEST

START_TEST(test_null_args_is_refused)
{
	struct execargs_error error = {0};
	struct execargs *args = NULL;

	ck_assert_int_eq(execargs_parse(NULL, &args, &error), WEFT_EBADARGS);
	ck_assert_str_eq(error.field, "args");
	ck_assert_ptr_null(args);
	ck_assert_int_eq(execargs_parse(NULL, &args, NULL), WEFT_EBADARGS);
	execargs_free(NULL);
}
END_TEST

static Suite *execargs_suite(void)
{
	Suite *suite = suite_create("execargs");
	TCase *good = tcase_create("good");
	TCase *bad = tcase_create("bad");

	tcase_add_test(good, test_argv_is_copied_and_terminated);
	tcase_add_test(good, test_defaults);
	tcase_add_test(good, test_shell_runs_through_bin_sh);
	tcase_add_test(good, test_every_argument);
	tcase_add_test(good, test_every_limit_name_is_known);
	tcase_add_loop_test(bad, test_bad_input_is_refused_with_its_field, 0,
		(int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	tcase_add_test(bad, test_null_args_is_refused);
	suite_add_tcase(suite, good);
	suite_add_tcase(suite, bad);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(execargs_suite());
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

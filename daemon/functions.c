/*
 * The function registry and the foundation's built-ins; see functions.h.
 */
#include "daemon/functions.h"

#include <stdio.h>
#include <string.h>

#include "daemon/coroutines.h"
#include "daemon/exec.h"
#include "daemon/gather.h"
#include "daemon/jobs.h"
#include "daemon/problem.h"
#include "daemon/runner.h"
#include "daemon/testhooks.h"
#include "daemon/threaded.h"

int functions_check_known_arguments(const struct function *function, const json_t *args,
                                    struct problem *problem)
{
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)args, key, value)
	{
		bool found = false;
		for (const struct function_argument *argument = function->arguments;
		     argument->name != NULL; argument++)
			found = found || strcmp(argument->name, key) == 0;
		if (!found) {
			char field[80];
			snprintf(field, sizeof(field), "args.%.64s", key);
			return problem_set(problem, WEFT_EBADARGS, field,
			                   "%s takes no argument '%.64s'; 'functions' lists its arguments",
			                   function->name, key);
		}
	}
	return WEFT_OK;
}

/* echo: the job's result is its `value`. */

static const struct function_argument echo_arguments[] = {
	{"value", "any JSON value (required): returned as the result"},
	{NULL, NULL},
};

static int echo_check(const struct function *function, const json_t *args,
                      struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	if (json_object_get(args, "value") == NULL)
		return problem_set(problem, WEFT_EBADARGS, "args.value",
		                   "echo needs 'value', the JSON value to return");
	return WEFT_OK;
}

static void echo_start(struct job_attempt *attempt)
{
	runner_complete(attempt, json_incref(json_object_get(attempt->job->args, "value")));
}

static const struct function echo_function = {
	.name = "echo",
	.executor = FUNCTION_INLINE,
	.summary = "returns its value",
	.arguments = echo_arguments,
	.check = echo_check,
	.start = echo_start,
};

static int future_check(const struct function *function, const json_t *args,
                        struct problem *problem)
{
	(void)args;
	return problem_set(problem, WEFT_EBADARGS, NULL, "%s is made with future.new, not submitted",
	                   function->name);
}

static void future_start(struct job_attempt *attempt)
{
	(void)attempt; /* never started: future.new makes the job pending at once */
}

const struct function functions_future = {
	.name = "future",
	.executor = FUNCTION_INLINE,
	.summary = "a bare future: pending until a client sets it with future.set",
	.arguments = (const struct function_argument[]){{NULL, NULL}},
	.check = future_check,
	.start = future_start,
};

/* The functions every build has, in the order `functions` lists them; the
 * thread pool's come after them (threaded.c). */
static const struct function *const builtins[] = {
	&echo_function,
	&sleep_function,
	&exec_function,
	&spawn_tree_function,
	&await_function,
	&gather_function,
	&race_function,
	&testhooks_stall_function, /* refused and unlisted without --test-hooks */
};

#define BUILTIN_COUNT (sizeof(builtins) / sizeof(builtins[0]))

int functions_init(unsigned procs, size_t output_max, unsigned threads)
{
	int rv = exec_init(procs, output_max);
	if (rv != WEFT_OK)
		return rv;
	if ((rv = threaded_init(threads)) != WEFT_OK)
		exec_fini();
	return rv;
}

void functions_fini(void)
{
	threaded_fini();
	exec_fini();
}

/* The i-th function of the registry, or NULL past the end. */
static const struct function *function_at(size_t index)
{
	if (index < BUILTIN_COUNT)
		return builtins[index];
	return threaded_function(index - BUILTIN_COUNT);
}

const struct function *functions_find(const char *name)
{
	const struct function *function;
	for (size_t i = 0; (function = function_at(i)) != NULL; i++)
		if (strcmp(function->name, name) == 0)
			return function;
	return NULL;
}

const char *function_name(const struct function *function)
{
	return function != NULL ? function->name : "";
}

const char *function_executor_name(enum function_executor executor)
{
	switch (executor) {
	case FUNCTION_INLINE:
		return "inline";
	case FUNCTION_LOOP:
		return "loop";
	case FUNCTION_THREAD:
		return "thread";
	case FUNCTION_PROCESS:
		return "process";
	case FUNCTION_TASK:
		return "task";
	}
	return "unknown";
}

json_t *functions_to_json(void)
{
	json_t *list = json_array();
	const struct function *function;
	for (size_t i = 0; (function = function_at(i)) != NULL; i++) {
		if (function == &testhooks_stall_function && !testhooks_enabled())
			continue;
		json_t *arguments = json_object();
		for (const struct function_argument *argument = function->arguments;
		     argument->name != NULL; argument++)
			json_object_set_new(arguments, argument->name,
			                    json_string(argument->description));
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o}", "name", function->name,
		                                      "executor",
		                                      function_executor_name(function->executor),
		                                      "summary", function->summary, "args",
		                                      arguments));
	}
	return list;
}

void functions_names(char *buf, size_t size)
{
	size_t used = 0;
	buf[0] = '\0';
	const struct function *function;
	for (size_t i = 0; (function = function_at(i)) != NULL && used < size; i++) {
		if (function == &testhooks_stall_function && !testhooks_enabled())
			continue;
		int wrote = snprintf(buf + used, size - used, "%s%s", i > 0 ? ", " : "",
		                     function->name);
		if (wrote < 0)
			break;
		used += (size_t)wrote;
	}
}

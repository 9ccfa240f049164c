/*
 * The function registry and the bare future's function; see functions.h.
 */
#include "daemon/core/functions.h"

#include <stdio.h>
#include <string.h>

#include "daemon/base/problem.h"

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

static int future_check(const struct function *function, const json_t *args,
                        struct problem *problem)
{
	(void)args;
	return problem_set(problem, WEFT_EBADARGS, NULL, "%s is made with future.new, not submitted",
	                   function->name);
}

const struct function functions_future = {
	.name = "future",
	.executor = FUNCTION_INLINE,
	.summary = "a bare future: pending until a client sets it with future.set",
	.arguments = (const struct function_argument[]){{NULL, NULL}},
	.check = future_check,
	/* No start: future.new makes the job pending at once, and nothing runs it. */
};

/* Written by the main thread before any request is received, read-only
 * afterwards: the threads that read it were started (or handed their first
 * request) after, which orders the writes before the reads. */
static const struct function *registry[FUNCTIONS_MAX];
static size_t registry_count;

int functions_register(const struct function *function)
{
	if (registry_count == FUNCTIONS_MAX || functions_find(function->name) != NULL)
		return WEFT_EINTERNAL;
	registry[registry_count++] = function;
	return WEFT_OK;
}

void functions_clear(void)
{
	registry_count = 0;
}

/* The i-th function of the registry, or NULL past the end. */
static const struct function *function_at(size_t index)
{
	return index < registry_count ? registry[index] : NULL;
}

static bool listed(const struct function *function)
{
	return function->listed == NULL || function->listed();
}

const struct function *functions_find(const char *name)
{
	const struct function *function;
	for (size_t i = 0; (function = function_at(i)) != NULL; i++)
		if (strcmp(function->name, name) == 0)
			return function;
	return NULL;
}

const char *functions_name_of(const struct function *function)
{
	return function != NULL ? function->name : "";
}

const char *functions_executor_name(enum function_executor executor)
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
		if (!listed(function))
			continue;
		json_t *arguments = json_object();
		for (const struct function_argument *argument = function->arguments;
		     argument->name != NULL; argument++)
			json_object_set_new(arguments, argument->name,
			                    json_string(argument->description));
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o}", "name", function->name,
		                                      "executor",
		                                      functions_executor_name(function->executor),
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
		if (!listed(function))
			continue;
		int wrote = snprintf(buf + used, size - used, "%s%s", used > 0 ? ", " : "",
		                     function->name);
		if (wrote < 0)
			break;
		used += (size_t)wrote;
	}
}

/*
 * echo; see echo.h.
 */
#include "daemon/executors/inline/echo.h"

#include "daemon/core/jobs.h"
#include "daemon/base/problem.h"
#include "daemon/sched/runner.h"


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

const struct function echo_function = {
	.name = "echo",
	.executor = FUNCTION_INLINE,
	.summary = "returns its value",
	.arguments = echo_arguments,
	.check = echo_check,
	.start = echo_start,
};

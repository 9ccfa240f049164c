/* Stand-in functions for the core's tests; see stand_ins.h. */
#include "tests/stand_ins.h"

#include <stdlib.h>

#include "daemon/core/functions.h"
#include "daemon/base/problem.h"

static int echo_check(const struct function *function, const json_t *args,
                      struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	if (json_object_get(args, "value") == NULL)
		return problem_set(problem, WEFT_EBADARGS, "args.value", "echo needs 'value'");
	return WEFT_OK;
}

static int sleep_check(const struct function *function, const json_t *args,
                       struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	const json_t *seconds = json_object_get(args, "seconds");
	if (!json_is_number(seconds) || json_number_value(seconds) < 0)
		return problem_set(problem, WEFT_EBADARGS, "args.seconds",
		                   "sleep needs 'seconds', a number >= 0");
	return WEFT_OK;
}

/* The core's tests never run a job. */
static void never_started(struct job_attempt *attempt)
{
	(void)attempt;
	abort();
}

static const struct function stand_in_echo = {
	.name = "echo",
	.executor = FUNCTION_INLINE,
	.summary = "stand-in",
	.arguments = (const struct function_argument[]){{"value", "any"}, {NULL, NULL}},
	.check = echo_check,
	.start = never_started,
};

static const struct function stand_in_sleep = {
	.name = "sleep",
	.executor = FUNCTION_TASK,
	.summary = "stand-in",
	.arguments = (const struct function_argument[]){{"seconds", "number"}, {"result", "any"}, {NULL, NULL}},
	.check = sleep_check,
	.start = never_started,
};

void stand_ins_register(void)
{
	if (functions_register(&stand_in_echo) != WEFT_OK ||
	    functions_register(&stand_in_sleep) != WEFT_OK)
		abort();
}

/*
 * testhooks: see testhooks.h.
 */
#include "daemon/testhooks.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <unistd.h>

#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/base/problem.h"
#include "daemon/sched/runner.h"
#include "weft/error.h"

/* Set once at start-up, before any request; relaxed is enough, and atomic so
 * that the request threads' reads are not a data race. */
static atomic_bool enabled;

void testhooks_enable(void)
{
	atomic_store_explicit(&enabled, true, memory_order_relaxed);
}

bool testhooks_enabled(void)
{
	return atomic_load_explicit(&enabled, memory_order_relaxed);
}

static const struct function_argument stall_arguments[] = {
	{"fifo", "string (required): a FIFO; the loop is stuck until its writer closes it"},
	{NULL, NULL},
};

static int stall_check(const struct function *function, const json_t *args,
                       struct problem *problem)
{
	if (!testhooks_enabled())
		return problem_set(problem, WEFT_EBADARGS, NULL,
		                   "%s exists for weft's own tests; start weftd with --test-hooks",
		                   function->name);
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	if (!json_is_string(json_object_get(args, "fifo")))
		return problem_set(problem, WEFT_EBADARGS, "args.fifo",
		                   "%s needs 'fifo', the path of a FIFO", function->name);
	return WEFT_OK;
}

/* Worker thread: blocks it on purpose (see the header). */
static void stall_start(struct job_attempt *attempt)
{
	struct job *job = attempt->job;
	const char *path = json_string_value(json_object_get(job->args, "fifo"));
	int fd;
	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		runner_fail(attempt, "OSError", NULL, "debug.stall: cannot open '%s'", path);
		return;
	}
	char buffer[64];
	ssize_t got;
	do
		got = read(fd, buffer, sizeof(buffer));
	while (got > 0 || (got < 0 && errno == EINTR));
	close(fd);
	runner_complete(attempt, json_true());
}

const struct function testhooks_stall_function = {
	.name = "debug.stall",
	.executor = FUNCTION_LOOP,
	.summary = "tests only (--test-hooks): wedges its worker loop until a FIFO is closed",
	.arguments = stall_arguments,
	.check = stall_check,
	.start = stall_start,
	.listed = testhooks_enabled,
};

/*
 * testhooks: see testhooks.h.
 */
#include "daemon/testhooks.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/base/now.h"
#include "daemon/base/problem.h"
#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/executors/thread/blocking.h"
#include "daemon/executors/thread/threaded.h"
#include "daemon/executors/thread/threadpool.h"
#include "daemon/sched/runner.h"
#include "weft/error.h"

/* How long testhooks_workers_stopped waits for the released calls to leave
 * the pool; a hang guard, never reached when all goes well. */
#define BLOCK_LEAVE_SECONDS 10.0

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

/* Any thread: refuses a test hook unless weftd runs with --test-hooks. */
static int check_enabled(const struct function *function, struct problem *problem)
{
	if (!testhooks_enabled())
		return problem_set(problem, WEFT_EBADARGS, NULL,
		                   "%s exists for weft's own tests; start weftd with --test-hooks",
		                   function->name);
	return WEFT_OK;
}

static int stall_check(const struct function *function, const json_t *args,
                       struct problem *problem)
{
	int rv = check_enabled(function, problem);
	if (rv != WEFT_OK)
		return rv;
	if ((rv = functions_check_known_arguments(function, args, problem)) != WEFT_OK)
		return rv;
	if (!json_is_string(json_object_get(args, "fifo")))
		return problem_set(problem, WEFT_EBADARGS, "args.fifo",
		                   "%s needs 'fifo', the path of a FIFO", function->name);
	return WEFT_OK;
}

/* Worker thread (debug.stall) or request thread (debug.hold): blocks it on
 * purpose (see the header). */
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

/* debug.hold: the same wait, on the request thread that received the submit
 * (an inline function), which handles nothing else meanwhile. */
const struct function testhooks_hold_function = {
	.name = "debug.hold",
	.executor = FUNCTION_INLINE,
	.summary = "tests only (--test-hooks): holds the request thread that received it until a "
	           "FIFO is closed",
	.arguments = stall_arguments,
	.check = stall_check,
	.start = stall_start,
	.listed = testhooks_enabled,
};

/* debug.block: `released` is set once, after the workers stopped; the pool
 * threads that run debug.block wait on `changed` for it. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	bool released;
} block = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};

static const struct function_argument block_arguments[] = {{NULL, NULL}};
static const struct blocking_argument block_blocking_arguments[] = {{NULL, NULL}};

/* Any thread: what threaded_start needs; the registry's check comes first. */
static int block_blocking_check(const json_t *args, char *message, size_t size,
                                const char **field)
{
	(void)args, (void)message, (void)size;
	*field = NULL;
	return WEFT_OK;
}

/* A pool thread: ignores cancel (never looks at `work`) and returns only once
 * testhooks_workers_stopped lets it. */
static int block_run(const json_t *args, const struct blocking_owner *owner,
                     const struct threadpool_work *work, struct blocking_outcome *outcome)
{
	(void)args, (void)owner, (void)work;
	pthread_mutex_lock(&block.lock);
	while (!block.released)
		pthread_cond_wait(&block.changed, &block.lock);
	pthread_mutex_unlock(&block.lock);
	outcome->result = json_null();
	return WEFT_OK;
}

static const struct blocking_function block_blocking = {
	.name = "debug.block",
	.summary = "tests only (--test-hooks): holds a pool thread until the workers stopped",
	.arguments = block_blocking_arguments,
	.check = block_blocking_check,
	.run = block_run,
};

static int block_check(const struct function *function, const json_t *args,
                       struct problem *problem)
{
	int rv = check_enabled(function, problem);
	if (rv != WEFT_OK)
		return rv;
	return functions_check_known_arguments(function, args, problem);
}

const struct function testhooks_block_function = {
	.name = "debug.block",
	.executor = FUNCTION_THREAD,
	.summary = "tests only (--test-hooks): holds a pool thread until the workers stopped",
	.arguments = block_arguments,
	.check = block_check,
	.start = threaded_start,
	.stop = threaded_stop,
	.implementation = &block_blocking,
	.listed = testhooks_enabled,
};

void testhooks_workers_stopped(void)
{
	if (!testhooks_enabled())
		return;
	pthread_mutex_lock(&block.lock);
	block.released = true;
	pthread_cond_broadcast(&block.changed);
	pthread_mutex_unlock(&block.lock);
	/* The pool counts a call busy until its done has returned. */
	double deadline = now_monotonic() + BLOCK_LEAVE_SECONDS;
	struct threadpool_stats stats;
	threaded_stats(&stats);
	while (stats.busy > 0 && now_monotonic() < deadline) {
		struct timespec pause = {.tv_nsec = 1000 * 1000};
		nanosleep(&pause, NULL);
		threaded_stats(&stats);
	}
	if (stats.busy > 0)
		log_warn("%zu pool calls still busy after the test hooks let them go", stats.busy);
}

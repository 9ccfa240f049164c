/*
 * Functions whose jobs run as tasks of the runtime. An attempt is started
 * from its worker; the task's end comes back to attempt->worker (runtime
 * on_done, then a posted call), which ends the attempt unless it was stopped
 * meanwhile; stopping cancels the task (a blocked task gets WEFT_ECANCELED out
 * of the await it is in, like asyncio's CancelledError). The run holds the
 * attempt until the task's end is back, so a retry never overlaps the task of
 * the attempt before it.
 *
 * sleep(seconds, result): a stackless sleep task, a timer of a few hundred
 * bytes, so 100,000 sleeping jobs cost no stacks.
 * spawn_tree(depth, fanout): a stackful task that spawns a tree of child
 * tasks and joins them, returning how many tasks the tree had, so stealing
 * can be exercised through the daemon.
 */
#include "daemon/executors/task/coroutines.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/core/outcome.h"
#include "daemon/base/problem.h"
#include "daemon/core/principal.h"
#include "daemon/sched/runner.h"
#include "daemon/runtime/runtime.h"
#include "daemon/sched/workers.h"
#include "proto/proto.h"
#include "weft/jobs.h"

/* The limits runtime_spawn_tree enforces. */
#define TREE_MAX_DEPTH 20
#define TREE_MAX_FANOUT 64
#define TREE_MAX_TASKS 10000000.0

/* One attempt's task; attempt->data while it runs. Freed on the attempt's
 * worker when the task's end has come back. */
struct coroutine_run {
	int shape[2]; /* depth, fanout: runtime_spawn_tree_task's argument */
	weft_task *task;
	struct job_attempt *attempt; /* a reference (runner_attempt_hold) */
};

static const struct function_argument tree_arguments[] = {
	{"depth", "integer from 0 to 20 (required): levels below the root"},
	{"fanout", "integer from 1 to 64 (required): children of each task"},
	{NULL, NULL},
};

static int integer_argument(const json_t *args, const char *name, int low, int high,
                            int *out, struct problem *problem)
{
	json_t *value = json_object_get(args, name);
	if (value == NULL || !json_is_integer(value) || json_integer_value(value) < low ||
	    json_integer_value(value) > high) {
		char field[32];
		snprintf(field, sizeof(field), "args.%s", name);
		return problem_set(problem, WEFT_EBADARGS, field,
		                   "spawn_tree needs '%s', an integer from %d to %d", name, low, high);
	}
	*out = (int)json_integer_value(value);
	return WEFT_OK;
}

static int tree_check(const struct function *function, const json_t *args,
                      struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	int depth, fanout;
	if ((rv = integer_argument(args, "depth", 0, TREE_MAX_DEPTH, &depth, problem)) != WEFT_OK ||
	    (rv = integer_argument(args, "fanout", 1, TREE_MAX_FANOUT, &fanout, problem)) != WEFT_OK)
		return rv;
	double tasks = 0, level = 1;
	for (int i = 0; i <= depth; i++, level *= fanout)
		tasks += level;
	if (tasks > TREE_MAX_TASKS)
		return problem_set(problem, WEFT_EBADARGS, "args.depth",
		                   "spawn_tree(%d, %d) would make %.0f tasks; at most %.0f", depth,
		                   fanout, tasks, TREE_MAX_TASKS);
	return WEFT_OK;
}

/* The error type a task's failure code gives its job. */
static const char *task_error_type(int error)
{
	switch (error) {
	case WEFT_ECANCELED:
		return proto_job_error(PROTO_JOB_ERROR_CANCELLED);
	case WEFT_ETIMEOUT:
		return proto_job_error(PROTO_JOB_ERROR_TIMEOUT);
	case WEFT_EUNKNOWNID:
		return "UnknownJob";
	case WEFT_EPERM:
		return proto_job_error(PROTO_JOB_ERROR_PERMISSION);
	default:
		return "TaskError";
	}
}

/* The job's worker: the task is over. */
static void finish_on_worker(void *argument)
{
	struct coroutine_run *run = argument;
	struct job_attempt *attempt = run->attempt;
	if (attempt->data == run) {
		attempt->data = NULL;
		int error = weft_task_error(run->task);
		json_t *result = weft_task_result(run->task);
		if (error == WEFT_OK)
			runner_complete(attempt, result != NULL ? json_incref(result)
			                                    : json_integer((json_int_t)weft_task_value(
			                                              run->task)));
		else
			runner_fail(attempt, task_error_type(error), NULL, "the task ended with: %s",
			            error == WEFT_ECANCELED ? "cancelled" : weft_strerror(error));
	}
	weft_task_release(run->task);
	free(run);
	runner_attempt_release(attempt); /* may schedule the retry: the task is over */
}

/* The worker that completed the task: hand its end to the attempt's worker
 * (immutable: this never reads the job, which a later attempt may own). */
static void task_done(weft_task *task, void *argument)
{
	(void)task;
	struct coroutine_run *run = argument;
	workers_post(run->attempt->worker, finish_on_worker, run);
}

/* Starts the attempt's task through `inject`, which fills run->task. */
static void start_task(struct job_attempt *attempt, struct coroutine_run *run,
                      int (*inject)(struct job *job, struct coroutine_run *run,
                                    const weft_spawn_options *options))
{
	struct job *job = attempt->job;
	runner_attempt_hold(attempt);
	run->attempt = attempt;
	attempt->data = run;
	weft_spawn_options options = {
		.name = job->function->name,
		.on_done = task_done,
		.on_done_argument = run,
	};
	/* The task may finish on another worker before this returns; its end is
	 * posted to this worker, so it is handled after this function. */
	int rv = inject(job, run, &options);
	if (rv != WEFT_OK) {
		attempt->data = NULL;
		free(run);
		runner_fail(attempt, "TaskError", NULL, "cannot start the task: %s", weft_strerror(rv));
		runner_attempt_release(attempt); /* the run's */
	}
}

static int inject_tree(struct job *job, struct coroutine_run *run,
                       const weft_spawn_options *options)
{
	run->shape[0] = (int)json_integer_value(json_object_get(job->args, "depth"));
	run->shape[1] = (int)json_integer_value(json_object_get(job->args, "fanout"));
	return runtime_inject(workers_runtime(runner_workers()), runtime_spawn_tree_task,
	                      run->shape, options, &run->task);
}

static void tree_start(struct job_attempt *attempt)
{
	start_task(attempt, memory_zalloc(sizeof(struct coroutine_run)), inject_tree);
}

static int inject_sleep(struct job *job, struct coroutine_run *run,
                        const weft_spawn_options *options)
{
	double seconds = json_number_value(json_object_get(job->args, "seconds"));
	json_t *result = json_object_get(job->args, "result");
	return runtime_inject_sleep(workers_runtime(runner_workers()), seconds,
	                            result != NULL ? json_incref(result) : json_null(), options,
	                            &run->task);
}

static void sleep_start(struct job_attempt *attempt)
{
	start_task(attempt, memory_zalloc(sizeof(struct coroutine_run)), inject_sleep);
}

static void coroutine_stop(struct job_attempt *attempt)
{
	struct coroutine_run *run = attempt->data;
	if (run == NULL)
		return;
	attempt->data = NULL; /* its end, when it comes, is dropped */
	weft_cancel(run->task);
}

static const struct function_argument sleep_arguments[] = {
	{"seconds", "number >= 0 (required): how long to sleep"},
	{"result", "any JSON value (optional): the result when it wakes; null by default"},
	{NULL, NULL},
};

/* Beyond this a sleep is surely a mistake. */
#define SLEEP_MAX_SECONDS (10.0 * 365 * 24 * 3600)

static int sleep_check(const struct function *function, const json_t *args,
                       struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	json_t *seconds = json_object_get(args, "seconds");
	if (seconds == NULL || !json_is_number(seconds) || json_number_value(seconds) < 0 ||
	    json_number_value(seconds) > SLEEP_MAX_SECONDS)
		return problem_set(problem, WEFT_EBADARGS, "args.seconds",
		                   "sleep needs 'seconds', a number from 0 to %.0f", SLEEP_MAX_SECONDS);
	return WEFT_OK;
}

/* ---- weft_await_job: a task waits for a job ---- */

/* The `await` built-in: a task that waits for another job and returns its outcome. */

static const struct function_argument await_arguments[] = {
	{"id", "job id (required): the job or bare future to wait for"},
	{"timeout", "number of seconds (optional): fail with Timeout when it is still unfinished"},
	{NULL, NULL},
};

static int await_check(const struct function *function, const json_t *args,
                       struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	json_t *id = json_object_get(args, "id");
	if (!json_is_integer(id) || json_integer_value(id) < 1)
		return problem_set(problem, WEFT_EBADARGS, "args.id", "await needs 'id', a job id");
	json_t *timeout = json_object_get(args, "timeout");
	if (timeout != NULL && (!json_is_number(timeout) || json_number_value(timeout) < 0))
		return problem_set(problem, WEFT_EBADARGS, "args.timeout",
		                   "'timeout' must be a number of seconds >= 0");
	return WEFT_OK;
}

/* Task body: argument is the job (borrowed: the run holds a reference). */
static int await_body(void *argument)
{
	struct job *self = argument;
	json_t *timeout = json_object_get(self->args, "timeout");
	json_t *outcome = NULL;
	uint64_t id = (uint64_t)json_integer_value(json_object_get(self->args, "id"));
	/* An outcome is its owner's to read (principal.h, rule 4). */
	struct job *awaited = jobs_find(runner_jobs(), id);
	bool allowed = awaited == NULL || principal_may_act_on(self->owner, awaited->owner);
	job_unref(awaited);
	if (!allowed)
		return WEFT_EPERM;
	int rv = weft_await_job(id, timeout != NULL ? json_number_value(timeout) : WEFT_FOREVER,
	                        &outcome);
	if (rv != WEFT_OK)
		return rv;
	return weft_return_json(outcome);
}

static int inject_await(struct job *job, struct coroutine_run *run,
                        const weft_spawn_options *options)
{
	return runtime_inject(workers_runtime(runner_workers()), await_body, job, options,
	                      &run->task);
}

static void await_start(struct job_attempt *attempt)
{
	start_task(attempt, memory_zalloc(sizeof(struct coroutine_run)), inject_await);
}

const struct function coroutines_await_function = {
	.name = "await",
	.executor = FUNCTION_TASK,
	.summary = "a task that waits for another job or bare future and returns its outcome "
	           "({\"id\", \"state\", \"result\" or \"error\"})",
	.arguments = await_arguments,
	.check = await_check,
	.start = await_start,
	.stop = coroutine_stop,
};

const struct function coroutines_sleep_function = {
	.name = "sleep",
	.executor = FUNCTION_TASK,
	.summary = "a stackless task that sleeps on a worker's timer, then returns 'result'",
	.arguments = sleep_arguments,
	.check = sleep_check,
	.start = sleep_start,
	.stop = coroutine_stop,
};

const struct function coroutines_spawn_tree_function = {
	.name = "spawn_tree",
	.executor = FUNCTION_TASK,
	.summary = "spawns a tree of coroutine tasks (fanout children per task, depth levels) and "
	           "joins them; returns how many tasks it had",
	.arguments = tree_arguments,
	.check = tree_check,
	.start = tree_start,
	.stop = coroutine_stop,
};

/*
 * The `exec` function; see exec.h.
 *
 * A job's process belongs to the worker that started it (proc.h). Endings:
 *  - the process ends by itself: the job is done (exit 0) or failed
 *    (ExitStatus, Signal, SpawnError), with the output in the error's details;
 *  - the job's timeout expires: the process group gets SIGTERM, SIGKILL after
 *    kill_after, and when it is reaped the job fails with type Timeout and the
 *    output so far in its details;
 *  - the job is cancelled (or shut down): the job is already over; the process
 *    group is stopped the same way and reaped, its output dropped.
 * The --procs slot is held until the process is reaped in every case.
 */
#include "daemon/executors/process/exec.h"

#include <stdio.h>
#include <stdlib.h>

#include "daemon/core/functions.h"
#include "daemon/core/principal.h"
#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/executors/process/cgroup.h"
#include "daemon/executors/process/inbuf.h"
#include "daemon/executors/process/lines.h"
#include "daemon/executors/process/outlog.h"
#include "daemon/executors/process/proc.h"
#include "daemon/executors/process/spool.h"
#include "daemon/sched/runner.h"
#include "daemon/core/slots.h"
#include "daemon/sched/workers.h"
#include "proto/proto.h"

static struct slots *gate;
static size_t output_max;

/* A running exec attempt's state; attempt->data while its process runs.
 * Owned by the attempt's worker thread. The process's done callback gets the
 * attempt, which the runner's reference keeps alive until the process is
 * reaped (exec_done ends the run) or abandoned (exec_stop, after which proc
 * calls nothing). */
struct exec_run {
	struct proc *proc;
	struct execargs *args;
	bool timed_out;
	/* `items: "lines"`: stdout's lines as the job's items (lines.h), fed by
	 * proc on this worker thread; NULL: none. */
	struct lines *lines;
	struct proc_sink sink;
};

int exec_init(unsigned procs, size_t output_max_bytes)
{
	output_max = output_max_bytes;
	return slots_new(procs, &gate);
}

void exec_fini(void)
{
	slots_free(gate);
	gate = NULL;
}

struct slots *exec_slots(void)
{
	return gate;
}

static const struct function_argument exec_arguments[] = {
	{"argv", "array of strings: the command and its arguments, run without a shell (this or "
	         "'shell' is required)"},
	{"shell", "string: a command line for /bin/sh -c"},
	{"env", "object of strings: variables set over a clean default environment"},
	{"env_clear", "boolean (default false): start from an empty environment"},
	{"cwd", "string: the working directory"},
	{"stdin", "string: written to the command's standard input"},
	{"capture", "boolean (default true): keep stdout and stderr (up to --output-max each)"},
	{"stdin_stream", "boolean (default false): stdin is fed by the input op while the command "
	                 "runs (not with 'stdin')"},
	{"output_spool", "boolean (default false): keep the output that leaves the window in a "
	                 "spool file of the state dir (within --output-spool), for late readers"},
	{"output_wait", "boolean (default false): pause the command while its output window is "
	                "full of bytes no reader has read (at most 10 s without a read)"},
	{"items", "\"lines\": each line of stdout is one of the job's items (read with next)"},
	{"kill_after", "number (default 5): seconds between SIGTERM and SIGKILL when stopped"},
	{"limits", "object: rlimits such as {\"cpu\": 10, \"as\": 1e9, \"nofile\": 256}"},
	{NULL, NULL},
};

static int exec_check(const struct function *function, const json_t *args,
                      struct problem *problem)
{
	(void)function;
	struct execargs *parsed;
	struct execargs_error error;
	int rv = execargs_parse(args, &parsed, &error);
	if (rv != WEFT_OK)
		return problem_set(problem, rv, error.field, "exec: %s", error.message);
	bool memory = parsed->memory_max > 0, tasks = parsed->tasks_max > 0;
	bool spool = parsed->output_spool;
	execargs_free(parsed);
	if (spool && !spool_allowed())
		return problem_set(problem, WEFT_EBADARGS, "args.output_spool",
		                   "exec: weftd keeps no output spool (it was started without "
		                   "--output-spool BYTES); leave output_spool out, or read the output "
		                   "while the job runs");
	/* Refused now rather than failing at start: the daemon cannot enforce them. */
	bool no_memory = memory && !cgroup_has_limits(true, false);
	if (no_memory || (tasks && !cgroup_has_limits(false, true)))
		return problem_set(problem, WEFT_EBADARGS,
		                   no_memory ? "args.limits.memory" : "args.limits.tasks",
		                   "exec: limits.%s needs a cgroup per job with the %s controller, "
		                   "which this weftd does not have (stats.containment.limits lists "
		                   "what it has); leave it out, or use an rlimit such as limits.%s",
		                   no_memory ? "memory" : "tasks", no_memory ? "memory" : "pids",
		                   no_memory ? "as" : "nproc");
	return WEFT_OK;
}

static void exec_run_free(struct exec_run *run)
{
	lines_free(run->lines);
	execargs_free(run->args);
	free(run);
}

/* Worker thread: the process is reaped (proc freed itself). */
static void exec_done(void *argument, json_t *result, const struct proc_outcome *outcome)
{
	struct job_attempt *attempt = argument;
	struct exec_run *run = attempt->data;
	bool timed_out = run->timed_out;
	struct problem lost;
	bool lines_lost = run->lines != NULL && lines_failed(run->lines, &lost);
	attempt->data = NULL;
	exec_run_free(run);
	if (lines_lost && !timed_out)
		/* Items were dropped: a reader must not take the stream as whole. */
		runner_fail(attempt, "ItemError", result,
		            "a line of stdout could not become an item (%s); the lines after it "
		            "were dropped",
		            lost.message);
	else if (timed_out)
		runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_TIMEOUT), result,
		            "job exceeded its timeout of %g s; its processes were stopped",
		            attempt->job->timeout);
	else if (outcome->status == PROC_STATUS_SUCCESS)
		runner_complete(attempt, result);
	else
		runner_fail(attempt, outcome->error_type, result, "%s", outcome->message);
}

/* The stdout sink's calls, on the job's worker thread (proc's loop). */
static bool sink_feed(void *arg, const char *data, size_t length)
{
	return lines_feed(arg, data, length);
}

static bool sink_finish(void *arg)
{
	return lines_finish(arg);
}

static bool sink_resume(void *arg)
{
	return lines_resume(arg);
}

static void exec_start(struct job_attempt *attempt)
{
	struct job *job = attempt->job;
	struct exec_run *run = memory_zalloc(sizeof(*run));
	struct execargs_error error;
	if (execargs_parse(job->args, &run->args, &error) != WEFT_OK) {
		free(run);
		runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_SPAWN), NULL, "exec: %s", error.message);
		return;
	}
	struct proc_options options = {.output_max = output_max};
	/* Fails closed (principal.h, rule 3): no owner, no process. */
	if (principal_identity(job->owner, &options.identity) != WEFT_OK) {
		exec_run_free(run);
		runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_PERMISSION), NULL,
		            "exec: weftd cannot run this job as its owner, and never runs it as "
		            "itself instead");
		return;
	}
	if (run->args->item_lines) {
		if (lines_new(job, &run->lines) != WEFT_OK) {
			exec_run_free(run);
			runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_SPAWN), NULL,
			            "cannot make the items of stdout's lines: out of descriptors");
			return;
		}
		run->sink = (struct proc_sink){.feed = sink_feed, .finish = sink_finish,
		                               .resume = sink_resume,
		                               .wake_fd = lines_wake_fd(run->lines),
		                               .arg = run->lines};
		options.sink = &run->sink;
	}
	attempt->data = run;
	/* The log outlives the attempt: readers find it by the job's id. */
	if (run->args->capture)
		options.log = outlog_open(job->id, job->owner->uid, run->args->output_wait,
		                          spool_wanted(run->args->output_spool));
	if (run->args->stdin_stream && (options.input = inbuf_open(job->id)) == NULL) {
		attempt->data = NULL;
		if (options.log != NULL) {
			outlog_end(options.log);
			outlog_unref(options.log);
		}
		exec_run_free(run);
		runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_SPAWN), NULL,
		            "cannot make the stdin stream: out of descriptors");
		return;
	}
	int rv = proc_start(workers_base(attempt->worker), run->args, &options, exec_done, attempt,
	                    &run->proc);
	if (options.input != NULL) {
		if (rv != WEFT_OK)
			inbuf_end(options.input);
		inbuf_unref(options.input);
	}
	if (options.log != NULL) {
		if (rv != WEFT_OK)
			outlog_end(options.log);
		outlog_unref(options.log);
	}
	if (rv != WEFT_OK) {
		attempt->data = NULL;
		exec_run_free(run);
		runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_SPAWN), NULL, "cannot start the command: %s",
		            weft_strerror(rv));
	}
}

static void exec_terminate(struct job_attempt *attempt)
{
	struct exec_run *run = attempt->data;
	run->timed_out = true;
	proc_terminate(run->proc, run->args->kill_after);
}

static void slot_back(void *argument)
{
	(void)argument;
	slots_release(gate);
}

static void exec_stop(struct job_attempt *attempt)
{
	struct exec_run *run = attempt->data;
	if (run == NULL) {
		slots_release(gate);
		return;
	}
	attempt->data = NULL;
	proc_abandon(run->proc, run->args->kill_after, slot_back, NULL);
	exec_run_free(run);
}

const struct function exec_function = {
	.name = "exec",
	.executor = FUNCTION_PROCESS,
	.summary = "runs a command (no shell unless 'shell'); result: exit_code, signal, stdout, "
	           "stderr, truncated, duration, pid",
	.arguments = exec_arguments,
	.check = exec_check,
	.start = exec_start,
	.stop = exec_stop,
	.gate = exec_slots,
	.terminate = exec_terminate,
};

/*
 * gather and race: a job that runs child jobs concurrently (asyncio.gather
 * and a race of tasks, across processes). Children are real jobs with their
 * own ids, listed as `children` in the parent's status; cancelling the parent
 * cancels them (structured concurrency).
 *
 * Each attempt of the parent runs on a worker loop and makes a group of its
 * own. Its children are watched (job watches, notified on the threads that
 * finish them); each end is posted to the worker of the attempt the group
 * belongs to (group->attempt->worker, which never changes — not to wherever
 * a later attempt of the parent runs), which decides:
 *  - gather: when every child is done, the parent is done with their results
 *    in order; the first failure fails the parent and cancels the others,
 *    unless return_exceptions, which puts the failures' errors in the list;
 *  - race: the first child to finish decides the parent's outcome; the others
 *    are cancelled.
 *
 * Lifetime: the group (one per attempt) holds references to the attempt and
 * the children and is owned by the attempt's worker loop: only that thread
 * touches it, and it frees it when every child's end has come back, which may
 * be after the attempt itself ended (its children are then winding down after
 * a cancel, a timeout or a failure). Nothing else can reach it by then: each
 * watch fires once, and the attempt's data no longer names it. Since the group
 * holds the attempt, a retry of the parent starts only after this group is
 * gone (runner.h, runner_attempt_release).
 */
#include "daemon/executors/group/gather.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/core/jobspec.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/schedule.h"
#include "daemon/sched/workers.h"
#include "proto/proto.h"

#define GATHER_MAX_CHILDREN 1000

struct group;

struct child {
	struct job_watch watch; /* first: the watch is the struct */
	struct group *group;
	struct job *job;        /* a reference */
};

/* Owned by the thread of attempt->worker (all fields but the watches, which
 * the job table guards while registered). */
struct group {
	struct job_attempt *attempt; /* the parent's attempt: a reference; immutable */
	bool race;
	bool return_exceptions;
	bool decided;           /* the parent's outcome is settled */
	size_t count;
	size_t finished;        /* children whose end came back */
	struct child *children;
};

static const struct function_argument gather_arguments[] = {
	{"jobs", "array of 1 to 1000 job objects (required): {\"fn\", \"args\", \"timeout\", "
	         "\"labels\", ...}, run concurrently"},
	{"return_exceptions", "boolean (default false): put failed children's errors in the result "
	                      "instead of failing"},
	{NULL, NULL},
};

static const struct function_argument race_arguments[] = {
	{"jobs", "array of 1 to 1000 job objects (required), run concurrently; the first to finish "
	         "decides"},
	{NULL, NULL},
};

static int group_check(const struct function *function, const json_t *args,
                       struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	json_t *jobs = json_object_get(args, "jobs");
	if (!json_is_array(jobs) || json_array_size(jobs) == 0 ||
	    json_array_size(jobs) > GATHER_MAX_CHILDREN)
		return problem_set(problem, WEFT_EBADARGS, "args.jobs",
		                   "%s needs 'jobs', an array of 1 to %d job objects", function->name,
		                   GATHER_MAX_CHILDREN);
	json_t *flag = json_object_get(args, "return_exceptions");
	if (flag != NULL && !json_is_boolean(flag))
		return problem_set(problem, WEFT_EBADARGS, "args.return_exceptions",
		                   "'return_exceptions' must be true or false");
	for (size_t i = 0; i < json_array_size(jobs); i++) {
		const json_t *spec = json_array_get(jobs, i);
		struct jobspec job;
		char field[64];
		snprintf(field, sizeof(field), "args.jobs[%zu]", i);
		if (json_is_object(spec) && (json_object_get(spec, "after") != NULL ||
		                             json_object_get(spec, "queue") != NULL))
			return problem_set(problem, WEFT_EBADARGS, field,
			                   "a child of %s cannot have 'after' or 'queue'", function->name);
		if ((rv = jobspec_decode(spec, &job, problem)) != WEFT_OK) {
			/* The child's own field path, under args.jobs[i]. */
			char inner[sizeof(problem->field)];
			snprintf(inner, sizeof(inner), "%s%s%s", field, problem->field[0] ? "." : "",
			         problem->field);
			memcpy(problem->field, inner, sizeof(inner));
			char message[sizeof(problem->message)];
			snprintf(message, sizeof(message), "%s: %s", field, problem->message);
			memcpy(problem->message, message, sizeof(message));
			/* For the submitter it is this job's arguments that are wrong. */
			problem->code = WEFT_EBADARGS;
			return WEFT_EBADARGS;
		}
		jobspec_clear(&job);
	}
	return WEFT_OK;
}

static void group_free(struct group *group)
{
	for (size_t i = 0; i < group->count; i++)
		job_unref(group->children[i].job);
	struct job_attempt *attempt = group->attempt;
	free(group->children);
	free(group);
	runner_attempt_release(attempt); /* may schedule the parent's retry */
}

/* The attempt's worker: every child is done. */
static void settle(struct group *group)
{
	struct job_attempt *parent = group->attempt;
	group->decided = true;
	if (parent->data != group)
		return; /* the attempt was stopped meanwhile */
	parent->data = NULL;
	json_t *results = json_array();
	for (size_t i = 0; i < group->count; i++) {
		struct job_snapshot snapshot;
		jobs_snapshot(runner_jobs(), group->children[i].job, &snapshot);
		if (snapshot.state == JOB_DONE)
			json_array_append(results, snapshot.result);
		else /* return_exceptions: the failure takes the result's place */
			json_array_append_new(results, json_pack("{s:O}", "error", snapshot.error));
		jobs_snapshot_clear(&snapshot);
	}
	runner_complete(parent, results);
}

/* Cancels the children still running (the parent no longer needs them). */
static void cancel_children(struct group *group, const char *why)
{
	for (size_t i = 0; i < group->count; i++)
		runner_cancel(group->children[i].job, proto_job_error(PROTO_JOB_ERROR_CANCELLED), why);
}

/* The attempt's worker: a child ended. */
static void child_ended(struct group *group, struct child *child)
{
	group->finished++;
	if (!group->decided) {
		struct job_snapshot snapshot;
		jobs_snapshot(runner_jobs(), child->job, &snapshot);
		bool done = snapshot.state == JOB_DONE;
		struct job_attempt *parent = group->attempt;
		if (group->race) {
			group->decided = true;
			if (parent->data == group) {
				parent->data = NULL;
				if (done)
					runner_complete(parent, json_incref(snapshot.result));
				else
					runner_fail(parent,
					            json_string_value(json_object_get(snapshot.error, "type")),
					            json_pack("{s:I}", "child", (json_int_t)child->job->id),
					            "the first child to finish, job %llu, ended %s: %s",
					            (unsigned long long)child->job->id,
					            job_state_name(snapshot.state),
					            json_string_value(
					                    json_object_get(snapshot.error, "message")));
			}
			cancel_children(group, "another child of the race finished first");
		} else if (!done && !group->return_exceptions) {
			group->decided = true;
			if (parent->data == group) {
				parent->data = NULL;
				runner_fail(parent,
				            json_string_value(json_object_get(snapshot.error, "type")),
				            json_pack("{s:I}", "child", (json_int_t)child->job->id),
				            "child job %llu ended %s: %s", (unsigned long long)child->job->id,
				            job_state_name(snapshot.state),
				            json_string_value(json_object_get(snapshot.error, "message")));
			}
			cancel_children(group, "another child of the gather failed");
		} else if (group->finished == group->count) {
			settle(group);
		}
		jobs_snapshot_clear(&snapshot);
	}
	if (group->finished == group->count)
		group_free(group);
}

struct ended {
	struct group *group;
	struct child *child;
};

static void child_ended_on_worker(void *argument)
{
	struct ended *ended = argument;
	child_ended(ended->group, ended->child);
	free(ended);
}

/* Any thread (the one that finished the child): to the group's loop. The
 * group is still there: it waits for this very end. group->attempt is
 * immutable, and was written before the watch was registered (under the
 * shard lock this notification was taken from). */
static void on_child_finished(struct job_watch *watch, struct job *job)
{
	(void)job;
	struct child *child = (struct child *)watch;
	struct ended *ended = memory_alloc(sizeof(*ended));
	ended->group = child->group;
	ended->child = child;
	workers_post(child->group->attempt->worker, child_ended_on_worker, ended);
}

static void group_start(struct job_attempt *attempt, bool race)
{
	struct job *parent = attempt->job;
	json_t *specs = json_object_get(parent->args, "jobs");
	struct group *group = memory_zalloc(sizeof(*group));
	runner_attempt_hold(attempt);
	group->attempt = attempt;
	group->race = race;
	group->return_exceptions = json_is_true(json_object_get(parent->args, "return_exceptions"));
	group->count = json_array_size(specs);
	group->children = memory_zalloc(group->count * sizeof(*group->children));
	json_t *ids = json_array();
	for (size_t i = 0; i < group->count; i++) {
		struct jobspec spec;
		struct problem problem;
		problem_init(&problem);
		/* Checked at submit; decoding the same JSON again cannot fail. */
		jobspec_decode(json_array_get(specs, i), &spec, &problem);
		struct job *child = jobs_create(runner_jobs(), spec.function, spec.args, spec.labels,
		                                spec.timeout, parent->owner,
		                                spec.schedule);
		group->children[i].job = child;
		group->children[i].group = group;
		group->children[i].watch.notify = on_child_finished;
		json_array_append_new(ids, json_integer((json_int_t)child->id));
	}
	jobs_set_children(runner_jobs(), parent, ids);
	attempt->data = group;
	/* Watched before they start, so that no end can be missed. An end that
	 * comes back before this function returns runs after it, on this worker. */
	for (size_t i = 0; i < group->count; i++) {
		if (!jobs_watch(runner_jobs(), group->children[i].job, &group->children[i].watch))
			on_child_finished(&group->children[i].watch, group->children[i].job);
		schedule_submit(group->children[i].job);
	}
}

static void gather_start(struct job_attempt *attempt)
{
	group_start(attempt, false);
}

static void race_start(struct job_attempt *attempt)
{
	group_start(attempt, true);
}

/* The attempt's worker: the parent was cancelled or timed out: its children
 * go too. The group stays until their ends have come back. */
static void group_stop(struct job_attempt *attempt)
{
	struct group *group = attempt->data;
	if (group == NULL)
		return;
	attempt->data = NULL;
	group->decided = true;
	cancel_children(group, "its parent job was stopped");
}

const struct function gather_function = {
	.name = "gather",
	.executor = FUNCTION_LOOP,
	.summary = "runs child jobs concurrently; the result is their results in order (the first "
	           "failure fails it and cancels the rest, unless return_exceptions)",
	.arguments = gather_arguments,
	.check = group_check,
	.start = gather_start,
	.stop = group_stop,
};

const struct function gather_race_function = {
	.name = "race",
	.executor = FUNCTION_LOOP,
	.summary = "runs child jobs concurrently; the first to finish decides the outcome and the "
	           "others are cancelled",
	.arguments = race_arguments,
	.check = group_check,
	.start = race_start,
	.stop = group_stop,
};

/*
 * Runs jobs on the worker loops; see runner.h.
 *
 * Attempts (jobs.h, struct job_attempt): every run of a job is a new attempt,
 * made on the worker that starts it and owned by that worker's thread. The
 * timer, the function's state and every call that comes back (a stop, a
 * pool call's end, a task's end, a group child's end) go to attempt->worker,
 * which never changes, and find their state in the attempt, never in the job.
 *
 * Reference discipline: the attempt holds the job reference runner_dispatch
 * took; the runner holds one reference to the attempt from start until the
 * run ends (the function completes or fails, or is stopped); a posted stop
 * call and a function's pending work hold their own.
 *
 * Retries: an attempt that fails with retries left moves the job back to
 * waiting (jobs_retry), ends its run, and only when it is freed — its timer
 * gone, its stop hook run, and every call, task or child group it started
 * back — is the next attempt scheduled. So two attempts of one job never
 * overlap, whatever the backoff.
 *
 * Races: completion (worker), timeout (worker) and cancel (any thread) all
 * end in jobs_finish() or jobs_retry(), and the first to get there wins; the
 * losers drop their result. attempt->active, touched only by the attempt's
 * worker thread, makes the function's stop hook run at most once and never
 * after the function ended.
 */
#include "daemon/sched/runner.h"

#include <event2/event.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/core/principal.h"
#include "daemon/core/slots.h"
#include "daemon/sched/workers.h"
#include "proto/proto.h"

static struct jobs *runner_table;
static struct workers *runner_pool;
static const struct runner_retry_policy *runner_policy;

void runner_init(struct jobs *jobs, struct workers *workers,
                 const struct runner_retry_policy *policy)
{
	runner_table = jobs;
	runner_pool = workers;
	runner_policy = policy;
}

static bool retry_wanted(struct job *job, const char *type)
{
	return runner_policy != NULL && runner_policy->wanted(job, type);
}

struct jobs *runner_jobs(void)
{
	return runner_table;
}

struct workers *runner_workers(void)
{
	return runner_pool;
}

static struct slots *gate_of(const struct job *job)
{
	return job->function->gate != NULL ? job->function->gate() : NULL;
}

/* The named queue the job runs in, or NULL. */
static struct slots *queue_of(const struct job *job)
{
	return job->schedule != NULL ? job->schedule->queue : NULL;
}

static void release_queue_slot(struct job *job)
{
	struct slots *queue = queue_of(job);
	if (queue != NULL)
		slots_release(queue);
}

void runner_release_slot(struct job *job)
{
	struct slots *gate = gate_of(job);
	if (gate != NULL)
		slots_release(gate);
}

void runner_attempt_hold(struct job_attempt *attempt)
{
	/* Relaxed: the holder already sees the attempt. */
	atomic_fetch_add_explicit(&attempt->references, 1, memory_order_relaxed);
}

static void attempt_release(struct job_attempt *attempt, bool may_retry)
{
	if (attempt == NULL)
		return;
	/* acq_rel: the freeing thread sees what every holder wrote before letting go. */
	if (atomic_fetch_sub_explicit(&attempt->references, 1, memory_order_acq_rel) != 1)
		return;
	struct job *job = attempt->job;
	/* Nothing of this attempt remains: the next may start. */
	if (attempt->retry && may_retry)
		runner_policy->retry(job);
	free(attempt);
	job_unref(job);
}

void runner_attempt_release(struct job_attempt *attempt)
{
	attempt_release(attempt, true);
}

void runner_attempt_drop(struct job_attempt *attempt)
{
	attempt_release(attempt, false);
}

/* A new attempt on `worker` (NULL: inline), taking over the caller's job
 * reference; the runner holds its one reference. */
static struct job_attempt *attempt_new(struct job *job, struct workers_worker *worker)
{
	struct job_attempt *attempt = memory_zalloc(sizeof(*attempt));
	attempt->job = job;
	attempt->worker = worker;
	atomic_init(&attempt->references, 1);
	return attempt;
}

/* Ends the run on the attempt's thread: the timer goes, the slot (when the
 * function is done with it), and the runner's reference. The caller must not
 * touch the attempt afterwards unless it holds a reference. */
static void end_run(struct job_attempt *attempt, bool release_slot)
{
	struct job *job = attempt->job;
	attempt->active = false;
	if (attempt->timeout_event != NULL) {
		event_free(attempt->timeout_event);
		attempt->timeout_event = NULL;
	}
	if (release_slot)
		runner_release_slot(job);
	/* The named queue counts the job as running until its run ends. */
	release_queue_slot(job);
	runner_attempt_release(attempt);
}

static json_t *error_object(const char *type, json_t *details, const char *message)
{
	json_t *error = json_pack("{s:s, s:s}", "type", type, "message", message);
	if (details != NULL)
		json_object_set_new(error, "details", details);
	return error;
}

/* The attempt's thread: the job ended from outside (or the attempt timed
 * out); the function lets go of its work. */
static void stop_function(struct job_attempt *attempt)
{
	if (!attempt->active)
		return;
	const struct function *function = attempt->job->function;
	if (function->stop != NULL)
		function->stop(attempt);
	/* A gated function gives its slot back itself once its work is gone. */
	end_run(attempt, gate_of(attempt->job) == NULL);
}

/* The attempt's worker: its timeout expired. */
static void on_timeout(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct job_attempt *attempt = argument;
	struct job *job = attempt->job;
	event_free(attempt->timeout_event);
	attempt->timeout_event = NULL;
	if (job->function->terminate != NULL) {
		job->function->terminate(attempt); /* it ends the attempt itself, through runner_fail */
		return;
	}
	char message[128];
	snprintf(message, sizeof(message), "job exceeded its timeout of %g s", job->timeout);
	json_t *error = error_object(proto_job_error(PROTO_JOB_ERROR_TIMEOUT), NULL, message);
	if (retry_wanted(job, proto_job_error(PROTO_JOB_ERROR_TIMEOUT))) {
		/* The timeout is per attempt: stop this one; the next is scheduled
		 * once it is entirely gone (runner_attempt_release). */
		if (jobs_retry(runner_table, job, error))
			attempt->retry = true;
	} else {
		jobs_finish(runner_table, job, JOB_FAILED, NULL, error, NULL, NULL);
	}
	/* When a cancel won the race its stop call is on the way too; the second
	 * stop finds the attempt inactive. */
	stop_function(attempt);
}

static void start_on_worker(void *argument)
{
	struct job *job = argument; /* the runner's reference */
	struct workers_worker *worker = workers_current();
	struct job_attempt *attempt = attempt_new(job, worker);
	if (!jobs_start(runner_table, job, workers_index(worker), attempt)) {
		/* Cancelled while it waited; the slots it was granted go back. */
		runner_release_slot(job);
		release_queue_slot(job);
		runner_attempt_release(attempt);
		return;
	}
	workers_count_job(worker);
	attempt->active = true;
	if (job->timeout > 0) {
		struct timeval delay = now_timeval(job->timeout);
		attempt->timeout_event = evtimer_new(workers_base(worker), on_timeout, attempt);
		evtimer_add(attempt->timeout_event, &delay);
	}
	job->function->start(attempt);
}

static void stop_on_worker(void *argument)
{
	struct job_attempt *attempt = argument;
	stop_function(attempt);
	runner_attempt_release(attempt); /* the stop call's reference */
}

/* Any thread (the one that released the slot): the job may run now. */
static void slot_granted(void *argument)
{
	workers_post(workers_pick(runner_pool), start_on_worker, argument);
}

static void after_queue(struct job *job);

static void after_queue_on_worker(void *argument)
{
	after_queue(argument);
}

/* Any thread (the one that released a queue slot): the job may go on. On a
 * worker, so that an inline job cannot run inside another job's release. */
static void queue_granted(void *argument)
{
	workers_post(workers_pick(runner_pool), after_queue_on_worker, argument);
}

void runner_dispatch(struct job *job)
{
	job_ref(job);
	struct slots *queue = queue_of(job);
	int priority = job->schedule != NULL ? job->schedule->priority : 0;
	if (queue != NULL &&
	    slots_acquire_as(queue, &job->queue_waiter, job->owner->uid, priority, queue_granted,
	                     job) == SLOTS_QUEUED)
		return; /* stays queued; queue_granted goes on */
	after_queue(job);
}

/* The job holds its queue slot (if it has a queue): run it, or wait for its
 * function's slot. Holds the runner's reference. */
static void after_queue(struct job *job)
{
	if (job->function->executor == FUNCTION_INLINE) {
		struct job_attempt *attempt = attempt_new(job, NULL);
		if (!jobs_start(runner_table, job, -1, attempt)) {
			release_queue_slot(job);
			runner_attempt_release(attempt);
			return;
		}
		attempt->active = true;
		job->function->start(attempt);
		return;
	}
	struct slots *gate = gate_of(job);
	int priority = job->schedule != NULL ? job->schedule->priority : 0;
	if (gate != NULL &&
	    slots_acquire_as(gate, &job->slot_waiter, job->owner->uid, priority, slot_granted,
	                     job) == SLOTS_QUEUED)
		return; /* stays queued; slot_granted posts it */
	workers_post(workers_pick(runner_pool), start_on_worker, job);
}

bool runner_cancel(struct job *job, const char *type, const char *message)
{
	return runner_end(job, JOB_CANCELLED, type, message);
}

bool runner_end(struct job *job, enum job_state state, const char *type, const char *message)
{
	enum job_state previous;
	struct job_attempt *attempt;
	if (!jobs_finish(runner_table, job, state, NULL, error_object(type, NULL, message), &previous,
	                 &attempt))
		return false;
	if (attempt != NULL) {
		/* The attempt it was running as stops on its own thread; the stop
		 * call takes over the reference jobs_finish gave. An inline one is
		 * ending on its thread by itself. */
		if (attempt->worker != NULL)
			workers_post(attempt->worker, stop_on_worker, attempt);
		else
			runner_attempt_release(attempt);
	}
	/* Still waiting in its named queue or for its function's slot: leave, and
	 * drop the reference runner_dispatch gave it. When it was granted
	 * meanwhile, the grant's path (after_queue, start_on_worker) sees it is
	 * cancelled and gives the slots back. */
	if (previous == JOB_QUEUED) {
		struct slots *queue = queue_of(job);
		struct slots *gate = gate_of(job);
		if (queue != NULL && slots_cancel(queue, &job->queue_waiter)) {
			job_unref(job); /* it never got its queue slot */
		} else if (gate != NULL && slots_cancel(gate, &job->slot_waiter)) {
			release_queue_slot(job);
			job_unref(job);
		}
	}
	return true;
}

void runner_complete(struct job_attempt *attempt, json_t *result)
{
	if (!attempt->active) {
		json_decref(result);
		return;
	}
	jobs_finish(runner_table, attempt->job, JOB_DONE, result != NULL ? result : json_null(), NULL,
	            NULL, NULL);
	end_run(attempt, true);
}

void runner_fail(struct job_attempt *attempt, const char *type, json_t *details,
                 const char *format, ...)
{
	if (!attempt->active) {
		json_decref(details);
		return;
	}
	struct job *job = attempt->job;
	char message[512];
	va_list args;
	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	json_t *error = error_object(type, details, message);
	if (retry_wanted(job, type)) {
		/* Another attempt, once this one is gone (runner_attempt_release). */
		if (jobs_retry(runner_table, job, error))
			attempt->retry = true;
		end_run(attempt, true);
		return;
	}
	jobs_finish(runner_table, job, JOB_FAILED, NULL, error, NULL, NULL);
	end_run(attempt, true);
}

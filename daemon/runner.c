/*
 * Runs jobs on the worker loops; see runner.h.
 *
 * Reference discipline: while a job's function is active the runner holds one
 * reference to the job, dropped when the run ends (the function completes or
 * fails, or is stopped). A posted start or stop call holds its own reference
 * until it has run.
 *
 * Races: completion (worker), timeout (worker) and cancel (any thread) all
 * end in jobs_finish(), and the first to get there wins; the losers drop
 * their result. run.active, touched only by the job's worker thread, makes the
 * function's stop hook run at most once and never after the function ended.
 */
#include "daemon/runner.h"

#include <event2/event.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "daemon/functions.h"
#include "daemon/jobs.h"
#include "daemon/principal.h"
#include "daemon/schedule.h"
#include "daemon/slots.h"
#include "daemon/workers.h"
#include "proto/proto.h"

static struct jobs *runner_table;
static struct workers *runner_pool;

void runner_init(struct jobs *jobs, struct workers *workers)
{
	runner_table = jobs;
	runner_pool = workers;
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

/* Ends the run on the job's thread: the timer goes, the slot (when the
 * function is done with it), and the runner's reference. The caller must not
 * touch the job afterwards unless it holds a reference. */
static void end_run(struct job *job, bool release_slot)
{
	job->run.active = false;
	if (job->run.timeout_event != NULL) {
		event_free(job->run.timeout_event);
		job->run.timeout_event = NULL;
	}
	if (release_slot)
		runner_release_slot(job);
	/* The named queue counts the job as running until its run ends. */
	release_queue_slot(job);
	job_unref(job);
}

static json_t *error_object(const char *type, json_t *details, const char *message)
{
	json_t *error = json_pack("{s:s, s:s}", "type", type, "message", message);
	if (details != NULL)
		json_object_set_new(error, "details", details);
	return error;
}

/* Worker thread: the job ended from outside; the function lets go of its work. */
static void stop_function(struct job *job)
{
	if (!job->run.active)
		return;
	if (job->function->stop != NULL)
		job->function->stop(job);
	/* A gated function gives its slot back itself once its work is gone. */
	end_run(job, gate_of(job) == NULL);
}

static void on_timeout(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct job *job = argument;
	event_free(job->run.timeout_event);
	job->run.timeout_event = NULL;
	if (job->function->terminate != NULL) {
		job->function->terminate(job); /* it ends the job itself, through runner_fail */
		return;
	}
	char message[128];
	snprintf(message, sizeof(message), "job exceeded its timeout of %g s", job->timeout);
	json_t *error = error_object(PROTO_JOB_ERROR_TIMEOUT, NULL, message);
	if (schedule_retry_wanted(job, PROTO_JOB_ERROR_TIMEOUT)) {
		/* The timeout is per attempt: stop this one, run again after the backoff. */
		if (jobs_retry(runner_table, job, error)) {
			schedule_retry(job);
			stop_function(job);
		}
		return;
	}
	if (jobs_finish(runner_table, job, JOB_FAILED, NULL, error, NULL, NULL))
		stop_function(job);
	/* Otherwise a cancel won the race and its stop call is on the way. */
}

static void start_on_worker(void *argument)
{
	struct job *job = argument; /* the runner's reference */
	struct workers_worker *worker = workers_current();
	if (!jobs_start(runner_table, job, workers_index(worker))) {
		/* Cancelled while it waited; the slots it was granted go back. */
		runner_release_slot(job);
		release_queue_slot(job);
		job_unref(job);
		return;
	}
	workers_count_job(worker);
	job->run.worker = worker;
	job->run.active = true;
	if (job->timeout > 0) {
		struct timeval delay;
		double whole = floor(job->timeout);
		delay.tv_sec = (time_t)whole;
		delay.tv_usec = (suseconds_t)((job->timeout - whole) * 1e6);
		job->run.timeout_event = evtimer_new(workers_base(worker), on_timeout, job);
		evtimer_add(job->run.timeout_event, &delay);
	}
	job->function->start(job);
}

static void stop_on_worker(void *argument)
{
	struct job *job = argument;
	stop_function(job);
	job_unref(job); /* the stop call's reference */
}

/* Any thread (the one that released the slot): the job may run now. */
static void slot_granted(void *argument)
{
	workers_post(workers_pick(runner_pool), start_on_worker, argument);
}

void runner_submit(struct job *job)
{
	if (schedule_holds(job))
		schedule_submit(job);
	else
		runner_dispatch(job);
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
		if (!jobs_start(runner_table, job, -1)) {
			release_queue_slot(job);
			job_unref(job);
			return;
		}
		job->run.active = true;
		job->function->start(job);
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
	int worker;
	if (!jobs_finish(runner_table, job, state, NULL, error_object(type, NULL, message), &previous,
	                 &worker))
		return false;
	if (previous == JOB_RUNNING && worker >= 0) {
		job_ref(job);
		workers_post(workers_get(runner_pool, worker), stop_on_worker, job);
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

void runner_complete(struct job *job, json_t *result)
{
	if (!job->run.active) {
		json_decref(result);
		return;
	}
	jobs_finish(runner_table, job, JOB_DONE, result != NULL ? result : json_null(), NULL, NULL,
	            NULL);
	end_run(job, true);
}

void runner_fail(struct job *job, const char *type, json_t *details, const char *format, ...)
{
	if (!job->run.active) {
		json_decref(details);
		return;
	}
	char message[512];
	va_list args;
	va_start(args, format);
	vsnprintf(message, sizeof(message), format, args);
	va_end(args);
	json_t *error = error_object(type, details, message);
	if (schedule_retry_wanted(job, type)) {
		/* Another attempt: back to waiting, and off this worker. */
		if (jobs_retry(runner_table, job, error))
			schedule_retry(job);
		end_run(job, true);
		return;
	}
	jobs_finish(runner_table, job, JOB_FAILED, NULL, error, NULL, NULL);
	end_run(job, true);
}

/*
 * Runs jobs: puts a submitted job where its function runs (inline, or on a
 * worker loop), enforces its timeout, finishes it when its function ends, and
 * stops it when it is cancelled. This is the small interface the scheduler
 * sits behind; the work-stealing runtime replaces what is under it.
 */
#ifndef RUNNER_H
#define RUNNER_H

#include <jansson.h>
#include <stdbool.h>

#include "daemon/core/jobs.h"

struct job;
struct jobs;
struct workers;

/*
 * Whether and when a failed attempt runs again: the policy above the runner
 * (schedule.h), handed in so the runner depends on no layer above it.
 * wanted: the attempt failed with error type `type`; should another follow?
 * Any thread. retry: the job went back to `waiting` (jobs_retry) and its
 * last attempt is gone; start the next when it should. Takes its own
 * reference. Any thread.
 */
struct runner_retry_policy {
	bool (*wanted)(struct job *job, const char *type);
	void (*retry)(struct job *job);
};

/* Sets up the runner over a job table and the worker pool. policy: static, or
 * NULL for "never retry". Main thread, once, before any job is submitted. */
void runner_init(struct jobs *jobs, struct workers *workers,
                 const struct runner_retry_policy *policy);

/* Starts a queued job now: inline functions run on this thread; others wait
 * for their slot (if gated) and are posted to a worker. Takes its own
 * reference. Any thread. */
void runner_dispatch(struct job *job);

/* Finishes an unfinished job from outside with `state` (JOB_FAILED or
 * JOB_CANCELLED), an error type and message, and tells its function to stop.
 * Returns true when this call finished the job. Any thread. */
bool runner_end(struct job *job, enum job_state state, const char *type, const char *message);

/*
 * Finishes an unfinished job as cancelled, with the given error type
 * ("Cancelled", or "Shutdown") and message, and tells its function to stop.
 * Returns true when this call finished the job, false when it had already
 * finished. Any thread.
 */
bool runner_cancel(struct job *job, const char *type, const char *message);

/* For functions, on the attempt's worker thread (or the receiving thread for
 * inline functions): the attempt is done with result (stolen; NULL means JSON
 * null), which finishes the job unless it was stopped meanwhile. */
void runner_complete(struct job_attempt *attempt, json_t *result);

/* For functions, likewise: the attempt failed with an error type ("ValueError")
 * and a message; the job runs again when it has retries left (once this
 * attempt is freed), else it fails. details, when not NULL, is stolen and
 * added to the error object. */
void runner_fail(struct job_attempt *attempt, const char *type, json_t *details,
                 const char *format, ...) __attribute__((format(printf, 4, 5)));

/* A function keeps the attempt alive while its own state (a pool call, a
 * task, a group) may still come back to it after the run ended: take a
 * reference with hold, give it back with release, on any thread. The last
 * release frees the attempt and, when it ended for a retry, schedules the
 * next one. */
void runner_attempt_hold(struct job_attempt *attempt);
void runner_attempt_release(struct job_attempt *attempt);
/* release at exit, once the workers have stopped: the last drop frees the
 * attempt but schedules no retry (there is nothing left to run it). */
void runner_attempt_drop(struct job_attempt *attempt);

/* Gives back the slot of a gated function's job (functions.h, `gate`), for a
 * function whose stop hook keeps its work alive for a while. Any thread. */
void runner_release_slot(struct job *job);

/* The job table the runner works on (for functions that need it). */
struct jobs *runner_jobs(void);
/* The worker pool jobs run on (for functions that start tasks). */
struct workers *runner_workers(void);

#endif

/*
 * When jobs with scheduling fields may run (PROTOCOL.md, "Scheduling
 * fields"): a job waits for the jobs in its `after` list and for its
 * `delay`/`at`, fails past its `deadline`, and runs again after a failed
 * attempt while `retries` last. Dependencies are job watches (jobs.h); time
 * is kept by timers on the workers' loops.
 */
#ifndef SCHEDULE_H
#define SCHEDULE_H

#include <stdbool.h>

struct event_base;
struct job;

/* Whether a new job must wait or be watched before it runs (after, delay/at,
 * deadline); a job with only retries or a priority goes to the runner at once. */
bool schedule_holds(const struct job *job);

/* Holds a new job that has a schedule (it becomes `waiting`) until it may run,
 * then hands it to runner_dispatch(). Takes its own references. Any thread. */
void schedule_submit(struct job *job);

/* Whether an attempt that failed with error type `type` should run again
 * (retries left, the type retried, the deadline not in the way). Any thread. */
bool schedule_retry_wanted(struct job *job, const char *type);

/* The job went back to `waiting` after a failed attempt (jobs_retry): run it
 * again after its backoff. Takes its own reference. Any thread. */
void schedule_retry(struct job *job);

/* Frees the timers still armed on a worker's loop: the worker is stopping.
 * That worker's thread. */
void schedule_worker_exit(struct event_base *base);

#endif

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
struct runner_retry_policy;
struct job;

/* Starts a new job: one that must wait or be watched first (after, delay/at,
 * deadline) becomes `waiting` until it may run; then, or at once for the
 * others, runner_dispatch(). Takes its own references. Any thread. */
void schedule_submit(struct job *job);

/* The runner's retry policy (runner.h): another attempt while retries last,
 * for the error types retried, unless the deadline is in the way; each after
 * its backoff. Give it to runner_init. */
extern const struct runner_retry_policy schedule_retry_policy;

/* Frees the timers still armed on a worker's loop: the worker is stopping.
 * That worker's thread. */
void schedule_worker_exit(struct event_base *base);

/* Timers armed now (delays, deadlines, retry pauses), for `stats`. Any thread. */
long schedule_timers_armed(void);

#endif

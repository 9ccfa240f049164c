/*
 * Scheduling; see schedule.h.
 *
 * References: schedule_submit takes one reference for the job's way through
 * its waits (dependencies, then the delay), dropped when it is released to the
 * runner or fails; each armed timer holds one more.
 *
 * Dependencies: one struct per waiting job counts the jobs still unfinished,
 * starting at count + 1 so that registering the watches cannot race with
 * their notifications; whoever brings the count to zero goes on (a finishing
 * dependency's thread, or the submitting thread).
 *
 * Timers: a timer is armed on a worker's loop (libevent: one thread per base)
 * through a posted call, and listed so that a stopping worker frees the ones
 * that never fired. The list's lock is never held while a callback runs.
 */
#include "daemon/sched/schedule.h"

#include <event2/event.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/workers.h"

/* ---- timers ---- */

struct timer {
	struct timer *previous, *next; /* guarded by timers_lock while armed */
	struct event_base *base;       /* where it is armed (its worker's) */
	struct event *event;
	double seconds;
	void (*fire)(struct job *job); /* called on the worker; the timer's reference follows */
	struct job *job;               /* a reference */
};

static pthread_mutex_t timers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timer *timers; /* armed timers */

static void timer_unlist(struct timer *timer)
{
	pthread_mutex_lock(&timers_lock);
	if (timer->previous != NULL)
		timer->previous->next = timer->next;
	else
		timers = timer->next;
	if (timer->next != NULL)
		timer->next->previous = timer->previous;
	pthread_mutex_unlock(&timers_lock);
}

/* Worker thread: the time came. */
static void timer_fired(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct timer *timer = argument;
	timer_unlist(timer);
	event_free(timer->event);
	timer->fire(timer->job); /* takes over the timer's reference */
	free(timer);
}

/* Worker thread (a posted call): arm the timer on this worker's loop. */
static void timer_arm(void *argument)
{
	struct timer *timer = argument;
	timer->base = workers_base(workers_current());
	timer->event = evtimer_new(timer->base, timer_fired, timer);
	pthread_mutex_lock(&timers_lock);
	timer->previous = NULL;
	timer->next = timers;
	if (timers != NULL)
		timers->previous = timer;
	timers = timer;
	pthread_mutex_unlock(&timers_lock);
	double whole = floor(timer->seconds);
	struct timeval delay = {.tv_sec = (time_t)whole,
	                        .tv_usec = (suseconds_t)((timer->seconds - whole) * 1e6)};
	evtimer_add(timer->event, &delay);
}

/* Calls fire(job) on a worker after `seconds`, with a reference of its own. Any thread. */
static void after_seconds(double seconds, void (*fire)(struct job *job), struct job *job)
{
	struct timer *timer = memory_zalloc(sizeof(*timer));
	timer->seconds = seconds > 0 ? seconds : 0;
	timer->fire = fire;
	job_ref(job);
	timer->job = job;
	workers_post(workers_pick(runner_workers()), timer_arm, timer);
}

void schedule_worker_exit(struct event_base *base)
{
	for (;;) {
		pthread_mutex_lock(&timers_lock);
		struct timer *timer = timers;
		while (timer != NULL && timer->base != base)
			timer = timer->next;
		pthread_mutex_unlock(&timers_lock);
		if (timer == NULL)
			return;
		timer_unlist(timer);
		event_free(timer->event);
		job_unref(timer->job);
		free(timer);
	}
}

/* ---- release, delay, deadline ---- */

/* The worker to hand follow-up work to: this one when called on a worker (no
 * thread hop: the call runs later from its loop), else any. */
static struct workers_worker *next_worker(void)
{
	struct workers_worker *here = workers_current();
	return here != NULL ? here : workers_pick(runner_workers());
}

/* Worker thread: to the runner, unless the job was cancelled meanwhile. */
static void release_on_worker(void *argument)
{
	struct job *job = argument;
	if (jobs_release(runner_jobs(), job))
		runner_dispatch(job);
	job_unref(job);
}

/* The wait is over. Consumes a reference. Released from a worker's loop, so
 * that an inline job finishing at once cannot finish the next link of a chain
 * from inside this call, and so on, one stack frame per link. */
static void release(struct job *job)
{
	workers_post(next_worker(), release_on_worker, job);
}

/* Dependencies are over: wait for the job's time, or release it. Consumes a reference. */
static void after_dependencies(struct job *job)
{
	double wait = job->schedule->run_at - now_wall();
	if (wait > 0) {
		after_seconds(wait, release, job);
		job_unref(job);
		return;
	}
	release(job);
}

static void deadline_passed(struct job *job)
{
	char message[128];
	snprintf(message, sizeof(message), "job passed its deadline (%.3f)", job->schedule->deadline);
	runner_end(job, JOB_FAILED, "Deadline", message);
	job_unref(job);
}

/* ---- dependencies ---- */

struct dependencies;

struct dependency_watch {
	struct job_watch watch; /* first: the watch is the struct */
	struct dependencies *owner;
};

struct dependencies {
	struct job *job;                 /* the waiting job: the schedule's reference */
	struct job **after;              /* references to the jobs waited for */
	struct dependency_watch *watches;
	size_t count;
	atomic_size_t remaining;         /* unfinished dependencies, + 1 while registering */
};

static void dependencies_over(struct dependencies *dependencies)
{
	struct job *job = dependencies->job;
	struct job *failed = NULL;
	enum job_state failed_state = JOB_DONE;
	for (size_t i = 0; i < dependencies->count && failed == NULL; i++) {
		struct job *after = dependencies->after[i];
		struct job_snapshot snapshot;
		if (after == NULL) /* expired before it could be watched */
			continue;
		jobs_snapshot(runner_jobs(), after, &snapshot);
		if (snapshot.state == JOB_FAILED || snapshot.state == JOB_CANCELLED) {
			failed = after;
			failed_state = snapshot.state;
		}
		jobs_snapshot_clear(&snapshot);
	}
	if (failed != NULL && !job->schedule->after_always) {
		char message[128];
		snprintf(message, sizeof(message), "job %llu, which this job runs after, ended %s",
		         (unsigned long long)failed->id, job_state_name(failed_state));
		runner_end(job, JOB_FAILED, "DependencyFailed", message);
		job_unref(job);
	} else {
		after_dependencies(job);
	}
	for (size_t i = 0; i < dependencies->count; i++)
		job_unref(dependencies->after[i]);
	free(dependencies->after);
	free(dependencies->watches);
	free(dependencies);
}

static void dependencies_over_on_worker(void *argument)
{
	dependencies_over(argument);
}

static void dependency_finished(struct dependencies *dependencies)
{
	/* seq_cst: the last decrement must see every dependency's final state. On a
	 * worker's loop, not here in the finishing job's notification: a failed link
	 * would fail the next one from inside this call, and so on down a chain. */
	if (atomic_fetch_sub(&dependencies->remaining, 1) == 1)
		workers_post(next_worker(), dependencies_over_on_worker, dependencies);
}

static void on_dependency_finished(struct job_watch *watch, struct job *job)
{
	(void)job;
	dependency_finished(((struct dependency_watch *)watch)->owner);
}

static void wait_for_dependencies(struct job *job)
{
	const struct job_schedule *schedule = job->schedule;
	struct dependencies *dependencies = memory_zalloc(sizeof(*dependencies));
	dependencies->job = job;
	dependencies->count = schedule->after_count;
	dependencies->after = memory_zalloc(schedule->after_count * sizeof(*dependencies->after));
	dependencies->watches =
		memory_zalloc(schedule->after_count * sizeof(*dependencies->watches));
	atomic_init(&dependencies->remaining, schedule->after_count + 1);
	for (size_t i = 0; i < schedule->after_count; i++) {
		struct job *after = jobs_find(runner_jobs(), schedule->after[i]);
		dependencies->after[i] = after;
		dependencies->watches[i].owner = dependencies;
		dependencies->watches[i].watch.notify = on_dependency_finished;
		if (after == NULL || !jobs_watch(runner_jobs(), after, &dependencies->watches[i].watch))
			dependency_finished(dependencies);
	}
	dependency_finished(dependencies); /* registering is over */
}

/* Whether a new job must wait or be watched before it runs; a job with only
 * retries or a priority goes to the runner at once. */
static bool holds(const struct job *job)
{
	const struct job_schedule *schedule = job->schedule;
	return schedule != NULL &&
	       (schedule->after_count > 0 || schedule->run_at > 0 || schedule->deadline > 0);
}

void schedule_submit(struct job *job)
{
	if (!holds(job)) {
		runner_dispatch(job);
		return;
	}
	const struct job_schedule *schedule = job->schedule;
	jobs_make_waiting(runner_jobs(), job);
	job_ref(job); /* the schedule's, for the way through the waits */
	if (schedule->deadline > 0)
		after_seconds(schedule->deadline - now_wall(), deadline_passed, job);
	if (schedule->after_count > 0)
		wait_for_dependencies(job);
	else
		after_dependencies(job);
}

/* ---- retries ---- */

/* The pause before attempt n + 1: backoff × 2^(n-1), capped, ±25% jitter. */
static double backoff_after(const struct job_schedule *schedule, unsigned attempts)
{
	double pause = schedule->retry_backoff * pow(2.0, attempts > 0 ? (double)(attempts - 1) : 0);
	if (pause > schedule->retry_backoff_max)
		pause = schedule->retry_backoff_max;
	/* Jitter only spreads retries out; rand's quality does not matter. */
	double jitter = 0.75 + 0.5 * ((double)rand() / (double)RAND_MAX);
	return pause * jitter;
}

static bool retry_wanted(struct job *job, const char *type)
{
	const struct job_schedule *schedule = job->schedule;
	if (schedule == NULL || schedule->retries == 0)
		return false;
	static const char *const final_types[] = {"Cancelled", "DependencyFailed", "Deadline",
	                                          "Shutdown"};
	for (size_t i = 0; i < sizeof(final_types) / sizeof(final_types[0]); i++)
		if (strcmp(type, final_types[i]) == 0)
			return false;
	unsigned attempts = jobs_attempts(runner_jobs(), job);
	if (attempts > schedule->retries)
		return false;
	if (schedule->retry_on != NULL) {
		bool listed = false;
		for (size_t i = 0; i < json_array_size(schedule->retry_on) && !listed; i++)
			listed = strcmp(json_string_value(json_array_get(schedule->retry_on, i)), type) == 0;
		if (!listed)
			return false;
	}
	/* A retry that could only start after the deadline would be a wasted wait. */
	return schedule->deadline <= 0 ||
	       now_wall() + schedule->retry_backoff * 0.75 < schedule->deadline;
}

static void retry(struct job *job)
{
	after_seconds(backoff_after(job->schedule, jobs_attempts(runner_jobs(), job)), release, job);
}

const struct runner_retry_policy schedule_retry_policy = {
	.wanted = retry_wanted,
	.retry = retry,
};

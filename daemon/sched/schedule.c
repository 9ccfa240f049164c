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
 * through a posted call, listed by that worker so that stopping it frees the
 * ones that never fired, and watching its job so that the job's end cancels it
 * (see struct timer).
 */
#include "daemon/sched/schedule.h"

#include <event2/event.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/workers.h"
#include "proto/proto.h"

/* ---- timers ---- */

/*
 * A timer is armed on one worker's loop and lives on that worker's list; it
 * also watches its job, so that a job that ends first (cancelled, or done
 * before its deadline) takes its timers with it at once instead of keeping
 * itself alive until they fire. Whoever claims the timer first — the firing,
 * the job's end, or the worker's exit — acts on it; the others do nothing.
 * Two references keep the memory: the loop's (dropped on the worker once the
 * event is gone) and the watch's (dropped when the watch is over).
 */
struct timer {
	struct job_watch watch;       /* first: the watch is the struct */
	LIST_ENTRY(timer) armed;      /* on its worker's list; that worker's thread only */
	struct workers_worker *worker; /* where it is armed */
	struct event *event;
	double seconds;
	void (*fire)(struct job *job); /* called on the worker; the timer's job reference follows */
	struct job *job;              /* a reference, until fired or given back */
	/* acq_rel exchange: the claimer sees what arming wrote. */
	atomic_bool claimed;
	atomic_int references;
};

LIST_HEAD(timer_list, timer);
/* The timers armed on this worker's loop: each worker thread keeps its own, so
 * stopping a worker frees its timers in one pass and no lock is shared. */
static _Thread_local struct timer_list armed_here;
/* Armed timers in all, for `stats`. Relaxed: a figure on its own. */
static atomic_long timers_armed;

static void timer_release(struct timer *timer)
{
	/* acq_rel: the last one frees, after every other holder let go. */
	if (atomic_fetch_sub_explicit(&timer->references, 1, memory_order_acq_rel) == 1)
		free(timer);
}

static bool timer_claim(struct timer *timer)
{
	return !atomic_exchange_explicit(&timer->claimed, true, memory_order_acq_rel);
}

/* Worker thread (the timer's): the event and the list entry go. */
static void timer_disarm(struct timer *timer)
{
	LIST_REMOVE(timer, armed);
	event_free(timer->event);
	timer->event = NULL;
	atomic_fetch_sub_explicit(&timers_armed, 1, memory_order_relaxed);
}

/* Worker thread: the time came. */
static void timer_fired(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct timer *timer = argument;
	if (!timer_claim(timer))
		return; /* the job ended first: its cancel call is on the way here */
	timer_disarm(timer);
	if (jobs_unwatch(runner_jobs(), timer->job, &timer->watch))
		timer_release(timer); /* the watch is over without a notification */
	timer->fire(timer->job); /* takes over the timer's job reference */
	timer_release(timer);
}

/* Worker thread (posted by timer_job_ended, with the loop's reference): the
 * job ended first. A worker that stopped before the call could run disarms
 * the timer in schedule_worker_exit instead. */
static void timer_cancel_on_worker(void *argument)
{
	struct timer *timer = argument;
	timer_disarm(timer);
	job_unref(timer->job);
	timer_release(timer);
}

/* The thread that finished the job: its timers have nothing left to do. */
static void timer_job_ended(struct job_watch *watch, struct job *job)
{
	(void)job;
	struct timer *timer = (struct timer *)watch;
	if (timer_claim(timer))
		workers_post(timer->worker, timer_cancel_on_worker, timer); /* takes the loop's reference */
	timer_release(timer); /* the watch's */
}

/* Worker thread (a posted call): arm the timer on this worker's loop. */
static void timer_arm(void *argument)
{
	struct timer *timer = argument;
	timer->worker = workers_current();
	timer->event = evtimer_new(workers_base(timer->worker), timer_fired, timer);
	LIST_INSERT_HEAD(&armed_here, timer, armed);
	atomic_fetch_add_explicit(&timers_armed, 1, memory_order_relaxed);
	struct timeval delay = now_timeval(timer->seconds);
	evtimer_add(timer->event, &delay);
	timer->watch.notify = timer_job_ended;
	if (!jobs_watch(runner_jobs(), timer->job, &timer->watch)) {
		/* Already over: nothing will notify, so act as the notification. */
		timer_claim(timer);
		timer_disarm(timer);
		job_unref(timer->job);
		timer_release(timer);
		timer_release(timer);
	}
}

/* Calls fire(job) on a worker after `seconds`, with a reference of its own,
 * unless the job ends first. Any thread. */
static void after_seconds(double seconds, void (*fire)(struct job *job), struct job *job)
{
	struct timer *timer = memory_zalloc(sizeof(*timer));
	timer->seconds = seconds > 0 ? seconds : 0;
	timer->fire = fire;
	job_ref(job);
	timer->job = job;
	atomic_init(&timer->claimed, false);
	atomic_init(&timer->references, 2); /* the loop's and the watch's */
	workers_post(workers_pick(runner_workers()), timer_arm, timer);
}

void schedule_worker_exit(struct event_base *base)
{
	(void)base; /* this worker's thread: its own list */
	struct timer *timer;
	while ((timer = LIST_FIRST(&armed_here)) != NULL) {
		if (!timer_claim(timer)) {
			/* The job ended and the cancel call will not run any more. */
			timer_disarm(timer);
			job_unref(timer->job);
			timer_release(timer);
			continue;
		}
		timer_disarm(timer);
		if (jobs_unwatch(runner_jobs(), timer->job, &timer->watch))
			timer_release(timer);
		job_unref(timer->job);
		timer_release(timer);
	}
}

long schedule_timers_armed(void)
{
	return atomic_load_explicit(&timers_armed, memory_order_relaxed);
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
	runner_end(job, JOB_FAILED, proto_job_error(PROTO_JOB_ERROR_DEADLINE), message);
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
		runner_end(job, JOB_FAILED, proto_job_error(PROTO_JOB_ERROR_DEPENDENCY_FAILED), message);
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
	if (proto_job_error_final(type))
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

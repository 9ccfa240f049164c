/*
 * Thread functions; see threaded.h.
 *
 * A job's call: allocated on the attempt's worker when it starts, it holds a
 * reference to the attempt, goes to the pool, and its `done` (on a pool
 * thread, or on the worker itself when a queued call is cancelled) posts the
 * call back to attempt->worker, which ends the attempt unless it was stopped
 * meanwhile and frees the call. attempt->data points to the call while the
 * attempt waits for it; stop clears it, which is how the worker knows to drop
 * a late result. Because the call holds the attempt, a retry of a timed-out
 * call starts only once the call is back from the pool.
 *
 * Exit: `closing` makes late dones put their call on `late` instead of
 * posting to workers that are about to go; `in_done` counts dones in flight
 * so that threaded_close can wait for those that started before it.
 * threaded_fini, once the workers have stopped, frees the late calls and
 * drops their attempts: not sooner, because until the workers stop one may
 * still read attempt->data (a timeout, a cancel) and find the call there.
 */
#include "daemon/executors/thread/threaded.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "daemon/executors/thread/blocking.h"
#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/base/log.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/executors/thread/run_in_thread.h"
#include "daemon/base/problem.h"
#include "daemon/core/principal.h"
#include "daemon/sched/runner.h"
#include "daemon/executors/thread/threadpool.h"
#include "daemon/sched/workers.h"
#include "proto/proto.h"

/* Calls waiting for a pool thread, at most; beyond it a job fails ExecutorBusy. */
#define QUEUE_CAPACITY 65536
/* How long exit waits for running calls before leaving them behind. */
#define EXIT_WAIT_SECONDS 1.0

static struct threadpool *pool;
static struct function *functions; /* one per blocking built-in, made at init */
static size_t function_count;
/* Sequentially consistent: `closing` is stored then `in_done` read by
 * threaded_fini, while a done increments `in_done` then reads `closing`; with
 * weaker orders both could miss each other. */
static atomic_bool closing;
static atomic_int in_done;

/* One call of an attempt on the pool. Owned by itself: freed on the
 * attempt's worker once its done has come back. */
struct threaded_call {
	struct blocking_call call;
	struct blocking_owner owner; /* the job's principal, borrowed through the attempt */
	struct job_attempt *attempt; /* a reference (runner_attempt_hold) */
	SLIST_ENTRY(threaded_call) late_link; /* on `late`; under late_lock */
};

/* Calls whose done came after threaded_close, for threaded_fini. A leaf lock:
 * nothing else is taken or called while it is held. */
static pthread_mutex_t late_lock = PTHREAD_MUTEX_INITIALIZER;
static SLIST_HEAD(, threaded_call) late = SLIST_HEAD_INITIALIZER(late);

/* A pool thread: principal_open_regular for the job's owner. */
static int open_as_owner(const void *owner, const char *path, int *fd, int *error)
{
	return principal_open_regular(owner, path, fd, error);
}

static int threaded_check(const struct function *function, const json_t *args,
                          struct problem *problem)
{
	const struct blocking_function *builtin = function->implementation;
	char message[sizeof(problem->message)];
	const char *field = NULL;
	int rv = builtin->check(args, message, sizeof(message), &field);
	if (rv == WEFT_OK)
		return WEFT_OK;
	char path[96];
	snprintf(path, sizeof(path), "args.%s", field != NULL ? field : "");
	return problem_set(problem, rv, field != NULL ? path : NULL, "%s", message);
}

/* Worker thread: the call is back. */
static void finish_on_worker(void *argument)
{
	struct threaded_call *threaded = argument;
	struct job_attempt *attempt = threaded->attempt;
	struct blocking_call *call = &threaded->call;
	if (attempt->data != threaded) {
		/* The attempt was stopped (cancelled, timed out): drop the result. */
		json_decref(call->outcome.result);
	} else {
		attempt->data = NULL;
		if (call->work.cancelled)
			runner_fail(attempt, proto_job_error(PROTO_JOB_ERROR_CANCELLED), NULL,
			            "the call was dropped before it ran");
		else if (call->rv == WEFT_OK)
			runner_complete(attempt, call->outcome.result);
		else
			runner_fail(attempt, call->outcome.error_type, NULL, "%s",
			            call->outcome.error_message);
	}
	free(threaded);
	runner_attempt_release(attempt); /* may schedule the retry: the call is back */
}

/* A pool thread (or the cancelling worker): hand the call back to the
 * attempt's worker (immutable: this never reads the job). */
static void on_done(struct threadpool_work *work)
{
	struct threaded_call *threaded = (struct threaded_call *)blocking_call_from_work(work);
	atomic_fetch_add(&in_done, 1);
	if (!atomic_load(&closing)) {
		workers_post(threaded->attempt->worker, finish_on_worker, threaded);
	} else {
		/* The daemon is exiting: nobody waits for this any more. The call
		 * is kept for threaded_fini, which frees it once no worker can look
		 * at it, and drops the attempt without the retry it may be owed. */
		log_info("a %s call ended after the thread pool closed; its end is dropped",
		         threaded->call.function->name);
		json_decref(threaded->call.outcome.result);
		threaded->call.outcome.result = NULL;
		pthread_mutex_lock(&late_lock);
		SLIST_INSERT_HEAD(&late, threaded, late_link);
		pthread_mutex_unlock(&late_lock);
	}
	atomic_fetch_sub(&in_done, 1);
}

void threaded_start(struct job_attempt *attempt)
{
	struct job *job = attempt->job;
	struct threaded_call *threaded = memory_zalloc(sizeof(*threaded));
	runner_attempt_hold(attempt);
	threaded->attempt = attempt;
	threaded->owner.open_regular = open_as_owner;
	threaded->owner.owner = job->owner;
	threaded->owner.job = job; /* the attempt's reference keeps it */
	blocking_call_init(&threaded->call, job->function->implementation, job->args,
	                   &threaded->owner, on_done);
	/* Pool threads take turns between users (threadpool.h). */
	threadpool_work_set_key(&threaded->call.work, job->owner->uid);
	attempt->data = threaded;
	int rv = threadpool_submit(pool, &threaded->call.work);
	if (rv != WEFT_OK) {
		attempt->data = NULL;
		free(threaded);
		runner_fail(attempt, "ExecutorBusy", NULL,
		            "the thread pool cannot take the call (%s: %d calls already wait); try "
		            "again later or raise --threads",
		            weft_strerror(rv), QUEUE_CAPACITY);
		runner_attempt_release(attempt); /* the call's, after the runner is done with it */
	}
}

void threaded_stop(struct job_attempt *attempt)
{
	struct threaded_call *threaded = attempt->data;
	if (threaded == NULL)
		return;
	/* From now on the call's end is dropped. A queued call's done runs here,
	 * now; a running one finishes first. */
	attempt->data = NULL;
	threadpool_cancel(pool, &threaded->call.work);
}

int threaded_init(unsigned threads)
{
	int rv = threadpool_create(threads, QUEUE_CAPACITY, &pool);
	if (rv != WEFT_OK)
		return rv;
	/* Task code's weft_run_in_thread uses the same pool. */
	run_in_thread_set_pool(pool);
	function_count = blocking_function_count;
	functions = memory_zalloc(function_count * sizeof(*functions));
	for (size_t i = 0; i < function_count; i++) {
		const struct blocking_function *builtin = &blocking_functions[i];
		size_t argument_count = 0;
		while (builtin->arguments[argument_count].name != NULL)
			argument_count++;
		struct function_argument *arguments =
			memory_zalloc((argument_count + 1) * sizeof(*arguments));
		for (size_t a = 0; a < argument_count; a++) {
			arguments[a].name = builtin->arguments[a].name;
			arguments[a].description = builtin->arguments[a].description;
		}
		functions[i] = (struct function){
			.name = builtin->name,
			.executor = FUNCTION_THREAD,
			.summary = builtin->summary,
			.arguments = arguments,
			.check = threaded_check,
			.start = threaded_start,
			.stop = threaded_stop,
			.implementation = builtin,
		};
	}
	return WEFT_OK;
}

void threaded_close(void)
{
	if (pool == NULL || atomic_load(&closing))
		return;
	atomic_store(&closing, true);
	run_in_thread_set_pool(NULL);
	double deadline = now_monotonic() + EXIT_WAIT_SECONDS;
	struct threadpool_stats stats;
	threadpool_stats(pool, &stats);
	while ((stats.busy > 0 || atomic_load(&in_done) > 0) && now_monotonic() < deadline) {
		struct timespec pause = {.tv_nsec = 10 * 1000 * 1000};
		nanosleep(&pause, NULL);
		threadpool_stats(pool, &stats);
	}
}

/* Main thread, after the workers stopped: frees the calls that ended late. */
static void free_late(void)
{
	pthread_mutex_lock(&late_lock);
	struct threaded_call *threaded = SLIST_FIRST(&late);
	SLIST_INIT(&late);
	pthread_mutex_unlock(&late_lock);
	while (threaded != NULL) {
		struct threaded_call *next = SLIST_NEXT(threaded, late_link);
		struct job_attempt *attempt = threaded->attempt;
		free(threaded);
		runner_attempt_drop(attempt);
		threaded = next;
	}
}

void threaded_fini(void)
{
	if (pool == NULL)
		return;
	threaded_close();
	free_late();
	struct threadpool_stats stats;
	threadpool_stats(pool, &stats);
	if (stats.busy > 0) {
		/* Joining would wait for them; the process is about to end anyway. */
		log_warn("%zu blocking calls still running at exit; not waiting for them",
		         stats.busy);
		return;
	}
	threadpool_shutdown(pool);
	threadpool_free(pool);
	pool = NULL;
	for (size_t i = 0; i < function_count; i++)
		free((void *)functions[i].arguments);
	free(functions);
	functions = NULL;
	function_count = 0;
}

const struct function *threaded_function(size_t index)
{
	return index < function_count ? &functions[index] : NULL;
}

void threaded_stats(struct threadpool_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	if (pool != NULL)
		threadpool_stats(pool, stats);
}

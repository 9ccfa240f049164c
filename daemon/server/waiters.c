/*
 * Waiters; see waiters.h.
 *
 * Exactly-once answer: a waiter is answered by whoever moves its state from
 * ARMED to CLAIMED (compare-and-swap); that thread (the "claimer") unregisters
 * the watches, cancels the timer and sends the reply. During setup the state
 * is SETUP, so nothing can claim a half-registered waiter; events that happen
 * then (a job finishing, the timer expiring) leave a trace (`finished`,
 * `expired`) that setup checks once it arms the waiter.
 *
 * Lifetime: reference counted. References: setup (dropped at its end), each
 * registered watch (dropped by the notify, or by the claimer when it
 * unregisters the watch first), the timer (dropped in the timer callback,
 * which always runs once per sleep), and anyone who claims from a list. The
 * timer's aio is freed with nng_aio_reap, which is safe even from that aio's
 * own callback.
 *
 * A chain (return_when ALL_COMPLETED: wait's default, result, submit with
 * wait): the waiter has one watch, on the first job not finished yet; when
 * that job finishes its notify moves the watch on to the next unfinished
 * job, and the last one claims. So a wait on N jobs holds N job references
 * (8 bytes each) and one watch, not N watches: 100,000 ids cost 0.8 MB, not
 * 4.6. Who holds the chain (setup, then each notify in turn) and the claimer
 * meet under chain_lock: the holder registers the watch and records where
 * it is under it; the claimer, which has already set CLAIMED, unregisters it
 * under it, and a holder that finds CLAIMED under it registers nothing more.
 * Lock order: chain_lock, then a shard lock of the jobs (jobs_watch,
 * jobs_unwatch, jobs_state); the jobs notify with no lock held.
 * The other modes need to hear of any job: one watch per job.
 *
 * What a waiter holds (its struct and arrays) is charged to its user's
 * byte budget (QUOTA_BYTES) while it lives, so the budget bounds waits too.
 *
 * Memory orders: the state, finished, failed and expired atomics use the
 * default sequentially consistent order, because correctness rests on a
 * store-then-load pattern across two threads (the timer stores expired then
 * tries to claim; setup arms then loads expired): with anything weaker both
 * could miss each other.
 */
#include "daemon/server/waiters.h"

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/queue.h>

#include "daemon/base/watch.h"
#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/core/outcome.h"
#include "daemon/core/principal.h"
#include "daemon/base/problem.h"
#include "daemon/core/quota.h"
#include "daemon/server/server.h"

enum waiter_state { STATE_SETUP, STATE_ARMED, STATE_CLAIMED };
enum waiter_reason { REASON_COMPLETED, REASON_TIMEOUT, REASON_ABANDONED, REASON_SHUTDOWN };

/* nng sleeps take an int32 of milliseconds; longer timeouts sleep in pieces. */
#define TIMER_PIECE_MS (24 * 3600 * 1000)

struct waiter;

struct waiter_watch {
	struct job_watch watch;
	struct waiter *waiter;
};

/* Owned by its references (see the design note). The fields from owner to
 * timer are set by waiters_start before the waiter is published (to the timer
 * by nng_sleep_aio, to the open list under owner->lock, to each job by
 * jobs_watch under its shard lock) and are immutable after, so any holder of
 * a reference reads them without a lock. The atomics are written by any
 * thread (job finishers, the timer, setup, the claimer). */
struct waiter {
	struct waiters *owner;
	struct server_request *request;
	uint32_t pipe;
	uid_t uid;                     /* the caller's, for its waiter quota */
	enum waiter_kind kind;
	enum request_return_when when;
	size_t count;
	struct job **jobs;             /* references owned */
	struct waiter_watch *watches;  /* one per job; one in a chain */
	bool chained;                  /* one watch moved along the jobs (design note) */
	uint64_t charged;              /* bytes of QUOTA_BYTES this waiter holds */
	/* A chain's: guards linked and at (the lock of the design note). */
	pthread_mutex_t chain_lock;
	bool linked;                   /* the watch is registered, on jobs[at] */
	size_t at;
	double timeout;                /* < 0: none */
	double deadline;               /* monotonic */
	nng_aio *timer;                /* NULL when there is no timeout */
	atomic_size_t finished;
	atomic_bool failed;
	atomic_bool expired;
	atomic_int state;
	enum waiter_reason reason;     /* written by the claimer, read by it alone */
	atomic_int references;
	LIST_ENTRY(waiter) open_link; /* on owner->open; guarded by owner->lock */
	/* WAITER_SOURCE: immutable once published, like the fields above. */
	const struct waiter_source *source;
	void *source_context;
	struct watch source_watch; /* registered with the source while it waits */
};

struct waiters {
	struct jobs *jobs;
	size_t max;
	pthread_mutex_t lock; /* guards the list of open waiters */
	LIST_HEAD(, waiter) open;
	atomic_size_t count;
};

struct waiters *waiters_new(struct jobs *jobs, size_t max)
{
	struct waiters *waiters = memory_zalloc(sizeof(*waiters));
	waiters->jobs = jobs;
	waiters->max = max;
	pthread_mutex_init(&waiters->lock, NULL);
	return waiters;
}

void waiters_free(struct waiters *waiters)
{
	if (waiters == NULL)
		return;
	pthread_mutex_destroy(&waiters->lock);
	free(waiters);
}

size_t waiters_count(struct waiters *waiters)
{
	return atomic_load(&waiters->count);
}

static void waiter_ref(struct waiter *waiter)
{
	atomic_fetch_add_explicit(&waiter->references, 1, memory_order_relaxed);
}

/* Undoes reserve (below). */
static void unreserve(struct waiters *waiters, uid_t uid)
{
	atomic_fetch_sub(&waiters->count, 1);
	quota_give(QUOTA_WAITERS, uid, 1);
}

static void waiter_unref(struct waiter *waiter)
{
	/* acq_rel: the last dropper must see all the others' writes before freeing. */
	if (atomic_fetch_sub_explicit(&waiter->references, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < waiter->count; i++)
		job_unref(waiter->jobs[i]);
	if (waiter->timer != NULL)
		nng_aio_reap(waiter->timer);
	/* The last reference is where a waiter ends, once. */
	unreserve(waiter->owner, waiter->uid);
	quota_give(QUOTA_BYTES, waiter->uid, waiter->charged);
	if (waiter->chained)
		pthread_mutex_destroy(&waiter->chain_lock);
	if (waiter->source != NULL)
		waiter->source->release(waiter->source_context);
	free(waiter->jobs);
	free(waiter->watches);
	free(waiter);
}

static bool satisfied(struct waiter *waiter)
{
	size_t finished = atomic_load(&waiter->finished);
	if (waiter->source != NULL)
		return finished > 0;
	switch (waiter->when) {
	case REQUEST_FIRST_COMPLETED:
		return finished >= 1;
	case REQUEST_FIRST_EXCEPTION:
		return atomic_load(&waiter->failed) || finished == waiter->count;
	case REQUEST_ALL_COMPLETED:
		break;
	}
	return finished == waiter->count;
}

static bool claim(struct waiter *waiter, enum waiter_reason reason)
{
	int armed = STATE_ARMED;
	if (!atomic_compare_exchange_strong(&waiter->state, &armed, STATE_CLAIMED))
		return false;
	waiter->reason = reason;
	return true;
}

/* The answer to a wait of this kind over these jobs, ended for this reason
 * (not for the batch `result`, which is written as a message). */
static json_t *build_reply(struct jobs *jobs, enum waiter_kind kind, enum waiter_reason reason,
                           struct job *const *list, size_t count, double timeout)
{
	struct job *first = list[0];
	switch (kind) {
	case WAITER_RESULT:
	case WAITER_RESULT_WITHOUT_OUTPUT: {
		if (job_state_finished(jobs_state(jobs, first)))
			return kind == WAITER_RESULT ? outcome_reply(jobs, first)
			                             : outcome_reply_without_output(jobs, first);
		if (reason == REASON_SHUTDOWN)
			return outcome_shutdown_reply(jobs, first);
		return outcome_timeout_reply(jobs, first, timeout);
	}
	case WAITER_SUBMIT:
	case WAITER_RESULTS:
	case WAITER_SOURCE: /* answered by its source (complete) */
		break;
	case WAITER_WAIT:
		return outcome_wait_reply(jobs, list, count);
	case WAITER_AS_COMPLETED:
		return outcome_completed_reply(jobs, list, count);
	}
	return outcome_reply(jobs, first);
}

static void send_reply(struct server_request *request, struct jobs *jobs, enum waiter_kind kind,
                       enum waiter_reason reason, struct job *const *list, size_t count,
                       double timeout)
{
	if (kind == WAITER_RESULTS)
		server_reply_message(request, outcome_results_message(jobs, list, count));
	else
		server_reply(request, build_reply(jobs, kind, reason, list, count, timeout));
}

/* Whether the wait is over before it starts: the common case for short jobs,
 * answered without a waiter, a timer or a list lock. */
static bool already_satisfied(struct jobs *jobs, enum request_return_when when,
                              struct job *const *list, size_t count, double timeout)
{
	size_t finished = 0;
	bool failed = false;
	for (size_t i = 0; i < count; i++) {
		enum job_state state = jobs_state(jobs, list[i]);
		if (job_state_finished(state))
			finished++;
		failed = failed || state == JOB_FAILED;
		if (when == REQUEST_FIRST_COMPLETED && finished > 0)
			return true;
		if (when == REQUEST_FIRST_EXCEPTION && failed)
			return true;
		/* For ALL_COMPLETED one unfinished job settles it, unless the caller only polls. */
		if (when == REQUEST_ALL_COMPLETED && finished <= i && timeout != 0)
			return false;
	}
	return finished == count || timeout == 0;
}

/*
 * A chain's holder: watches the first unfinished job from jobs[from] on,
 * counting the finished ones it passes, unless the waiter has been claimed.
 * The caller holds the chain (setup, or the notify of the job watched last)
 * and a reference.
 */
static void chain_advance(struct waiter *waiter, size_t from)
{
	struct jobs *jobs = waiter->owner->jobs;
	pthread_mutex_lock(&waiter->chain_lock);
	for (size_t i = from; i < waiter->count; i++) {
		if (atomic_load(&waiter->state) == STATE_CLAIMED)
			break;
		waiter_ref(waiter); /* the watch's: never the last, the caller holds one */
		if (jobs_watch(jobs, waiter->jobs[i], &waiter->watches[0].watch)) {
			waiter->linked = true;
			waiter->at = i;
			break;
		}
		waiter_unref(waiter);
		if (jobs_state(jobs, waiter->jobs[i]) == JOB_FAILED)
			atomic_store(&waiter->failed, true);
		atomic_fetch_add(&waiter->finished, 1);
	}
	pthread_mutex_unlock(&waiter->chain_lock);
}

/* The claimer's work. The caller holds a reference. */
static void complete(struct waiter *waiter, bool from_timer)
{
	struct waiters *owner = waiter->owner;
	if (waiter->chained) {
		pthread_mutex_lock(&waiter->chain_lock);
		bool removed = waiter->linked &&
		               jobs_unwatch(owner->jobs, waiter->jobs[waiter->at],
		                            &waiter->watches[0].watch);
		waiter->linked = false;
		pthread_mutex_unlock(&waiter->chain_lock);
		if (removed)
			waiter_unref(waiter);
	} else {
		for (size_t i = 0; i < waiter->count; i++)
			if (jobs_unwatch(owner->jobs, waiter->jobs[i], &waiter->watches[i].watch))
				waiter_unref(waiter);
	}
	if (waiter->source != NULL &&
	    waiter->source->unwatch(waiter->source_context, &waiter->source_watch))
		waiter_unref(waiter);
	if (waiter->timer != NULL && !from_timer)
		nng_aio_cancel(waiter->timer);
	pthread_mutex_lock(&owner->lock);
	/* Listed before it could be claimed (STATE_SETUP until then). */
	LIST_REMOVE(waiter, open_link);
	pthread_mutex_unlock(&owner->lock);
	if (waiter->reason == REASON_ABANDONED)
		server_drop(waiter->request);
	else if (waiter->source != NULL)
		server_reply(waiter->request,
		             waiter->source->reply(waiter->source_context,
		                                   waiter->reason != REASON_COMPLETED));
	else
		send_reply(waiter->request, owner->jobs, waiter->kind, waiter->reason, waiter->jobs,
		           waiter->count, waiter->timeout);
}

static void on_job_finished(struct job_watch *watch, struct job *job)
{
	struct waiter *waiter = ((struct waiter_watch *)watch)->waiter;
	/* The finishing thread wrote the state just before calling us: no lock needed. */
	if (job->state == JOB_FAILED)
		atomic_store(&waiter->failed, true);
	atomic_fetch_add(&waiter->finished, 1);
	if (waiter->chained) {
		/* This notify holds the chain now: move the watch on. */
		pthread_mutex_lock(&waiter->chain_lock);
		size_t next = waiter->at + 1;
		waiter->linked = false;
		pthread_mutex_unlock(&waiter->chain_lock);
		chain_advance(waiter, next);
	}
	if (satisfied(waiter) && claim(waiter, REASON_COMPLETED))
		complete(waiter, false);
	waiter_unref(waiter); /* the watch's reference */
}

static int sleep_piece(double seconds)
{
	double milliseconds = seconds * 1000.0;
	if (milliseconds <= 0)
		return 0;
	return milliseconds > TIMER_PIECE_MS ? TIMER_PIECE_MS : (int)(milliseconds + 0.999);
}

static void on_timer(void *argument)
{
	struct waiter *waiter = argument;
	if (nng_aio_result(waiter->timer) == 0) {
		double left = waiter->deadline - now_monotonic();
		if (left > 0 && atomic_load(&waiter->state) != STATE_CLAIMED) {
			/* A timeout longer than one nng sleep: sleep again. A claimer that
			 * cancelled before this sleep started is seen by the load below. */
			nng_sleep_aio(sleep_piece(left), waiter->timer);
			if (atomic_load(&waiter->state) == STATE_CLAIMED)
				nng_aio_cancel(waiter->timer);
			return; /* the timer keeps its reference */
		}
		atomic_store(&waiter->expired, true);
		if (claim(waiter, REASON_TIMEOUT))
			complete(waiter, true);
	}
	waiter_unref(waiter); /* the timer's reference */
}

/* Counts a new waiter against --max-waiters and the caller's quota:
 * WEFT_OK, or the error with the problem filled. Any thread. */
static int reserve(struct waiters *waiters, uid_t uid, struct problem *problem)
{
	if (atomic_fetch_add(&waiters->count, 1) >= waiters->max) {
		atomic_fetch_sub(&waiters->count, 1);
		return problem_set(problem, WEFT_EBUSY, NULL,
		                   "too many requests are waiting (%zu, --max-waiters); try again "
		                   "later",
		                   waiters->max);
	}
	if (quota_take(QUOTA_WAITERS, uid, 1, problem) != WEFT_OK) {
		atomic_fetch_sub(&waiters->count, 1);
		return problem->code;
	}
	return WEFT_OK;
}

/* Starts the waiter's timer when it has a timeout (holding a reference):
 * WEFT_OK, or WEFT_ENOMEM with nothing started. */
static int start_timer(struct waiter *waiter)
{
	if (waiter->timeout < 0)
		return WEFT_OK;
	if (nng_aio_alloc(&waiter->timer, on_timer, waiter) != 0)
		return WEFT_ENOMEM;
	waiter->deadline = now_monotonic() + waiter->timeout;
	waiter_ref(waiter); /* the timer's */
	nng_sleep_aio(sleep_piece(waiter->timeout), waiter->timer);
	return WEFT_OK;
}

/* A new waiter in setup for request, holding setup's reference; the caller
 * sets what it waits for. */
static struct waiter *waiter_new(struct waiters *waiters, struct server_request *request,
                                 uid_t uid, enum waiter_kind kind, enum request_return_when when,
                                 double timeout)
{
	struct waiter *waiter = memory_zalloc(sizeof(*waiter));
	waiter->owner = waiters;
	waiter->uid = uid;
	waiter->request = request;
	waiter->pipe = server_request_pipe(request);
	waiter->kind = kind;
	waiter->when = when;
	waiter->timeout = timeout;
	atomic_init(&waiter->state, STATE_SETUP);
	atomic_init(&waiter->references, 1); /* setup's */
	return waiter;
}

/* Lists the waiter among the open ones, which a closing pipe scans. */
static void list_open(struct waiters *waiters, struct waiter *waiter)
{
	pthread_mutex_lock(&waiters->lock);
	LIST_INSERT_HEAD(&waiters->open, waiter, open_link);
	pthread_mutex_unlock(&waiters->lock);
}

/* Ends the setup of a listed, watching waiter: from now on its watches and
 * timer may complete it; if what it waits for came, its time ran out or its
 * client went while it was set up, it completes now. Drops setup's reference. */
static void arm(struct waiter *waiter, struct server_request *request)
{
	atomic_store(&waiter->state, STATE_ARMED);
	if (satisfied(waiter)) {
		if (claim(waiter, REASON_COMPLETED))
			complete(waiter, false);
	} else if (atomic_load(&waiter->expired) && claim(waiter, REASON_TIMEOUT)) {
		complete(waiter, false);
	} else {
		/* The client may have gone while this was set up: its pipe's close,
		 * and the scan of open waiters that follows it (waiters_pipe_closed),
		 * may have come before this waiter was listed, and nothing else would
		 * end it (an unset future waits forever). The server forgets a pipe
		 * before it starts that scan, so a pipe it still knows here is
		 * scanned after this waiter was listed. */
		struct principal *still_connected = server_request_principal(request);
		if (still_connected == NULL && claim(waiter, REASON_ABANDONED))
			complete(waiter, false);
		principal_unref(still_connected);
	}
	waiter_unref(waiter); /* setup's */
}

int waiters_start(struct waiters *waiters, struct server_request *request, uid_t uid,
                  enum waiter_kind kind,
                  struct job *const *list, size_t count, enum request_return_when when,
                  double timeout, struct problem *problem)
{
	if (kind == WAITER_AS_COMPLETED)
		when = REQUEST_FIRST_COMPLETED;
	else if (kind != WAITER_WAIT)
		when = REQUEST_ALL_COMPLETED;
	if (already_satisfied(waiters->jobs, when, list, count, timeout)) {
		send_reply(request, waiters->jobs, kind, REASON_COMPLETED, list, count, timeout);
		for (size_t i = 0; i < count; i++)
			job_unref(list[i]);
		return WEFT_OK;
	}
	int rv = reserve(waiters, uid, problem);
	if (rv != WEFT_OK)
		return rv;
	/* All of it: a wait with only one unfinished job to watch at a time. */
	bool chained = when == REQUEST_ALL_COMPLETED;
	size_t watch_count = chained ? 1 : count;
	uint64_t charged = sizeof(struct waiter) + count * sizeof(struct job *) +
	                   watch_count * sizeof(struct waiter_watch);
	/* A submit's wait comes after its jobs were accepted: charged, never refused. */
	if (kind == WAITER_SUBMIT) {
		quota_charge(QUOTA_BYTES, uid, charged);
	} else if (quota_take(QUOTA_BYTES, uid, charged, problem) != WEFT_OK) {
		unreserve(waiters, uid);
		return problem->code;
	}
	struct waiter *waiter = waiter_new(waiters, request, uid, kind, when, timeout);
	waiter->count = count;
	waiter->charged = charged;
	waiter->chained = chained;
	if (chained)
		pthread_mutex_init(&waiter->chain_lock, NULL);
	waiter->jobs = memory_alloc(count * sizeof(*waiter->jobs));
	waiter->watches = memory_zalloc(watch_count * sizeof(*waiter->watches));
	for (size_t i = 0; i < count; i++)
		waiter->jobs[i] = list[i];

	if (start_timer(waiter) != WEFT_OK) {
		if (chained)
			pthread_mutex_destroy(&waiter->chain_lock);
		free(waiter->jobs);
		free(waiter->watches);
		free(waiter);
		unreserve(waiters, uid);
		quota_give(QUOTA_BYTES, uid, charged);
		return problem_set(problem, WEFT_ENOMEM, NULL, "cannot make a timer");
	}
	list_open(waiters, waiter);

	for (size_t i = 0; i < watch_count; i++) {
		waiter->watches[i].waiter = waiter;
		waiter->watches[i].watch.notify = on_job_finished;
	}
	if (chained)
		chain_advance(waiter, 0);
	for (size_t i = 0; !chained && i < count; i++) {
		waiter_ref(waiter); /* the watch's */
		if (jobs_watch(waiters->jobs, list[i], &waiter->watches[i].watch))
			continue;
		waiter_unref(waiter);
		if (jobs_state(waiters->jobs, list[i]) == JOB_FAILED)
			atomic_store(&waiter->failed, true);
		atomic_fetch_add(&waiter->finished, 1);
	}

	arm(waiter, request);
	return WEFT_OK;
}

static void on_source_changed(struct watch *watch)
{
	struct waiter *waiter =
		(struct waiter *)((char *)watch - offsetof(struct waiter, source_watch));
	atomic_fetch_add(&waiter->finished, 1);
	if (claim(waiter, REASON_COMPLETED))
		complete(waiter, false);
	waiter_unref(waiter); /* the watch's reference */
}

int waiters_start_source(struct waiters *waiters, struct server_request *request, uid_t uid,
                         const struct waiter_source *source, void *context, double timeout,
                         struct problem *problem)
{
	int rv = reserve(waiters, uid, problem);
	if (rv != WEFT_OK)
		return rv;
	struct waiter *waiter =
		waiter_new(waiters, request, uid, WAITER_SOURCE, REQUEST_FIRST_COMPLETED, timeout);
	waiter->source = source;
	waiter->source_context = context;
	waiter->source_watch.notify = on_source_changed;

	if (start_timer(waiter) != WEFT_OK) {
		free(waiter);
		unreserve(waiters, uid);
		return problem_set(problem, WEFT_ENOMEM, NULL, "cannot make a timer");
	}
	list_open(waiters, waiter);

	/* The watch's data and key were set by the caller through the context's
	 * own watch setup (source->watch fills them before linking). */
	waiter_ref(waiter); /* the watch's */
	if (!source->watch(context, &waiter->source_watch)) {
		waiter_unref(waiter);
		atomic_fetch_add(&waiter->finished, 1);
	}

	arm(waiter, request);
	return WEFT_OK;
}

/* Claims every open waiter for which match() holds, with the reason. */
static void claim_matching(struct waiters *waiters, bool (*match)(struct waiter *, uint32_t),
                           uint32_t pipe, enum waiter_reason reason)
{
	size_t used = 0, capacity = 16;
	struct waiter **found = memory_alloc(capacity * sizeof(*found));
	pthread_mutex_lock(&waiters->lock);
	struct waiter *waiter;
	LIST_FOREACH(waiter, &waiters->open, open_link) {
		if (!match(waiter, pipe))
			continue;
		if (used == capacity) {
			capacity *= 2;
			found = memory_realloc(found, capacity * sizeof(*found));
		}
		waiter_ref(waiter);
		found[used++] = waiter;
	}
	pthread_mutex_unlock(&waiters->lock);
	for (size_t i = 0; i < used; i++) {
		if (claim(found[i], reason))
			complete(found[i], false);
		waiter_unref(found[i]);
	}
	free(found);
}

static bool on_pipe(struct waiter *waiter, uint32_t pipe)
{
	return waiter->pipe == pipe;
}

static bool any(struct waiter *waiter, uint32_t pipe)
{
	(void)waiter;
	(void)pipe;
	return true;
}

void waiters_pipe_closed(struct waiters *waiters, uint32_t pipe)
{
	claim_matching(waiters, on_pipe, pipe, REASON_ABANDONED);
}

void waiters_shutdown(struct waiters *waiters)
{
	claim_matching(waiters, any, 0, REASON_SHUTDOWN);
}

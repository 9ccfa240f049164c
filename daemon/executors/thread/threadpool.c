/*
 * threadpool: a fixed set of threads and one bounded queue that takes turns
 * between users (fairq.h: round-robin between keys, FIFO within a key).
 *
 * Design
 * ------
 * One mutex guards the queue, the counters and the state of queued items; one
 * condition variable (work_ready) is where idle threads sleep. This is libuv's
 * threadpool shape and Redis bio's. A queue per thread with stealing would cut
 * contention, but the pool runs calls that block for milliseconds or more, so
 * the lock is held for a few dozen instructions per item and never contended
 * for long; the expensive part of a hand-off is waking a sleeping thread
 * (tens of microseconds on a virtual machine), which is what the wake-up
 * accounting below keeps to the minimum.
 *
 * Hot path: a submit takes the lock once, appends, and signals the condition
 * variable only when an idle thread exists that no earlier signal has already
 * claimed (`idle > wakeups`) and the queue holds more items than the threads
 * already being woken or spinning will take (`queued > wakeups + spinning`).
 * So a burst of N items
 * wakes at most min(N, idle) threads, and a submit to a pool whose threads are
 * all busy makes no system call at all. The signal is sent after the unlock,
 * so the woken thread does not immediately block on a mutex we still hold. A
 * pool thread takes the lock once per item: to account for the item it just
 * finished and to take the next one in the same critical section.
 *
 * Spinning (Go's idea, much reduced): a thread that has just finished an item
 * and finds the queue empty polls an atomic copy of the queue length for up to
 * 20 us before it sleeps, one thread at a time. One-at-a-time callers (submit,
 * wait for done, submit again) then hand over without any sleep or wake-up.
 * The cost is bounded: at most one thread spins, at most 20 us per item, and
 * an idle pool sleeps. Spinning stops after a few spins in a row found
 * nothing (on a busy machine the spinner only delays the thread it waits
 * for) and is retried once in 64 idle moments.
 *
 * `wakeups` can only under-count the signals in flight (a thread that returns
 * from the wait spuriously consumes a credit meant for another), which costs
 * at most a redundant wake-up, never a lost one. As a safety net, a thread that
 * takes an item and still sees more queued than are claimed wakes one more.
 *
 * Item states: IDLE -> QUEUED -> RUNNING -> FINISHED (-> QUEUED again on a new
 * submit), or QUEUED -> FINISHED on cancel and shutdown. Every step except
 * RUNNING -> FINISHED happens under the mutex. That step is an atomic store by
 * the pool thread just before done, without the lock, to keep the hot path at
 * one lock per item; a concurrent threadpool_cancel that still reads RUNNING
 * only raises the stop flag of an item that has just finished, which is
 * harmless because the caller keeps the item alive during the call.
 *
 * Cancelled calls: each thread has a small record (struct threadpool_thread)
 * that the item it runs points to while it runs. threadpool_cancel, under the
 * mutex, marks that record and counts the thread in held_by_cancelled; the
 * thread, under the mutex after done, uncounts it. Both steps are under the
 * mutex, so the count is exact even though the item may be freed by done.
 * A run that waits (sleep.blocking) waits on stop_changed through
 * threadpool_work_sleep_until, which cancel broadcasts, so it gives its
 * thread back at once instead of holding it for the rest of the sleep.
 *
 * Lock order: the pool has one lock, and no callback (run, done) is ever
 * called with it held, so a callback may submit, cancel or read stats freely.
 */
#include "daemon/executors/thread/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "weft/error.h"

/* How long a thread that has just finished an item polls the queue before it
 * sleeps. Long enough to cover a caller's reaction to done (20 us took the
 * one-at-a-time benchmark from ~37,000 to ~900,000 items/s on a 2-core VM,
 * 5 us did not), short enough that an idle pool stops using CPU at once. */
#define THREADPOOL_SPIN_NANOSECONDS 20000LL
/* Spins that may miss in a row before spinning stops, and how often it is
 * then tried again (once in this many idle moments). */
#define THREADPOOL_SPIN_MISSES 3
#define THREADPOOL_SPIN_PROBE 64

/* A hint to the CPU that we are busy-waiting (frees the core's resources for
 * its sibling hyper-thread, and saves power). */
#if defined(__x86_64__) || defined(__i386__)
#define threadpool_cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define threadpool_cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define threadpool_cpu_relax() ((void)0)
#endif

enum threadpool_state {
	THREADPOOL_IDLE = 0,
	THREADPOOL_QUEUED,
	THREADPOOL_RUNNING,
	THREADPOOL_FINISHED,
};

/* One per pool thread; lives as long as the pool. */
struct threadpool_thread {
	struct threadpool *pool;
	bool running_cancelled; /* under the mutex: the item it runs was cancelled */
};

struct threadpool {
	pthread_mutex_t mutex;
	/* Idle threads wait here for an item or for shutdown. */
	pthread_cond_t work_ready;
	/* Runs inside threadpool_work_sleep_until wait here (CLOCK_MONOTONIC);
	 * broadcast by a cancel of a running item. */
	pthread_cond_t stop_changed;

	/* Guarded by mutex. */
	struct fairq queue; /* queued items, in turn order */
	size_t queued;
	size_t held_by_cancelled; /* threads running an item cancelled meanwhile */
	size_t idle;    /* threads inside pthread_cond_wait */
	size_t wakeups; /* signals sent whose thread has not yet returned from the wait */
	size_t busy;
	size_t spinning;        /* threads polling queued_hint before they sleep */
	unsigned spin_misses;   /* spins in a row that ended without an item */
	unsigned spin_skips;    /* spins skipped since the last one (after misses) */
	size_t running_threads; /* started and not yet joined */
	unsigned long long completed;
	unsigned long long cancelled;
	bool stopping; /* no more submits; threads exit once the queue is empty */
	bool joined;   /* threadpool_shutdown has joined every thread */
	/* A copy of queued that spinning threads poll without the lock. */
	atomic_size_t queued_hint;

	/* Set by threadpool_create, read-only afterwards. */
	size_t capacity;
	size_t thread_count;
	pthread_t *threads;
	struct threadpool_thread *records; /* one per thread */
};

static void threadpool_lock(struct threadpool *pool)
{
	pthread_mutex_lock(&pool->mutex);
}

static void threadpool_unlock(struct threadpool *pool)
{
	pthread_mutex_unlock(&pool->mutex);
}

static struct threadpool_work *threadpool_work_of(struct fairq_item *item)
{
	return (struct threadpool_work *)((char *)item - offsetof(struct threadpool_work, item_));
}

/* Queues under the item's key. Caller holds the mutex. */
static void threadpool_enqueue_nolock(struct threadpool *pool, struct threadpool_work *work)
{
	fairq_push(&pool->queue, &work->item_, work->key_, 0);
	pool->queued++;
	atomic_store_explicit(&pool->queued_hint, pool->queued, memory_order_relaxed);
}

/* Removes a queued item from wherever it is in the queue. Caller holds the mutex. */
static void threadpool_unlink_nolock(struct threadpool *pool, struct threadpool_work *work)
{
	fairq_remove(&pool->queue, &work->item_);
	pool->queued--;
	atomic_store_explicit(&pool->queued_hint, pool->queued, memory_order_relaxed);
}

/* Whether a queued item needs a thread woken for it: an idle thread exists that
 * no signal has claimed yet, and more items wait than claimed threads will take.
 * Caller holds the mutex; when this returns true the caller must signal. */
static bool threadpool_claim_wakeup_nolock(struct threadpool *pool)
{
	if (pool->idle > pool->wakeups && pool->queued > pool->wakeups + pool->spinning) {
		pool->wakeups++;
		return true;
	}
	return false;
}

static long long threadpool_now_nanoseconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* Polls queued_hint, without the lock, for at most THREADPOOL_SPIN_NANOSECONDS;
 * returns true as soon as an item appears, false when the time is up. The
 * caller holds no lock. */
static bool threadpool_spin(struct threadpool *pool)
{
	long long until = threadpool_now_nanoseconds() + THREADPOOL_SPIN_NANOSECONDS;

	for (;;) {
		/* Reading the clock costs ~20 ns; look at the queue more often. */
		for (int i = 0; i < 64; i++) {
			/* Relaxed: the hint only says "take the lock and look"; the
			 * item itself is read under the mutex. */
			if (atomic_load_explicit(&pool->queued_hint, memory_order_relaxed) > 0)
				return true;
			threadpool_cpu_relax();
		}
		if (threadpool_now_nanoseconds() >= until)
			return false;
	}
}

/* Whether a thread that finds the queue empty should spin before it sleeps:
 * one spinner at a time, and not while spins keep coming back empty-handed.
 * On an oversubscribed machine the spinner would take the CPU from the very
 * thread it waits for (measured: one-at-a-time throughput fell from ~90,000
 * to ~30,000 items/s under load), and its spins then miss; after a few misses
 * spinning stops, and one spin in THREADPOOL_SPIN_PROBE checks whether it
 * pays again. Caller holds the mutex. */
static bool threadpool_should_spin_nolock(struct threadpool *pool)
{
	if (pool->spinning > 0)
		return false;
	if (pool->spin_misses < THREADPOOL_SPIN_MISSES)
		return true;
	if (++pool->spin_skips < THREADPOOL_SPIN_PROBE)
		return false;
	pool->spin_skips = 0;
	return true;
}

static void *threadpool_thread_main(void *argument)
{
	struct threadpool_thread *self = argument;
	struct threadpool *pool = self->pool;
	struct threadpool_work *work;
	bool wake_another, found, may_spin = false;

	threadpool_lock(pool);
	for (;;) {
		while (fairq_empty(&pool->queue) && !pool->stopping) {
			/* Spin once after finishing an item, and one thread at a
			 * time: a caller that reacts to done with a new item
			 * (one-at-a-time use) then skips a sleep and a wake-up,
			 * tens of microseconds each on a virtual machine. A
			 * submit counts the spinner as a thread on its way and
			 * does not signal for it; the spinner takes the lock and
			 * looks at the queue again before it sleeps, so an item
			 * submitted meanwhile is never left behind. */
			if (may_spin && threadpool_should_spin_nolock(pool)) {
				may_spin = false;
				pool->spinning++;
				threadpool_unlock(pool);
				found = threadpool_spin(pool);
				threadpool_lock(pool);
				pool->spinning--;
				if (found)
					pool->spin_misses = 0;
				else if (pool->spin_misses < THREADPOOL_SPIN_MISSES)
					pool->spin_misses++;
				continue;
			}
			pool->idle++;
			pthread_cond_wait(&pool->work_ready, &pool->mutex);
			pool->idle--;
			if (pool->wakeups > 0)
				pool->wakeups--;
		}
		/* Shutdown empties the queue in the same critical section that sets
		 * stopping, so an empty queue here means there is nothing left. */
		if (fairq_empty(&pool->queue))
			break;
		work = threadpool_work_of(fairq_pop(&pool->queue));
		pool->queued--;
		atomic_store_explicit(&pool->queued_hint, pool->queued, memory_order_relaxed);
		work->thread_ = self;
		atomic_store_explicit(&work->state_, THREADPOOL_RUNNING, memory_order_relaxed);
		pool->busy++;
		wake_another = threadpool_claim_wakeup_nolock(pool);
		threadpool_unlock(pool);
		if (wake_another)
			pthread_cond_signal(&pool->work_ready);

		work->run(work);
		/* Relaxed: the state is read only by threadpool_cancel and
		 * threadpool_submit, which need nothing else that run wrote; the
		 * caller learns the outcome through done and its own hand-off.
		 * After done returns the item may be freed: touch it no more. */
		atomic_store_explicit(&work->state_, THREADPOOL_FINISHED, memory_order_relaxed);
		work->done(work);

		threadpool_lock(pool);
		if (self->running_cancelled) {
			self->running_cancelled = false;
			pool->held_by_cancelled--;
		}
		pool->busy--;
		pool->completed++;
		may_spin = true;
	}
	threadpool_unlock(pool);
	return NULL;
}

/* Undoes threadpool_create's allocations; the threads must be joined. */
static void threadpool_destroy(struct threadpool *pool)
{
	pthread_cond_destroy(&pool->stop_changed);
	pthread_cond_destroy(&pool->work_ready);
	pthread_mutex_destroy(&pool->mutex);
	free(pool->records);
	free(pool->threads);
	free(pool);
}

/* Stops and joins the first `count` threads. Used by shutdown and by a create
 * that failed half way. Not with the mutex held. */
static void threadpool_join(struct threadpool *pool, size_t count)
{
	threadpool_lock(pool);
	pool->stopping = true;
	threadpool_unlock(pool);
	pthread_cond_broadcast(&pool->work_ready);
	for (size_t i = 0; i < count; i++)
		pthread_join(pool->threads[i], NULL);
	threadpool_lock(pool);
	pool->running_threads = 0;
	pool->joined = true;
	threadpool_unlock(pool);
}

int threadpool_create(size_t threads, size_t capacity, struct threadpool **pool_out)
{
	struct threadpool *pool;
	sigset_t all_signals, previous_mask;
	size_t started = 0;
	int rv;

	if (threads == 0 || threads > THREADPOOL_MAX_THREADS || capacity == 0)
		return WEFT_EINVAL;
	if ((pool = calloc(1, sizeof(*pool))) == NULL)
		return WEFT_ENOMEM;
	if ((pool->threads = calloc(threads, sizeof(*pool->threads))) == NULL ||
	    (pool->records = calloc(threads, sizeof(*pool->records))) == NULL) {
		free(pool->threads);
		free(pool);
		return WEFT_ENOMEM;
	}
	pthread_mutex_init(&pool->mutex, NULL);
	pthread_cond_init(&pool->work_ready, NULL);
	/* Deadlines of threadpool_work_sleep_until are monotonic: a change of
	 * the wall clock must not stretch or cut a sleep. */
	pthread_condattr_t monotonic;
	pthread_condattr_init(&monotonic);
	pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->stop_changed, &monotonic);
	pthread_condattr_destroy(&monotonic);
	fairq_init(&pool->queue);
	pool->capacity = capacity;
	pool->thread_count = threads;
	atomic_init(&pool->queued_hint, 0);

	/* New threads inherit the creator's signal mask: block everything while
	 * they are made so that SIGTERM and friends go to the daemon's own thread,
	 * never to a thread stuck in a blocking call. */
	sigfillset(&all_signals);
	pthread_sigmask(SIG_SETMASK, &all_signals, &previous_mask);
	rv = WEFT_OK;
	for (; started < threads; started++) {
		pool->records[started].pool = pool;
		if (pthread_create(&pool->threads[started], NULL, threadpool_thread_main,
		                   &pool->records[started]) != 0) {
			rv = WEFT_EINTERNAL;
			break;
		}
		/* Names are at most 15 bytes; THREADPOOL_MAX_THREADS keeps the number
		 * to four digits, the modulo tells the compiler so. */
		char name[16];
		snprintf(name, sizeof(name), "weft-pool-%u", (unsigned)(started % 10000));
		pthread_setname_np(pool->threads[started], name);
	}
	pthread_sigmask(SIG_SETMASK, &previous_mask, NULL);
	if (rv != WEFT_OK)
		goto fail;
	threadpool_lock(pool);
	pool->running_threads = threads;
	threadpool_unlock(pool);
	*pool_out = pool;
	return WEFT_OK;

fail:
	threadpool_join(pool, started);
	threadpool_destroy(pool);
	return rv;
}

void threadpool_work_init(struct threadpool_work *work, void (*run)(struct threadpool_work *work),
			  void (*done)(struct threadpool_work *work))
{
	work->run = run;
	work->done = done;
	work->cancelled = false;
	work->next_ = NULL;
	work->prev_ = NULL;
	atomic_init(&work->state_, THREADPOOL_IDLE);
	atomic_init(&work->stop_, false);
	work->pool_ = NULL;
	work->item_ = (struct fairq_item){0};
	work->key_ = 0;
	work->thread_ = NULL;
}

void threadpool_work_set_key(struct threadpool_work *work, uint64_t key)
{
	work->key_ = key;
}

int threadpool_submit(struct threadpool *pool, struct threadpool_work *work)
{
	int state;
	bool signal;

	if (work->run == NULL || work->done == NULL)
		return WEFT_EINVAL;
	threadpool_lock(pool);
	if (pool->stopping) {
		threadpool_unlock(pool);
		return WEFT_ESHUTDOWN;
	}
	/* Relaxed is enough: QUEUED and RUNNING are only written under this
	 * mutex, and a FINISHED written without it is only seen by the caller
	 * that resubmits from done, on the thread that wrote it. */
	state = atomic_load_explicit(&work->state_, memory_order_relaxed);
	if (state == THREADPOOL_QUEUED || state == THREADPOOL_RUNNING) {
		threadpool_unlock(pool);
		return WEFT_EINVAL;
	}
	if (pool->queued >= pool->capacity) {
		threadpool_unlock(pool);
		return WEFT_EBUSY;
	}
	work->cancelled = false;
	work->pool_ = pool;
	atomic_store_explicit(&work->stop_, false, memory_order_relaxed);
	atomic_store_explicit(&work->state_, THREADPOOL_QUEUED, memory_order_relaxed);
	threadpool_enqueue_nolock(pool, work);
	signal = threadpool_claim_wakeup_nolock(pool);
	threadpool_unlock(pool);
	if (signal)
		pthread_cond_signal(&pool->work_ready);
	return WEFT_OK;
}

bool threadpool_cancel(struct threadpool *pool, struct threadpool_work *work)
{
	int state;

	threadpool_lock(pool);
	if (work->pool_ != pool) {
		threadpool_unlock(pool);
		return false;
	}
	state = atomic_load_explicit(&work->state_, memory_order_relaxed);
	if (state == THREADPOOL_QUEUED) {
		threadpool_unlink_nolock(pool, work);
		work->cancelled = true;
		atomic_store_explicit(&work->state_, THREADPOOL_FINISHED, memory_order_relaxed);
		pool->cancelled++;
		threadpool_unlock(pool);
		work->done(work);
		return true;
	}
	if (state == THREADPOOL_RUNNING) {
		/* Relaxed: the flag carries no data with it; run only needs to
		 * notice it eventually (a sleeper re-reads it under the mutex). */
		atomic_store_explicit(&work->stop_, true, memory_order_relaxed);
		/* The thread is counted until it has finished the item (its
		 * record is cleared under this mutex after done). A record
		 * already marked is this same item cancelled twice. */
		if (work->thread_ != NULL && !work->thread_->running_cancelled) {
			work->thread_->running_cancelled = true;
			pool->held_by_cancelled++;
		}
		threadpool_unlock(pool);
		pthread_cond_broadcast(&pool->stop_changed);
		return false;
	}
	threadpool_unlock(pool);
	return false;
}

bool threadpool_work_stop_requested(const struct threadpool_work *work)
{
	return atomic_load_explicit(&work->stop_, memory_order_relaxed);
}

int threadpool_work_sleep_until(const struct threadpool_work *work, const struct timespec *deadline)
{
	struct threadpool *pool = work->pool_;
	int rv = WEFT_OK;

	if (pool == NULL) {
		/* Never submitted (a test calling run directly): nobody can
		 * cancel it. An absolute deadline makes a signal harmless. */
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL) == EINTR)
			;
		return WEFT_OK;
	}
	threadpool_lock(pool);
	/* stop_ is raised under the mutex (threadpool_cancel), so reading it
	 * here under the same mutex cannot miss the broadcast that follows. */
	while (!atomic_load_explicit(&work->stop_, memory_order_relaxed)) {
		if (pthread_cond_timedwait(&pool->stop_changed, &pool->mutex, deadline) ==
		    ETIMEDOUT)
			break;
	}
	if (atomic_load_explicit(&work->stop_, memory_order_relaxed))
		rv = WEFT_ECANCELED;
	threadpool_unlock(pool);
	return rv;
}

void threadpool_shutdown(struct threadpool *pool)
{
	struct threadpool_work *dropped, *work, *next;
	size_t threads;

	threadpool_lock(pool);
	if (pool->joined) {
		threadpool_unlock(pool);
		return;
	}
	/* Take the whole queue at once, and mark every item finished while the
	 * lock is held, so a concurrent threadpool_cancel cannot call done a
	 * second time. done is called after the unlock. */
	dropped = NULL;
	struct threadpool_work **last = &dropped;
	struct fairq_item *item;
	while ((item = fairq_pop(&pool->queue)) != NULL) {
		work = threadpool_work_of(item);
		work->cancelled = true;
		atomic_store_explicit(&work->state_, THREADPOOL_FINISHED, memory_order_relaxed);
		pool->cancelled++;
		work->next_ = NULL;
		*last = work;
		last = &work->next_;
	}
	pool->queued = 0;
	pool->stopping = true;
	threads = pool->running_threads;
	threadpool_unlock(pool);

	for (work = dropped; work != NULL; work = next) {
		next = work->next_; /* done may free the item */
		work->next_ = NULL;
		work->prev_ = NULL;
		work->done(work);
	}
	threadpool_join(pool, threads);
}

void threadpool_stats(struct threadpool *pool, struct threadpool_stats *stats)
{
	threadpool_lock(pool);
	stats->threads = pool->running_threads;
	stats->busy = pool->busy;
	stats->queued = pool->queued;
	stats->capacity = pool->capacity;
	stats->completed = pool->completed;
	stats->cancelled = pool->cancelled;
	stats->held_by_cancelled = pool->held_by_cancelled;
	stats->queued_keys = pool->queue.keys;
	threadpool_unlock(pool);
}

void threadpool_free(struct threadpool *pool)
{
	if (pool == NULL)
		return;
	threadpool_shutdown(pool);
	threadpool_destroy(pool);
}

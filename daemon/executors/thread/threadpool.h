/*
 * threadpool: weftd's executor for blocking calls (asyncio's run_in_executor
 * with a ThreadPoolExecutor). A fixed set of threads takes work items from
 * one bounded queue that takes turns between users: each item carries a key
 * (its job owner's uid, threadpool_work_set_key), items of one key are FIFO,
 * and a free thread takes the next key's oldest item in round-robin order
 * (fairq.h), so one user's thousands of queued calls delay another user's
 * call by at most one call per waiting user. The worker loops never run blocking code; they hand
 * it here and are told when it is over through the item's done callback.
 *
 * The pool knows nothing of event loops. A caller (a worker loop, the
 * coroutine runtime) embeds a struct threadpool_work in its own object, fills
 * in run and done, and submits it. run executes on a pool thread and may
 * block; done executes right after it, on the same pool thread, and is where
 * the caller posts the completion back to its own loop (push onto the loop's
 * queue, write its eventfd). done must be quick and must not block.
 *
 * Cancelling (the rule of Python's concurrent.futures):
 *   - a queued item is removed from the queue: threadpool_cancel returns true
 *     and has called done, with work->cancelled set, before it returns;
 *   - a running item cannot be interrupted: threadpool_cancel returns false,
 *     run completes, done is called as usual, and the caller drops the result
 *     (its job is already `cancelled`). threadpool_cancel also raises the
 *     item's stop flag, which a long run may poll to give up early
 *     (threadpool_work_stop_requested); nothing forces it to.
 * Either way done is called exactly once for every item that was accepted.
 *
 * Thread safety: every function may be called from any thread, except
 * threadpool_shutdown and threadpool_free, which must not run on a pool thread
 * (a thread cannot join itself).
 */
#ifndef DAEMON_THREADPOOL_H
#define DAEMON_THREADPOOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "daemon/core/fairq.h"

/* The pool; opaque. Made by threadpool_create, freed by threadpool_free. */
struct threadpool;

/*
 * One unit of work. The caller owns the memory and embeds it in its own
 * object (container_of style); the pool never allocates or frees an item.
 * The item must stay valid from threadpool_submit until its done has returned,
 * and across any threadpool_cancel call on it. It may be submitted again once
 * its done has been called. Initialise it with threadpool_work_init.
 */
struct threadpool_work {
	/* Set by the caller. run executes on a pool thread and may block. */
	void (*run)(struct threadpool_work *work);
	/* Set by the caller. Executes exactly once per accepted submit: on the pool
	 * thread right after run, or, when the item is cancelled while queued or
	 * the pool shuts down before it ran, on the thread calling
	 * threadpool_cancel or threadpool_shutdown. No pool lock is held; it may
	 * submit more work or free the item. */
	void (*done)(struct threadpool_work *work);
	/* Written by the pool before done is called and read by done: true when
	 * run never ran (cancelled while queued, or dropped by shutdown). */
	bool cancelled;

	/* Private to the pool: the fields below belong to threadpool.c. */
	/* next_/prev_: the list of items shutdown drops. State: guarded by the
	 * pool's mutex, except that the
	 * RUNNING -> FINISHED step of state is an atomic store by the pool thread
	 * (see threadpool.c). */
	struct threadpool_work *next_;
	struct threadpool_work *prev_;
	atomic_int state_;
	/* Raised by threadpool_cancel while the item runs; polled by run. */
	atomic_bool stop_;
	struct threadpool *pool_;
	/* The queue's links and the user key: guarded by the pool's mutex. */
	struct fairq_item item_;
	uint64_t key_;
	/* The thread running the item, while it runs (guarded by the mutex). */
	struct threadpool_thread *thread_;
};

/* A snapshot of the pool's counters, taken under its lock so the numbers
 * agree with one another. */
struct threadpool_stats {
	size_t threads;               /* pool threads running */
	size_t busy;                  /* threads inside run or done of an item */
	size_t queued;                /* items waiting in the queue */
	size_t capacity;              /* most items the queue holds */
	unsigned long long completed; /* items whose run and done have returned */
	unsigned long long cancelled; /* items whose done was called without run */
	/* Threads still inside run of an item that was cancelled while it ran
	 * (a call that cannot be interrupted holds its thread to the end). */
	size_t held_by_cancelled;
	size_t queued_keys;           /* users with items queued */
};

/* Largest thread count threadpool_create accepts. */
#define THREADPOOL_MAX_THREADS 1024

/*
 * Starts `threads` threads (1 to THREADPOOL_MAX_THREADS) serving a queue that
 * holds at most `capacity` items (at least 1). The threads block every
 * asynchronous signal, so the daemon's signal handling stays on its main
 * thread. Idle threads sleep on a condition variable and use no CPU.
 * Any thread. On success writes a new pool to *pool (free it with
 * threadpool_free) and returns WEFT_OK; otherwise returns WEFT_EINVAL (a
 * count out of range), WEFT_ENOMEM, or WEFT_EINTERNAL (a thread could not be
 * started), and *pool is untouched.
 */
int threadpool_create(size_t threads, size_t capacity, struct threadpool **pool);

/* Prepares an item before its first submit. Any thread; the item is the
 * caller's. */
void threadpool_work_init(struct threadpool_work *work, void (*run)(struct threadpool_work *work),
			  void (*done)(struct threadpool_work *work));

/* Sets the user key the item queues under (the job owner's uid); 0 until
 * set. Before threadpool_submit; the item is the caller's. */
void threadpool_work_set_key(struct threadpool_work *work, uint64_t key);

/*
 * Queues `work` (borrowed; see struct threadpool_work for how long it must
 * live) and wakes an idle thread if one is needed. Never blocks the caller
 * beyond the pool's short lock. Any thread, including a pool thread inside run
 * or done. Returns WEFT_OK (done will be called exactly once), WEFT_EBUSY
 * (the queue is full: nothing was queued and done will not be called),
 * WEFT_ESHUTDOWN (threadpool_shutdown has begun), or WEFT_EINVAL (run or done
 * is NULL, or the item is still queued or running).
 */
int threadpool_submit(struct threadpool *pool, struct threadpool_work *work);

/*
 * Cancels `work`, which must be an item the caller submitted to this pool
 * and that is still valid (its done has not returned, or the caller keeps it
 * alive anyway). Any thread.
 * Returns true when the item was still queued: it is removed, and done has
 * been called on this thread with work->cancelled true before the return; do
 * not hold a lock that done takes. Returns false when the item is running
 * (its stop flag is raised; run completes and done follows on the pool
 * thread with work->cancelled false: drop the result) or has finished.
 */
bool threadpool_cancel(struct threadpool *pool, struct threadpool_work *work);

/* Whether threadpool_cancel was called on this item while it ran. Called by
 * run, on the pool thread, to give up a long computation early; advisory. */
bool threadpool_work_stop_requested(const struct threadpool_work *work);

/*
 * Blocks the calling pool thread, inside run, until `deadline` (CLOCK_MONOTONIC)
 * or until threadpool_cancel is called on the item, whichever is first: the
 * way for a run that waits to give its thread back as soon as it is cancelled.
 * Returns WEFT_OK at the deadline, WEFT_ECANCELED when it was cancelled
 * (also when it already was on entry). Pool thread, in run of `work`; for an
 * item never submitted it simply sleeps to the deadline.
 */
int threadpool_work_sleep_until(const struct threadpool_work *work, const struct timespec *deadline);

/*
 * Stops the pool: new submits get WEFT_ESHUTDOWN, queued items are removed
 * and their done is called here with work->cancelled true (in FIFO order),
 * running items finish (run and done on their pool threads), and every
 * thread is joined before it returns. Blocks as long as the longest running
 * item. Idempotent. Any thread that is not a pool thread; call it once at a
 * time.
 */
void threadpool_shutdown(struct threadpool *pool);

/* Fills *stats with the counters as they are now. Any thread; takes the
 * pool's lock for a moment. */
void threadpool_stats(struct threadpool *pool, struct threadpool_stats *stats);

/* Shuts the pool down if that has not happened yet, then frees it. NULL is
 * ignored. Not on a pool thread; no other thread may use the pool after. */
void threadpool_free(struct threadpool *pool);

#endif

/*
 * slots: a counting gate with a queue of waiters, for `--procs N` (at most N
 * exec jobs run at once; the others wait `queued`, first come first served).
 * Written to be reused by named queues with a concurrency limit: waiters carry
 * a key (their owner's uid) and a priority, and the limit can change at run
 * time. Waiting keys take turns (fairq.h): a released slot goes to the next
 * user in round-robin order, so one user's 100,000 queued jobs delay another
 * user's single job by at most one grant per waiting user. A priority orders
 * only its own key's waiters (higher first, FIFO among equals); it never
 * lets one user overtake another.
 *
 * Any thread may call any function. A waiter is granted a slot in one of two
 * ways, never both:
 *   - slots_acquire returns SLOTS_ACQUIRED: the caller holds a slot now;
 *   - slots_acquire returns SLOTS_QUEUED and later the waiter's wake callback
 *     runs once: the waiter holds a slot from that moment.
 * A slot is handed from a releasing holder straight to the first waiter (the
 * count of held slots does not drop in between), so no newcomer can overtake
 * a waiter.
 *
 * The wake callback runs on the thread that released the slot (or raised the
 * limit), after the gate's lock is dropped: it must be short and must not
 * block. The usual callback posts to the owner's worker loop and wakes it;
 * the owner then starts its job there.
 */
#ifndef SLOTS_H
#define SLOTS_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/core/fairq.h"

struct slots;

/* Called once when a queued waiter is granted a slot; arg is the waiter's. */
typedef void slots_wake_fn(void *arg);

/*
 * A place in the queue, embedded in the caller's object (a job). Owned by the
 * caller; the gate links it while it is queued. Fields are private to slots
 * and protected by the gate's lock. The memory must stay valid until the
 * waiter is granted (SLOTS_ACQUIRED, or the wake callback has started) or
 * slots_cancel returned true; the gate never touches it after that (it copies
 * wake and arg before dropping its lock).
 */
struct slots_waiter {
	struct fairq_item item_; /* queue links, under the gate's lock */
	slots_wake_fn *wake_;
	void *arg_;
};

enum slots_acquire_result {
	SLOTS_ACQUIRED, /* the caller holds a slot now; wake will not be called */
	SLOTS_QUEUED,   /* the waiter is queued; wake(arg) is called when it gets one */
};

/* Makes a gate of `limit` slots (>= 1). Returns WEFT_OK and *out, a new gate
 * freed with slots_free, or WEFT_EINVAL / WEFT_ENOMEM. Any thread. */
int slots_new(unsigned limit, struct slots **out);

/* Frees a gate. No waiter may be queued and nobody may use it any more. NULL
 * is fine. */
void slots_free(struct slots *gate);

/*
 * Takes a slot now if one is free and nobody waits; otherwise queues `waiter`
 * for `key` (the owner's uid), behind every waiter of that key with the same
 * or higher priority. wake and arg are kept for the grant. waiter must not be
 * queued already. Any thread; never blocks (beyond the gate's short lock).
 */
enum slots_acquire_result slots_acquire_as(struct slots *gate, struct slots_waiter *waiter,
	uint64_t key, int64_t priority, slots_wake_fn *wake, void *arg);

/* slots_acquire_as for key 0: every caller of it shares one key, so among
 * them the order is priority, then FIFO. */
enum slots_acquire_result slots_acquire(struct slots *gate, struct slots_waiter *waiter,
	int64_t priority, slots_wake_fn *wake, void *arg);

/* Takes a slot only if one is free and nobody waits; true when taken. Any thread. */
bool slots_try_acquire(struct slots *gate);

/*
 * Gives a held slot back. When waiters are queued the slot goes to the first
 * one and its wake callback runs here, on the calling thread, after the lock
 * is dropped. Any thread. Releasing a slot that is not held is a bug (abort).
 */
void slots_release(struct slots *gate);

/*
 * Takes a queued waiter out of the queue (a cancelled queued job).
 * true: it was queued and is now out; its wake will never be called.
 * false: it was already granted: its wake callback has run or is running on
 *   another thread, and the slot is the waiter's. The caller does not release
 *   here; the code that handles the wake sees the job is cancelled and
 *   releases the slot, so there is exactly one release for every grant.
 * Any thread.
 */
bool slots_cancel(struct slots *gate, struct slots_waiter *waiter);

/* Changes the number of slots (>= 1). Raising it grants queued waiters at
 * once (their wakes run on this thread); lowering it takes effect as holders
 * release. Returns WEFT_OK or WEFT_EINVAL. Any thread. */
int slots_set_limit(struct slots *gate, unsigned limit);

/* Pauses the gate (nothing is granted: acquire always queues, a release does
 * not hand its slot on) or resumes it (waiters are granted while there is
 * room; their wakes run on this thread). Holders keep their slots. Any thread. */
void slots_set_paused(struct slots *gate, bool paused);
bool slots_paused(struct slots *gate);

/* Snapshot for stats; may be stale by the time it is read. Any thread. */
unsigned slots_held(struct slots *gate);
unsigned slots_queued(struct slots *gate);
unsigned slots_limit(struct slots *gate);
/* Keys (users) with waiters queued now. */
unsigned slots_queued_keys(struct slots *gate);

#endif

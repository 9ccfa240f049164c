/*
 * slots: a counting gate with a queue that takes turns between users (see
 * slots.h).
 *
 * Locking: one mutex per gate guards every field of the gate and the links
 * and state of every queued waiter. It is a leaf lock: nothing else is locked
 * while it is held and no callback runs under it, so it cannot take part in a
 * lock-order cycle; callers may hold their own locks when they call in. No
 * atomics: the counts are read under the same mutex (the stats getters take
 * it too), and the mutex's acquire/release ordering is what makes a grant
 * visible to the thread that runs the wake.
 *
 * Hand-off: a release with waiters queued does not lower `held`; the slot
 * moves to the first waiter under the lock. Its wake callback and argument
 * are copied to the stack before the lock is dropped, because once the
 * waiter is marked granted its owner may free it (after a slots_cancel that
 * returned false).
 *
 * The queue is a fairq (fairq.h): round-robin between keys, priority then
 * FIFO within a key. Queueing costs O(users waiting) to find the key, plus a
 * walk over that key's lower priorities; a grant and a cancel are O(1).
 */
#include "daemon/core/slots.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft/error.h"

/* Grants handed out per lock hold in slots_set_limit before the wakes run. */
#define WAKE_BATCH 16

struct slots {
	pthread_mutex_t lock;
	unsigned limit;             /* under lock */
	unsigned held;              /* under lock */
	bool paused;                /* under lock: grant nothing (a paused queue) */
	struct fairq queue;         /* under lock: the waiters, in turn order */
};

struct pending_wake {
	slots_wake_fn *wake;
	void *arg;
};

int slots_new(unsigned limit, struct slots **out)
{
	struct slots *gate;

	if (limit == 0)
		return WEFT_EINVAL;
	gate = calloc(1, sizeof(*gate));
	if (gate == NULL)
		return WEFT_ENOMEM;
	if (pthread_mutex_init(&gate->lock, NULL) != 0) {
		free(gate);
		return WEFT_ENOMEM;
	}
	gate->limit = limit;
	fairq_init(&gate->queue);
	*out = gate;
	return WEFT_OK;
}

void slots_free(struct slots *gate)
{
	if (gate == NULL)
		return;
	if (!fairq_empty(&gate->queue)) {
		fprintf(stderr, "slots: freed with %zu waiter(s) queued\n", gate->queue.count);
		abort();
	}
	pthread_mutex_destroy(&gate->lock);
	free(gate);
}

static struct slots_waiter *waiter_of(struct fairq_item *item)
{
	return (struct slots_waiter *)((char *)item - offsetof(struct slots_waiter, item_));
}

/* Takes the waiter whose turn it is out, counts its slot as held and returns
 * its wake. */
static struct pending_wake grant_first_nolock(struct slots *gate)
{
	struct slots_waiter *first = waiter_of(fairq_pop(&gate->queue));
	struct pending_wake pending = {first->wake_, first->arg_};

	gate->held++;
	return pending;
}

enum slots_acquire_result slots_acquire_as(struct slots *gate, struct slots_waiter *waiter,
	uint64_t key, int64_t priority, slots_wake_fn *wake, void *arg)
{
	pthread_mutex_lock(&gate->lock);
	if (!gate->paused && fairq_empty(&gate->queue) && gate->held < gate->limit) {
		gate->held++;
		pthread_mutex_unlock(&gate->lock);
		return SLOTS_ACQUIRED;
	}
	waiter->wake_ = wake;
	waiter->arg_ = arg;
	fairq_push(&gate->queue, &waiter->item_, key, priority);
	pthread_mutex_unlock(&gate->lock);
	return SLOTS_QUEUED;
}

enum slots_acquire_result slots_acquire(struct slots *gate, struct slots_waiter *waiter,
	int64_t priority, slots_wake_fn *wake, void *arg)
{
	return slots_acquire_as(gate, waiter, 0, priority, wake, arg);
}

bool slots_try_acquire(struct slots *gate)
{
	bool taken = false;

	pthread_mutex_lock(&gate->lock);
	if (fairq_empty(&gate->queue) && gate->held < gate->limit) {
		gate->held++;
		taken = true;
	}
	pthread_mutex_unlock(&gate->lock);
	return taken;
}

void slots_release(struct slots *gate)
{
	struct pending_wake pending = {NULL, NULL};

	pthread_mutex_lock(&gate->lock);
	if (gate->held == 0) {
		pthread_mutex_unlock(&gate->lock);
		fprintf(stderr, "slots: release without a held slot\n");
		abort();
	}
	gate->held--;
	/* After a lowered limit, held may still be above it: then nobody is granted. */
	if (!gate->paused && !fairq_empty(&gate->queue) && gate->held < gate->limit)
		pending = grant_first_nolock(gate);
	pthread_mutex_unlock(&gate->lock);
	if (pending.wake != NULL)
		pending.wake(pending.arg);
}

bool slots_cancel(struct slots *gate, struct slots_waiter *waiter)
{
	bool was_queued;

	pthread_mutex_lock(&gate->lock);
	was_queued = fairq_remove(&gate->queue, &waiter->item_);
	pthread_mutex_unlock(&gate->lock);
	return was_queued;
}

/* Grants waiters while there is room; entered with the lock held, returns
 * without it. Wakes run without the lock. */
static void grant_while_room_unlock(struct slots *gate)
{
	struct pending_wake pending[WAKE_BATCH];
	size_t count;

	for (;;) {
		count = 0;
		while (count < WAKE_BATCH && !gate->paused && !fairq_empty(&gate->queue) &&
		       gate->held < gate->limit)
			pending[count++] = grant_first_nolock(gate);
		pthread_mutex_unlock(&gate->lock);
		for (size_t i = 0; i < count; i++)
			pending[i].wake(pending[i].arg);
		if (count < WAKE_BATCH)
			return;
		pthread_mutex_lock(&gate->lock);
	}
}

int slots_set_limit(struct slots *gate, unsigned limit)
{
	if (limit == 0)
		return WEFT_EINVAL;
	pthread_mutex_lock(&gate->lock);
	gate->limit = limit;
	grant_while_room_unlock(gate);
	return WEFT_OK;
}

void slots_set_paused(struct slots *gate, bool paused)
{
	pthread_mutex_lock(&gate->lock);
	gate->paused = paused;
	grant_while_room_unlock(gate);
}

bool slots_paused(struct slots *gate)
{
	pthread_mutex_lock(&gate->lock);
	bool paused = gate->paused;
	pthread_mutex_unlock(&gate->lock);
	return paused;
}

static unsigned read_locked(struct slots *gate, const unsigned *field)
{
	unsigned value;

	pthread_mutex_lock(&gate->lock);
	value = *field;
	pthread_mutex_unlock(&gate->lock);
	return value;
}

unsigned slots_held(struct slots *gate)
{
	return read_locked(gate, &gate->held);
}

unsigned slots_queued(struct slots *gate)
{
	pthread_mutex_lock(&gate->lock);
	unsigned queued = (unsigned)gate->queue.count;
	pthread_mutex_unlock(&gate->lock);
	return queued;
}

unsigned slots_queued_keys(struct slots *gate)
{
	pthread_mutex_lock(&gate->lock);
	unsigned keys = (unsigned)gate->queue.keys;
	pthread_mutex_unlock(&gate->lock);
	return keys;
}

unsigned slots_limit(struct slots *gate)
{
	return read_locked(gate, &gate->limit);
}

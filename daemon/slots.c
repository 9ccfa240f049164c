/*
 * slots: a counting gate with a priority-then-FIFO queue (see slots.h).
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
 * The queue is a doubly linked list sorted by priority (high first), FIFO
 * among equals. Insertion walks from the tail, so with one priority (the
 * --procs gate) it is O(1); many distinct priorities make it O(queued).
 */
#include "daemon/slots.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft/error.h"

enum {
	SLOTS_WAITER_IDLE = 0, /* never queued, or granted, or cancelled */
	SLOTS_WAITER_QUEUED,
};

/* Grants handed out per lock hold in slots_set_limit before the wakes run. */
#define WAKE_BATCH 16

struct slots {
	pthread_mutex_t lock;
	unsigned limit;             /* under lock */
	unsigned held;              /* under lock */
	unsigned queued;            /* under lock */
	bool paused;                /* under lock: grant nothing (a paused queue) */
	struct slots_waiter *head;  /* under lock; first to be granted */
	struct slots_waiter *tail;  /* under lock */
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
	*out = gate;
	return WEFT_OK;
}

void slots_free(struct slots *gate)
{
	if (gate == NULL)
		return;
	if (gate->head != NULL) {
		fprintf(stderr, "slots: freed with %u waiter(s) queued\n", gate->queued);
		abort();
	}
	pthread_mutex_destroy(&gate->lock);
	free(gate);
}

static void unlink_nolock(struct slots *gate, struct slots_waiter *waiter)
{
	if (waiter->prev_ != NULL)
		waiter->prev_->next_ = waiter->next_;
	else
		gate->head = waiter->next_;
	if (waiter->next_ != NULL)
		waiter->next_->prev_ = waiter->prev_;
	else
		gate->tail = waiter->prev_;
	waiter->next_ = waiter->prev_ = NULL;
	waiter->state_ = SLOTS_WAITER_IDLE;
	gate->queued--;
}

/* Takes the first waiter out, counts its slot as held and returns its wake. */
static struct pending_wake grant_first_nolock(struct slots *gate)
{
	struct slots_waiter *first = gate->head;
	struct pending_wake pending = {first->wake_, first->arg_};

	unlink_nolock(gate, first);
	gate->held++;
	return pending;
}

enum slots_acquire_result slots_acquire(struct slots *gate, struct slots_waiter *waiter,
	int64_t priority, slots_wake_fn *wake, void *arg)
{
	struct slots_waiter *after;

	pthread_mutex_lock(&gate->lock);
	if (!gate->paused && gate->head == NULL && gate->held < gate->limit) {
		gate->held++;
		pthread_mutex_unlock(&gate->lock);
		return SLOTS_ACQUIRED;
	}
	waiter->wake_ = wake;
	waiter->arg_ = arg;
	waiter->priority_ = priority;
	waiter->state_ = SLOTS_WAITER_QUEUED;
	/* Behind every waiter of the same or higher priority. */
	after = gate->tail;
	while (after != NULL && after->priority_ < priority)
		after = after->prev_;
	waiter->prev_ = after;
	waiter->next_ = after != NULL ? after->next_ : gate->head;
	if (waiter->next_ != NULL)
		waiter->next_->prev_ = waiter;
	else
		gate->tail = waiter;
	if (after != NULL)
		after->next_ = waiter;
	else
		gate->head = waiter;
	gate->queued++;
	pthread_mutex_unlock(&gate->lock);
	return SLOTS_QUEUED;
}

bool slots_try_acquire(struct slots *gate)
{
	bool taken = false;

	pthread_mutex_lock(&gate->lock);
	if (gate->head == NULL && gate->held < gate->limit) {
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
	if (!gate->paused && gate->head != NULL && gate->held < gate->limit)
		pending = grant_first_nolock(gate);
	pthread_mutex_unlock(&gate->lock);
	if (pending.wake != NULL)
		pending.wake(pending.arg);
}

bool slots_cancel(struct slots *gate, struct slots_waiter *waiter)
{
	bool was_queued;

	pthread_mutex_lock(&gate->lock);
	was_queued = waiter->state_ == SLOTS_WAITER_QUEUED;
	if (was_queued)
		unlink_nolock(gate, waiter);
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
		while (count < WAKE_BATCH && !gate->paused && gate->head != NULL &&
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
	return read_locked(gate, &gate->queued);
}

unsigned slots_limit(struct slots *gate)
{
	return read_locked(gate, &gate->limit);
}

/*
 * runqueue: a worker's run queue, a fixed-size Chase-Lev deque.
 *
 * The owner pushes and pops at the bottom (newest first: fork-join work runs depth-first, so a
 * worker keeps few coroutines suspended and their stacks hot); thieves take from the top (the
 * oldest items: the biggest pieces of work). The choice over Go's and Tokio's FIFO ring: with
 * stackful tasks every started-and-blocked task pins a stack, and a FIFO order starts many of
 * them (fork-join fib(27) kept ~40,000 stacks alive FIFO). Fairness comes from elsewhere: the
 * global queue is checked at a fixed interval, yielding tasks go to the global queue, and every
 * RUNQUEUE_FAIR_INTERVAL-th local pick takes the oldest item (runtime.c).
 *
 * Fixed capacity, no growth: a full deque moves its older half to the global queue (as Go and
 * Tokio do), so there is never an array to reclaim. Algorithm and memory orders are those of the
 * C11 version by Le, Pop, Cohen and Zappa Nardelli (PPoPP 2013), with signed 64-bit indices (an
 * unsigned bottom would wrap on a take from an empty deque) and atomic slots:
 *  - push: write the slot, release fence, then store bottom (relaxed): a thief that sees the new
 *    bottom sees the slot.
 *  - take (owner): bottom-1 is stored, then a seq_cst fence, then top is read; the last item is
 *    contended with thieves through a seq_cst CAS on top.
 *  - steal: top is read (acquire), seq_cst fence, bottom read (acquire), slot read, then a
 *    seq_cst CAS on top claims the item. The two seq_cst fences order take's bottom store before
 *    its top load against steal's top load before its bottom load, so both cannot take the last
 *    item.
 * Thieves take one item at a time: taking several with one CAS races with the owner's CAS-free
 * takes; batches move between workers through the global queue instead.
 */
#ifndef WEFT_RUNTIME_RUNQUEUE_H
#define WEFT_RUNTIME_RUNQUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define RUNQUEUE_CAPACITY 256

/* Owned by a worker; embedded in it. Items are borrowed pointers the caller manages. */
typedef struct runqueue {
	_Alignas(64) _Atomic int64_t top;    /* advanced by thieves, and by the owner's last take */
	_Alignas(64) _Atomic int64_t bottom; /* written by the owner only */
	_Atomic(void *) slots[RUNQUEUE_CAPACITY];
} runqueue;

void runqueue_init(runqueue *queue);

/* Adds at the bottom. False when full (nothing changed). Owner thread only. */
bool runqueue_push(runqueue *queue, void *item);

/*
 * When full: takes the older half (RUNQUEUE_CAPACITY / 2 items, oldest first) into `batch`
 * (which must hold that many) and returns how many were taken, 0 if thieves made room meanwhile
 * (push again). Owner thread only.
 */
int runqueue_take_half(runqueue *queue, void **batch);

/* Takes the newest item, or NULL when empty. Owner thread only. */
void *runqueue_pop(runqueue *queue);

/* Takes the oldest item (as a thief would), or NULL when empty or lost to a thief. Any thread. */
void *runqueue_steal(runqueue *victim);

/* Items in the queue at some recent moment. Any thread (statistics, parking decisions). */
uint32_t runqueue_length(runqueue *queue);

#endif

/*
 * fairq: a queue that takes turns between users. Items carry a key (the
 * owner's uid) and a priority. Each key has its own queue, ordered by
 * priority (higher first) and FIFO among equals; the keys with queued items
 * form a ring that is served round-robin: every pop takes the first item of
 * the key whose turn it is and moves the turn on to the next key. So a key
 * with one item waits behind at most one item of every other key, however
 * many those keys have queued, and a priority orders only its own key's
 * items: it never lets one user overtake another.
 *
 * A key that arrives joins the ring just before the key whose turn it is (the
 * end of the current round).
 *
 * No allocation: the first item of each key stands for its key in the ring.
 * Costs: pop and remove are O(1); push is O(1) for a key's equal priorities
 * (it walks back from the key's tail) plus a walk over the ring to find the
 * key, O(keys with queued items) -- the number of users waiting, which is
 * bounded by the machine's users, not by what they submit.
 *
 * Not thread-safe: the owner (slots.c, threadpool.c) calls it under its lock.
 */
#ifndef FAIRQ_H
#define FAIRQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An item, embedded in the caller's object, which owns the memory; the
 * queue links it while it is queued. Fields are private to fairq. */
struct fairq_item {
	struct fairq_item *next_;      /* the key's queue: circular, head first */
	struct fairq_item *prev_;
	struct fairq_item *ring_next_; /* on a key's head only: the ring of keys */
	struct fairq_item *ring_prev_;
	uint64_t key_;
	int64_t priority_;
	bool queued_;
	bool head_; /* the first item of its key, standing in the ring */
};

struct fairq {
	struct fairq_item *turn; /* the head of the key served next; NULL when empty */
	size_t count;            /* items queued */
	size_t keys;             /* keys with items queued */
};

/* An empty queue. */
void fairq_init(struct fairq *queue);

/* Queues item (not queued already) for key, behind that key's items of the
 * same or higher priority. */
void fairq_push(struct fairq *queue, struct fairq_item *item, uint64_t key, int64_t priority);

/* Takes the item whose turn it is and passes the turn on; NULL when empty. */
struct fairq_item *fairq_pop(struct fairq *queue);

/* Takes item out wherever it is. false when it was not queued. */
bool fairq_remove(struct fairq *queue, struct fairq_item *item);

/* Whether item is queued now. */
bool fairq_queued(const struct fairq_item *item);

static inline bool fairq_empty(const struct fairq *queue)
{
	return queue->count == 0;
}

#endif

/*
 * fairq: round-robin between keys, priority-then-FIFO within a key (see
 * fairq.h).
 *
 * Layout: each key's items form a circular doubly linked list whose head (the
 * next to go for that key) is flagged head_ and linked into the ring of keys;
 * the key's tail is head->prev_. When a head leaves, the next item of its key
 * takes its place in the ring (ring links are copied), so the ring never
 * needs memory of its own.
 */
#include "daemon/core/fairq.h"

void fairq_init(struct fairq *queue)
{
	queue->turn = NULL;
	queue->count = 0;
	queue->keys = 0;
}

bool fairq_queued(const struct fairq_item *item)
{
	return item->queued_;
}

/* Puts `to` into the ring where `from` stands, and takes `from` out. */
static void ring_replace(struct fairq *queue, struct fairq_item *from, struct fairq_item *to)
{
	if (from->ring_next_ == from) {
		to->ring_next_ = to->ring_prev_ = to;
	} else {
		to->ring_next_ = from->ring_next_;
		to->ring_prev_ = from->ring_prev_;
		to->ring_next_->ring_prev_ = to;
		to->ring_prev_->ring_next_ = to;
	}
	to->head_ = true;
	from->head_ = false;
	from->ring_next_ = from->ring_prev_ = NULL;
	if (queue->turn == from)
		queue->turn = to;
}

/* Takes a key's last item's head out of the ring (its key is now empty). */
static void ring_remove(struct fairq *queue, struct fairq_item *head)
{
	if (head->ring_next_ == head) {
		queue->turn = NULL;
	} else {
		head->ring_prev_->ring_next_ = head->ring_next_;
		head->ring_next_->ring_prev_ = head->ring_prev_;
		if (queue->turn == head)
			queue->turn = head->ring_next_;
	}
	head->ring_next_ = head->ring_prev_ = NULL;
	head->head_ = false;
	queue->keys--;
}

static struct fairq_item *find_key(const struct fairq *queue, uint64_t key)
{
	struct fairq_item *head = queue->turn;

	if (head == NULL)
		return NULL;
	do {
		if (head->key_ == key)
			return head;
		head = head->ring_next_;
	} while (head != queue->turn);
	return NULL;
}

void fairq_push(struct fairq *queue, struct fairq_item *item, uint64_t key, int64_t priority)
{
	struct fairq_item *head = find_key(queue, key);
	struct fairq_item *after;

	item->key_ = key;
	item->priority_ = priority;
	item->queued_ = true;
	item->head_ = false;
	item->ring_next_ = item->ring_prev_ = NULL;
	queue->count++;
	if (head == NULL) {
		/* A new key: a queue of one, at the end of the current round. */
		item->next_ = item->prev_ = item;
		item->head_ = true;
		if (queue->turn == NULL) {
			item->ring_next_ = item->ring_prev_ = item;
			queue->turn = item;
		} else {
			item->ring_next_ = queue->turn;
			item->ring_prev_ = queue->turn->ring_prev_;
			item->ring_prev_->ring_next_ = item;
			queue->turn->ring_prev_ = item;
		}
		queue->keys++;
		return;
	}
	/* Behind the last item of the same or higher priority. */
	after = head->prev_;
	while (after->priority_ < priority && after != head)
		after = after->prev_;
	if (after->priority_ < priority) {
		/* Higher than every item of its key: it becomes the key's head. */
		item->next_ = head;
		item->prev_ = head->prev_;
		head->prev_->next_ = item;
		head->prev_ = item;
		ring_replace(queue, head, item);
		return;
	}
	item->prev_ = after;
	item->next_ = after->next_;
	after->next_->prev_ = item;
	after->next_ = item;
}

bool fairq_remove(struct fairq *queue, struct fairq_item *item)
{
	if (!item->queued_)
		return false;
	if (item->head_) {
		if (item->next_ == item)
			ring_remove(queue, item);
		else
			ring_replace(queue, item, item->next_);
	}
	item->prev_->next_ = item->next_;
	item->next_->prev_ = item->prev_;
	item->next_ = item->prev_ = NULL;
	item->queued_ = false;
	queue->count--;
	return true;
}

struct fairq_item *fairq_pop(struct fairq *queue)
{
	struct fairq_item *item = queue->turn;
	struct fairq_item *next_turn;

	if (item == NULL)
		return NULL;
	/* The turn goes to the key after this one, whether or not this key
	 * still has items (its next item takes its place in the ring). */
	next_turn = item->ring_next_ == item ? NULL : item->ring_next_;
	fairq_remove(queue, item);
	if (next_turn != NULL)
		queue->turn = next_turn;
	return item;
}

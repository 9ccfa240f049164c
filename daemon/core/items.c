/*
 * Items; see items.h.
 *
 * The held items are a ring (a growable array used as a deque): `first` is
 * the index of the oldest held, `length` how many are held, so the next item
 * yielded gets index first + length. Acknowledging pops from the head.
 *
 * Accounting: an item costs its compact JSON size plus ITEM_OVERHEAD (the
 * json_t and the ring slot), counted in `bytes` and in the owner's
 * QUOTA_ITEM_BYTES from its push to its drop.
 */
#include "daemon/core/items.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/base/watch.h"
#include "daemon/core/quota.h"

#define ITEM_OVERHEAD 64

struct held {
	json_t *value; /* owned */
	size_t bytes;  /* what it is charged */
};

struct items {
	pthread_mutex_t lock; /* guards every field below but the immutable two */
	uid_t owner;          /* immutable */
	unsigned buffer;      /* immutable; 0: no count limit */
	struct held *ring;
	size_t capacity;      /* a power of two, or 0 */
	size_t head;          /* ring slot of index `first` */
	size_t length;
	uint64_t first;
	size_t bytes;
	uint64_t pauses;
	bool closed;
	struct watch *space;  /* the paused producer's, or NULL */
	struct watch_list watches;
};

/* Relaxed: lone values written at start-up, before any job runs. */
static atomic_size_t job_budget = 4 * 1024 * 1024;
static atomic_size_t item_budget = 1024 * 1024;

void items_configure(size_t job_bytes, size_t item_bytes)
{
	atomic_store_explicit(&job_budget, job_bytes, memory_order_relaxed);
	atomic_store_explicit(&item_budget, item_bytes, memory_order_relaxed);
}

size_t items_item_limit(void)
{
	return atomic_load_explicit(&item_budget, memory_order_relaxed);
}

struct items *items_new(uid_t owner, unsigned buffer)
{
	struct items *items = memory_zalloc(sizeof(*items));
	pthread_mutex_init(&items->lock, NULL);
	items->owner = owner;
	items->buffer = buffer;
	return items;
}

void items_free(struct items *items)
{
	if (items == NULL)
		return;
	for (size_t i = 0; i < items->length; i++)
		json_decref(items->ring[(items->head + i) & (items->capacity - 1)].value);
	if (items->bytes > 0)
		quota_give(QUOTA_ITEM_BYTES, items->owner, items->bytes);
	free(items->ring);
	pthread_mutex_destroy(&items->lock);
	free(items);
}

/* Whether the producer must wait before adding `bytes`. Lock held. */
static bool full_locked(const struct items *items, size_t bytes)
{
	if (items->buffer > 0 && items->length >= items->buffer)
		return true;
	/* One item always fits, so a budget smaller than an item cannot stall. */
	return items->length > 0 &&
	       items->bytes + bytes > atomic_load_explicit(&job_budget, memory_order_relaxed);
}

static void grow_locked(struct items *items)
{
	size_t capacity = items->capacity == 0 ? 16 : items->capacity * 2;
	struct held *ring = memory_alloc(capacity * sizeof(*ring));
	for (size_t i = 0; i < items->length; i++)
		ring[i] = items->ring[(items->head + i) & (items->capacity - 1)];
	free(items->ring);
	items->ring = ring;
	items->capacity = capacity;
	items->head = 0;
}

/* Whether a reader's watch is satisfied: its item is there, or none will come. Lock held. */
static bool reader_ready(const struct watch *watch, const void *context)
{
	const struct items *items = context;
	return items->closed || watch->key < items->first + items->length;
}

/* Detaches the watches satisfied now into *ready, which the caller notifies
 * after unlocking (watch_notify_all). Lock held. */
static void take_ready_locked(struct items *items, struct watch_list *ready)
{
	watch_take(&items->watches, reader_ready, items, ready);
}

int items_push(struct items *items, json_t *item, struct watch *space, bool *paused,
               json_t **back, struct problem *problem)
{
	*paused = false;
	size_t size = json_dumpb(item, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
	size_t limit = atomic_load_explicit(&item_budget, memory_order_relaxed);
	if (size == 0 || size > limit) {
		json_decref(item);
		return problem_set(problem, WEFT_ETOOLARGE, NULL,
		                   "an item of %zu bytes is larger than the %zu bytes one item may be "
		                   "(--max-item-bytes)",
		                   size, limit);
	}
	size_t bytes = size + ITEM_OVERHEAD;
	pthread_mutex_lock(&items->lock);
	if (items->closed) {
		pthread_mutex_unlock(&items->lock);
		json_decref(item);
		return problem_set(problem, WEFT_ECANCELED, NULL,
		                   "the job has finished: it yields no more items");
	}
	if (full_locked(items, bytes)) {
		items->space = space;
		space->linked = true;
		items->pauses++;
		pthread_mutex_unlock(&items->lock);
		*paused = true;
		*back = item;
		return WEFT_OK;
	}
	int rv = quota_take(QUOTA_ITEM_BYTES, items->owner, bytes, problem);
	if (rv != WEFT_OK) {
		pthread_mutex_unlock(&items->lock);
		json_decref(item);
		return rv;
	}
	if (items->length == items->capacity)
		grow_locked(items);
	items->ring[(items->head + items->length) & (items->capacity - 1)] =
		(struct held){.value = item, .bytes = bytes};
	items->length++;
	items->bytes += bytes;
	struct watch_list ready = LIST_HEAD_INITIALIZER(ready);
	take_ready_locked(items, &ready);
	pthread_mutex_unlock(&items->lock);
	watch_notify_all(&ready);
	return WEFT_OK;
}

bool items_forget_space(struct items *items, struct watch *space)
{
	pthread_mutex_lock(&items->lock);
	bool removed = items->space == space;
	if (removed) {
		items->space = NULL;
		space->linked = false;
	}
	pthread_mutex_unlock(&items->lock);
	return removed;
}

/* Takes the paused producer's watch, to notify once the lock is released. Lock held. */
static struct watch *take_space_locked(struct items *items)
{
	struct watch *space = items->space;
	items->space = NULL;
	if (space != NULL)
		space->linked = false;
	return space;
}

void items_close(struct items *items)
{
	pthread_mutex_lock(&items->lock);
	items->closed = true;
	struct watch *space = take_space_locked(items);
	struct watch_list ready = LIST_HEAD_INITIALIZER(ready);
	take_ready_locked(items, &ready);
	pthread_mutex_unlock(&items->lock);
	if (space != NULL)
		space->notify(space);
	watch_notify_all(&ready);
}

enum items_read items_read(struct items *items, uint64_t index, size_t max, size_t max_bytes,
                           json_t **out, uint64_t *count, uint64_t *first)
{
	size_t freed = 0;
	struct watch *space = NULL;
	enum items_read result;
	pthread_mutex_lock(&items->lock);
	while (items->length > 0 && items->first < index) {
		struct held *held = &items->ring[items->head];
		json_decref(held->value);
		freed += held->bytes;
		items->bytes -= held->bytes;
		items->head = (items->head + 1) & (items->capacity - 1);
		items->length--;
		items->first++;
	}
	if (freed > 0 && items->space != NULL && !full_locked(items, ITEM_OVERHEAD))
		space = take_space_locked(items);
	uint64_t total = items->first + items->length;
	if (index < items->first) {
		result = ITEMS_READ_GONE;
	} else if (index >= total) {
		result = items->closed ? ITEMS_READ_END : ITEMS_READ_NOT_YET;
	} else {
		json_t *array = json_array();
		size_t used = 0;
		for (uint64_t i = index; i < total && json_array_size(array) < max; i++) {
			const struct held *held =
				&items->ring[(items->head + (size_t)(i - items->first)) &
			                     (items->capacity - 1)];
			if (json_array_size(array) > 0 && used + held->bytes > max_bytes)
				break;
			used += held->bytes;
			json_array_append(array, held->value);
		}
		*out = array;
		result = ITEMS_READ_ITEMS;
	}
	*count = total;
	*first = items->first;
	pthread_mutex_unlock(&items->lock);
	if (freed > 0)
		quota_give(QUOTA_ITEM_BYTES, items->owner, freed);
	if (space != NULL)
		space->notify(space);
	return result;
}

bool items_watch(struct items *items, struct watch *watch)
{
	pthread_mutex_lock(&items->lock);
	bool wait = !items->closed && watch->key >= items->first + items->length;
	if (wait)
		watch_add(&items->watches, watch);
	pthread_mutex_unlock(&items->lock);
	return wait;
}

bool items_unwatch(struct items *items, struct watch *watch)
{
	pthread_mutex_lock(&items->lock);
	bool removed = watch->linked;
	if (removed)
		watch_remove(watch);
	pthread_mutex_unlock(&items->lock);
	return removed;
}

void items_stats(struct items *items, struct items_stats *stats)
{
	pthread_mutex_lock(&items->lock);
	stats->count = items->first + items->length;
	stats->first = items->first;
	stats->held = items->length;
	stats->bytes = items->bytes;
	stats->pauses = items->pauses;
	stats->buffer = items->buffer;
	stats->closed = items->closed;
	pthread_mutex_unlock(&items->lock);
}

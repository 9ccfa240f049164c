/*
 * items: the items a job yields before it finishes (a generator), kept in
 * order for the one reader that takes them with `next` (PROTOCOL.md).
 *
 * Reading item k acknowledges every item below k: those are dropped, so what
 * a job holds is only what its reader has not taken yet. The producer is
 * paused (backpressure) while it is `buffer` items ahead of the reader (when
 * the job set a buffer) or while its unread items hold more than the
 * per-job byte budget (items_configure); each held byte also counts against
 * the owner's QUOTA_ITEM_BYTES (quota.h), and a push past that share fails.
 *
 * The module knows no job: the job table owns one items object per job that
 * yields or is read (jobs.h, jobs_items) and closes it when the job finishes.
 *
 * Threads: any thread. One mutex per object guards everything in it; it is a
 * leaf lock but for quota's (taken inside it), and no callback runs while it
 * is held.
 */
#ifndef ITEMS_H
#define ITEMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct items;
struct problem;
struct watch;

/* The budgets, for every object: bytes of unread items one job may hold
 * (the producer pauses beyond it) and the largest one item may be. Main
 * thread, before any job yields. */
void items_configure(size_t job_bytes, size_t item_bytes);
/* The largest one item may be (its compact JSON), as configured. Any thread. */
size_t items_item_limit(void);

/* A new, open, empty stream for a job of owner uid; buffer 0: no count limit. */
struct items *items_new(uid_t owner, unsigned buffer);
/* Frees it and gives back the bytes it still holds. Nobody may use it any more. */
void items_free(struct items *items);

/*
 * Appends item (stolen, even on failure). Returns WEFT_OK with *paused false
 * when it was appended; with *paused true when it was not because the stream
 * is full: then `space` is registered, and notified (once, no lock held)
 * when the reader made room or the stream closed; the caller pushes again
 * after that (the item is given back in *back, so the caller need not
 * rebuild it). One producer at a time. Errors: WEFT_ECANCELED (closed: the
 * job finished), WEFT_ETOOLARGE (item larger than the per-item budget),
 * WEFT_EBUSY (the owner's QUOTA_ITEM_BYTES share is used up); the problem is
 * filled.
 */
int items_push(struct items *items, json_t *item, struct watch *space, bool *paused,
               json_t **back, struct problem *problem);
/* The producer stopped waiting (it was cancelled). true when `space` was
 * removed before it was notified. */
bool items_forget_space(struct items *items, struct watch *space);

/* No item will come any more (the job finished); wakes the producer and the readers. */
void items_close(struct items *items);

enum items_read {
	ITEMS_READ_ITEMS,   /* *out holds 1 or more items from index */
	ITEMS_READ_NOT_YET, /* item `index` does not exist yet, and the stream is open */
	ITEMS_READ_END,     /* closed, and index >= count */
	ITEMS_READ_GONE,    /* index is below the first item held: it was acknowledged */
};

/*
 * Acknowledges every item below index (dropping them, waking a paused
 * producer), then reads up to max items from index whose encoded sizes add up
 * to at most max_bytes (always at least one). *out: a new array reference
 * (ITEMS_READ_ITEMS only). *count: items yielded so far; *first: index of the
 * first item held.
 */
enum items_read items_read(struct items *items, uint64_t index, size_t max, size_t max_bytes,
                           json_t **out, uint64_t *count, uint64_t *first);

/* Registers watch (watch->key: the index wanted) to be notified when that item
 * exists or the stream closes. Returns false, not registering, when that is so
 * already. */
bool items_watch(struct items *items, struct watch *watch);
/* true when removed before it was notified. */
bool items_unwatch(struct items *items, struct watch *watch);

struct items_stats {
	uint64_t count;   /* yielded */
	uint64_t first;   /* index of the first held */
	uint64_t held;    /* items held (unread) */
	uint64_t bytes;   /* their bytes */
	uint64_t pauses;  /* times the producer was paused */
	unsigned buffer;
	bool closed;
};
void items_stats(struct items *items, struct items_stats *stats);

#endif

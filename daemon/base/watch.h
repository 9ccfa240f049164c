/*
 * A registration of someone waiting for something to change (a long poll
 * waiting for a job's next item, or for the next event), embedded in the
 * waiter, which owns it. The module it is registered with keeps its watches
 * in a struct watch_list, guarded by that module's lock, and calls notify
 * once, with no lock held, when the change came — unless the watch was
 * removed first. key and data say what the watcher waits for, in the
 * module's terms (an item's index; an event filter); both are set before the
 * watch is registered and never changed while it is.
 */
#ifndef WATCH_H
#define WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

struct watch {
	/* In the module's list while registered, then in the list of those to
	 * notify; under the module's lock until taken out of it. */
	LIST_ENTRY(watch) link;
	void (*notify)(struct watch *watch);
	uint64_t key;
	const void *data; /* borrowed: outlives the registration */
	bool linked;      /* registered now; under the module's lock */
};

LIST_HEAD(watch_list, watch);

/* Registers watch at the head of list. The list's lock held. */
static inline void watch_add(struct watch_list *list, struct watch *watch)
{
	watch->linked = true;
	LIST_INSERT_HEAD(list, watch, link);
}

/* Takes watch out of the list it is registered in. Its lock held. */
static inline void watch_remove(struct watch *watch)
{
	LIST_REMOVE(watch, link);
	watch->linked = false;
}

/* Moves every watch of list that satisfied(watch, context) accepts to the head of
 * *ready, for watch_notify_all once the lock is released. The list's lock held. */
static inline void watch_take(struct watch_list *list,
                              bool (*satisfied)(const struct watch *watch, const void *context),
                              const void *context, struct watch_list *ready)
{
	struct watch *watch = LIST_FIRST(list);
	while (watch != NULL) {
		struct watch *next = LIST_NEXT(watch, link);
		if (satisfied(watch, context)) {
			watch_remove(watch);
			LIST_INSERT_HEAD(ready, watch, link);
		}
		watch = next;
	}
}

/* Notifies and empties a list watch_take filled. No lock held. */
static inline void watch_notify_all(struct watch_list *ready)
{
	struct watch *watch = LIST_FIRST(ready);
	LIST_INIT(ready);
	while (watch != NULL) {
		/* notify may free the watch: read the link first. */
		struct watch *next = LIST_NEXT(watch, link);
		watch->notify(watch);
		watch = next;
	}
}

#endif

/*
 * A registration of someone waiting for something to change (a long poll
 * waiting for a job's next item, or for the next event), embedded in the
 * waiter, which owns it. The module it is registered with keeps its watches
 * in a list through next/previous, guarded by that module's lock, and calls
 * notify once, with no lock held, when the change came — unless the watch
 * was removed first. key and data say what the watcher waits for, in the
 * module's terms (an item's index; an event filter); both are set before the
 * watch is registered and never changed while it is.
 */
#ifndef WATCH_H
#define WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct watch {
	struct watch *next;
	struct watch *previous;
	void (*notify)(struct watch *watch);
	uint64_t key;
	const void *data; /* borrowed: outlives the registration */
	bool linked;      /* in a list now; under that list's lock */
};

/* Links watch at the head of *list. The list's lock held. */
static inline void watch_link(struct watch **list, struct watch *watch)
{
	watch->linked = true;
	watch->previous = NULL;
	watch->next = *list;
	if (*list != NULL)
		(*list)->previous = watch;
	*list = watch;
}

/* Unlinks watch from *list. The list's lock held; the watch is in it. */
static inline void watch_unlink(struct watch **list, struct watch *watch)
{
	if (watch->previous != NULL)
		watch->previous->next = watch->next;
	else
		*list = watch->next;
	if (watch->next != NULL)
		watch->next->previous = watch->previous;
	watch->next = watch->previous = NULL;
	watch->linked = false;
}

#endif

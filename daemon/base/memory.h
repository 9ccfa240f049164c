/*
 * weftd's allocation policy: the daemon cannot do anything useful without
 * memory, so running out aborts with a message (libweft, in contrast, returns
 * WEFT_ENOMEM). Every daemon allocation, jansson's included (memory_init),
 * goes through these. Any thread.
 */
#ifndef MEMORY_H
#define MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Routes jansson's allocations through memory_alloc. Call once, before threads start. */
void memory_init(void);

void *memory_alloc(size_t size);                 /* never NULL */
void *memory_zalloc(size_t size);                /* zeroed, never NULL */
void *memory_realloc(void *pointer, size_t size); /* never NULL */
char *memory_strdup(const char *string);         /* never NULL */

/*
 * What the allocator holds. With jemalloc (weftd's allocator; found at run
 * time, so programs without it link too): bytes handed out and bytes
 * resident in its arenas. With glibc: mallinfo2's in-use and arena bytes.
 * known is false when neither can say. Any thread.
 */
struct memory_usage {
	bool known;
	uint64_t allocated;
	uint64_t resident;
	uint64_t purges; /* memory_release calls so far */
};
void memory_usage(struct memory_usage *usage);

/*
 * Gives the allocator's free pages back to the kernel (jemalloc: purge every
 * arena; glibc: malloc_trim), so that RSS falls after a burst instead of
 * staying at its peak. Costs a few ms for a large heap: call it when idle.
 * Any thread.
 */
void memory_release(void);

#endif

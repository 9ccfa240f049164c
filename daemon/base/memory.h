/*
 * weftd's allocation policy: the daemon cannot do anything useful without
 * memory, so running out aborts with a message (libweft, in contrast, returns
 * WEFT_ENOMEM) -- except where a request can be refused instead: decoding a
 * request and making its jobs run in a refusable region (memory_refusable_begin),
 * in which jansson's allocations and the memory_try_* ones return NULL on
 * failure, and the request fails with WEFT_ENOMEM while the daemon goes on.
 * Every daemon allocation, jansson's included (memory_init), goes through
 * these. Any thread.
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
 * A refusable region on the calling thread: until the matching
 * memory_refusable_end, a failed allocation by jansson or memory_try_*
 * returns NULL instead of aborting. Regions nest. memory_refusable_end
 * returns whether any allocation failed in the region (the outermost one
 * clears the mark). Any thread; the state is the thread's own.
 */
void memory_refusable_begin(void);
bool memory_refusable_end(void);
/* Leaves the thread's regions for code that expects allocations never to
 * fail (a function's argument check), and comes back to them. */
unsigned memory_refusable_suspend(void);
void memory_refusable_resume(unsigned depth);

/* Like memory_alloc and friends, but NULL when out of memory inside a
 * refusable region (outside one they abort, as the others do). */
void *memory_try_alloc(size_t size);
void *memory_try_zalloc(size_t size);
char *memory_try_strdup(const char *string);

/*
 * Tests (jansson's test_chaos.c): the nth allocation made from now inside a
 * refusable region, on any thread, fails as if memory were exhausted; 0 turns
 * it off. Any thread.
 */
void memory_fail_nth(unsigned long nth);

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

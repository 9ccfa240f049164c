/* See memory.h. */
#include "daemon/base/memory.h"

#include <jansson.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void out_of_memory(size_t size)
{
	char line[128];
	int length = snprintf(line, sizeof(line), "weftd: out of memory (allocating %zu bytes)\n",
	                      size);
	ssize_t ignored = write(STDERR_FILENO, line, (size_t)length);
	(void)ignored;
	abort();
}

/* The thread's refusable regions (memory_refusable_begin) and whether an
 * allocation failed in them. */
static _Thread_local unsigned refusable_depth;
static _Thread_local bool refusable_failed;
/* memory_fail_nth's countdown: 0 is off. Relaxed: a test's knob; each
 * allocation takes one step with a single RMW. */
static atomic_ulong fail_countdown;

void memory_refusable_begin(void)
{
	refusable_depth++;
}

bool memory_refusable_end(void)
{
	bool failed = refusable_failed;
	if (refusable_depth > 0 && --refusable_depth == 0)
		refusable_failed = false;
	return failed;
}

unsigned memory_refusable_suspend(void)
{
	unsigned depth = refusable_depth;
	refusable_depth = 0;
	return depth;
}

void memory_refusable_resume(unsigned depth)
{
	refusable_depth = depth;
}

void memory_fail_nth(unsigned long nth)
{
	atomic_store_explicit(&fail_countdown, nth, memory_order_relaxed);
}

/* Whether a test asked this allocation to fail. */
static bool injected_failure(void)
{
	unsigned long left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
	while (left > 0) {
		if (atomic_compare_exchange_weak_explicit(&fail_countdown, &left, left - 1,
		                                          memory_order_relaxed,
		                                          memory_order_relaxed))
			return left == 1;
	}
	return false;
}

/* NULL inside a refusable region, abort outside: for a failed allocation. */
static void *refuse_or_abort(size_t size)
{
	if (refusable_depth == 0)
		out_of_memory(size);
	refusable_failed = true;
	return NULL;
}

void *memory_try_alloc(size_t size)
{
	if (refusable_depth > 0 && injected_failure())
		return refuse_or_abort(size);
	void *pointer = malloc(size != 0 ? size : 1);
	return pointer != NULL ? pointer : refuse_or_abort(size);
}

void *memory_try_zalloc(size_t size)
{
	if (refusable_depth > 0 && injected_failure())
		return refuse_or_abort(size);
	void *pointer = calloc(1, size != 0 ? size : 1);
	return pointer != NULL ? pointer : refuse_or_abort(size);
}

char *memory_try_strdup(const char *string)
{
	size_t size = strlen(string) + 1;
	char *copy = memory_try_alloc(size);
	if (copy != NULL)
		memcpy(copy, string, size);
	return copy;
}

void *memory_alloc(size_t size)
{
	void *pointer = malloc(size != 0 ? size : 1);
	if (pointer == NULL)
		out_of_memory(size);
	return pointer;
}

void *memory_zalloc(size_t size)
{
	void *pointer = calloc(1, size != 0 ? size : 1);
	if (pointer == NULL)
		out_of_memory(size);
	return pointer;
}

void *memory_realloc(void *pointer, size_t size)
{
	void *moved = realloc(pointer, size != 0 ? size : 1);
	if (moved == NULL)
		out_of_memory(size);
	return moved;
}

char *memory_strdup(const char *string)
{
	size_t size = strlen(string) + 1;
	char *copy = memory_alloc(size);
	memcpy(copy, string, size);
	return copy;
}

/* jemalloc's control interface, when weftd was linked with it (weak: NULL
 * otherwise, e.g. in unit tests and sanitizer builds). */
extern int mallctl(const char *name, void *old, size_t *old_length, void *new_value,
                   size_t new_length) __attribute__((weak));

/* Relaxed: a statistic. */
static atomic_uint_fast64_t purges;

void memory_init(void)
{
	json_set_alloc_funcs(memory_try_alloc, free);
	/* jemalloc keeps freed pages for its decay time and purges them only as
	 * it allocates again, so an idle daemon stayed at its peak RSS (205 MB
	 * after a burst); its background thread purges while weftd is idle. A
	 * failure leaves the default. */
	if (mallctl != NULL) {
		bool on = true;
		(void)mallctl("background_thread", NULL, NULL, &on, sizeof(on));
	}
}

void memory_usage(struct memory_usage *usage)
{
	memset(usage, 0, sizeof(*usage));
	usage->purges = atomic_load_explicit(&purges, memory_order_relaxed);
	if (mallctl != NULL) {
		/* Statistics are refreshed when the epoch is written. */
		uint64_t epoch = 1;
		size_t allocated = 0, resident = 0, length = sizeof(size_t);
		if (mallctl("epoch", NULL, NULL, &epoch, sizeof(epoch)) == 0 &&
		    mallctl("stats.allocated", &allocated, &length, NULL, 0) == 0 &&
		    (length = sizeof(size_t), mallctl("stats.resident", &resident, &length, NULL, 0)) == 0) {
			usage->known = true;
			usage->allocated = allocated;
			usage->resident = resident;
		}
		return;
	}
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 info = mallinfo2();
	usage->known = true;
	usage->allocated = info.uordblks + info.hblkhd;
	usage->resident = info.arena + info.hblkhd;
#endif
}

void memory_release(void)
{
	atomic_fetch_add_explicit(&purges, 1, memory_order_relaxed);
	if (mallctl != NULL) {
		/* 4096 is MALLCTL_ARENAS_ALL: every arena. */
		(void)mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
		return;
	}
	malloc_trim(0);
}

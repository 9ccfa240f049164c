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
	json_set_alloc_funcs(memory_alloc, free);
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

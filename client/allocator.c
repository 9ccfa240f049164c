/* The one place libweft allocates; see allocator.h. */
#include "client/allocator.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weft/client.h"

/* Set before any other call (weft_set_alloc_funcs says so), then only read:
 * no lock needed. */
static weft_malloc_fn allocator_malloc_fn = malloc;
static weft_free_fn allocator_free_fn = free;

void weft_set_alloc_funcs(weft_malloc_fn malloc_fn, weft_free_fn free_fn)
{
	if (malloc_fn == NULL || free_fn == NULL) {
		allocator_malloc_fn = malloc;
		allocator_free_fn = free;
		return;
	}
	allocator_malloc_fn = malloc_fn;
	allocator_free_fn = free_fn;
}

void *allocator_alloc(size_t size)
{
	if (size == 0)
		return NULL;
	return allocator_malloc_fn(size);
}

void *allocator_calloc(size_t count, size_t size)
{
	if (count == 0 || size == 0 || count > SIZE_MAX / size)
		return NULL;
	void *memory = allocator_malloc_fn(count * size);
	if (memory != NULL)
		memset(memory, 0, count * size);
	return memory;
}

char *allocator_strdup(const char *text)
{
	size_t size = strlen(text) + 1;
	char *copy = allocator_malloc_fn(size);
	if (copy != NULL)
		memcpy(copy, text, size);
	return copy;
}

void allocator_free(void *pointer)
{
	if (pointer != NULL)
		allocator_free_fn(pointer);
}

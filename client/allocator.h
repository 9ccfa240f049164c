/*
 * Every allocation libweft makes itself goes through these functions, so that
 * an application can route them (weft_set_alloc_funcs) and a test can make
 * the Nth one fail. Any thread; the function pointers are set once before use.
 */
#ifndef CLIENT_ALLOCATOR_H
#define CLIENT_ALLOCATOR_H

#include <stddef.h>

/* NULL when out of memory (or size is 0). Free with allocator_free. */
void *allocator_alloc(size_t size);
/* size zeroed bytes; NULL when out of memory or count * size overflows. */
void *allocator_calloc(size_t count, size_t size);
/* A copy of text, or NULL when out of memory. */
char *allocator_strdup(const char *text);
/* NULL is fine. */
void allocator_free(void *pointer);

#endif

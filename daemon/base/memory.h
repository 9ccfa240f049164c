/*
 * weftd's allocation policy: the daemon cannot do anything useful without
 * memory, so running out aborts with a message (libweft, in contrast, returns
 * WEFT_ENOMEM). Every daemon allocation, jansson's included (memory_init),
 * goes through these. Any thread.
 */
#ifndef MEMORY_H
#define MEMORY_H

#include <stddef.h>

/* Routes jansson's allocations through memory_alloc. Call once, before threads start. */
void memory_init(void);

void *memory_alloc(size_t size);                 /* never NULL */
void *memory_zalloc(size_t size);                /* zeroed, never NULL */
void *memory_realloc(void *pointer, size_t size); /* never NULL */
char *memory_strdup(const char *string);         /* never NULL */

#endif

/* See memory.h. */
#include "daemon/base/memory.h"

#include <jansson.h>
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

void memory_init(void)
{
	json_set_alloc_funcs(memory_alloc, free);
}

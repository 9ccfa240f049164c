/*
 * calloc as malloc and memset, linked into weftd only with jemalloc (see
 * mk/daemon.mk); it replaces the C library's calloc for the whole process.
 *
 * Why: nng allocates every message with calloc. jemalloc satisfies a large
 * calloc by handing out pages the kernel must zero again (they were given
 * back with madvise), so each page of a message that another thread freed
 * faults anew: streaming 200 MB of output through `output` replies cost
 * weftd 52,000 page faults, a third of its CPU. memset on the reused pages is
 * cheaper: 3,000 faults, and the same calloc otherwise.
 *
 * Compiled with -fno-builtin, or the compiler folds malloc + memset back into
 * a call of calloc, which would be this function. Any thread.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *calloc(size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size) {
		errno = ENOMEM;
		return NULL;
	}
	void *block = malloc(count * size);
	if (block != NULL)
		memset(block, 0, count * size);
	return block;
}

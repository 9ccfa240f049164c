/*
 * stack: slabs of coroutine stacks (see stack.h for the design).
 *
 * Locking: source->lock guards the slab table and the shared free list. A worker takes it only
 * when its pool is empty or above its watermark, so steady-state spawning never locks or maps.
 */
#include "daemon/runtime/stack.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/runtime/sanitizer.h"
#include "weft/error.h"

#if defined(__SANITIZE_ADDRESS__)
#define STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_ASAN 1
#endif
#endif
#ifdef STACK_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define STACK_VALGRIND 1
#endif
#endif

enum {
	STACKS_PER_SLAB = 64,
	MAX_SLABS = 65536,
};

#define STACK_CANARY UINT64_C(0x77656674436e7279)

typedef struct slab {
	char *base;    /* start of the mapping */
	size_t length; /* bytes mapped */
	size_t stride; /* distance between two stacks, guard included */
	bool guarded;
	stack stacks[STACKS_PER_SLAB];
} slab;

struct stack_source {
	pthread_mutex_t lock; /* guards everything below except what is marked atomic */
	size_t size;          /* usable bytes per stack; fixed at creation */
	size_t page;
	size_t guard_budget; /* guarded stacks still allowed */
	stack *shared;       /* free stacks not in any pool */
	/* Read without the lock by the SIGSEGV handler: slab pointers are published with release
	 * before slab_count grows and never change afterwards. */
	_Atomic(slab *) slabs[MAX_SLABS];
	atomic_size_t slab_count;
};

int stack_source_new(size_t size, size_t guard_budget, stack_source **source_out)
{
	stack_source *source = calloc(1, sizeof *source);
	if (source == NULL)
		return WEFT_ENOMEM;
	source->page = (size_t)sysconf(_SC_PAGESIZE);
	if (size < 16384)
		size = 16384;
	source->size = (size + source->page - 1) / source->page * source->page;
	source->guard_budget = guard_budget;
	pthread_mutex_init(&source->lock, NULL);
	*source_out = source;
	return WEFT_OK;
}

void stack_source_free(stack_source *source)
{
	size_t count = atomic_load(&source->slab_count);
	for (size_t i = 0; i < count; i++) {
		slab *each = atomic_load(&source->slabs[i]);
		for (size_t j = 0; j < STACKS_PER_SLAB; j++)
			sanitizer_destroy_fiber(each->stacks[j].tsan_fiber);
		munmap(each->base, each->length);
		free(each);
	}
	pthread_mutex_destroy(&source->lock);
	free(source);
}

/* Maps one slab and puts its stacks on the shared list. Called with source->lock held. */
static int stack_source_grow_locked(stack_source *source)
{
	size_t count = atomic_load_explicit(&source->slab_count, memory_order_relaxed);
	if (count == MAX_SLABS)
		return WEFT_ENOMEM;
	slab *made = calloc(1, sizeof *made);
	if (made == NULL)
		return WEFT_ENOMEM;
	made->guarded = source->guard_budget >= STACKS_PER_SLAB;
	made->stride = source->size + (made->guarded ? source->page : 0);
	made->length = made->stride * STACKS_PER_SLAB;
	void *base = mmap(NULL, made->length, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (base == MAP_FAILED) {
		free(made);
		return WEFT_ENOMEM;
	}
	made->base = base;
	if (made->guarded)
		source->guard_budget -= STACKS_PER_SLAB;
	for (size_t i = STACKS_PER_SLAB; i-- > 0;) {
		char *start = made->base + i * made->stride;
		if (made->guarded)
			mprotect(start, source->page, PROT_NONE);
		stack *each = &made->stacks[i];
		each->low = start + (made->guarded ? source->page : 0);
		each->size = source->size;
		each->guarded = made->guarded;
		each->next = source->shared;
		source->shared = each;
	}
	atomic_store_explicit(&source->slabs[count], made, memory_order_release);
	atomic_store_explicit(&source->slab_count, count + 1, memory_order_release);
	return WEFT_OK;
}

bool stack_source_is_guard(const stack_source *source, const void *address)
{
	uintptr_t at = (uintptr_t)address;
	size_t count = atomic_load_explicit(&source->slab_count, memory_order_acquire);
	for (size_t i = 0; i < count; i++) {
		slab *each = atomic_load_explicit(&source->slabs[i], memory_order_acquire);
		uintptr_t base = (uintptr_t)each->base;
		if (!each->guarded || at < base || at >= base + each->length)
			continue;
		return (at - base) % each->stride < source->page;
	}
	return false;
}

void stack_canary_set(stack *given)
{
	uint64_t canary = STACK_CANARY;
	memcpy(given->low, &canary, sizeof canary);
}

bool stack_canary_intact(const stack *given)
{
	if (given->guarded)
		return true;
	uint64_t seen;
	memcpy(&seen, given->low, sizeof seen);
	return seen == STACK_CANARY;
}

void stack_pool_init(stack_pool *pool, stack_source *source, size_t watermark)
{
	pool->free = NULL;
	pool->count = 0;
	pool->watermark = watermark;
	pool->source = source;
}

stack *stack_pool_take(stack_pool *pool)
{
	stack *taken = pool->free;
	if (taken != NULL) {
		pool->free = taken->next;
		pool->count--;
		goto done;
	}
	stack_source *source = pool->source;
	pthread_mutex_lock(&source->lock);
	if (source->shared == NULL && stack_source_grow_locked(source) != WEFT_OK) {
		pthread_mutex_unlock(&source->lock);
		return NULL;
	}
	/* Take a few at once so the next spawns do not lock again. */
	for (int i = 0; i < 16 && source->shared != NULL; i++) {
		stack *moved = source->shared;
		source->shared = moved->next;
		moved->next = pool->free;
		pool->free = moved;
		pool->count++;
	}
	pthread_mutex_unlock(&source->lock);
	taken = pool->free;
	pool->free = taken->next;
	pool->count--;
done:
	/* Written at each take (not when the slab is made) so a free stack costs no page. */
	if (!taken->guarded)
		stack_canary_set(taken);
#ifdef STACK_VALGRIND
	taken->valgrind_id = VALGRIND_STACK_REGISTER(taken->low, taken->low + taken->size);
#endif
	return taken;
}

void stack_pool_give(stack_pool *pool, stack *given)
{
#ifdef STACK_ASAN
	/* Frames of the finished task leave poisoned redzones that the next task must not trip on. */
	ASAN_UNPOISON_MEMORY_REGION(given->low, given->size);
#endif
#ifdef STACK_VALGRIND
	VALGRIND_STACK_DEREGISTER(given->valgrind_id);
#endif
	given->next = pool->free;
	pool->free = given;
	pool->count++;
}

void stack_pool_trim(stack_pool *pool)
{
	if (pool->count <= pool->watermark)
		return;
	/* Hand the older stacks back with their pages released, so a burst does not pin memory. */
	size_t keep = pool->watermark;
	stack *cursor = pool->free;
	for (size_t i = 1; i < keep; i++)
		cursor = cursor->next;
	stack *excess = cursor->next;
	cursor->next = NULL;
	pool->count = keep;
	stack *last = excess;
	for (stack *each = excess; each != NULL; each = each->next) {
		madvise(each->low, each->size, MADV_DONTNEED);
		/* ThreadSanitizer counts each fiber as a thread, up to about 8000: idle stacks
		 * give theirs back. */
		sanitizer_destroy_fiber(each->tsan_fiber);
		each->tsan_fiber = NULL;
		last = each;
	}
	stack_source *source = pool->source;
	pthread_mutex_lock(&source->lock);
	last->next = source->shared;
	source->shared = excess;
	pthread_mutex_unlock(&source->lock);
}

void stack_pool_drain(stack_pool *pool)
{
	if (pool->free == NULL)
		return;
	stack *last = pool->free;
	while (last->next != NULL)
		last = last->next;
	stack_source *source = pool->source;
	pthread_mutex_lock(&source->lock);
	last->next = source->shared;
	source->shared = pool->free;
	pthread_mutex_unlock(&source->lock);
	pool->free = NULL;
	pool->count = 0;
}

/*
 * stack: coroutine stacks, carved from mmap'd slabs and pooled per worker.
 *
 * A stack is `size` usable bytes; below it sits a PROT_NONE guard page when the stack is guarded.
 * Every guarded stack splits its slab's mapping in two, and vm.max_map_count (65530 by default)
 * caps the mappings of a process, so only the first `guard_budget` stacks of a stack_source get a
 * guard page; later stacks carry a canary word at their lowest address that the scheduler checks
 * whenever a task leaves the processor (stack_canary_intact), so an overflow is still reported
 * with the task's name, only later. Memory: stacks are MAP_NORESERVE, so only touched pages count;
 * a pool trimmed when its worker goes idle keeps `watermark` stacks and gives the pages of the
 * others back (MADV_DONTNEED), handing them to the shared list of the source.
 */
#ifndef WEFT_RUNTIME_STACK_H
#define WEFT_RUNTIME_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>

/* One stack. Owned by the stack_source that made it; lent to one task at a time. */
typedef struct stack {
	struct stack *next; /* link in a pool or the source's shared list; owner of that list */
	char *low;          /* lowest usable byte (above the guard page when there is one) */
	size_t size;        /* usable bytes */
	bool guarded;
	unsigned valgrind_id; /* registration while lent out, so valgrind follows the switches */
	void *tsan_fiber;     /* ThreadSanitizer's fiber for this stack, made by the scheduler */
	unsigned fiber_uses;  /* tasks that ran on tsan_fiber */
} stack;

/* Every stack of one runtime. Thread-safe (a mutex guards the slabs and the shared list). */
typedef struct stack_source stack_source;

/* A worker's private cache of free stacks. Touched only by its worker's thread. */
typedef struct stack_pool {
	stack *free;
	size_t count;
	size_t watermark; /* stacks kept when trimmed; the rest go back with their pages released */
	stack_source *source;
} stack_pool;

/*
 * Creates a source of stacks of `size` usable bytes (rounded up to whole pages, at least 16 KiB),
 * guarding at most `guard_budget` of them. Returns WEFT_OK or WEFT_ENOMEM. Any thread.
 */
int stack_source_new(size_t size, size_t guard_budget, stack_source **source_out);

/* Unmaps every slab. Every stack must have been returned. Any thread, once. */
void stack_source_free(stack_source *source);

void stack_pool_init(stack_pool *pool, stack_source *source, size_t watermark);

/* Hands the pool's stacks back to the source. Pool's thread. */
void stack_pool_drain(stack_pool *pool);

/* A stack from the pool, else from the source (which maps a new slab when it must). NULL when
 * memory is exhausted. Pool's thread. */
stack *stack_pool_take(stack_pool *pool);

/* Gives a stack back once nothing runs on it any more. Pool's thread. */
void stack_pool_give(stack_pool *pool, stack *given);

/* Keeps `watermark` stacks and hands the rest back to the source with their pages released
 * (MADV_DONTNEED). Called when the worker goes idle, never in a burst: releasing pages costs a
 * TLB shootdown across the process's threads and the next use faults them in again. Pool's
 * thread. */
void stack_pool_trim(stack_pool *pool);

/* Whether the address lies in the guard page of some guarded stack of the source. Async-signal
 * safe (reads the slab table without locking; slabs are never unmapped while workers run). */
bool stack_source_is_guard(const stack_source *source, const void *address);

/* Canary for unguarded stacks: written by stack_canary_set, checked when a task switches out. */
void stack_canary_set(stack *given);
bool stack_canary_intact(const stack *given);

#endif

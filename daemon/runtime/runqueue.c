/* runqueue: see runqueue.h for the algorithm and its memory orders. */
#include "daemon/runtime/runqueue.h"

#include <stddef.h>

#define MASK (RUNQUEUE_CAPACITY - 1)

void runqueue_init(runqueue *queue)
{
	atomic_init(&queue->top, 0);
	atomic_init(&queue->bottom, 0);
	for (int i = 0; i < RUNQUEUE_CAPACITY; i++)
		atomic_init(&queue->slots[i], NULL);
}

bool runqueue_push(runqueue *queue, void *item)
{
	int64_t bottom = atomic_load_explicit(&queue->bottom, memory_order_relaxed);
	int64_t top = atomic_load_explicit(&queue->top, memory_order_acquire);
	if (bottom - top >= RUNQUEUE_CAPACITY)
		return false;
	atomic_store_explicit(&queue->slots[bottom & MASK], item, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	/* Release on the store too: the fence alone suffices in C11, but ThreadSanitizer does not
	 * model fences; on x86-64 and AArch64 this costs nothing more. */
	atomic_store_explicit(&queue->bottom, bottom + 1, memory_order_release);
	return true;
}

int runqueue_take_half(runqueue *queue, void **batch)
{
	int64_t top = atomic_load_explicit(&queue->top, memory_order_acquire);
	int64_t bottom = atomic_load_explicit(&queue->bottom, memory_order_relaxed);
	if (bottom - top < RUNQUEUE_CAPACITY)
		return 0;
	int count = RUNQUEUE_CAPACITY / 2;
	/* Only the owner writes slots and it is here, so these stay valid; the CAS against
	 * thieves decides who owns them. The newest item is never among them, so the owner's
	 * CAS-free take cannot collide (and the owner is not taking now). */
	for (int i = 0; i < count; i++)
		batch[i] = atomic_load_explicit(&queue->slots[(top + i) & MASK],
						memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&queue->top, &top, top + count,
						     memory_order_seq_cst, memory_order_relaxed))
		return 0;
	return count;
}

void *runqueue_pop(runqueue *queue)
{
	int64_t bottom = atomic_load_explicit(&queue->bottom, memory_order_relaxed) - 1;
	atomic_store_explicit(&queue->bottom, bottom, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	int64_t top = atomic_load_explicit(&queue->top, memory_order_relaxed);
	if (top > bottom) {
		atomic_store_explicit(&queue->bottom, bottom + 1, memory_order_relaxed);
		return NULL;
	}
	void *item = atomic_load_explicit(&queue->slots[bottom & MASK], memory_order_relaxed);
	if (top == bottom) {
		/* The last item: a thief may be taking it too. */
		if (!atomic_compare_exchange_strong_explicit(&queue->top, &top, top + 1,
							     memory_order_seq_cst,
							     memory_order_relaxed))
			item = NULL;
		atomic_store_explicit(&queue->bottom, bottom + 1, memory_order_relaxed);
	}
	return item;
}

void *runqueue_steal(runqueue *victim)
{
	int64_t top = atomic_load_explicit(&victim->top, memory_order_acquire);
	atomic_thread_fence(memory_order_seq_cst);
	int64_t bottom = atomic_load_explicit(&victim->bottom, memory_order_acquire);
	if (top >= bottom)
		return NULL;
	void *item = atomic_load_explicit(&victim->slots[top & MASK], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&victim->top, &top, top + 1,
						     memory_order_seq_cst, memory_order_relaxed))
		return NULL;
	return item;
}

uint32_t runqueue_length(runqueue *queue)
{
	int64_t top = atomic_load_explicit(&queue->top, memory_order_relaxed);
	int64_t bottom = atomic_load_explicit(&queue->bottom, memory_order_relaxed);
	int64_t length = bottom - top;
	return length <= 0 ? 0 : length > RUNQUEUE_CAPACITY ? RUNQUEUE_CAPACITY : (uint32_t)length;
}

/*
 * sanitizer: fiber annotations around each context switch, so AddressSanitizer and
 * ThreadSanitizer follow execution from stack to stack. Empty in builds without them. Valgrind's
 * stack registration is done by stack.c when a stack is lent out.
 *
 * ASan: __sanitizer_start_switch_fiber(save, bottom, size) right before a switch names the stack
 * being entered (save is NULL when the stack being left is finished for good), and
 * __sanitizer_finish_switch_fiber(save, ...) right after control comes back. TSan: every
 * execution is a fiber; __tsan_switch_to_fiber right before the switch (flag 0: the switch
 * orders memory as a lock handoff would). The scheduler keeps one TSan fiber per stack in use
 * (stack.h); TSan counts fibers as threads and dies past 8128, so a TSan build holds at most
 * about 8000 suspended tasks at once.
 */
#ifndef WEFT_RUNTIME_SANITIZER_H
#define WEFT_RUNTIME_SANITIZER_H

#include <pthread.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define SANITIZER_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define SANITIZER_TSAN 1
#endif
#endif

#ifdef SANITIZER_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef SANITIZER_TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* An execution others switch into: its stack bounds and its TSan fiber. Owned by whoever owns the
 * execution (a worker for its scheduler, built on the fly for a task). */
typedef struct sanitizer_fiber {
	void *stack_low;
	size_t stack_size;
	void *tsan_fiber;
	void *asan_fake_stack; /* ASan's save slot while this execution is switched out */
} sanitizer_fiber;

/* Records the calling thread's own stack and fiber (a worker's scheduler). Worker thread. */
static inline void sanitizer_init_thread_fiber(sanitizer_fiber *fiber)
{
	fiber->stack_low = NULL;
	fiber->stack_size = 0;
	fiber->tsan_fiber = NULL;
	fiber->asan_fake_stack = NULL;
#ifdef SANITIZER_ASAN
	pthread_attr_t attributes;
	if (pthread_getattr_np(pthread_self(), &attributes) == 0) {
		pthread_attr_getstack(&attributes, &fiber->stack_low, &fiber->stack_size);
		pthread_attr_destroy(&attributes);
	}
#endif
#ifdef SANITIZER_TSAN
	fiber->tsan_fiber = __tsan_get_current_fiber();
#endif
}

static inline void *sanitizer_create_fiber(void)
{
#ifdef SANITIZER_TSAN
	return __tsan_create_fiber(0);
#else
	return NULL;
#endif
}

/* Frees a task's fiber; never the one running. */
static inline void sanitizer_destroy_fiber(void *tsan_fiber)
{
#ifdef SANITIZER_TSAN
	if (tsan_fiber != NULL)
		__tsan_destroy_fiber(tsan_fiber);
#else
	(void)tsan_fiber;
#endif
}

/* Right before context_switch into `to`. save: where ASan keeps the leaving execution's fake
 * stack, NULL when the leaving execution is finished. */
static inline void sanitizer_start_switch(void **save, const sanitizer_fiber *to)
{
#ifdef SANITIZER_ASAN
	__sanitizer_start_switch_fiber(save, to->stack_low, to->stack_size);
#else
	(void)save;
#endif
#ifdef SANITIZER_TSAN
	__tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
	(void)to;
#endif
}

/* Right after control comes back (or first arrives: save NULL). */
static inline void sanitizer_finish_switch(void *save)
{
#ifdef SANITIZER_ASAN
	__sanitizer_finish_switch_fiber(save, NULL, NULL);
#else
	(void)save;
#endif
}

#endif

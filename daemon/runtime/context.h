/*
 * context: switching between stackful coroutines.
 *
 * A context is the saved stack pointer of a suspended execution; the callee-saved registers live on
 * that stack. x86-64 (System V) and AArch64 switch with hand-written assembly (context_x86_64.S,
 * context_aarch64.S): no system call, no signal mask, about as cheap as a function call. Other
 * machines, or a build with WEFT_CONTEXT_UCONTEXT defined, use the portable ucontext fallback
 * (context_ucontext.c), which is correct but makes a system call on every switch.
 *
 * The build picks one implementation (mk/runtime.mk); this header is the same for all of them.
 * Sanitizer annotations are not done here but by the scheduler around each switch, because only
 * it knows the stack bounds and fibers of both sides.
 */
#ifndef WEFT_RUNTIME_CONTEXT_H
#define WEFT_RUNTIME_CONTEXT_H

#include <stddef.h>

#if !defined(WEFT_CONTEXT_UCONTEXT) && !defined(__x86_64__) && !defined(__aarch64__)
#define WEFT_CONTEXT_UCONTEXT 1
#endif

#ifdef WEFT_CONTEXT_UCONTEXT
#include <ucontext.h>
#endif

/* A saved execution. Owned by whoever embeds it (a task, or a worker for its scheduler). */
typedef struct context {
	void *stack_pointer; /* assembly implementations: where the registers were pushed */
#ifdef WEFT_CONTEXT_UCONTEXT
	ucontext_t ucontext;
#endif
} context;

/* Entry of a new context. It must never return: it ends by switching away for good. */
typedef void (*context_entry)(void *argument);

/*
 * Prepares `to_start` so that the first context_switch into it calls entry(argument) on the stack
 * [stack_low, stack_low + stack_size). stack_low is the lowest usable byte (above any guard page).
 * Runs on any thread; touches only the stack memory and the context.
 */
void context_make(context *to_start, void *stack_low, size_t stack_size, context_entry entry,
		  void *argument);

/*
 * Saves the running execution into `from` and resumes `to`. Returns when something switches back
 * to `from`, possibly on another thread. Both must stay valid until then.
 */
void context_switch(context *from, context *to);

#endif

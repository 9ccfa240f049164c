/*
 * context_make for the assembly switchers, and the whole ucontext fallback.
 *
 * context_make writes, at the top of the new stack, the frame that context_switch pops when it
 * resumes a context: zeroed callee-saved registers except two that carry the entry and its
 * argument to the trampoline, and a return address pointing at the trampoline.
 */
#include "daemon/runtime/context.h"

#include <stdint.h>
#include <string.h>

#ifdef WEFT_CONTEXT_UCONTEXT

#include <stdlib.h>

/* makecontext passes only int arguments; the pointers travel in two halves. */
static void context_ucontext_entry(unsigned int entry_high, unsigned int entry_low,
				   unsigned int argument_high, unsigned int argument_low)
{
	uintptr_t entry_bits = ((uintptr_t)entry_high << 16 << 16) | entry_low;
	uintptr_t argument_bits = ((uintptr_t)argument_high << 16 << 16) | argument_low;
	context_entry entry;
	memcpy(&entry, &entry_bits, sizeof entry);
	entry((void *)argument_bits);
	abort(); /* an entry never returns */
}

void context_make(context *to_start, void *stack_low, size_t stack_size, context_entry entry,
		  void *argument)
{
	uintptr_t entry_bits;
	memcpy(&entry_bits, &entry, sizeof entry_bits);
	uintptr_t argument_bits = (uintptr_t)argument;
	getcontext(&to_start->ucontext);
	to_start->ucontext.uc_stack.ss_sp = stack_low;
	to_start->ucontext.uc_stack.ss_size = stack_size;
	to_start->ucontext.uc_link = NULL;
	makecontext(&to_start->ucontext, (void (*)(void))context_ucontext_entry, 4,
		    (unsigned int)(entry_bits >> 16 >> 16), (unsigned int)entry_bits,
		    (unsigned int)(argument_bits >> 16 >> 16), (unsigned int)argument_bits);
}

void context_switch(context *from, context *to)
{
	swapcontext(&from->ucontext, &to->ucontext);
}

#elif defined(__x86_64__)

void context_trampoline_x86_64(void);

void context_make(context *to_start, void *stack_low, size_t stack_size, context_entry entry,
		  void *argument)
{
	uintptr_t top = ((uintptr_t)stack_low + stack_size) & ~(uintptr_t)15;
	uint64_t *frame = (uint64_t *)top - 8;
	uint32_t mxcsr;
	uint16_t x87_control;
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(x87_control));
	memset(frame, 0, 8 * sizeof *frame);
	/* frame[0]: MXCSR and x87 control word; [1..6]: r15 r14 r13 r12 rbx rbp; [7]: return */
	memcpy(&frame[0], &mxcsr, sizeof mxcsr);
	memcpy((char *)&frame[0] + 4, &x87_control, sizeof x87_control);
	memcpy(&frame[4], &entry, sizeof entry); /* r12 */
	frame[3] = (uint64_t)(uintptr_t)argument; /* r13 */
	frame[7] = (uint64_t)(uintptr_t)context_trampoline_x86_64;
	to_start->stack_pointer = frame;
}

#elif defined(__aarch64__)

void context_trampoline_aarch64(void);

void context_make(context *to_start, void *stack_low, size_t stack_size, context_entry entry,
		  void *argument)
{
	uintptr_t top = ((uintptr_t)stack_low + stack_size) & ~(uintptr_t)15;
	uint64_t *frame = (uint64_t *)(top - 176);
	memset(frame, 0, 176);
	/* frame[0..1]: x19 x20 ... [10..11]: x29 x30 */
	memcpy(&frame[0], &entry, sizeof entry);
	frame[1] = (uint64_t)(uintptr_t)argument;
	frame[11] = (uint64_t)(uintptr_t)context_trampoline_aarch64;
	to_start->stack_pointer = frame;
}

#endif

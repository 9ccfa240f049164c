/*
 * context_switch and the first-entry trampoline for AArch64 (AAPCS64).
 *
 * A 176-byte frame on the stack being left holds the callee-saved state: x19-x28, x29 (frame
 * pointer), x30 (link register: where context_switch returns to) and d8-d15 (the low halves of
 * v8-v15, the only callee-saved part of the vector registers).
 */
#if defined(__aarch64__) && !defined(WEFT_CONTEXT_UCONTEXT)

	.text
	.globl	context_switch
	.hidden	context_switch
	.type	context_switch, %function
	.p2align 4
/* void context_switch(context *from, context *to): x0 = from, x1 = to (stack_pointer is first) */
context_switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #176
	ret
	.size	context_switch, .-context_switch

	.globl	context_trampoline_aarch64
	.hidden	context_trampoline_aarch64
	.type	context_trampoline_aarch64, %function
	.p2align 4
/* First entry of a new context: context_make left the entry in x19 and its argument in x20. */
context_trampoline_aarch64:
	mov	x29, #0
	mov	x30, #0
	mov	x0, x20
	blr	x19
	brk	#0
	.size	context_trampoline_aarch64, .-context_trampoline_aarch64

#endif
	.section .note.GNU-stack,"",%progbits

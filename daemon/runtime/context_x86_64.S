/*
 * context_switch and the first-entry trampoline for x86-64, System V ABI.
 *
 * Saved on the stack of the execution being left, in this order (growing down): the return
 * address (pushed by the call), rbp, rbx, r12, r13, r14, r15, then one 8-byte slot holding MXCSR
 * (low 4 bytes) and the x87 control word (next 2 bytes). Those are exactly the callee-saved state
 * of the ABI; everything else is caller-saved, so the C caller already assumes it is clobbered.
 */
#if defined(__x86_64__) && !defined(WEFT_CONTEXT_UCONTEXT)

	.text
	.globl	context_switch
	.hidden	context_switch
	.type	context_switch, @function
	.p2align 4
/* void context_switch(context *from, context *to): rdi = from, rsi = to (stack_pointer is first) */
context_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	context_switch, .-context_switch

	.globl	context_trampoline_x86_64
	.hidden	context_trampoline_x86_64
	.type	context_trampoline_x86_64, @function
	.p2align 4
/* First entry of a new context: context_make left the entry in r12 and its argument in r13, and
 * the stack 16-byte aligned, as a call requires. The entry never returns. */
context_trampoline_x86_64:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r13, %rdi
	callq	*%r12
	ud2
	.cfi_endproc
	.size	context_trampoline_x86_64, .-context_trampoline_x86_64

#endif
	.section .note.GNU-stack,"",@progbits

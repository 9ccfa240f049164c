/*
 * The `exec` function: a command run as a job by the process pool (proc.h),
 * at most --procs at once (the others wait queued, first come first served),
 * as the identity of the client that submitted it.
 */
#ifndef EXEC_H
#define EXEC_H

#include <stddef.h>

struct function;
struct slots;

extern const struct function exec_function;

/* Makes the slot gate of `procs` slots; output_max bytes are kept per stream.
 * Main thread, before jobs run. Returns WEFT_OK or an error. */
int exec_init(unsigned procs, size_t output_max);
/* Frees the gate. Main thread, when no job runs any more. */
void exec_fini(void);
/* The gate, for stats. */
struct slots *exec_slots(void);

#endif

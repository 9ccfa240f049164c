/*
 * Stand-ins for the built-ins "echo" and "sleep", with the same argument
 * checks and no executor behind them: the tests of the job model and the
 * request decoder (and the fuzzer) link the core alone, not the executors.
 * The real built-ins are tested end to end against weftd.
 */
#ifndef STAND_INS_H
#define STAND_INS_H

/* Registers both. Main thread, before any test runs. */
void stand_ins_register(void);

#endif

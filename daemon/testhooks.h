/*
 * testhooks: functions that exist for weft's own tests, enabled by weftd's
 * --test-hooks and refused (and not listed) otherwise.
 *
 *   debug.stall {"fifo": PATH}  wedges the worker loop it runs on: opens the
 *       FIFO for reading (blocking until a writer opens it) and reads until
 *       EOF, on the loop's own thread, which runs nothing else meanwhile. The
 *       test opens the FIFO for writing (which returns once the loop is stuck
 *       in it) and closes it to let the loop go. The systemd watchdog's test
 *       proves with it that a stuck loop stops the pings.
 *
 * THREADS: testhooks_enable on the main thread before any job is submitted;
 * the rest from any thread (the flag is only read after that).
 */
#ifndef TESTHOOKS_H
#define TESTHOOKS_H

#include <stdbool.h>

struct function;

void testhooks_enable(void);
bool testhooks_enabled(void);

extern const struct function testhooks_stall_function;

#endif

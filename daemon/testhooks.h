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
 *   debug.hold {"fifo": PATH}  the same, inline: holds the request thread
 *       that received the submit (server.h), which handles no other request
 *       meanwhile. The fair-share test holds one user's share of the request
 *       threads with it.
 *   debug.block {}  holds a thread of the pool (executor "thread"), deaf to
 *       cancel, until the workers have stopped at exit: then
 *       testhooks_workers_stopped lets it end, so its end reaches the thread
 *       executor after the workers are gone, which must drop it (the
 *       shutdown order's test).
 *
 * THREADS: testhooks_enable on the main thread before any job is submitted;
 * testhooks_workers_stopped on the main thread; the rest from any thread (the
 * flag is only read after that).
 */
#ifndef TESTHOOKS_H
#define TESTHOOKS_H

#include <stdbool.h>

struct function;

void testhooks_enable(void);
bool testhooks_enabled(void);

extern const struct function testhooks_stall_function;
extern const struct function testhooks_hold_function;
extern const struct function testhooks_block_function;

/* With --test-hooks: lets every debug.block call end, then waits (bounded)
 * until the pool has no call busy, their done included. Main thread, right
 * after the workers stopped; nothing without --test-hooks. */
void testhooks_workers_stopped(void);

#endif

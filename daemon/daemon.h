/*
 * The composition root: daemon_run() sets up every module, wires them
 * together (struct weftd, weftd.h), serves until told to stop, and takes it
 * all down in a bounded order.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include "daemon/options.h"

/* Runs weftd with parsed options until SIGTERM or SIGINT. Returns the process
 * exit status (0 after a clean shutdown). A second signal, or a shutdown part
 * that overruns its bound, ends the process from the signal thread instead
 * (see daemon.c). Main thread. */
int daemon_run(const struct options *options);

#endif

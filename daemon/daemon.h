/*
 * The running daemon: its options and the modules it wires together. One per
 * process, made by daemon_run() on the main thread; other modules receive a
 * pointer to it and read it from any thread (the pointers are set before any
 * thread that reads them starts, and never change).
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stdatomic.h>
#include <stdbool.h>

#include "daemon/options.h"

struct jobs;
struct server;
struct waiters;
struct workers;

struct daemon {
	struct options options;
	struct jobs *jobs;
	struct workers *workers;
	struct waiters *waiters;
	struct server *server;
	double started; /* monotonic */
	/* Set once by the main thread when shutdown begins; read by request
	 * handlers to refuse new jobs. Sequentially consistent: rare and cheap. */
	atomic_bool shutting_down;
};

/* Runs weftd with parsed options until SIGTERM or SIGINT. Returns the process
 * exit status (0 after a clean shutdown). Main thread. */
int daemon_run(const struct options *options);

#endif

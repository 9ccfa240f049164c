/*
 * The running daemon: its options and the modules it wires together. One per
 * process, made by daemon_run() on the main thread; other modules receive a
 * pointer to it and read it from any thread (the pointers are set before any
 * thread that reads them starts, and never change).
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

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
	/* The main loop's liveness: written by the main thread alone, read by
	 * `stats` (nng threads) and, later, the systemd watchdog. Relaxed: each is
	 * a counter or a time read on its own, publishing no other data. */
	atomic_uint_least64_t heartbeat;          /* +1 at each run of a main-loop timer */
	atomic_uint_least64_t retention_runs;     /* runs of the retention timer */
	atomic_int_least64_t retention_last_us;   /* monotonic µs of its last run; 0: none yet */
	atomic_uint_least64_t watchdog_pings;     /* WATCHDOG=1 datagrams sent */
};

/* Runs weftd with parsed options until SIGTERM or SIGINT. Returns the process
 * exit status (0 after a clean shutdown). A second signal, or a shutdown part
 * that overruns its bound, ends the process from the signal thread instead
 * (see daemon.c). Main thread. */
int daemon_run(const struct options *options);

/* The main loop's heartbeat: advances at least once a second while the loop
 * runs (the retention timer), so a watcher that sees it stand still knows the
 * loop is stuck. Any thread. */
uint64_t daemon_main_loop_heartbeat(struct daemon *daemon);

/* The housekeeping part of `stats`: the heartbeat and, for each housekeeping
 * timer, its period, runs and the seconds since it last ran (PROTOCOL.md).
 * server is the one the request came on (borrowed; daemon->server may not be
 * set yet when the first requests arrive). Returns a new reference. Any
 * thread. */
json_t *daemon_housekeeping_stats(struct daemon *daemon, struct server *server);

#endif

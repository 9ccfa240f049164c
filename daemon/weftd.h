/*
 * The running daemon: its options and the modules it wires together. One per
 * process, made by daemon_run() (daemon.h) on the main thread; the request
 * handlers (ops.h) receive a pointer to it and read it from any thread (the
 * pointers are set before any thread that reads them starts, and never
 * change).
 */
#ifndef WEFTD_H
#define WEFTD_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/options.h"

/* How often the main loop expires old jobs (and beats its heartbeat). */
#define WEFTD_HOUSEKEEPING_SECONDS 1.0

struct jobs;
struct server;
struct waiters;
struct workers;

struct weftd {
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
	 * `stats` (request threads) and, later, the systemd watchdog. Relaxed: each is
	 * a counter or a time read on its own, publishing no other data. */
	atomic_uint_least64_t heartbeat;          /* +1 at each run of a main-loop timer */
	atomic_uint_least64_t retention_runs;     /* runs of the retention timer */
	atomic_int_least64_t retention_last_us;   /* monotonic µs of its last run; 0: none yet */
	atomic_uint_least64_t watchdog_pings;     /* WATCHDOG=1 datagrams sent */
};

/* The main loop's heartbeat: advances at least once a second while the loop
 * runs (the retention timer), so a watcher that sees it stand still knows the
 * loop is stuck. Any thread. */
uint64_t weftd_heartbeat(struct weftd *weftd);

/* The housekeeping part of `stats`: the heartbeat and, for each housekeeping
 * timer, its period, runs and the seconds since it last ran (PROTOCOL.md).
 * server is the one the request came on (borrowed; weftd->server may not be
 * set yet when the first requests arrive). Returns a new reference. Any
 * thread. */
json_t *weftd_housekeeping_stats(struct weftd *weftd, struct server *server);

#endif

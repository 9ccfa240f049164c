/*
 * The daemon's shared state and its housekeeping figures; see weftd.h.
 */
#include "daemon/weftd.h"

#include "daemon/notify.h"
#include "daemon/base/now.h"
#include "daemon/server/server.h"

uint64_t weftd_heartbeat(struct weftd *weftd)
{
	return atomic_load_explicit(&weftd->heartbeat, memory_order_relaxed);
}

/* Seconds since a monotonic time, or JSON null for "never". */
static json_t *seconds_since(double then, double now)
{
	return then > 0 ? json_real(now - then) : json_null();
}

json_t *weftd_housekeeping_stats(struct weftd *weftd, struct server *server)
{
	double now = now_monotonic();
	double retention_last =
		(double)atomic_load_explicit(&weftd->retention_last_us, memory_order_relaxed) / 1e6;
	struct server_guard_stats guard;
	server_guard_stats(server, &guard);
	return json_pack(
		"{s:I, s:{s:f, s:I, s:o}, s:{s:f, s:I, s:o, s:I, s:I, s:I, s:I}, s:{s:b, s:f, s:I}}",
		"heartbeat",
		(json_int_t)weftd_heartbeat(weftd), "retention", "every",
		WEFTD_HOUSEKEEPING_SECONDS, "runs",
		(json_int_t)atomic_load_explicit(&weftd->retention_runs, memory_order_relaxed),
		"since_last", seconds_since(retention_last, now), "listener_guard", "every",
		guard.every, "runs", (json_int_t)guard.rounds, "since_last",
		seconds_since(guard.last_round, now), "failed_probes", (json_int_t)guard.failed_probes,
		"recreated", (json_int_t)guard.recreated, "retired_serving",
		(json_int_t)guard.retired, "idle_closed", (json_int_t)guard.idle_closed, "systemd", "notify", notify_enabled(),
		"watchdog_every", (double)notify_watchdog_usec() / 2e6, "watchdog_pings",
		(json_int_t)atomic_load_explicit(&weftd->watchdog_pings, memory_order_relaxed));
}

/*
 * weftd's life: start-up, the main thread's loop (housekeeping and shutdown),
 * the signal thread, and an orderly shutdown that always ends.
 *
 * Shutdown (SIGTERM/SIGINT): new jobs are refused at once; jobs still running
 * get --grace seconds to finish, then are cancelled (error type "Shutdown");
 * every waiting client is answered; when every reply has been sent (or after a
 * short bound) the socket closes and the workers stop. A second signal ends
 * weftd at once (status 0: an administrator asked twice).
 *
 * Threads: the main thread runs the libevent loop (retention, the shutdown
 * poll) and, after it, the teardown. Signals are not taken there: SIGTERM and
 * SIGINT are blocked in every thread, and the signal thread ("weft-signals")
 * takes them with sigwaitinfo(), so that a signal is seen even when the main
 * loop is stuck (issue 17: it froze inside nng_close). The first signal is
 * handed to the main loop through a pipe (libevent 2.1: each base is touched
 * by its own thread only); the second ends the process from the signal
 * thread.
 *
 * Shutdown watchdog: the signal thread also bounds every part of the
 * shutdown. The main thread announces each part (shutdown_enter) with the
 * time it may take; if a part overruns, the signal thread logs which one and
 * ends the process. Overrunning the close of the nng socket or the final
 * frees exits 0, since every job had its grace and every reply was sent or
 * counted by then, and only memory is left (nng 1.5's reaper thread can stay
 * stuck for good, and then nng_close never returns); overrunning the drain or
 * the workers' stop exits 1.
 */
#include "daemon/daemon.h"

#include <errno.h>
#include <grp.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/executors/process/cgroup.h"
#include "daemon/executors/process/subreaper.h"
#include "daemon/executors/task/coroutines.h"
#include "daemon/executors/inline/echo.h"
#include "daemon/executors/process/exec.h"
#include "daemon/executors/process/proc_child.h"
#include "daemon/core/events.h"
#include "daemon/core/functions.h"
#include "daemon/core/generator.h"
#include "daemon/core/items.h"
#include "daemon/executors/group/gather.h"
#include "daemon/executors/io/http.h"
#include "daemon/executors/io/pool.h"
#include "daemon/executors/io/redis.h"
#include "daemon/executors/io/resolve.h"
#include "daemon/executors/io/sql.h"
#include "daemon/executors/io/sql_mysql.h"
#include "daemon/executors/plugin/plugin.h"
#include "daemon/core/principal.h"
#include "daemon/core/quota.h"
#include "daemon/core/jobs.h"
#include "daemon/journal.h"
#include "daemon/base/log.h"
#include "daemon/base/memory.h"
#include "daemon/notify.h"
#include "daemon/base/now.h"
#include "daemon/ops.h"
#include "daemon/output.h"
#include "daemon/executors/process/outlog.h"
#include "daemon/executors/process/spool.h"
#include "daemon/executors/process/proc.h"
#include "daemon/core/queues.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/schedule.h"
#include "daemon/server/server.h"
#include "daemon/testhooks.h"
#include "daemon/executors/thread/threaded.h"
#include "daemon/server/waiters.h"
#include "daemon/weftd.h"
#include "daemon/sched/workers.h"
#include "proto/proto.h"
#include "weft/error.h"

/* How often shutdown checks whether jobs and replies are done. */
#define SHUTDOWN_POLL_SECONDS 0.01
/* The longest shutdown waits for replies to leave once every job is over. */
#define REPLY_DRAIN_SECONDS 2.0
/* Bounds of the shutdown's parts after the signal (the watchdog's): the main
 * loop's own part is the grace, the drain and this slack; then closing the
 * socket, stopping the workers (they end what runs on them: exec jobs were
 * signalled already; first the thread pool gets up to a second for its calls,
 * then the workers up to five for their tasks), and the final frees. */
#define DRAIN_SLACK_SECONDS 2.0
#define SOCKET_CLOSE_SECONDS 2.0
#define WORKERS_STOP_SECONDS 7.0
#define FREE_SECONDS 2.0
/* How often the signal thread checks the watchdog's deadline during shutdown. */
#define WATCHDOG_TICK_NS (100 * 1000 * 1000L)
/* The guard's round is 0.5 s: one missing for this long is worth a log line. */
#define GUARD_STALE_SECONDS 10.0

/* State of the main loop; main thread only. */
struct main_loop {
	struct weftd *daemon;
	struct event_base *base;
	struct event *housekeeping;
	uint64_t released_at_submitted; /* jobs submitted when memory was last released */
	uint64_t released_at_idle_closed; /* idle connections closed by then */
	struct event *shutdown_poll;
	struct event *signal_pipe;
	double grace_deadline; /* monotonic; 0 while running */
	double drain_deadline; /* monotonic; 0 until every job is over */
	bool guard_stale_logged;
	/* The systemd watchdog (NULL without one): probes_sent[i] probes were
	 * posted to worker i; it answered them all when its heartbeat equals it. */
	struct event *watchdog;
	uint64_t *probes_sent;
	bool watchdog_stall_logged;
	char status[160]; /* the last STATUS= line sent */
};

/* The parts of the shutdown, in order, as the watchdog names them. */
enum shutdown_part {
	PART_RUNNING,
	PART_DRAINING,
	PART_CLOSING_SOCKET,
	PART_STOPPING_WORKERS,
	PART_FREEING,
	PART_DONE,
};

/* libevent's own messages (evdns': "Nameserver 127.0.0.1:53 has failed")
 * go through weftd's log, with its levels, format and journal priorities,
 * instead of libevent's bare "[warn] ..." lines on stderr. Any thread. */
static void log_from_libevent(int severity, const char *message)
{
	enum log_level level = severity == EVENT_LOG_ERR    ? LOG_LEVEL_ERROR
	                       : severity == EVENT_LOG_WARN ? LOG_LEVEL_WARN
	                       : severity == EVENT_LOG_MSG  ? LOG_LEVEL_INFO
	                                                    : LOG_LEVEL_DEBUG;
	log_message(level, "libevent: %s", message);
}

static const char *const part_names[] = {
	[PART_RUNNING] = "running",
	[PART_DRAINING] = "the main loop's drain (grace, cancelling jobs, sending replies)",
	[PART_CLOSING_SOCKET] = "closing the nng socket (nng's reaper thread is stuck: a 1.5 defect)",
	[PART_STOPPING_WORKERS] = "stopping the worker threads",
	[PART_FREEING] = "freeing the daemon's state",
	[PART_DONE] = "done",
};

/* The exit status when a part overruns (see the design note). */
static const int part_overrun_status[] = {
	[PART_RUNNING] = 1, [PART_DRAINING] = 1,       [PART_CLOSING_SOCKET] = 0,
	[PART_STOPPING_WORKERS] = 1, [PART_FREEING] = 0, [PART_DONE] = 0,
};

/*
 * The signal thread and the shutdown watchdog. One per process (signals are
 * per process). lock guards part, deadline and signals_seen: they change a
 * few times per run, and the watchdog must read a part and its deadline
 * together. The pipe's write end is written by the signal thread only.
 */
static struct {
	pthread_t thread;
	bool started;          /* main thread only */
	int pipe[2];           /* [0] watched by the main loop, [1] written by the signal thread */
	pthread_mutex_t lock;
	enum shutdown_part part;
	double deadline;       /* monotonic; 0: none */
	int signals_seen;
	bool stop;             /* set by the main thread at the end, with SIGUSR2 as the wake-up */
	double grace;          /* the options' grace, set before the thread starts */
} signals = {.pipe = {-1, -1}, .lock = PTHREAD_MUTEX_INITIALIZER};

/* The main thread enters a part of the shutdown that may take `seconds`. */
static void shutdown_enter(enum shutdown_part part, double seconds)
{
	pthread_mutex_lock(&signals.lock);
	signals.part = part;
	signals.deadline = seconds > 0 ? now_monotonic() + seconds : 0;
	pthread_mutex_unlock(&signals.lock);
}

/* Signal thread: a part overran its bound. Logs it and ends the process. */
static void watchdog_check(void)
{
	pthread_mutex_lock(&signals.lock);
	enum shutdown_part part = signals.part;
	double deadline = signals.deadline;
	pthread_mutex_unlock(&signals.lock);
	if (deadline == 0 || now_monotonic() < deadline)
		return;
	int status = part_overrun_status[part];
	log_error("shutdown: %s did not finish in time; exiting anyway (status %d)",
	          part_names[part], status);
	_exit(status);
}

/* The signals the signal thread takes (and every other thread blocks). */
static void taken_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR2);
}

static void *signal_main(void *argument)
{
	(void)argument;
	sigset_t set;
	taken_signals(&set);
	for (;;) {
		pthread_mutex_lock(&signals.lock);
		bool shutting = signals.signals_seen > 0, stop = signals.stop;
		pthread_mutex_unlock(&signals.lock);
		if (stop)
			return NULL;
		siginfo_t info;
		struct timespec tick = {0, WATCHDOG_TICK_NS};
		/* Idle until the first signal; then woken every tick to watch the
		 * shutdown's deadline. */
		int number = shutting ? sigtimedwait(&set, &info, &tick) : sigwaitinfo(&set, &info);
		if (number < 0) {
			if (errno == EAGAIN)
				watchdog_check();
			continue;
		}
		if (number == SIGUSR2)
			continue; /* the main thread's wake-up: stop is checked above */
		if (number == SIGHUP) {
			/* Its default would kill weftd silently and orphan every job's
			 * processes (a closed terminal sends it). weftd has nothing to
			 * reload: options are read once at start. */
			log_warn("SIGHUP ignored: weftd has nothing to reload; restart it to change its "
			         "options, or send SIGTERM to stop it");
			continue;
		}
		pthread_mutex_lock(&signals.lock);
		int seen = signals.signals_seen++;
		if (seen == 0) {
			signals.part = PART_DRAINING;
			signals.deadline = now_monotonic() + signals.grace + REPLY_DRAIN_SECONDS +
			                   DRAIN_SLACK_SECONDS;
		}
		pthread_mutex_unlock(&signals.lock);
		if (seen > 0) {
			log_warn("second %s: exiting at once, without waiting for jobs or replies",
			         strsignal(number));
			_exit(0);
		}
		unsigned char byte = (unsigned char)number;
		if (write(signals.pipe[1], &byte, 1) != 1)
			log_error("cannot hand %s to the main loop: %s", strsignal(number),
			          strerror(errno));
	}
}

/* Blocks the signals that the signal thread takes, in this thread and so in
 * every thread made after it: call before any other thread exists. */
static int signals_block(void)
{
	sigset_t set;
	taken_signals(&set);
	return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? WEFT_OK : WEFT_EINTERNAL;
}

static int signals_start(double grace)
{
	signals.grace = grace;
	if (pipe2(signals.pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return WEFT_EINTERNAL;
	if (pthread_create(&signals.thread, NULL, signal_main, NULL) != 0)
		return WEFT_EINTERNAL;
	pthread_setname_np(signals.thread, "weft-signals");
	signals.started = true;
	return WEFT_OK;
}

/* Main thread, at the very end: stops the signal thread (a signal arriving
 * from now on stays pending and dies with the process). */
static void signals_stop(void)
{
	if (signals.started) {
		pthread_mutex_lock(&signals.lock);
		signals.stop = true;
		pthread_mutex_unlock(&signals.lock);
		pthread_kill(signals.thread, SIGUSR2);
		pthread_join(signals.thread, NULL);
		signals.started = false;
	}
	for (int i = 0; i < 2; i++)
		if (signals.pipe[i] >= 0)
			close(signals.pipe[i]);
}

static void pipe_closed_on_worker(void *argument);

/* A worker's thread, as it stops: what lives on its loop goes with it. */
static void worker_exit(struct event_base *base)
{
	proc_shutdown(base);
	http_worker_exit(base);
	redis_worker_exit(base);
	sql_worker_exit(base);
	sql_mysql_worker_exit(base);
	schedule_worker_exit(base);
}

/* nng thread: a client's connection closed. Its waiters are ended on a worker,
 * since nng's pipe callbacks must not call back into the socket. */
static void on_pipe_closed(void *context, uint32_t pipe)
{
	struct weftd *daemon = context;
	if (waiters_count(daemon->waiters) == 0 && output_waiting() == 0)
		return;
	workers_post(workers_get(daemon->workers, 0), pipe_closed_on_worker,
	             (void *)(uintptr_t)pipe);
}

static struct weftd *the_daemon; /* for pipe_closed_on_worker, set before workers run it */

static void pipe_closed_on_worker(void *argument)
{
	waiters_pipe_closed(the_daemon->waiters, (uint32_t)(uintptr_t)argument);
	output_pipe_closed((uint32_t)(uintptr_t)argument);
}

static void beat(struct weftd *daemon)
{
	atomic_fetch_add_explicit(&daemon->heartbeat, 1, memory_order_relaxed);
}

/* The guard runs on its own thread; the main loop only says when it is stuck. */
static void check_guard(struct main_loop *loop, double now)
{
	if (loop->daemon->server == NULL)
		return;
	struct server_guard_stats guard;
	server_guard_stats(loop->daemon->server, &guard);
	double since = now - (guard.last_round > 0 ? guard.last_round : loop->daemon->started);
	if (since < GUARD_STALE_SECONDS) {
		loop->guard_stale_logged = false;
		return;
	}
	if (!loop->guard_stale_logged)
		log_warn("the listener guard has not finished a round for %.0f s (stuck in nng?)",
		         since);
	loop->guard_stale_logged = true;
}

/* Main loop: tells systemd the one-line summary `systemctl status` shows,
 * when it changed. */
static void refresh_status(struct main_loop *loop)
{
	struct weftd *daemon = loop->daemon;
	if (!notify_enabled())
		return;
	struct jobs_counts counts;
	jobs_counts(daemon->jobs, &counts);
	char line[sizeof(loop->status)];
	snprintf(line, sizeof(line), "STATUS=%llu jobs running, %llu queued; %d workers",
	         (unsigned long long)counts.by_state[JOB_RUNNING],
	         (unsigned long long)counts.by_state[JOB_QUEUED], daemon->options.workers);
	if (strcmp(line, loop->status) == 0)
		return;
	if (notify_send(line) == WEFT_OK)
		memcpy(loop->status, line, sizeof(line));
}

/*
 * Main loop, every WATCHDOG_USEC/2: WATCHDOG=1 only when every loop turned
 * since the last ping. The main loop turns if this runs at all (a wedged main
 * loop runs no timer, so the pings stop); each worker proves it by running
 * the probe posted to it at the previous tick. A worker that has not answered
 * gets no new probe (they would pile up behind the stuck call); once it
 * answers, the pings resume.
 */
static void on_watchdog(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct main_loop *loop = argument;
	struct weftd *daemon = loop->daemon;
	int count = workers_count(daemon->workers), stuck = -1;
	beat(daemon);
	for (int i = 0; i < count; i++)
		if (workers_heartbeat(workers_get(daemon->workers, i)) < loop->probes_sent[i] &&
		    stuck < 0)
			stuck = i;
	if (stuck < 0) {
		if (notify_send("WATCHDOG=1") == WEFT_OK)
			atomic_fetch_add_explicit(&daemon->watchdog_pings, 1, memory_order_relaxed);
		loop->watchdog_stall_logged = false;
	} else if (!loop->watchdog_stall_logged) {
		log_warn("watchdog: worker %d has not answered for %.1f s; systemd is no longer told "
		         "weftd is alive (it restarts weftd at WATCHDOG_USEC)",
		         stuck, (double)notify_watchdog_usec() / 2e6);
		loop->watchdog_stall_logged = true;
	}
	for (int i = 0; i < count; i++) {
		struct workers_worker *worker = workers_get(daemon->workers, i);
		if (workers_heartbeat(worker) >= loop->probes_sent[i]) {
			loop->probes_sent[i]++;
			workers_probe(worker);
		}
	}
}

/* Main loop, once the listeners accept: READY=1 and, with a watchdog, its
 * first probes. Returns 0 or -1 (the timer cannot be made). */
static int service_ready(struct main_loop *loop)
{
	struct weftd *daemon = loop->daemon;
	uint64_t usec = notify_watchdog_usec();
	if (notify_send("READY=1") != WEFT_OK)
		log_warn("cannot tell systemd weftd is ready: %s", strerror(errno));
	refresh_status(loop);
	if (usec == 0)
		return 0;
	int count = workers_count(daemon->workers);
	loop->probes_sent = memory_zalloc((size_t)count * sizeof(*loop->probes_sent));
	loop->watchdog = event_new(loop->base, -1, EV_PERSIST, on_watchdog, loop);
	if (loop->watchdog == NULL)
		return -1;
	for (int i = 0; i < count; i++) {
		loop->probes_sent[i] = 1;
		workers_probe(workers_get(daemon->workers, i));
	}
	struct timeval interval = now_timeval((double)usec / 2e6);
	if (event_add(loop->watchdog, &interval) != 0)
		return -1;
	log_info("systemd watchdog: every %.3f s, while every loop turns", (double)usec / 2e6);
	return 0;
}

/* Retention dropped a job: its output window goes with it (outlog.h). */
static void forget_output(struct job *job)
{
	outlog_forget(job->id);
}

static const struct jobs_observer output_observer = {.evicted = forget_output};

/*
 * After a burst the allocator keeps the freed pages: once nothing is left to
 * run and jobs were dropped (or submitted) since the last time, give them
 * back. At most once a housekeeping tick, and only while idle, so the purge's
 * cost never meets a busy daemon. Main thread.
 */
static void release_memory(struct main_loop *loop, size_t dropped)
{
	struct jobs_counts counts;
	jobs_counts(loop->daemon->jobs, &counts);
	/* Connections closed for idling may have held half-sent messages. */
	struct server_guard_stats guard = {0};
	if (loop->daemon->server != NULL)
		server_guard_stats(loop->daemon->server, &guard);
	bool changed = dropped > 0 || counts.submitted != loop->released_at_submitted ||
	               guard.idle_closed != loop->released_at_idle_closed;
	if (!changed || jobs_unfinished(loop->daemon->jobs) > 0)
		return;
	loop->released_at_submitted = counts.submitted;
	loop->released_at_idle_closed = guard.idle_closed;
	memory_release();
}

static void on_housekeeping(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct main_loop *loop = argument;
	struct weftd *daemon = loop->daemon;
	size_t dropped = jobs_expire(daemon->jobs, now_monotonic());
	if (dropped > 0)
		log_debug("dropped %zu expired jobs", dropped);
	release_memory(loop, dropped);
	subreaper_sweep();
	double now = now_monotonic();
	check_guard(loop, now);
	atomic_store_explicit(&daemon->retention_last_us, (int_least64_t)(now * 1e6),
	                      memory_order_relaxed);
	atomic_fetch_add_explicit(&daemon->retention_runs, 1, memory_order_relaxed);
	if (loop->grace_deadline == 0)
		refresh_status(loop);
	beat(daemon);
}

/* What replay tells the jobs it ends Interrupted about their processes: the
 * containment check at start (cgroup_init) has already killed what a
 * previous weftd's jobs left in their cgroups; without cgroups nothing can
 * be found. Main thread. */
static void note_interrupted(void)
{
	char note[256];
	json_t *containment = cgroup_stats();
	if (!cgroup_enabled()) {
		snprintf(note, sizeof(note),
		         "without a cgroup per job (%s), processes it started in a session of their "
		         "own may still run",
		         json_string_value(json_object_get(containment, "reason")));
	} else {
		json_int_t processes =
			json_integer_value(json_object_get(containment, "leftover_processes_killed"));
		json_int_t groups = json_integer_value(json_object_get(containment, "leftover_jobs_killed"));
		if (processes > 0 || groups > 0)
			snprintf(note, sizeof(note),
			         "at start weftd killed what running jobs had left in their cgroups (%lld "
			         "processes in %lld cgroups)",
			         (long long)processes, (long long)groups);
		else
			snprintf(note, sizeof(note), "no job had processes left running (their cgroups "
			                             "were empty)");
	}
	json_decref(containment);
	journal_set_interrupted_note(note);
}

/* Opens the journal and replays it, before anything listens (issue 12). */
static int open_journal(struct weftd *daemon)
{
	const struct options *options = &daemon->options;
	if (options->state_dir[0] == '\0') {
		log_info("--state-dir none: jobs are kept in memory only and do not survive a "
		         "restart");
		return 0;
	}
	note_interrupted();
	char message[1024];
	if (journal_open(options->state_dir, (enum journal_sync)options->sync, message,
	                 sizeof(message)) != WEFT_OK ||
	    journal_replay(daemon->jobs, message, sizeof(message)) != WEFT_OK) {
		log_error("%s", message);
		return -1;
	}
	/* The --queue options were made first and win over the stored ones. */
	journal_queues_changed();
	if (journal_start(daemon->jobs) != WEFT_OK) {
		log_error("cannot start the journal's writer thread");
		return -1;
	}
	log_info("journal: %s/weft.db, --sync %s", options->state_dir,
	         options->sync == JOURNAL_SYNC_FULL ? "full" : "normal");
	return 0;
}

static void cancel_for_shutdown(struct job *job, void *context)
{
	(void)context;
	runner_cancel(job, proto_job_error(PROTO_JOB_ERROR_SHUTDOWN), "weftd shut down before the job finished");
}

static void on_shutdown_poll(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct main_loop *loop = argument;
	struct weftd *daemon = loop->daemon;
	double now = now_monotonic();
	beat(daemon);
	if (loop->drain_deadline == 0) {
		uint64_t unfinished = jobs_unfinished(daemon->jobs);
		if (unfinished > 0 && now < loop->grace_deadline)
			return;
		if (unfinished > 0) {
			log_info("grace period over: cancelling %llu unfinished jobs",
			         (unsigned long long)unfinished);
			/* They stay as they are in the journal, and come back after a restart. */
			journal_freeze();
			jobs_for_each_unfinished(daemon->jobs, cancel_for_shutdown, NULL);
		}
		waiters_shutdown(daemon->waiters);
		output_shutdown();
		loop->drain_deadline = now + REPLY_DRAIN_SECONDS;
	}
	if (server_outstanding(daemon->server) > 0 && now < loop->drain_deadline)
		return;
	if (server_outstanding(daemon->server) > 0)
		log_warn("%zu replies were not sent before the socket closed",
		         server_outstanding(daemon->server));
	event_base_loopbreak(loop->base);
}

/* Main loop: the signal thread handed over the first SIGTERM or SIGINT. */
static void on_signal_pipe(evutil_socket_t fd, short events, void *argument)
{
	(void)events;
	struct main_loop *loop = argument;
	struct weftd *daemon = loop->daemon;
	unsigned char byte;
	if (read(fd, &byte, 1) != 1 || loop->grace_deadline != 0)
		return;
	beat(daemon);
	log_info("%s: shutting down; %llu jobs unfinished, grace %g s (a second signal exits at "
	         "once)",
	         strsignal(byte), (unsigned long long)jobs_unfinished(daemon->jobs),
	         daemon->options.grace);
	atomic_store(&daemon->shutting_down, true);
	if (notify_enabled()) {
		char line[160];
		snprintf(line, sizeof(line), "STOPPING=1\nSTATUS=stopping: draining %llu jobs (grace %g s)",
		         (unsigned long long)jobs_unfinished(daemon->jobs), daemon->options.grace);
		(void)notify_send(line);
	}
	loop->grace_deadline = now_monotonic() + daemon->options.grace;
	struct timeval interval = now_timeval(SHUTDOWN_POLL_SECONDS);
	event_add(loop->shutdown_poll, &interval);
}

static int main_loop_init(struct main_loop *loop, struct weftd *daemon)
{
	memset(loop, 0, sizeof(*loop));
	loop->daemon = daemon;
	if ((loop->base = event_base_new()) == NULL)
		return -1;
	loop->housekeeping = event_new(loop->base, -1, EV_PERSIST, on_housekeeping, loop);
	loop->shutdown_poll = event_new(loop->base, -1, EV_PERSIST, on_shutdown_poll, loop);
	loop->signal_pipe =
		event_new(loop->base, signals.pipe[0], EV_READ | EV_PERSIST, on_signal_pipe, loop);
	if (loop->housekeeping == NULL || loop->shutdown_poll == NULL || loop->signal_pipe == NULL)
		return -1;
	struct timeval interval = now_timeval(WEFTD_HOUSEKEEPING_SECONDS);
	if (event_add(loop->housekeeping, &interval) != 0 || event_add(loop->signal_pipe, NULL) != 0)
		return -1;
	return 0;
}

static void main_loop_fini(struct main_loop *loop)
{
	if (loop->watchdog != NULL)
		event_free(loop->watchdog);
	free(loop->probes_sent);
	if (loop->signal_pipe != NULL)
		event_free(loop->signal_pipe);
	if (loop->housekeeping != NULL)
		event_free(loop->housekeeping);
	if (loop->shutdown_poll != NULL)
		event_free(loop->shutdown_poll);
	if (loop->base != NULL)
		event_base_free(loop->base);
}

/* A group's id by name or number, or -1 with the error logged. Main thread. */
static long group_id(const char *option, const char *name)
{
	struct group entry, *found = NULL;
	char buffer[16384];
	char *end;
	long number = strtol(name, &end, 10);
	if (*end == '\0' && number >= 0)
		return number;
	if (getgrnam_r(name, &entry, buffer, sizeof(buffer), &found) != 0 || found == NULL) {
		log_error("--%s: no group '%s' on this machine", option, name);
		return -1;
	}
	return (long)found->gr_gid;
}

/* The names the operator gave (--admin-group, --socket-group,
 * --insecure-tcp-user) as ids and a principal. Returns 0, or -1 with the
 * reason logged. Main thread, before listening. */
/* The principal a mapped listener's peers act as (--insecure-tcp-user,
 * --tls-user): an ordinary local user, never root, and on a user's daemon only
 * that user. NULL with the reason logged. Main thread. */
static struct principal *mapped_user(const char *option, const char *name)
{
	struct principal *user = principal_for_user(name);
	if (user == NULL) {
		log_error("--%s: no user '%s' on this machine", option, name);
		return NULL;
	}
	if (user->uid == 0 || (geteuid() != 0 && user->uid != geteuid())) {
		log_error("--%s %s: remote peers may act as an ordinary user, never as root%s", option,
		          name, geteuid() != 0 ? ", and a user's daemon only as its own user" : "");
		principal_unref(user);
		return NULL;
	}
	return user;
}

static int resolve_identities(const struct options *options, struct principal **tcp_user,
                              struct principal **tls_user, long *socket_group)
{
	if (options->admin_group[0] != '\0') {
		long gid = group_id("admin-group", options->admin_group);
		if (gid < 0)
			return -1;
		principal_set_admin_group(gid);
	}
	if (options->socket_group[0] != '\0' &&
	    (*socket_group = group_id("socket-group", options->socket_group)) < 0)
		return -1;
	if (options->tls_user[0] != '\0' &&
	    (*tls_user = mapped_user("tls-user", options->tls_user)) == NULL)
		return -1;
	if (options->insecure_tcp_user[0] == '\0')
		return 0;
	if ((*tcp_user = mapped_user("insecure-tcp-user", options->insecure_tcp_user)) == NULL)
		return -1;
	log_warn("tcp listeners admit every peer that reaches them as user %s (--insecure-tcp-user)",
	         options->insecure_tcp_user);
	return 0;
}

/*
 * The composition root of the executors: sets each up and registers its
 * functions, so the registry (functions.h) depends on none of them. The order
 * is the order `functions` lists them in. Main thread, before any request.
 * Returns WEFT_OK or an error code, with nothing left set up.
 */
static int executors_init(const struct options *options)
{
	static const struct function *const builtins[] = {
		&echo_function,
		&coroutines_sleep_function,
		&exec_function,
		&coroutines_spawn_tree_function,
		&coroutines_await_function,
		&gather_function,
		&gather_race_function,
		&coroutines_count_function,
		&http_get_function,
		&http_request_function,
		&redis_command_function,
		&sql_query_function,
		&testhooks_stall_function, /* refused and unlisted without --test-hooks */
		&testhooks_hold_function,  /* likewise */
		&testhooks_block_function, /* likewise */
	};
	int rv = exec_init(options->procs, options->output_max);
	if (rv != WEFT_OK)
		return rv;
	if ((rv = threaded_init(options->threads)) != WEFT_OK) {
		exec_fini();
		return rv;
	}
	if ((rv = http_init()) != WEFT_OK) {
		threaded_fini();
		exec_fini();
		return rv;
	}
	if ((rv = sql_mysql_init()) != WEFT_OK) {
		http_fini();
		threaded_fini();
		exec_fini();
		return rv;
	}
	functions_clear();
	for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]) && rv == WEFT_OK; i++)
		rv = functions_register(builtins[i]);
	const struct function *function;
	for (size_t i = 0; rv == WEFT_OK && (function = threaded_function(i)) != NULL; i++)
		rv = functions_register(function);
	for (size_t i = 0; rv == WEFT_OK && i < options->plugin_count; i++) {
		char message[512];
		if ((rv = plugin_load(options->plugins[i], message, sizeof(message))) != WEFT_OK)
			log_error("%s", message);
		else
			log_info("plugin %s loaded", options->plugins[i]);
	}
	if (rv == WEFT_OK && options->plugin_dir[0] != '\0') {
		char message[512];
		if ((rv = plugin_load_dir(options->plugin_dir, message, sizeof(message))) != WEFT_OK)
			log_error("%s", message);
	}
	if (rv != WEFT_OK) {
		plugin_fini();
		sql_mysql_fini();
		http_fini();
		threaded_fini();
		exec_fini();
	}
	return rv;
}

/* Stops the executors: the thread pool's threads are told to stop. Main thread. */
static void executors_fini(void)
{
	plugin_fini();
	sql_mysql_fini();
	http_fini();
	threaded_fini();
	exec_fini();
}

int daemon_run(const struct options *options)
{
	static struct weftd daemon;
	struct main_loop loop;
	int status = 1;
	memset(&loop, 0, sizeof(loop));
	daemon.options = *options;
	daemon.started = now_monotonic();
	the_daemon = &daemon;
	memory_init();
	log_set_level(options->log_level);
	/* Under systemd, priorities for journald instead of our own timestamps. */
	(void)log_detect_journal();
	/* First: it changes the environment, which no other thread may read meanwhile. */
	char notify_message[256];
	if (notify_init(notify_message, sizeof(notify_message)) != WEFT_OK) {
		log_error("%s", notify_message);
		return 1;
	}
	if (options->test_hooks)
		testhooks_enable();
	signal(SIGPIPE, SIG_IGN);
	/* Before any thread exists, so that every thread inherits the mask. */
	if (signals_block() != WEFT_OK || signals_start(options->grace) != WEFT_OK) {
		log_error("cannot set up the signal thread: %s", strerror(errno));
		signals_stop();
		return 1;
	}
	if (evthread_use_pthreads() != 0) {
		log_error("libevent has no pthreads support");
		signals_stop();
		return 1;
	}
	event_set_log_callback(log_from_libevent);
	/* Before the chdir below: a relative path is weftd's caller's. */
	if (resolve_set_conf(options->resolv_conf) != WEFT_OK) {
		log_error("--resolv-conf: cannot read %s: %s", options->resolv_conf, strerror(errno));
		signals_stop();
		return 1;
	}

	/* Jobs without a cwd must not run wherever weftd happened to be started,
	 * and weftd must not keep a directory busy. */
	if (chdir("/") != 0)
		log_warn("cannot change to /: %s", strerror(errno));
	/* Before any job can run: a previous weftd's leftovers die first. */
	char containment[1024];
	if (cgroup_init(options->cgroup, options->listen[0], containment, sizeof(containment)) !=
	    WEFT_OK) {
		log_error("%s", containment);
		signals_stop();
		return 1;
	}
	if (cgroup_enabled())
		log_info("%s", containment);
	else
		log_warn("%s", containment);
	proc_child_set_job_oom_score(options->job_oom_set, options->job_oom_relative,
	                             options->job_oom_score);
	/* No cgroups: what leaves a job's process group comes back to weftd. */
	if (!cgroup_enabled() && subreaper_init())
		log_info("containment: weftd is a child subreaper, so processes that leave a job's "
		         "process group are killed when their job ends");
	daemon.jobs = jobs_new(options->retain, options->retain_max);
	jobs_add_observer(daemon.jobs, &output_observer);
	jobs_set_max_bytes(daemon.jobs, options->max_bytes);
	quota_set_limit(QUOTA_BYTES, options->max_bytes_per_user);
	char spool_message[512];
	if (spool_configure(options->state_dir, options->output_spool, options->output_spool_all,
	                    spool_message, sizeof(spool_message)) != 0) {
		log_error("%s", spool_message);
		goto fail_functions;
	}
	int rv = executors_init(options);
	if (rv != 0) {
		log_error("cannot set up the executors: %s", weft_strerror(rv));
		goto fail_functions;
	}
	rv = workers_start(options->workers, worker_exit, &daemon.workers);
	if (rv != 0) {
		log_error("cannot start %d workers: %s", options->workers, strerror(rv));
		goto fail_workers;
	}
	runner_init(daemon.jobs, daemon.workers, &schedule_retry_policy);
	for (size_t i = 0; i < options->queue_count; i++) {
		char name[80];
		snprintf(name, sizeof(name), "%s", options->queues[i]);
		char *equals = strchr(name, '=');
		*equals = '\0';
		queues_set(name, (unsigned)strtoul(equals + 1, NULL, 10));
	}
	daemon.waiters = waiters_new(daemon.jobs, options->max_waiters);
	output_init(daemon.jobs, options->max_waiters);
	outlog_init(options->output_window, options->output_budget, options->output_idle);
	pool_set_idle_seconds(options->io_idle);
	quota_set_limit(QUOTA_PENDING, options->max_pending_per_user);
	quota_set_limit(QUOTA_WAITERS, options->max_waiters_per_user);
	quota_set_limit(QUOTA_CONNECTIONS, options->max_connections_per_user);
	quota_set_limit(QUOTA_ITEM_BYTES, options->max_item_bytes_per_user);
	/* An item must fit in a reply of `next`, which carries at most half of --max-message. */
	items_configure(options->max_item_bytes_per_job,
	                options->max_item_bytes < options->max_message / 2 ? options->max_item_bytes
	                                                                   : options->max_message / 2);
	generator_init(daemon.jobs);
	struct events_limits feed = {
		.max_entries = options->events_max,
		.max_bytes = options->events_max_bytes,
		.share_entries = options->events_max_per_user,
		.share_bytes = options->events_max_bytes_per_user,
	};
	events_init(daemon.jobs, &feed);
	if (main_loop_init(&loop, &daemon) != 0) {
		log_error("cannot set up the main event loop");
		goto fail_loop;
	}

	struct principal *tcp_user = NULL, *tls_user = NULL;
	long socket_group = -1;
	if (resolve_identities(options, &tcp_user, &tls_user, &socket_group) != 0) {
		principal_unref(tls_user);
		goto fail_loop;
	}
	/* After the configuration is checked, before anything listens. */
	if (open_journal(&daemon) != 0) {
		principal_unref(tcp_user);
		principal_unref(tls_user);
		goto fail_loop;
	}
	const char *urls[OPTIONS_MAX_LISTEN];
	for (size_t i = 0; i < options->listen_count; i++)
		urls[i] = options->listen[i];
	struct server_config config = {
		.urls = urls,
		.url_count = options->listen_count,
		.max_message = options->max_message,
		.handler = ops_handle,
		.pipe_closed = on_pipe_closed,
		.context = &daemon,
		.tcp_user = tcp_user,
		.tls_user = tls_user,
		.tls_cert = options->tls_cert[0] != '\0' ? options->tls_cert : NULL,
		.tls_key = options->tls_key[0] != '\0' ? options->tls_key : NULL,
		.tls_ca = options->tls_ca[0] != '\0' ? options->tls_ca : NULL,
		.socket_group = socket_group,
		.idle_timeout = options->idle_timeout,
	};
	char message[768];
	rv = server_start(&config, &daemon.server, message, sizeof(message));
	principal_unref(tcp_user);
	principal_unref(tls_user);
	if (rv != 0) {
		log_error("%s", message);
		goto fail_loop;
	}
	log_info("weftd %s ready: %d workers, protocol %d", PROTO_SOFTWARE_VERSION, options->workers,
	         PROTO_VERSION);
	bool serving = service_ready(&loop) == 0;
	if (serving)
		event_base_dispatch(loop.base);
	else
		log_error("exiting: cannot set up the systemd watchdog's timer");

	shutdown_enter(PART_CLOSING_SOCKET, SOCKET_CLOSE_SECONDS);
	/* On failure the guard was left running with the server's memory, which
	 * server_stop then does not free; nothing else of the daemon is its. */
	server_stop(daemon.server);
	daemon.server = NULL;
	status = serving ? 0 : 1;
fail_loop:
	shutdown_enter(PART_STOPPING_WORKERS, WORKERS_STOP_SECONDS);
	main_loop_fini(&loop);
	/* While the workers still run: a pool call that ends now posts its end to
	 * its worker; once the pool is closed, later ones free themselves instead
	 * of posting to a stopped (or freed) runtime. The pool itself is freed
	 * after the workers (executors_fini), whose stops may still cancel calls. */
	threaded_close();
	workers_stop(daemon.workers);
	testhooks_workers_stopped(); /* debug.block's calls end now, late on purpose */
	journal_close();
	waiters_free(daemon.waiters);
	events_fini();
fail_workers:
	shutdown_enter(PART_FREEING, FREE_SECONDS);
	queues_fini();
	executors_fini();
	outlog_fini(); /* every proc is gone with the workers: no log grows */
	principal_fini();
fail_functions:
	jobs_free(daemon.jobs);
	shutdown_enter(PART_DONE, 0);
	cgroup_fini();
	signals_stop();
	notify_fini();
	if (status == 0)
		log_info("stopped");
	return status;
}

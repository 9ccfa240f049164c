/*
 * weftd's life: start-up, the main thread's loop (signals, housekeeping, the
 * listener guard) and an orderly shutdown.
 *
 * Shutdown (SIGTERM/SIGINT): new jobs are refused at once; jobs still running
 * get --grace seconds to finish, then are cancelled (error type "Shutdown");
 * every waiting client is answered; when every reply has been sent (or after a
 * short bound) the socket closes and the workers stop. A second signal skips
 * the grace.
 */
#include "daemon/daemon.h"

#include <errno.h>
#include <grp.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/functions.h"
#include "daemon/principal.h"
#include "daemon/jobs.h"
#include "daemon/log.h"
#include "daemon/memory.h"
#include "daemon/now.h"
#include "daemon/ops.h"
#include "daemon/proc.h"
#include "daemon/queues.h"
#include "daemon/runner.h"
#include "daemon/schedule.h"
#include "daemon/server.h"
#include "daemon/waiters.h"
#include "daemon/workers.h"
#include "proto/proto.h"
#include "weft/error.h"

/* How often the main loop expires old jobs. */
#define HOUSEKEEPING_SECONDS 1.0
/* How often the listener guard pings each listener (see server.h). */
#define LISTENER_WATCH_SECONDS 0.5
/* How often shutdown checks whether jobs and replies are done. */
#define SHUTDOWN_POLL_SECONDS 0.01
/* The longest shutdown waits for replies to leave once every job is over. */
#define REPLY_DRAIN_SECONDS 2.0

/* State of the main loop; main thread only. */
struct main_loop {
	struct daemon *daemon;
	struct event_base *base;
	struct event *housekeeping;
	struct event *listener_watch;
	struct event *shutdown_poll;
	struct event *signals[2];
	double grace_deadline; /* monotonic; 0 while running */
	double drain_deadline; /* monotonic; 0 until every job is over */
	int signals_seen;
};

static struct timeval timeval_of(double seconds)
{
	struct timeval value = {.tv_sec = (time_t)seconds,
	                        .tv_usec = (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};
	return value;
}

static void pipe_closed_on_worker(void *argument);

/* A worker's thread, as it stops: what lives on its loop goes with it. */
static void worker_exit(struct event_base *base)
{
	proc_shutdown(base);
	schedule_worker_exit(base);
}

/* nng thread: a client's connection closed. Its waiters are ended on a worker,
 * since nng's pipe callbacks must not call back into the socket. */
static void on_pipe_closed(void *context, uint32_t pipe)
{
	struct daemon *daemon = context;
	if (waiters_count(daemon->waiters) == 0)
		return;
	workers_post(workers_get(daemon->workers, 0), pipe_closed_on_worker,
	             (void *)(uintptr_t)pipe);
}

static struct daemon *the_daemon; /* for pipe_closed_on_worker, set before workers run it */

static void pipe_closed_on_worker(void *argument)
{
	waiters_pipe_closed(the_daemon->waiters, (uint32_t)(uintptr_t)argument);
}

static void on_housekeeping(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct main_loop *loop = argument;
	size_t dropped = jobs_expire(loop->daemon->jobs, now_wall());
	if (dropped > 0)
		log_debug("dropped %zu expired jobs", dropped);
}

static void on_listener_watch(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct main_loop *loop = argument;
	server_watch_listeners(loop->daemon->server);
}

static void cancel_for_shutdown(struct job *job, void *context)
{
	(void)context;
	runner_cancel(job, PROTO_JOB_ERROR_SHUTDOWN, "weftd shut down before the job finished");
}

static void on_shutdown_poll(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct main_loop *loop = argument;
	struct daemon *daemon = loop->daemon;
	double now = now_monotonic();
	if (loop->drain_deadline == 0) {
		uint64_t unfinished = jobs_unfinished(daemon->jobs);
		if (unfinished > 0 && now < loop->grace_deadline)
			return;
		if (unfinished > 0) {
			log_info("grace period over: cancelling %llu unfinished jobs",
			         (unsigned long long)unfinished);
			jobs_for_each_unfinished(daemon->jobs, cancel_for_shutdown, NULL);
		}
		waiters_shutdown(daemon->waiters);
		loop->drain_deadline = now + REPLY_DRAIN_SECONDS;
	}
	if (server_outstanding(daemon->server) > 0 && now < loop->drain_deadline)
		return;
	if (server_outstanding(daemon->server) > 0)
		log_warn("%zu replies were not sent before the socket closed",
		         server_outstanding(daemon->server));
	event_base_loopbreak(loop->base);
}

static void on_signal(evutil_socket_t signal_number, short events, void *argument)
{
	(void)events;
	struct main_loop *loop = argument;
	struct daemon *daemon = loop->daemon;
	if (loop->signals_seen++ > 0) {
		log_info("second %s: skipping the rest of the grace period",
		         strsignal((int)signal_number));
		loop->grace_deadline = now_monotonic();
		return;
	}
	log_info("%s: shutting down; %llu jobs unfinished, grace %g s",
	         strsignal((int)signal_number),
	         (unsigned long long)jobs_unfinished(daemon->jobs),
	         daemon->options.grace);
	atomic_store(&daemon->shutting_down, true);
	loop->grace_deadline = now_monotonic() + daemon->options.grace;
	struct timeval interval = timeval_of(SHUTDOWN_POLL_SECONDS);
	event_add(loop->shutdown_poll, &interval);
}

static int main_loop_init(struct main_loop *loop, struct daemon *daemon)
{
	memset(loop, 0, sizeof(*loop));
	loop->daemon = daemon;
	if ((loop->base = event_base_new()) == NULL)
		return -1;
	loop->housekeeping = event_new(loop->base, -1, EV_PERSIST, on_housekeeping, loop);
	loop->listener_watch = event_new(loop->base, -1, EV_PERSIST, on_listener_watch, loop);
	loop->shutdown_poll = event_new(loop->base, -1, EV_PERSIST, on_shutdown_poll, loop);
	loop->signals[0] = evsignal_new(loop->base, SIGTERM, on_signal, loop);
	loop->signals[1] = evsignal_new(loop->base, SIGINT, on_signal, loop);
	if (loop->housekeeping == NULL || loop->listener_watch == NULL || loop->shutdown_poll == NULL ||
	    loop->signals[0] == NULL ||
	    loop->signals[1] == NULL)
		return -1;
	struct timeval interval = timeval_of(HOUSEKEEPING_SECONDS);
	event_add(loop->housekeeping, &interval);
	struct timeval watch_interval = timeval_of(LISTENER_WATCH_SECONDS);
	event_add(loop->listener_watch, &watch_interval);
	event_add(loop->signals[0], NULL);
	event_add(loop->signals[1], NULL);
	return 0;
}

static void main_loop_fini(struct main_loop *loop)
{
	for (int i = 0; i < 2; i++)
		if (loop->signals[i] != NULL)
			event_free(loop->signals[i]);
	if (loop->housekeeping != NULL)
		event_free(loop->housekeeping);
	if (loop->listener_watch != NULL)
		event_free(loop->listener_watch);
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

int daemon_run(const struct options *options)
{
	static struct daemon daemon;
	struct main_loop loop;
	int status = 1;
	memset(&loop, 0, sizeof(loop));
	daemon.options = *options;
	daemon.started = now_monotonic();
	the_daemon = &daemon;
	memory_init();
	log_set_level(options->log_level);
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0) {
		log_error("libevent has no pthreads support");
		return 1;
	}

	/* Jobs without a cwd must not run wherever weftd happened to be started,
	 * and weftd must not keep a directory busy. */
	if (chdir("/") != 0)
		log_warn("cannot change to /: %s", strerror(errno));
	daemon.jobs = jobs_new(options->retain, options->retain_max);
	int rv = functions_init(options->procs, options->output_max, options->threads);
	if (rv != 0) {
		log_error("cannot set up the executors: %s", weft_strerror(rv));
		goto fail_functions;
	}
	rv = workers_start(options->workers, worker_exit, &daemon.workers);
	if (rv != 0) {
		log_error("cannot start %d workers: %s", options->workers, strerror(rv));
		goto fail_workers;
	}
	runner_init(daemon.jobs, daemon.workers);
	for (size_t i = 0; i < options->queue_count; i++) {
		char name[80];
		snprintf(name, sizeof(name), "%s", options->queues[i]);
		char *equals = strchr(name, '=');
		*equals = '\0';
		queues_set(name, (unsigned)strtoul(equals + 1, NULL, 10));
	}
	daemon.waiters = waiters_new(daemon.jobs, options->max_waiters);
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

	event_base_dispatch(loop.base);

	server_stop(daemon.server);
	log_info("stopped");
	status = 0;
fail_loop:
	main_loop_fini(&loop);
	workers_stop(daemon.workers);
	waiters_free(daemon.waiters);
fail_workers:
	queues_fini();
	functions_fini();
	principal_fini();
fail_functions:
	jobs_free(daemon.jobs);
	return status;
}

/*
 * proc: runs the process of one exec job on a worker's event loop: starts
 * it, feeds its stdin, collects its stdout and stderr, stops it on request,
 * reaps it, and reports once.
 *
 * THREADS: a proc belongs to the event_base it was started on. Every proc_
 * function, and the done callback, runs on the one thread that runs that
 * base (a worker loop). Other threads ask that worker, through its queue, to
 * call proc_terminate/proc_abandon.
 *
 * The process:
 * - runs in its own session and process group (sid = pgid = its pid), with
 *   no controlling terminal, and, when cgroup_enabled() (cgroup.h), in a
 *   cgroup of its own that it joins before exec. Stopping a job signals the
 *   cgroup and the group; when the job ends, whatever is left in the group is
 *   sent SIGKILL before the leader is reaped (the unreaped leader keeps the
 *   group id from being reused, so the kill cannot hit a stranger), and with a
 *   cgroup the job ends (done is called) only once the cgroup is empty, which
 *   catches processes that left the group with setsid. Without a cgroup they
 *   escape.
 * - starts through posix_spawn (fast path) unless it needs an identity change,
 *   rlimits, another umask than weftd's or a cgroup; then through fork and async-signal-safe child code
 *   (proc_child.h). A fork child also gets PR_SET_PDEATHSIG(SIGKILL), tied to
 *   the worker thread that forked it (workers live as long as the daemon).
 * - gets a fresh environment, never the daemon's (so no NOTIFY_SOCKET or
 *   WATCHDOG_*): PATH=/usr/local/bin:/usr/bin:/bin, LANG=C.UTF-8, and from the
 *   identity HOME, USER, LOGNAME, SHELL (/bin/sh when the identity has none);
 *   the job's `env` is merged over it, and `env_clear` starts from nothing
 *   but the job's `env`. argv[0] without '/' is searched in the job's PATH
 *   (the default one when the job's environment has none).
 * - reads /dev/null as stdin unless the job gave `stdin`, which is written
 *   from the loop without blocking and then closed. If the command exits
 *   without reading it all, the rest is dropped. THE DAEMON MUST IGNORE
 *   SIGPIPE (signal(SIGPIPE, SIG_IGN) before starting workers); children get
 *   default dispositions back.
 * - has its stdout and stderr read at the same time from non-blocking pipes.
 *   Each keeps the first output_max bytes; beyond that the pipe is still
 *   drained (so the command never blocks on a full pipe) and "truncated"
 *   becomes true. With capture false both go to /dev/null and are null in
 *   the result.
 * - is finished when it has exited and both pipes are at EOF. If processes
 *   it started keep a pipe open after it exited, the pipes are closed after
 *   options->linger seconds, those processes are killed with the group, and
 *   the result gets "pipes_closed_early": true.
 * - Children are reaped only through a pidfd watched by the loop and
 *   waitid(P_PIDFD): no SIGCHLD handler, no waitpid(-1). SIGCHLD must keep
 *   its default disposition (SIG_IGN would make the kernel reap children
 *   itself, and waitid would find nothing). Every descriptor proc makes is
 *   O_CLOEXEC, and both start paths close everything above 2 in the child.
 *
 * The result, a JSON object handed to done:
 *   {"exit_code": 0, "signal": null, "stdout": "...", "stderr": "...",
 *    "truncated": false, "duration": 0.012, "pid": 123}
 * (every byte read also goes to options->log, outlog.h, for live readers)
 *   exit_code: the exit status, or null when killed by a signal or never run
 *   signal:    the number of the signal that killed it, or null
 *   stdout, stderr: the captured output, or null without capture. As text
 *              when both streams are valid UTF-8 (NUL bytes kept as
 *              "\u0000"); otherwise both in base64 and the result has
 *              "encoding": "base64", so no byte is lost or replaced (a
 *              multi-byte character cut by the cap counts as not UTF-8).
 *   encoding:  "base64" in that case, absent otherwise
 *   truncated: true when either stream went past output_max
 *   duration:  seconds from the start to the exit of the command
 *   pid:       the process id, or null when no process was made
 *   pipes_closed_early: present (true) only in the case described above
 */
#ifndef PROC_H
#define PROC_H

#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>
#include <jansson.h>

#include "daemon/core/account.h"
#include "daemon/executors/process/execargs.h"

#define PROC_DEFAULT_OUTPUT_MAX ((size_t)1024 * 1024)
#define PROC_DEFAULT_LINGER 1.0


struct proc;
struct outlog;
struct inbuf;

/*
 * A second consumer of stdout that can make proc stop reading it (exec's
 * `items: "lines"`, lines.h). Every call is on the proc's loop thread.
 * feed takes every byte read from stdout; finish is called at its end (EOF);
 * each returns true when it takes more now, false when it is full: proc then
 * reads no more stdout until wake_fd becomes readable and resume returns
 * true (after a false finish, finish is called again). The sink is borrowed
 * until done is called, or until proc_abandon or proc_destroy return: those
 * drop it (an abandoned job's output goes nowhere).
 */
struct proc_sink {
	bool (*feed)(void *arg, const char *data, size_t length);
	bool (*finish)(void *arg);
	bool (*resume)(void *arg);
	int wake_fd;
	void *arg;
};

/* What the daemon decides, as opposed to what the job asks (execargs). */
struct proc_options {
	size_t output_max;   /* bytes kept per stream; 0: PROC_DEFAULT_OUTPUT_MAX */
	double linger;       /* seconds the pipes may stay open after the exit; <= 0: PROC_DEFAULT_LINGER */
	/* Borrowed for the call of proc_start only. NULL: run as the daemon, and
	 * the environment has no HOME/USER/LOGNAME (SHELL=/bin/sh). */
	const struct account *identity;
	/* Where every byte read from stdout and stderr also goes (outlog.h), for
	 * readers while the job runs; borrowed for the call (proc takes its own
	 * reference and ends the log when it is freed). NULL: none. With a log
	 * that asks for backpressure, proc stops reading the pipes while
	 * outlog_full says so. */
	struct outlog *log;
	/* Where the command's stdin comes from while it runs (inbuf.h), instead
	 * of the job's `stdin` text; borrowed for the call (proc takes its own
	 * reference and ends it when the pipe closes or the proc is freed).
	 * NULL: none. */
	struct inbuf *input;
	/* Copied; NULL: none. See struct proc_sink. While it is full, the
	 * linger after the exit waits for it too, unless the proc is being
	 * terminated. */
	const struct proc_sink *sink;
};

enum proc_status {
	PROC_STATUS_SUCCESS,     /* exited with 0 */
	PROC_STATUS_EXIT_STATUS, /* exited with another code: error type ExitStatus */
	PROC_STATUS_SIGNAL,      /* killed by a signal: error type Signal */
	PROC_STATUS_SPAWN_ERROR, /* could not be started: error type SpawnError */
	/* The kernel's OOM killer killed one of the job's processes (its cgroup's
	 * memory.events), whatever the exit: error type OutOfMemory. exit_code or
	 * signal still say how the command itself ended. */
	PROC_STATUS_OUT_OF_MEMORY,
};

/* How the process ended. Borrowed: valid only during the done callback. */
struct proc_outcome {
	enum proc_status status;
	const char *error_type; /* NULL on success, else one of PROTO_JOB_ERROR_MAP */
	const char *message;    /* NULL on success; for people: "command exited with status 3" */
	int exit_code;          /* PROC_STATUS_SUCCESS / EXIT_STATUS (/ OUT_OF_MEMORY) */
	int signal;             /* PROC_STATUS_SIGNAL (/ OUT_OF_MEMORY) */
};

/*
 * Called once per proc_start that returned WEFT_OK (unless proc_abandon,
 * proc_destroy or proc_shutdown came first), from the loop, never from
 * inside a proc_ function. result: a new reference the callback owns
 * (steals); NULL only when memory ran out. The proc is already freed when
 * the callback runs: do not use it there or after (starting new procs from
 * the callback is fine).
 */
/*
 * How a command ended, from what was collected of it: spawn_message (empty
 * when it started), whether its status was reaped (info), and the OOM kills
 * its cgroup counted. Fills *outcome; outcome->message points into message
 * (size bytes, the caller's). An OOM kill turns any started command's end,
 * even exit 0, into PROC_STATUS_OUT_OF_MEMORY, keeping exit_code or signal.
 * Any thread: pure. proc's own end calls it; exposed so that the mapping is
 * tested where no memory controller exists.
 */
void proc_judge_end(const char *spawn_message, const char *command, bool have_status,
	const siginfo_t *info, uint64_t oom_kills, struct proc_outcome *outcome, char *message,
	size_t size);

typedef void proc_done_fn(void *arg, json_t *result, const struct proc_outcome *outcome);

/*
 * Starts the command of `args` on `base`. Worker loop thread (the one that
 * runs base).
 * args: borrowed for the call (proc copies the stdin text; nothing else is
 *   kept). options: borrowed for the call; NULL means all defaults.
 * Returns WEFT_OK and *out: done will be called. A command that cannot be
 * started (not found, not executable, a refused rlimit, no more processes or
 * descriptors) is not a failure of this call: it comes to done as
 * PROC_STATUS_SPAWN_ERROR with a message naming the cause, like
 * "cannot run 'nosuchcmd': No such file or directory".
 * Returns WEFT_ENOMEM (or WEFT_EINTERNAL when the base refuses an event)
 * without calling done and without leaving a process behind.
 */
int proc_start(struct event_base *base, const struct execargs *args,
	const struct proc_options *options, proc_done_fn *done, void *arg, struct proc **out);

/*
 * Stops the job (timeout, cancel): SIGTERM (and SIGCONT, so a stopped
 * process gets it) to the whole process group now, SIGKILL to the group
 * kill_after seconds later unless everything has been reaped by then
 * (kill_after <= 0: SIGKILL at once). done still comes, once, when the
 * process is reaped; its outcome is usually PROC_STATUS_SIGNAL (the caller
 * knows it asked, and reports Timeout or Cancelled). Calling it again
 * re-sends SIGTERM and restarts the grace. Loop thread.
 */
void proc_terminate(struct proc *proc, double kill_after);

/* Called once when an abandoned proc's process has been reaped. */
typedef void proc_reaped_fn(void *arg);

/*
 * Drops interest in the result (a job already finished as cancelled, or its
 * client gone): the process group is stopped as by proc_terminate(kill_after)
 * and reaped by the loop as usual, but done is never called. Instead
 * reaped(arg), when reaped is not NULL, is called once from the loop when
 * the process has been reaped: the moment to give its --procs slot back, so
 * that a cancelled job holds its slot until its process is really gone. The
 * proc frees itself then; the caller must forget `proc` now. Loop thread.
 */
void proc_abandon(struct proc *proc, double kill_after, proc_reaped_fn *reaped, void *arg);

/*
 * For shutting the loop down: SIGKILL to the group, then waits for the
 * leader right here (a killed process exits in microseconds, unless it is
 * stuck in the kernel), frees everything; done is not called. The caller
 * must forget `proc` now. Call it for every live proc before freeing the
 * base (or proc_shutdown for all of them). Neither done nor reaped is
 * called. Loop thread.
 */
void proc_destroy(struct proc *proc);

/*
 * For shutting a worker down: proc_destroy for every proc still on `base`,
 * abandoned ones included (nobody else can reach those). Call it before
 * event_base_free. Loop thread (the procs of a base are tracked per thread).
 */
void proc_shutdown(struct event_base *base);

/* The process id, or 0 when no process was made (a spawn error is pending).
 * Loop thread. */
pid_t proc_pid(const struct proc *proc);

#endif

/*
 * proc: one job's process on a worker loop (contract in proc.h).
 *
 * Life of a proc, all on the loop thread:
 *
 *   proc_start ── pipes, then proc_child_spawn (environment, PATH search,
 *      │          posix_spawn or fork); a failure to start is recorded and
 *      │          `finish_event` made active, so done still comes from the
 *      │          loop, never from inside proc_start
 *      ▼
 *   running ──── stdin_event writes the stdin text; stream events read
 *      │          stdout/stderr (capped, drained beyond the cap); kill_timer
 *      │          escalates a proc_terminate to SIGKILL
 *      ▼ exit_event: the pidfd became readable, the leader is a zombie
 *   exited ───── not reaped yet, on purpose: the zombie keeps the process
 *      │          group id reserved, so signalling the group stays safe while
 *      │          grandchildren may still hold the pipes; linger_timer bounds
 *      │          that wait
 *      ▼ both pipes at EOF, or linger_timer
 *   finish ───── SIGKILL to what is left of the group, waitid(P_PIDFD) (does
 *      │          not block: the leader is already dead)
 *      ▼ with a cgroup (cgroup.h): SIGKILL to the cgroup; until cgroup.events
 *      │          says it is empty, cgroup_timer polls it (and kills again, for
 *      │          a fork that raced the kill); then the group is removed
 *   complete ─── read the fork child's report, build the result, free the
 *                proc, then call done with copies of what it needs.
 *
 * The events are embedded in struct proc (event_assign). finish runs inside
 * one of their callbacks; it deletes them all first, and libevent does not
 * touch an event after its callback returns, so freeing the struct there is
 * safe.
 */
#include "daemon/executors/process/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event_struct.h>

#include "daemon/executors/process/cgroup.h"
#include "daemon/executors/process/inbuf.h"
#include "daemon/executors/process/outlog.h"
#include "daemon/executors/process/proc_child.h"
#include "daemon/base/now.h"
#include "daemon/executors/process/subreaper.h"
#include "proto/base64.h"
#include "proto/proto.h"
#include "weft/error.h"

enum { STREAM_STDOUT, STREAM_STDERR, STREAM_COUNT };

/* Reads per stream callback before the loop gets a turn to serve others. */
#define READS_PER_CALLBACK 16
#define READ_CHUNK 65536
#define FIRST_CAPACITY 16384
/* Writes of the stdin text per callback. */
#define WRITE_CHUNK 65536
#define MESSAGE_SIZE 512
/* How often the exit is polled where pidfd_open does not exist. */
#define EXIT_POLL_MICROSECONDS 10000
/* How often a job's cgroup is looked at while its last processes die; killed
 * processes go in microseconds, so the first look is soon. */
#define CGROUP_POLL_FIRST_MICROSECONDS 500
#define CGROUP_POLL_MAX_MICROSECONDS 50000
/* proc_destroy (shutdown) waits this long for a job's cgroup to empty. */
#define CGROUP_DESTROY_WAIT_SECONDS 2.0
/* While a backpressured log is full, how often it is looked at again: a
 * reader on another thread frees room, and a timer on this loop is simpler
 * than a wake-up across threads for a state that lasts a round trip. */
#define RESUME_POLL_FIRST_MICROSECONDS 100
#define RESUME_POLL_MAX_MICROSECONDS 1000

/* An output pipe's capacity: a fast writer fills the default 64 KiB in tens
 * of microseconds, and every wake-up of this loop costs more than the copy. */
#define PIPE_CAPACITY (256 * 1024)

static void grow_pipe(int fd)
{
	/* Best effort: a smaller pipe only costs wake-ups. */
	(void)fcntl(fd, F_SETPIPE_SZ, PIPE_CAPACITY);
}

/* Where output past the cap goes to be thrown away; per thread because
 * every worker loop reads its own procs. */
static _Thread_local char discard_buffer[READ_CHUNK];

struct proc_stream {
	struct proc *proc;
	int fd;             /* parent's read end, -1 once at EOF or closed */
	struct event event;
	char *data;         /* owned; the first `length` bytes of output */
	size_t length;
	size_t capacity;
	size_t limit;       /* output_max, lowered if memory ran out */
	bool truncated;
};

struct proc {
	LIST_ENTRY(proc) live; /* on this thread's live_procs */
	struct event_base *base;
	proc_done_fn *done;
	void *arg;

	pid_t pid;          /* 0 when no process was made */
	int pidfd;          /* -1 when none */
	bool exited;        /* the pidfd reported the exit */
	bool reaped;        /* waitid collected the leader (or it never existed) */
	bool abandoned;     /* proc_abandon: no done, reaped instead */
	proc_reaped_fn *on_reaped; /* proc_abandon's callback, may be NULL */
	void *on_reaped_arg;
	bool pipes_closed_early;
	bool capture;
	int report_fd;      /* fork path: read end of the child's report pipe, else -1 */

	struct event exit_event;
	struct event kill_timer;
	struct event linger_timer;
	struct event finish_event;
	double linger;

	/* The job's cgroup (fd -1: none, process groups only), and while its last
	 * processes die after the leader was reaped, the poll of it. */
	struct cgroup_job cgroup;
	struct event cgroup_timer;
	long cgroup_poll_us;
	uint64_t oom_kills; /* the group's memory.events oom_kill, read before its removal */
	bool have_status;   /* finish: the leader's status is in `info` */
	siginfo_t info;

	int stdin_fd;       /* parent's write end, -1 when none or done */
	struct event stdin_event;
	char *stdin_data;   /* owned copy of the job's stdin text */
	size_t stdin_length;
	size_t stdin_offset;
	/* Streamed stdin (inbuf.h), a reference; NULL: none. wake_event watches
	 * its eventfd: a writer added bytes. */
	struct inbuf *input;
	struct event wake_event;

	struct proc_stream streams[STREAM_COUNT];

	/* The job's output for readers (outlog.h), a reference; NULL: none. While
	 * it is full (backpressure) the stream events are off and resume_timer
	 * polls it. */
	struct outlog *log;
	bool paused;
	struct event resume_timer;
	long resume_poll_us;

	/* The stdout sink (proc.h), while has_sink. While it is full
	 * (sink_paused) stdout's event is off and sink_event watches its wake
	 * descriptor. */
	struct proc_sink sink;
	bool has_sink;
	bool sink_paused;
	struct event sink_event;
	bool terminating; /* proc_terminate was called: the linger waits for no sink */

	struct timespec started;
	struct timespec ended;

	/* For messages built after the fact (the fork child's report). */
	char *command;      /* owned copy of argv[0] */
	char *cwd;          /* owned copy, NULL when none */
	struct execargs_limit limits[EXECARGS_MAX_LIMITS];
	size_t limit_count;
	uid_t uid;
	gid_t gid;

	/* A failure found before or while starting; empty when none. */
	char spawn_message[MESSAGE_SIZE];
};

/*
 * Every live proc of this thread, abandoned ones included, so that
 * proc_shutdown can find those nobody holds any more. Thread-local because
 * a proc lives and dies on its base's thread: no lock is needed.
 */
static _Thread_local LIST_HEAD(proc_list, proc) live_procs;

static void live_link(struct proc *proc)
{
	LIST_INSERT_HEAD(&live_procs, proc, live);
}

static void live_unlink(struct proc *proc)
{
	LIST_REMOVE(proc, live);
}

/* ------------------------------------------------------------ output to JSON */

/* A JSON string of bytes already known to be valid UTF-8 (NUL bytes kept, as
 * "\u0000"). New reference, NULL when memory ran out. */
static json_t *text_to_json(const char *data, size_t length)
{
	return length == 0 ? json_string("") : json_stringn_nocheck(data, length);
}

/* A JSON string of the bytes in base64. New reference, NULL when memory ran out. */
static json_t *base64_to_json(const char *data, size_t length)
{
	size_t size = base64_encoded_size(length);
	char *text = malloc(size + 1);
	if (text == NULL)
		return NULL;
	base64_encode(data, length, text);
	json_t *string = json_stringn_nocheck(text, size);
	free(text);
	return string;
}

/* ----------------------------------------------------------------- helpers */

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void delete_event(struct event *event)
{
	if (event_initialized(event))
		event_del(event);
}

static double seconds_between(const struct timespec *from, const struct timespec *to)
{
	return (double)(to->tv_sec - from->tv_sec) + (double)(to->tv_nsec - from->tv_nsec) / 1e9;
}

static void record_spawn_error(struct proc *proc, const char *format, const char *subject,
	int error)
{
	snprintf(proc->spawn_message, sizeof(proc->spawn_message), format, subject,
		strerror(error));
}

/* ------------------------------------------------------------------ finish */

static void finish(struct proc *proc);

/* Stops the events and closes the descriptors. Safe to call twice. */
static void proc_teardown(struct proc *proc)
{
	delete_event(&proc->cgroup_timer);
	delete_event(&proc->exit_event);
	delete_event(&proc->kill_timer);
	delete_event(&proc->linger_timer);
	delete_event(&proc->finish_event);
	delete_event(&proc->stdin_event);
	delete_event(&proc->wake_event);
	delete_event(&proc->resume_timer);
	delete_event(&proc->sink_event);
	for (int i = 0; i < STREAM_COUNT; i++) {
		delete_event(&proc->streams[i].event);
		close_fd(&proc->streams[i].fd);
	}
	close_fd(&proc->stdin_fd);
	close_fd(&proc->report_fd);
	close_fd(&proc->pidfd);
}

static void proc_free(struct proc *proc)
{
	live_unlink(proc);
	proc_teardown(proc);
	if (proc->cgroup.fd >= 0) {
		/* Only on paths where nothing of the job can be left (the normal end
		 * removes it in finish): a failed start, or proc_destroy's bounded wait. */
		(void)cgroup_job_signal(&proc->cgroup, SIGKILL);
		(void)cgroup_job_remove(&proc->cgroup);
	}
	for (int i = 0; i < STREAM_COUNT; i++)
		free(proc->streams[i].data);
	if (proc->input != NULL) {
		inbuf_end(proc->input);
		inbuf_unref(proc->input);
	}
	if (proc->log != NULL) {
		/* Every path ends here (done, abandoned, destroyed): readers hear the end. */
		outlog_end(proc->log);
		outlog_unref(proc->log);
	}
	free(proc->stdin_data);
	free(proc->cwd);
	free(proc->command);
	free(proc);
}

/*
 * Signals the job's whole tree: its cgroup when it has one (which holds every
 * process it made, those that left the group by setsid included), and its
 * session's process group, whose id is the leader's pid (the child calls
 * setsid first thing). Until the child has done so the group does not exist
 * yet (ESRCH), nor has it joined the cgroup; then the child alone is the tree
 * (it has not exec'd, so it has no children) and gets the signal itself.
 * Call only while the leader is unreaped (its pid is still ours).
 */
static void signal_tree(struct proc *proc, int sig)
{
	if (proc->cgroup.fd >= 0)
		(void)cgroup_job_signal(&proc->cgroup, sig);
	if (kill(-proc->pid, sig) != 0 && errno == ESRCH)
		(void)kill(proc->pid, sig);
}

/* Kills what is left of the group and collects the leader. Blocks only if
 * the leader has not exited yet (proc_destroy, or a pidfd failure). */
static bool reap(struct proc *proc, siginfo_t *info)
{
	int rv;

	if (proc->pid <= 0 || proc->reaped)
		return false;
	/* The leader is unreaped, so the group id is still ours. */
	signal_tree(proc, SIGKILL);
	memset(info, 0, sizeof(*info));
	do {
		if (proc->pidfd >= 0)
			rv = waitid(P_PIDFD, (id_t)proc->pidfd, info, WEXITED);
		else
			rv = waitid(P_PID, (id_t)proc->pid, info, WEXITED);
	} while (rv < 0 && errno == EINTR);
	proc->reaped = true;
	/* Without cgroups, what escaped its process group dies now (subreaper.h). */
	subreaper_leader_ended(proc->pid);
	return rv == 0 && info->si_pid != 0;
}

static void read_child_report(struct proc *proc)
{
	struct proc_child_report report;
	char subject[64];
	ssize_t got;

	if (proc->report_fd < 0)
		return;
	/* The child is dead and the parent's write end is closed: no wait. */
	do
		got = read(proc->report_fd, &report, sizeof(report));
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(report))
		return;
	switch (report.stage) {
	case PROC_CHILD_STAGE_CGROUP:
		record_spawn_error(proc, "cannot put '%s' into its cgroup: %s", proc->command,
			report.error);
		break;
	case PROC_CHILD_STAGE_STDIO:
		record_spawn_error(proc, "cannot set up the standard streams of '%s': %s", proc->command,
			report.error);
		break;
	case PROC_CHILD_STAGE_GROUPS:
		snprintf(subject, sizeof(subject), "%u", (unsigned)proc->uid);
		record_spawn_error(proc, "cannot set the supplementary groups of uid %s: %s", subject,
			report.error);
		break;
	case PROC_CHILD_STAGE_GID:
		snprintf(subject, sizeof(subject), "%u", (unsigned)proc->gid);
		record_spawn_error(proc, "cannot switch to gid %s: %s", subject, report.error);
		break;
	case PROC_CHILD_STAGE_UID:
		snprintf(subject, sizeof(subject), "%u", (unsigned)proc->uid);
		record_spawn_error(proc, "cannot switch to uid %s: %s", subject, report.error);
		break;
	case PROC_CHILD_STAGE_RLIMIT:
		if (report.index >= 0 && (size_t)report.index < proc->limit_count) {
			const struct execargs_limit *limit = &proc->limits[report.index];
			if (limit->value == RLIM_INFINITY)
				snprintf(subject, sizeof(subject), "%s' to 'unlimited", limit->name);
			else
				snprintf(subject, sizeof(subject), "%s' to '%llu", limit->name,
					(unsigned long long)limit->value);
		} else {
			snprintf(subject, sizeof(subject), "?");
		}
		record_spawn_error(proc, "cannot set limit '%s': %s", subject, report.error);
		break;
	case PROC_CHILD_STAGE_CHDIR:
		record_spawn_error(proc, "cannot change to directory '%s': %s",
			proc->cwd != NULL ? proc->cwd : "", report.error);
		break;
	case PROC_CHILD_STAGE_DEATHSIG:
		record_spawn_error(proc, "cannot tie '%s' to the daemon's life: %s", proc->command,
			report.error);
		break;
	default:
		record_spawn_error(proc, "cannot run '%s': %s", proc->command, report.error);
		break;
	}
}

static void json_set(json_t *object, const char *key, json_t *value)
{
	/* Out of memory leaves the key out; the caller's result is still usable. */
	if (object != NULL)
		json_object_set_new(object, key, value);
	else
		json_decref(value);
}

/*
 * With a cgroup: whether it is empty now; if so it is removed. If not, what
 * is left gets SIGKILL (again: a process forked while the last kill went
 * through is caught by this one). A group that cannot be read counts as
 * empty: waiting for it could never end.
 */
static bool cgroup_drained(struct proc *proc)
{
	bool populated = false;

	if (proc->cgroup.fd < 0)
		return true;
	if (cgroup_job_populated(&proc->cgroup, &populated) == WEFT_OK && populated) {
		(void)cgroup_job_signal(&proc->cgroup, SIGKILL);
		return false;
	}
	/* Unreadable: taken as none, since the exit status still tells a kill. */
	(void)cgroup_job_oom_kills(&proc->cgroup, &proc->oom_kills);
	(void)cgroup_job_remove(&proc->cgroup);
	return true;
}

static void complete(struct proc *proc);

static void cgroup_poll_due(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;
	struct timeval next;

	(void)fd;
	(void)what;
	if (cgroup_drained(proc)) {
		complete(proc);
		return;
	}
	/* Back off: a process stuck in the kernel may take a while to die. */
	if (proc->cgroup_poll_us < CGROUP_POLL_MAX_MICROSECONDS)
		proc->cgroup_poll_us *= 2;
	next.tv_sec = 0;
	next.tv_usec = proc->cgroup_poll_us;
	if (event_add(&proc->cgroup_timer, &next) < 0)
		complete(proc); /* cannot wait: proc_free kills the rest */
}

static void finish(struct proc *proc)
{
	struct timeval first = {0, CGROUP_POLL_FIRST_MICROSECONDS};

	delete_event(&proc->resume_timer);
	proc->paused = false;
	if (proc->has_sink && !proc->sink_paused && proc->streams[STREAM_STDOUT].fd >= 0)
		/* The pipes close early: the last line so far still counts. */
		(void)proc->sink.finish(proc->sink.arg);
	delete_event(&proc->sink_event);
	proc->sink_paused = false;
	for (int i = 0; i < STREAM_COUNT; i++) {
		delete_event(&proc->streams[i].event);
		close_fd(&proc->streams[i].fd);
	}
	proc->have_status = reap(proc, &proc->info);
	if (!proc->exited)
		clock_gettime(CLOCK_MONOTONIC, &proc->ended);
	/* The job is over only when none of its processes is left. */
	if (!cgroup_drained(proc)) {
		proc->cgroup_poll_us = CGROUP_POLL_FIRST_MICROSECONDS;
		if (event_add(&proc->cgroup_timer, &first) == 0)
			return;
	}
	complete(proc);
}

/* Any thread: it reads only its arguments. See proc.h. */
void proc_judge_end(const char *spawn_message, const char *command, bool have_status,
	const siginfo_t *info, uint64_t oom_kills, struct proc_outcome *outcome, char *message,
	size_t size)
{
	*outcome = (struct proc_outcome){PROC_STATUS_SUCCESS, NULL, NULL, 0, 0};
	message[0] = '\0';
	if (spawn_message[0] != '\0') {
		outcome->status = PROC_STATUS_SPAWN_ERROR;
		snprintf(message, size, "%s", spawn_message);
	} else if (!have_status) {
		outcome->status = PROC_STATUS_SPAWN_ERROR;
		snprintf(message, size, "cannot collect the exit status of '%s'", command);
	} else if (info->si_code == CLD_EXITED) {
		outcome->exit_code = info->si_status;
		if (info->si_status != 0) {
			outcome->status = PROC_STATUS_EXIT_STATUS;
			snprintf(message, size, "command exited with status %d", info->si_status);
		}
	} else {
		const char *name = sigabbrev_np(info->si_status);
		outcome->status = PROC_STATUS_SIGNAL;
		outcome->signal = info->si_status;
		snprintf(message, size, "command was killed by signal %d (SIG%s)%s",
			info->si_status, name != NULL ? name : "?",
			info->si_code == CLD_DUMPED ? " and dumped core" : "");
	}
	/* Whoever the victim was (the leader, or a child the leader then saw
	 * die), part of the job's work was killed for memory. */
	if (oom_kills > 0 && outcome->status != PROC_STATUS_SPAWN_ERROR) {
		char ending[MESSAGE_SIZE / 2];
		if (outcome->status == PROC_STATUS_SUCCESS)
			snprintf(ending, sizeof(ending), "command exited with status 0");
		else
			snprintf(ending, sizeof(ending), "%s", message);
		snprintf(message, size,
			"the job ran out of memory: the kernel's OOM killer killed %llu of its "
			"processes (limits.memory, or what weftd's own cgroup may use); %s",
			(unsigned long long)oom_kills, ending);
		outcome->status = PROC_STATUS_OUT_OF_MEMORY;
	}
	switch (outcome->status) {
	case PROC_STATUS_SUCCESS:
		break;
	case PROC_STATUS_EXIT_STATUS:
		outcome->error_type = proto_job_error(PROTO_JOB_ERROR_EXIT_STATUS);
		break;
	case PROC_STATUS_SIGNAL:
		outcome->error_type = proto_job_error(PROTO_JOB_ERROR_SIGNAL);
		break;
	case PROC_STATUS_SPAWN_ERROR:
		outcome->error_type = proto_job_error(PROTO_JOB_ERROR_SPAWN);
		break;
	case PROC_STATUS_OUT_OF_MEMORY:
		outcome->error_type = proto_job_error(PROTO_JOB_ERROR_OUT_OF_MEMORY);
		break;
	}
	outcome->message = outcome->status == PROC_STATUS_SUCCESS ? NULL : message;
}

static void complete(struct proc *proc)
{
	proc_done_fn *done = proc->done;
	void *arg = proc->arg;
	struct proc_outcome outcome;
	char message[MESSAGE_SIZE];
	const siginfo_t info = proc->info;
	bool have_status = proc->have_status;
	bool abandoned = proc->abandoned;
	uint64_t oom_kills = proc->oom_kills;
	proc_reaped_fn *on_reaped = proc->on_reaped;
	void *on_reaped_arg = proc->on_reaped_arg;
	json_t *result;

	read_child_report(proc);
	proc_judge_end(proc->spawn_message, proc->command, have_status, &info, oom_kills,
		&outcome, message, sizeof(message));

	result = abandoned ? NULL : json_object();
	if (result != NULL) {
		bool exited = have_status && info.si_code == CLD_EXITED &&
			outcome.status != PROC_STATUS_SPAWN_ERROR;
		bool killed = have_status && info.si_code != CLD_EXITED &&
			outcome.status != PROC_STATUS_SPAWN_ERROR;
		json_set(result, "exit_code", exited ? json_integer(info.si_status) : json_null());
		json_set(result, "signal", killed ? json_integer(outcome.signal) : json_null());
		/* Text when both streams are valid UTF-8, else both in base64, so
		 * that no byte is lost and no reply breaks a client's JSON. */
		bool text = true;
		for (int i = 0; i < STREAM_COUNT; i++)
			text = text && base64_is_utf8(proc->streams[i].data, proc->streams[i].length);
		for (int i = 0; i < STREAM_COUNT; i++) {
			struct proc_stream *stream = &proc->streams[i];
			json_t *value = json_null();
			if (proc->capture)
				value = text ? text_to_json(stream->data, stream->length)
					     : base64_to_json(stream->data, stream->length);
			json_set(result, i == STREAM_STDOUT ? "stdout" : "stderr", value);
		}
		if (proc->capture && !text)
			json_set(result, "encoding", json_string("base64"));
		json_set(result, "truncated",
			json_boolean(proc->streams[0].truncated || proc->streams[1].truncated));
		json_set(result, "duration", json_real(seconds_between(&proc->started, &proc->ended)));
		json_set(result, "pid", proc->pid > 0 ? json_integer(proc->pid) : json_null());
		if (proc->pipes_closed_early)
			json_set(result, "pipes_closed_early", json_true());
	}
	proc_free(proc);
	if (!abandoned)
		done(arg, result, &outcome);
	else if (on_reaped != NULL)
		on_reaped(on_reaped_arg);
}

/* ---------------------------------------------------------------- callbacks */

static bool streams_closed(const struct proc *proc)
{
	return proc->streams[STREAM_STDOUT].fd < 0 && proc->streams[STREAM_STDERR].fd < 0;
}

static void stream_close(struct proc_stream *stream)
{
	delete_event(&stream->event);
	close_fd(&stream->fd);
}

/* Whether stream i's event may be on: open, and not held by the sink. */
static bool stream_resumable(const struct proc *proc, int i)
{
	return proc->streams[i].fd >= 0 && !(i == STREAM_STDOUT && proc->sink_paused) &&
	       !proc->paused;
}

/* Backpressure: the log is full of unread output, so the pipes are left
 * alone (the command blocks on write) until a reader makes room. */
static void pause_reading(struct proc *proc)
{
	struct timeval next = {0, RESUME_POLL_FIRST_MICROSECONDS};

	for (int i = 0; i < STREAM_COUNT; i++)
		delete_event(&proc->streams[i].event);
	proc->paused = true;
	proc->resume_poll_us = RESUME_POLL_FIRST_MICROSECONDS;
	if (event_add(&proc->resume_timer, &next) < 0) {
		/* Cannot wait: read on, and let the window drop the oldest bytes. */
		proc->paused = false;
		for (int i = 0; i < STREAM_COUNT; i++)
			if (stream_resumable(proc, i))
				(void)event_add(&proc->streams[i].event, NULL);
	}
}

static void resume_due(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;
	struct timeval next;

	(void)fd;
	(void)what;
	if (outlog_full(proc->log)) {
		if (proc->resume_poll_us < RESUME_POLL_MAX_MICROSECONDS)
			proc->resume_poll_us *= 2;
		next.tv_sec = 0;
		next.tv_usec = proc->resume_poll_us;
		if (event_add(&proc->resume_timer, &next) == 0)
			return;
	}
	proc->paused = false;
	for (int i = 0; i < STREAM_COUNT; i++)
		if (stream_resumable(proc, i))
			(void)event_add(&proc->streams[i].event, NULL);
}

/* The sink is full: stdout is left alone until it says it takes more. */
static void pause_stdout(struct proc *proc)
{
	delete_event(&proc->streams[STREAM_STDOUT].event);
	proc->sink_paused = true;
	if (event_add(&proc->sink_event, NULL) < 0) {
		/* Cannot wait: the sink gets no more (proc_sink's contract
		 * allows dropping), and stdout is read on. */
		proc->has_sink = false;
		proc->sink_paused = false;
		if (!proc->paused)
			(void)event_add(&proc->streams[STREAM_STDOUT].event, NULL);
	}
}

/* The sink's wake descriptor: it may have room again. */
static void sink_woken(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;

	(void)fd;
	(void)what;
	if (!proc->sink.resume(proc->sink.arg))
		return;
	delete_event(&proc->sink_event);
	proc->sink_paused = false;
	if (stream_resumable(proc, STREAM_STDOUT))
		(void)event_add(&proc->streams[STREAM_STDOUT].event, NULL);
}

/* Where the result's copy of a stream (its first `limit` bytes) goes on,
 * grown as needed; the discard buffer once it is full. */
static char *capture_room(struct proc_stream *stream, size_t *room)
{
	if (stream->length < stream->limit) {
		if (stream->length == stream->capacity) {
			size_t capacity = stream->capacity < FIRST_CAPACITY / 2 ? FIRST_CAPACITY
			                                                        : stream->capacity * 2;
			char *grown;
			if (capacity > stream->limit)
				capacity = stream->limit;
			grown = realloc(stream->data, capacity);
			if (grown != NULL) {
				stream->data = grown;
				stream->capacity = capacity;
			} else {
				/* Keep what we have; the rest counts as past the cap. */
				stream->limit = stream->length;
			}
		}
		if (stream->length < stream->capacity) {
			*room = stream->capacity - stream->length;
			return stream->data + stream->length;
		}
	}
	*room = sizeof(discard_buffer);
	return discard_buffer;
}

/* Copies what the result keeps of `length` bytes read into the log. */
static void capture_copy(struct proc_stream *stream, const char *data, size_t length)
{
	while (length > 0) {
		size_t room;
		char *target = capture_room(stream, &room);
		if (target == discard_buffer) {
			stream->truncated = true;
			return;
		}
		size_t part = length < room ? length : room;
		memcpy(target, data, part);
		stream->length += part;
		data += part;
		length -= part;
	}
}

/* After bytes were read: pauses what must wait (the log is full, or the
 * sink). Returns true when reading stops for now. */
static bool after_read(struct proc *proc, bool sink_full)
{
	if (proc->log != NULL && outlog_full(proc->log)) {
		if (sink_full)
			proc->sink_paused = true;
		pause_reading(proc);
		if (sink_full)
			pause_stdout(proc);
		return true;
	}
	if (sink_full) {
		pause_stdout(proc);
		return true;
	}
	return false;
}

static void stream_readable(evutil_socket_t fd, short what, void *arg)
{
	struct proc_stream *stream = arg;
	struct proc *proc = stream->proc;

	(void)fd;
	(void)what;
	if (proc->log != NULL && outlog_full(proc->log)) {
		pause_reading(proc);
		return;
	}
	bool is_stdout = stream == &proc->streams[STREAM_STDOUT];
	enum outlog_stream which = is_stdout ? OUTLOG_STDOUT : OUTLOG_STDERR;
	for (int round = 0; round < READS_PER_CALLBACK; round++) {
		char *target;
		size_t room;
		ssize_t got;

		/* With a log, the pipe is read straight into it (one copy less for
		 * a fast command), and the result keeps its copy of the first
		 * output_max bytes; without one, into the result or thrown away. */
		if (proc->log != NULL)
			target = outlog_reserve(proc->log, which, OUTLOG_APPEND_MAX, &room);
		else
			target = capture_room(stream, &room);
		/* A pipe holds PIPE_CAPACITY, more than the window keeps room for:
		 * a longer read would push unread output out of a waiting window. */
		if (room > OUTLOG_APPEND_MAX)
			room = OUTLOG_APPEND_MAX;
		got = read(stream->fd, target, room);
		if (proc->log != NULL) {
			if (got > 0)
				capture_copy(stream, target, (size_t)got);
			/* Before the commit: the bytes stay where they are until the
			 * next reserve. */
			bool sink_full = got > 0 && is_stdout && proc->has_sink &&
			                 !proc->sink.feed(proc->sink.arg, target, (size_t)got);
			outlog_commit(proc->log, which, got > 0 ? (size_t)got : 0, true);
			if (got > 0 && after_read(proc, sink_full))
				goto flush;
			if (got > 0)
				continue;
		} else if (got > 0) {
			if (target == discard_buffer)
				stream->truncated = true;
			else
				stream->length += (size_t)got;
			bool sink_full = is_stdout && proc->has_sink &&
			                 !proc->sink.feed(proc->sink.arg, target, (size_t)got);
			if (after_read(proc, sink_full))
				goto flush;
			continue;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EAGAIN)
			goto flush;
		/* EOF, or an error that no retry will cure. The sink's last line may
		 * wait for room: then the pipe stays open (EOF is read again). */
		if (is_stdout && proc->has_sink && !proc->sink.finish(proc->sink.arg)) {
			pause_stdout(proc);
			goto flush;
		}
		stream_close(stream);
		break;
	}
	/* The readers are woken once for the burst (outlog_append_quiet). */
	if (proc->log != NULL)
		outlog_flush(proc->log);
	if (stream->fd < 0 && proc->exited && streams_closed(proc))
		finish(proc);
	return;
flush:
	if (proc->log != NULL)
		outlog_flush(proc->log);
}

static void stdin_close(struct proc *proc)
{
	delete_event(&proc->stdin_event);
	delete_event(&proc->wake_event);
	close_fd(&proc->stdin_fd);
	free(proc->stdin_data);
	proc->stdin_data = NULL;
	if (proc->input != NULL)
		inbuf_end(proc->input); /* writers are told the stdin is closed */
}

/* Streamed stdin: the pipe can take more. */
static void stdin_stream_writable(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;

	(void)fd;
	(void)what;
	switch (inbuf_drain(proc->input, proc->stdin_fd)) {
	case 0:
		return; /* the pipe is full: wait until it is writable */
	case 1:
		/* All written: wait for the next bytes (wake_event). */
		delete_event(&proc->stdin_event);
		return;
	default:
		/* The writer's end of input, or the command closed its stdin. */
		stdin_close(proc);
	}
}

/* Streamed stdin: a writer added bytes (or the end). */
static void stdin_woken(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;

	(void)fd;
	(void)what;
	inbuf_woken(proc->input);
	if (proc->stdin_fd >= 0)
		stdin_stream_writable(proc->stdin_fd, EV_WRITE, proc);
	if (proc->stdin_fd >= 0 && inbuf_pending(proc->input) > 0)
		(void)event_add(&proc->stdin_event, NULL);
}

static void stdin_writable(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;

	(void)fd;
	(void)what;
	while (proc->stdin_offset < proc->stdin_length) {
		size_t left = proc->stdin_length - proc->stdin_offset;
		ssize_t wrote = write(proc->stdin_fd, proc->stdin_data + proc->stdin_offset,
			left < WRITE_CHUNK ? left : WRITE_CHUNK);
		if (wrote > 0) {
			proc->stdin_offset += (size_t)wrote;
			continue;
		}
		if (wrote < 0 && errno == EINTR)
			continue;
		if (wrote < 0 && errno == EAGAIN)
			return;
		/* EPIPE: the command closed its stdin; the rest is not wanted. */
		break;
	}
	stdin_close(proc);
}

static void process_exited(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;
	struct timeval linger;

	(void)fd;
	(void)what;
	proc->exited = true;
	clock_gettime(CLOCK_MONOTONIC, &proc->ended);
	if (streams_closed(proc)) {
		finish(proc);
		return;
	}
	linger = now_timeval(proc->linger);
	if (event_add(&proc->linger_timer, &linger) < 0) {
		proc->pipes_closed_early = true;
		finish(proc);
	}
}

/* Without a pidfd: WNOWAIT sees the zombie but leaves it unreaped, so the
 * group id stays reserved just as on the pidfd path. */
static void exit_polled(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;
	siginfo_t info;

	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, (id_t)proc->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		info.si_pid == 0)
		return;
	delete_event(&proc->exit_event);
	process_exited(fd, what, arg);
}

static void linger_expired(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;

	(void)fd;
	(void)what;
	if (proc->paused || (proc->sink_paused && !proc->terminating)) {
		/* The pipes still hold output a reader is taking; the wait for
		 * output readers is itself bounded (--output-idle), and the sink's
		 * (a job's items) by the job's timeout or cancel, which terminate. */
		struct timeval linger = now_timeval(proc->linger);
		if (event_add(&proc->linger_timer, &linger) == 0)
			return;
	}
	proc->pipes_closed_early = true;
	finish(proc);
}

static void kill_due(evutil_socket_t fd, short what, void *arg)
{
	struct proc *proc = arg;

	(void)fd;
	(void)what;
	if (proc->pid > 0 && !proc->reaped)
		signal_tree(proc, SIGKILL);
	else if (proc->cgroup.fd >= 0)
		(void)cgroup_job_signal(&proc->cgroup, SIGKILL);
}

static void finish_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg);
}

/* ------------------------------------------------------------------- start */

/*
 * Makes the pipes and the process. A failure the job should hear about is
 * recorded in spawn_message (and WEFT_OK returned); only running out of
 * memory returns an error, and then no process exists.
 */
static int launch(struct proc *proc, const struct execargs *args,
	const struct proc_options *options)
{
	int stdio[3] = {-1, -1, -1};
	int ends[2];
	int cgroup_fd = -1;
	int error, rv = WEFT_OK;

	if (cgroup_enabled()) {
		/* Fails closed: a job that cannot be contained does not run. */
		if (cgroup_job_make(&proc->cgroup) != WEFT_OK ||
			cgroup_job_limit(&proc->cgroup, args->memory_max, args->tasks_max) != WEFT_OK ||
			(cgroup_fd = cgroup_job_procs_fd(&proc->cgroup)) < 0) {
			record_spawn_error(proc, "cannot make a cgroup with its limits for '%s': %s",
				args->argv[0], errno);
			return WEFT_OK;
		}
	}

	if (args->stdin_data != NULL || options->input != NULL) {
		if ((error = proc_child_pipe(ends, 1)) != 0)
			goto pipe_failed;
		stdio[0] = ends[0];
		proc->stdin_fd = ends[1];
	}
	if (args->capture) {
		for (int i = 0; i < STREAM_COUNT; i++) {
			if ((error = proc_child_pipe(ends, 0)) != 0)
				goto pipe_failed;
			stdio[1 + i] = ends[1];
			proc->streams[i].fd = ends[0];
			grow_pipe(ends[0]);
		}
	}
	subreaper_spawn_begin();
	rv = proc_child_spawn(args, options->identity, cgroup_fd, stdio, &proc->pid,
		&proc->report_fd, proc->spawn_message, sizeof(proc->spawn_message));
	subreaper_spawn_end(proc->pid);
	goto close_child_ends;

pipe_failed:
	record_spawn_error(proc, "cannot create pipes for '%s': %s", args->argv[0], error);
close_child_ends:
	for (int i = 0; i < 3; i++)
		close_fd(&stdio[i]);
	close_fd(&cgroup_fd);
	return rv;
}

/* Registers the events of a started process. Returns 0 or WEFT_EINTERNAL. */
static int watch(struct proc *proc)
{
	int bad = 0;

	proc->pidfd = pidfd_open(proc->pid, 0);
	if (proc->pidfd >= 0) {
		bad |= event_assign(&proc->exit_event, proc->base, proc->pidfd, EV_READ,
			process_exited, proc);
		bad |= event_add(&proc->exit_event, NULL);
	} else if (errno == ENOSYS) {
		/* No pidfds here (valgrind 3.19, kernels before 5.3): poll instead. */
		struct timeval interval = {0, EXIT_POLL_MICROSECONDS};
		bad |= event_assign(&proc->exit_event, proc->base, -1, EV_PERSIST, exit_polled, proc);
		bad |= event_add(&proc->exit_event, &interval);
	} else {
		int error = errno;
		siginfo_t info;
		/* EMFILE and the like: the loop cannot wait for it, so stop it and reap now. */
		(void)reap(proc, &info);
		record_spawn_error(proc, "cannot watch '%s': %s", proc->command, error);
		for (int i = 0; i < STREAM_COUNT; i++)
			close_fd(&proc->streams[i].fd);
		close_fd(&proc->stdin_fd);
		event_active(&proc->finish_event, 0, 0);
		return 0;
	}
	for (int i = 0; i < STREAM_COUNT; i++) {
		struct proc_stream *stream = &proc->streams[i];
		if (stream->fd < 0)
			continue;
		bad |= event_assign(&stream->event, proc->base, stream->fd, EV_READ | EV_PERSIST,
			stream_readable, stream);
		bad |= event_add(&stream->event, NULL);
	}
	if (proc->stdin_fd >= 0 && proc->input != NULL) {
		bad |= event_assign(&proc->stdin_event, proc->base, proc->stdin_fd, EV_WRITE | EV_PERSIST,
			stdin_stream_writable, proc);
		bad |= event_assign(&proc->wake_event, proc->base, inbuf_wake_fd(proc->input),
			EV_READ | EV_PERSIST, stdin_woken, proc);
		bad |= event_add(&proc->wake_event, NULL);
		/* Bytes that came before the start are written at once. */
		bad |= event_add(&proc->stdin_event, NULL);
	} else if (proc->stdin_fd >= 0) {
		bad |= event_assign(&proc->stdin_event, proc->base, proc->stdin_fd, EV_WRITE | EV_PERSIST,
			stdin_writable, proc);
		bad |= event_add(&proc->stdin_event, NULL);
	}
	return bad == 0 ? 0 : WEFT_EINTERNAL;
}

int proc_start(struct event_base *base, const struct execargs *args,
	const struct proc_options *options, proc_done_fn *done, void *arg, struct proc **out)
{
	static const struct proc_options defaults = {0, 0, NULL, NULL, NULL, NULL};
	struct proc *proc;
	int rv;

	if (options == NULL)
		options = &defaults;
	proc = calloc(1, sizeof(*proc));
	if (proc == NULL)
		return WEFT_ENOMEM;
	live_link(proc);
	proc->base = base;
	proc->done = done;
	proc->arg = arg;
	proc->pidfd = -1;
	proc->report_fd = -1;
	proc->cgroup.fd = -1;
	proc->stdin_fd = -1;
	proc->capture = args->capture;
	proc->log = options->log != NULL ? outlog_ref(options->log) : NULL;
	proc->input = options->input != NULL ? inbuf_ref(options->input) : NULL;
	proc->linger = options->linger > 0 ? options->linger : PROC_DEFAULT_LINGER;
	if (options->sink != NULL && args->capture) {
		proc->sink = *options->sink;
		proc->has_sink = true;
	}
	for (int i = 0; i < STREAM_COUNT; i++) {
		proc->streams[i].proc = proc;
		proc->streams[i].fd = -1;
		proc->streams[i].limit =
			options->output_max > 0 ? options->output_max : PROC_DEFAULT_OUTPUT_MAX;
	}
	proc->command = strdup(args->argv[0]);
	proc->cwd = args->cwd != NULL ? strdup(args->cwd) : NULL;
	if (args->stdin_data != NULL) {
		proc->stdin_data = malloc(args->stdin_length + 1);
		if (proc->stdin_data != NULL)
			memcpy(proc->stdin_data, args->stdin_data, args->stdin_length + 1);
		proc->stdin_length = args->stdin_length;
	}
	if (proc->command == NULL || (args->cwd != NULL && proc->cwd == NULL) ||
		(args->stdin_data != NULL && proc->stdin_data == NULL)) {
		rv = WEFT_ENOMEM;
		goto fail;
	}
	memcpy(proc->limits, args->limits, sizeof(proc->limits));
	proc->limit_count = args->limit_count;
	/* Only an identity switch can fail on uid or gid, so only it names them. */
	if (options->identity != NULL) {
		proc->uid = options->identity->uid;
		proc->gid = options->identity->gid;
	}
	if (event_assign(&proc->kill_timer, base, -1, 0, kill_due, proc) < 0 ||
		event_assign(&proc->linger_timer, base, -1, 0, linger_expired, proc) < 0 ||
		event_assign(&proc->finish_event, base, -1, 0, finish_due, proc) < 0 ||
		event_assign(&proc->cgroup_timer, base, -1, 0, cgroup_poll_due, proc) < 0 ||
		event_assign(&proc->resume_timer, base, -1, 0, resume_due, proc) < 0 ||
		(proc->has_sink && event_assign(&proc->sink_event, base, proc->sink.wake_fd,
			EV_READ | EV_PERSIST, sink_woken, proc) < 0)) {
		rv = WEFT_EINTERNAL;
		goto fail;
	}

	clock_gettime(CLOCK_MONOTONIC, &proc->started);
	if ((rv = launch(proc, args, options)) != 0)
		goto fail;
	if (proc->pid > 0) {
		if ((rv = watch(proc)) != 0)
			goto fail;
	} else {
		/* Nothing runs: report from the loop, as for any other end. */
		for (int i = 0; i < STREAM_COUNT; i++)
			close_fd(&proc->streams[i].fd);
		close_fd(&proc->stdin_fd);
		proc->reaped = true;
		event_active(&proc->finish_event, 0, 0);
	}
	*out = proc;
	return WEFT_OK;

fail:
	if (proc->pid > 0) {
		siginfo_t info;
		(void)reap(proc, &info);
	}
	proc_free(proc);
	return rv;
}

/* ----------------------------------------------------------------- control */

void proc_terminate(struct proc *proc, double kill_after)
{
	struct timeval grace;

	proc->terminating = true;
	if (proc->pid <= 0 || proc->reaped)
		return;
	signal_tree(proc, SIGTERM);
	signal_tree(proc, SIGCONT);
	if (kill_after <= 0) {
		signal_tree(proc, SIGKILL);
		return;
	}
	grace = now_timeval(kill_after);
	if (event_add(&proc->kill_timer, &grace) < 0)
		signal_tree(proc, SIGKILL);
}

void proc_abandon(struct proc *proc, double kill_after, proc_reaped_fn *reaped, void *arg)
{
	proc->abandoned = true;
	/* Nobody wants the output: the sink is dropped and stdout drained. */
	proc->has_sink = false;
	delete_event(&proc->sink_event);
	if (proc->sink_paused) {
		proc->sink_paused = false;
		if (stream_resumable(proc, STREAM_STDOUT))
			(void)event_add(&proc->streams[STREAM_STDOUT].event, NULL);
	}
	proc->on_reaped = reaped;
	proc->on_reaped_arg = arg;
	proc_terminate(proc, kill_after);
}

void proc_destroy(struct proc *proc)
{
	siginfo_t info;
	struct timespec pause = {0, 500 * 1000};
	struct timespec start, now;

	(void)reap(proc, &info);
	/* Shutdown: the loop is going away, so wait here, bounded, for the
	 * cgroup's last processes (SIGKILLed by reap) to go. */
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!cgroup_drained(proc)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (seconds_between(&start, &now) > CGROUP_DESTROY_WAIT_SECONDS)
			break;
		nanosleep(&pause, NULL);
	}
	proc_free(proc);
}

void proc_shutdown(struct event_base *base)
{
	struct proc *proc = LIST_FIRST(&live_procs), *next;

	for (; proc != NULL; proc = next) {
		next = LIST_NEXT(proc, live);
		if (proc->base == base)
			proc_destroy(proc);
	}
}

pid_t proc_pid(const struct proc *proc)
{
	return proc->pid;
}

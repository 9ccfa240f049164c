/*
 * proc_child: making the process of an exec job; proc's helper, used by
 * nothing else. It builds the child's environment and PATH candidates, then
 * starts the command through one of two paths:
 *
 *   posix_spawn  when no identity change, no rlimit and no cgroup is needed (glibc's
 *                clone(CLONE_VM|CLONE_VFORK): no copy of the daemon's page
 *                tables). PATH is searched in the parent, as the daemon's
 *                user, which is then the job's user too.
 *   fork         otherwise, with async-signal-safe child code; a child that
 *                cannot exec writes a proc_child_report to an O_CLOEXEC pipe
 *                and exits 127, and proc reads it after reaping.
 *
 * Every function runs on the calling thread (a worker loop's) and blocks
 * only for the spawn itself (posix_spawn returns once the child has exec'd;
 * fork returns at once).
 */
#ifndef PROC_CHILD_H
#define PROC_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "daemon/executors/process/execargs.h"
#include "daemon/core/account.h"

/* The step of the fork child's setup that failed. */
enum proc_child_stage {
	PROC_CHILD_STAGE_NONE = 0,
	PROC_CHILD_STAGE_CGROUP,   /* joining the job's cgroup (writing cgroup.procs) */
	PROC_CHILD_STAGE_STDIO,    /* opening /dev/null or dup2 onto 0/1/2 */
	PROC_CHILD_STAGE_GROUPS,   /* setgroups */
	PROC_CHILD_STAGE_GID,      /* setresgid */
	PROC_CHILD_STAGE_UID,      /* setresuid */
	PROC_CHILD_STAGE_RLIMIT,   /* setrlimit of args->limits[index] */
	PROC_CHILD_STAGE_CHDIR,    /* chdir(cwd) */
	PROC_CHILD_STAGE_DEATHSIG, /* PR_SET_PDEATHSIG, or the daemon is already gone */
	PROC_CHILD_STAGE_EXEC,     /* execve of every candidate path failed */
};

/* What a fork child that could not exec writes to the report pipe: one
 * write smaller than PIPE_BUF, so it arrives whole or not at all. */
/* PATH for a job that sets none, and for finding its program. */
#define PROC_CHILD_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

struct proc_child_report {
	int stage;  /* enum proc_child_stage */
	int error;  /* errno of the failed call */
	int index;  /* PROC_CHILD_STAGE_RLIMIT: which limit */
};

/*
 * What exec jobs' oom_score_adj becomes: set false keeps the default (0 when
 * weftd's own is negative, else weftd's own); else score (-1000..1000), or
 * with relative, score above weftd's own (capped at 1000). A job whose score
 * differs from weftd's is forked (posix_spawn cannot set it). Main thread,
 * before the first job starts.
 */
void proc_child_set_job_oom_score(bool set, bool relative, int score);

/*
 * Starts the command of `args`. identity: NULL to run as the daemon (and
 * without HOME/USER/LOGNAME). cgroup_fd: -1, or an O_CLOEXEC descriptor of the
 * job's cgroup.procs (cgroup.h): the child joins that group before anything
 * else, so all it ever starts is in it; posix_spawn cannot do that (glibc
 * 2.36 has no cgroup attribute), so such a child is always forked. stdio: the child's ends for 0, 1, 2 (each >= 3,
 * O_CLOEXEC, as proc_child_pipe makes them), or -1 for /dev/null; the caller
 * closes them afterwards. Everything is borrowed for the call.
 * Returns WEFT_OK and either
 *   *pid > 0: a process exists, in its own process group; *report_fd is the
 *     read end of the report pipe (fork path) or -1; the caller owns it; or
 *   *pid == 0: nothing was started and `message` says why, for people
 *     ("cannot run 'nosuchcmd': No such file or directory").
 * Returns WEFT_ENOMEM when memory ran out; then nothing was started.
 */
int proc_child_spawn(const struct execargs *args, const struct account *identity,
	int cgroup_fd, const int stdio[3], pid_t *pid, int *report_fd, char *message, size_t message_size);

/*
 * A pipe whose ends are both O_CLOEXEC and >= 3 (so dup2 onto 0-2 in a child
 * always makes a new, inheritable descriptor); ends[nonblocking_end] also
 * gets O_NONBLOCK (-1: neither: the child's end must block, as programs
 * expect). Returns 0 or an errno value.
 */
int proc_child_pipe(int ends[2], int nonblocking_end);

#endif

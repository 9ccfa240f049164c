/*
 * cgroup: a job is its cgroup. Each exec job's process is placed in a cgroup
 * v2 group of its own before it execs, so everything it ever starts (through
 * double forks, setsid, daemon(3)) stays in that group; stopping the job
 * signals the whole group, and the job is over only when the group is empty.
 * systemd-run (one cgroup per transient unit) and Slurm's cgroup proctrack do
 * the same.
 *
 * Layout: an instance directory per weftd, <base>/weftd-<hash of its first
 * --listen URL>, with one group per job in it, job-<weftd pid>-<serial>. The
 * base is weftd's own cgroup (/proc/self/cgroup on the cgroup2 mount: under
 * systemd with Delegate=yes that subtree is weftd's to manage) or the
 * directory given with --cgroup DIR (which is then the instance directory
 * itself). Alone in its own (non-root) cgroup, weftd first moves itself into
 * the leaf <base>/supervisor, since cgroup v2 lets only a group without
 * processes hand the memory and pids controllers down to the job groups. The instance directory is the same for a weftd restarted with the
 * same URL, so the next weftd finds the groups of jobs that a killed weftd
 * left behind and kills them before it serves (cgroup_init).
 *
 * Where no group can be made (no cgroup2 mount, no write access, --cgroup
 * off), weftd falls back to process groups (proc.h), says so in the log and
 * in `stats`, and a job that calls setsid can escape.
 *
 * Killing: SIGKILL is cgroup.kill (Linux >= 5.14), which the kernel applies to
 * every process of the group atomically, forks in flight included; without
 * it, or for other signals, each pid listed in cgroup.procs is signalled (a
 * process forked meanwhile is caught by the next round: proc keeps killing
 * until the group is empty).
 *
 * THREADS: cgroup_init and cgroup_fini on the main thread (before the workers
 * start, after they stopped); the rest from any thread (the worker loop that
 * owns the job). Each call is a few small reads and writes of cgroupfs, which
 * never block for long.
 */
#ifndef CGROUP_H
#define CGROUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One job's group. Plain data owned by its proc (proc.c); fd -1: none. */
struct cgroup_job {
	int fd;        /* O_DIRECTORY descriptor of the group, O_CLOEXEC */
	char name[48]; /* its name in the instance directory */
};

/*
 * Decides the containment: setting is "auto", "off" or an absolute directory
 * (--cgroup). instance_key names the instance directory under auto (the
 * first --listen URL). Kills and removes what a previous weftd left in the
 * instance directory, before any job of ours runs. Returns WEFT_OK (cgroups
 * in use, or "auto" fell back to process groups: *message says why, for the
 * log), or WEFT_EINVAL with *message saying what to change when an explicit
 * DIR cannot be used. Main thread, before the workers start.
 */
int cgroup_init(const char *setting, const char *instance_key, char *message,
                size_t message_size);

/* Whether exec jobs get cgroups. Any thread, after cgroup_init. */
bool cgroup_enabled(void);

/* The instance directory ("" when not enabled). Any thread, after cgroup_init. */
const char *cgroup_directory(void);

/* What `stats` shows under "containment" (PROTOCOL.md). New reference. Any thread. */
json_t *cgroup_stats(void);

/* Whether job groups can take limits.memory (memory.max) and limits.tasks
 * (pids.max), as asked: false without cgroups or without the controller.
 * Any thread, after cgroup_init. */
bool cgroup_has_limits(bool memory, bool tasks);

/* Sets a job group's memory.max (and memory.swap.max to 0) and pids.max;
 * 0 leaves one alone. Before the job's process joins. Returns WEFT_OK or
 * WEFT_EINTERNAL with errno set. Any thread. */
int cgroup_job_limit(const struct cgroup_job *job, uint64_t memory_max, uint64_t tasks_max);

/* Removes the instance directory if it is empty. Main thread, after the workers stopped. */
void cgroup_fini(void);

/*
 * Makes a new job group. Returns WEFT_OK and *job (release it with
 * cgroup_job_remove), or WEFT_EINTERNAL with errno set (no directory can be
 * made: EMFILE, ENOSPC from cgroup.max.descendants, ...). Any thread.
 */
int cgroup_job_make(struct cgroup_job *job);

/*
 * A new O_WRONLY|O_CLOEXEC descriptor of the group's cgroup.procs, for the
 * fork child to write "0" into (which moves the writer itself), or -1 with
 * errno set. The caller closes it. Any thread.
 */
int cgroup_job_procs_fd(const struct cgroup_job *job);

/*
 * Sends sig to every process in the group (SIGKILL: cgroup.kill where the
 * kernel has it). Returns WEFT_OK, or WEFT_EINTERNAL when the group cannot be
 * read. Any thread.
 */
int cgroup_job_signal(const struct cgroup_job *job, int sig);

/* Whether any process is left in the group (cgroup.events "populated").
 * Returns WEFT_OK and *populated, or WEFT_EINTERNAL. Any thread. */
int cgroup_job_populated(const struct cgroup_job *job, bool *populated);

/*
 * How many of the group's processes the kernel's OOM killer killed: the
 * "oom_kill" count of its memory.events (which counts the group's subgroups
 * too), for telling an OOM kill from any other SIGKILL. Read it before
 * cgroup_job_remove. Returns WEFT_OK and *kills, 0 where the group has no
 * memory controller (no memory.events); or WEFT_EINTERNAL with errno set
 * (EPROTO: the file has no such count). Any thread.
 */
int cgroup_job_oom_kills(const struct cgroup_job *job, uint64_t *kills);

/* Removes the (empty) group and closes its descriptor; job->fd becomes -1.
 * Returns WEFT_OK, or WEFT_EINTERNAL (errno EBUSY: it still has processes).
 * NULL or fd -1: nothing to do. Any thread. */
int cgroup_job_remove(struct cgroup_job *job);

#endif

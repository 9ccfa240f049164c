/*
 * subreaper: containment where no cgroup can be had (cgroup.h falls back).
 * weftd makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so a
 * process that a job leaves behind -- a double fork, a daemon that called
 * setsid and left its process group -- is reparented to weftd when its
 * parent dies, instead of to init. Every child of weftd that is not a
 * running job's leader is such an orphan.
 *
 * Which job an orphan came from cannot be known once it is reparented, so
 * it is charged to every job that was running when it was first seen (it
 * can only come from one of them), and killed (SIGKILL, to it and to its
 * process group) when the last of those has ended; one seen while no job
 * runs is killed at once. Whatever it had started is reparented in turn and
 * dealt with the same way. Orphans are reaped by pid (waitid(P_PID), never
 * waitpid(-1), which would take a job leader's status from proc.c).
 * Looking for orphans means reading /proc/<pid>/stat of every process: done
 * when a job ends and once a housekeeping tick (to reap orphans that exited
 * on their own), in this mode only.
 *
 * THREADS: subreaper_init on the main thread before the workers start; the
 * rest on any thread (job leaders start and end on worker loops, the sweep
 * runs on the main loop). One mutex guards the tables; spawning a leader
 * holds it for reading so that a sweep never mistakes a leader not yet
 * registered for an orphan.
 */
#ifndef SUBREAPER_H
#define SUBREAPER_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

/* Becomes a child subreaper. Returns whether it is one now; false (and
 * nothing else happens in this module) when the kernel refuses. Main thread. */
bool subreaper_init(void);

/* Whether subreaper_init succeeded. Any thread. */
bool subreaper_enabled(void);

/* Around starting a job's leader: _begin before the fork, _end after it
 * with the pid (0: none started), which is then a leader until
 * subreaper_leader_ended. No-ops when not enabled. Any thread. */
void subreaper_spawn_begin(void);
void subreaper_spawn_end(pid_t leader);

/* The leader was reaped (its job is over): orphans charged to running jobs
 * alone are kept, the others are killed. Any thread. */
void subreaper_leader_ended(pid_t leader);

/* Reaps orphans that exited and kills those no running job can own.
 * Main thread (housekeeping). */
void subreaper_sweep(void);

/* {"orphans": now, "orphans_killed", "orphans_reaped"}: a new reference, or
 * NULL when not enabled. Any thread. */
json_t *subreaper_stats(void);

#endif

/* See subreaper.h. */
#include "daemon/executors/process/subreaper.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/base/memory.h"

/* A running job's leader; serial tells apart two leaders that had the same pid. */
struct leader {
	pid_t pid;
	uint64_t serial;
};

/* A child of weftd that no job leads; owners: the serials of the leaders
 * running when it was first seen (memory_alloc'd, owned by the entry). */
struct orphan {
	pid_t pid;
	unsigned long long start; /* /proc/<pid>/stat's starttime: pid reuse shows */
	uint64_t *owners;
	size_t owner_count;
	bool killed;
};

/* Lock order: spawn_lock, then lock. spawn_lock is taken for reading while a
 * leader is forked and registered, for writing by whoever scans /proc, so a
 * scan never sees a child whose registration is still to come. lock guards
 * the two tables and is held for table work only (no system call blocks
 * under it but kill and a non-blocking waitid). */
static pthread_rwlock_t spawn_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct leader *leaders; /* under lock */
static size_t leader_count, leader_capacity;
static uint64_t next_serial;
static struct orphan *orphans; /* under lock */
static size_t orphan_count, orphan_capacity;
/* Set once by subreaper_init before other threads; relaxed reads after. */
static atomic_bool enabled;
/* Statistics; relaxed: counters read on their own. */
static atomic_uint_fast64_t killed_total, reaped_total;

bool subreaper_init(void)
{
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
		log_warn("cannot become a child subreaper (%s): a job's processes that leave its "
		         "process group can outlive it",
		         strerror(errno));
		return false;
	}
	atomic_store_explicit(&enabled, true, memory_order_relaxed);
	return true;
}

bool subreaper_enabled(void)
{
	return atomic_load_explicit(&enabled, memory_order_relaxed);
}

void subreaper_spawn_begin(void)
{
	if (subreaper_enabled())
		pthread_rwlock_rdlock(&spawn_lock);
}

void subreaper_spawn_end(pid_t leader)
{
	if (!subreaper_enabled())
		return;
	if (leader > 0) {
		pthread_mutex_lock(&lock);
		if (leader_count == leader_capacity) {
			leader_capacity = leader_capacity > 0 ? 2 * leader_capacity : 16;
			leaders = memory_realloc(leaders, leader_capacity * sizeof(*leaders));
		}
		leaders[leader_count++] = (struct leader){leader, ++next_serial};
		pthread_mutex_unlock(&lock);
	}
	pthread_rwlock_unlock(&spawn_lock);
}

/* ppid and starttime of a process from /proc/<pid>/stat; false when gone. */
static bool read_stat(pid_t pid, pid_t *parent, unsigned long long *start)
{
	char path[64], text[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *file = fopen(path, "re");
	if (file == NULL)
		return false;
	size_t length = fread(text, 1, sizeof(text) - 1, file);
	fclose(file);
	text[length] = '\0';
	/* The command name may hold ')' and spaces: the fields start after the last ')'. */
	char *after = strrchr(text, ')');
	if (after == NULL)
		return false;
	int ppid;
	unsigned long long starttime;
	/* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime
	 * stime cutime cstime priority nice num_threads itrealvalue starttime */
	if (sscanf(after + 1,
	           " %*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d "
	           "%llu",
	           &ppid, &starttime) != 2)
		return false;
	*parent = (pid_t)ppid;
	*start = starttime;
	return true;
}

static bool is_leader(pid_t pid)
{
	for (size_t i = 0; i < leader_count; i++)
		if (leaders[i].pid == pid)
			return true;
	return false;
}

static bool is_known(pid_t pid, unsigned long long start)
{
	for (size_t i = 0; i < orphan_count; i++)
		if (orphans[i].pid == pid && orphans[i].start == start)
			return true;
	return false;
}

/* Records a new orphan, owned by every leader running now. lock held. */
static void adopt(pid_t pid, unsigned long long start)
{
	if (orphan_count == orphan_capacity) {
		orphan_capacity = orphan_capacity > 0 ? 2 * orphan_capacity : 16;
		orphans = memory_realloc(orphans, orphan_capacity * sizeof(*orphans));
	}
	struct orphan *orphan = &orphans[orphan_count++];
	*orphan = (struct orphan){.pid = pid, .start = start, .owner_count = leader_count};
	orphan->owners = memory_alloc((leader_count > 0 ? leader_count : 1) * sizeof(uint64_t));
	for (size_t i = 0; i < leader_count; i++)
		orphan->owners[i] = leaders[i].serial;
}

/* Finds weftd's children that no job leads. spawn_lock held for writing. */
static void scan(void)
{
	pid_t self = getpid();
	DIR *proc = opendir("/proc");
	if (proc == NULL)
		return;
	struct dirent *entry;
	while ((entry = readdir(proc)) != NULL) {
		if (!isdigit((unsigned char)entry->d_name[0]))
			continue;
		pid_t pid = (pid_t)strtol(entry->d_name, NULL, 10);
		pid_t parent;
		unsigned long long start;
		if (pid == self || !read_stat(pid, &parent, &start) || parent != self)
			continue;
		pthread_mutex_lock(&lock);
		if (!is_leader(pid) && !is_known(pid, start))
			adopt(pid, start);
		pthread_mutex_unlock(&lock);
	}
	closedir(proc);
}

/* Reaps orphans that are dead, kills those that no running job owns. lock held. */
static void settle(void)
{
	size_t kept = 0;
	for (size_t i = 0; i < orphan_count; i++) {
		struct orphan *orphan = &orphans[i];
		siginfo_t info;
		memset(&info, 0, sizeof(info));
		/* Only this pid: a job leader's status belongs to proc.c. */
		int rv = waitid(P_PID, (id_t)orphan->pid, &info, WEXITED | WNOHANG);
		if (rv == 0 && info.si_pid == orphan->pid) {
			atomic_fetch_add_explicit(&reaped_total, 1, memory_order_relaxed);
			free(orphan->owners);
			continue;
		}
		if (rv < 0 && errno == ECHILD) {
			/* Not a child of ours any more: forget it. */
			free(orphan->owners);
			continue;
		}
		if (!orphan->killed && orphan->owner_count == 0) {
			/* Unreaped, so its pid (and a group it leads) is still its own. */
			(void)kill(-orphan->pid, SIGKILL);
			(void)kill(orphan->pid, SIGKILL);
			orphan->killed = true;
			atomic_fetch_add_explicit(&killed_total, 1, memory_order_relaxed);
		}
		orphans[kept++] = *orphan;
	}
	orphan_count = kept;
}

void subreaper_leader_ended(pid_t leader)
{
	if (!subreaper_enabled() || leader <= 0)
		return;
	pthread_rwlock_wrlock(&spawn_lock);
	/* What the leader left was reparented when it died: charge it first. */
	scan();
	pthread_mutex_lock(&lock);
	uint64_t serial = 0;
	for (size_t i = 0; i < leader_count; i++) {
		if (leaders[i].pid == leader) {
			serial = leaders[i].serial;
			leaders[i] = leaders[--leader_count];
			break;
		}
	}
	for (size_t i = 0; serial != 0 && i < orphan_count; i++) {
		struct orphan *orphan = &orphans[i];
		for (size_t j = 0; j < orphan->owner_count; j++) {
			if (orphan->owners[j] == serial) {
				orphan->owners[j] = orphan->owners[--orphan->owner_count];
				break;
			}
		}
	}
	settle();
	pthread_mutex_unlock(&lock);
	pthread_rwlock_unlock(&spawn_lock);
}

void subreaper_sweep(void)
{
	if (!subreaper_enabled())
		return;
	pthread_rwlock_wrlock(&spawn_lock);
	scan();
	pthread_mutex_lock(&lock);
	settle();
	pthread_mutex_unlock(&lock);
	pthread_rwlock_unlock(&spawn_lock);
}

json_t *subreaper_stats(void)
{
	if (!subreaper_enabled())
		return NULL;
	pthread_mutex_lock(&lock);
	size_t count = orphan_count;
	pthread_mutex_unlock(&lock);
	return json_pack("{s:I, s:I, s:I}", "orphans", (json_int_t)count, "orphans_killed",
	                 (json_int_t)atomic_load_explicit(&killed_total, memory_order_relaxed),
	                 "orphans_reaped",
	                 (json_int_t)atomic_load_explicit(&reaped_total, memory_order_relaxed));
}

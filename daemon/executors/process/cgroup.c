/*
 * cgroup: one cgroup v2 group per exec job (see cgroup.h).
 *
 * Everything here is directory descriptors and *at() calls on the instance
 * directory, so a job's group is named once, at its mkdir, and never by a
 * path that could be raced afterwards.
 */
#include "daemon/executors/process/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "weft/error.h"

/* How long start-up waits for a previous weftd's leftovers to die. */
#define LEFTOVER_WAIT_SECONDS 5.0
/* How long start-up waits for a stopping weftd of the same instance. */
#define INSTANCE_WAIT_SECONDS 3.0

/* Set by cgroup_init on the main thread before any worker exists, then only
 * read (fd, directory, the leftover figures): no lock. */
static struct {
	bool enabled;
	int fd;               /* the instance directory, O_DIRECTORY; -1 when not enabled */
	char directory[600];  /* its path, for the log and stats */
	const char *fallback; /* why not enabled (static text), for stats */
	unsigned leftover_jobs;
	unsigned leftover_processes;
	bool memory;          /* job groups have memory.max (the memory controller) */
	bool pids;            /* job groups have pids.max (the pids controller) */
	char leaf[600];       /* weftd's own leaf group (become_leaf), "" when none */
} state = {.fd = -1, .fallback = "not initialised"};

/* Job groups made so far, for their names; any worker, relaxed: only unique
 * numbers are needed, no ordering with anything else. */
static atomic_uint_fast64_t serial;

/* ----------------------------------------------------------- small helpers */

static double monotonic_seconds(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void pause_millisecond(void)
{
	struct timespec pause = {0, 1000 * 1000};
	nanosleep(&pause, NULL);
}

/* Reads a small cgroupfs file at dir_fd/name into text (NUL-terminated).
 * Returns the length, or -1 with errno set. */
static ssize_t read_small(int dir_fd, const char *name, char *text, size_t size)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t used = 0;
	while (used + 1 < size) {
		ssize_t got = read(fd, text + used, size - 1 - used);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		used += (size_t)got;
	}
	close(fd);
	text[used] = '\0';
	return (ssize_t)used;
}

static int write_small(int dir_fd, const char *name, const char *text)
{
	int fd = openat(dir_fd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t wrote;
	do
		wrote = write(fd, text, strlen(text));
	while (wrote < 0 && errno == EINTR);
	int error = errno;
	close(fd);
	errno = error;
	return wrote == (ssize_t)strlen(text) ? 0 : -1;
}

/* Signals each pid listed in dir_fd's cgroup.procs; returns how many were
 * listed, or -1 when it cannot be read. Read through a FILE so that the
 * list's length does not matter. */
static int signal_listed(int dir_fd, int sig)
{
	int fd = openat(dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	FILE *list = fdopen(fd, "r");
	if (list == NULL) {
		close(fd);
		return -1;
	}
	int count = 0;
	long pid;
	while (fscanf(list, "%ld", &pid) == 1) {
		if (pid > 0)
			(void)kill((pid_t)pid, sig);
		count++;
	}
	fclose(list);
	return count;
}

static int populated_at(int dir_fd, bool *populated)
{
	char text[256];
	if (read_small(dir_fd, "cgroup.events", text, sizeof(text)) < 0)
		return WEFT_EINTERNAL;
	const char *line = strstr(text, "populated ");
	if (line == NULL) {
		errno = EPROTO;
		return WEFT_EINTERNAL;
	}
	*populated = line[10] != '0';
	return WEFT_OK;
}

/* SIGKILL to the whole subtree of dir_fd: cgroup.kill, or (before Linux 5.14)
 * each listed pid of the group itself. */
static void kill_all(int dir_fd)
{
	if (write_small(dir_fd, "cgroup.kill", "1") == 0)
		return;
	(void)signal_listed(dir_fd, SIGKILL);
}

/* rmdir of parent_fd/name after its own subgroups (a root job may have made
 * some). Returns 0 or -1 with errno set. */
static int remove_tree(int parent_fd, const char *name, int depth)
{
	int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && depth < 32) {
		DIR *directory = fdopendir(fd);
		if (directory != NULL) {
			struct dirent *entry;
			while ((entry = readdir(directory)) != NULL)
				if (entry->d_type == DT_DIR && entry->d_name[0] != '.')
					(void)remove_tree(dirfd(directory), entry->d_name, depth + 1);
			closedir(directory);
		} else {
			close(fd);
		}
	} else if (fd >= 0) {
		close(fd);
	}
	return unlinkat(parent_fd, name, AT_REMOVEDIR);
}

/* -------------------------------------------------------------- discovery */

/* weftd's own cgroup v2 directory: the cgroup2 mount joined with the path of
 * the "0::" line of /proc/self/cgroup; *at_root: it is the mount's root.
 * Returns 0, or -1 with *why set. */
static int own_directory(char *out, size_t size, bool *at_root, const char **why)
{
	char own[512] = "";
	char line[1024];
	FILE *file = fopen("/proc/self/cgroup", "re");
	if (file == NULL) {
		*why = "cannot read /proc/self/cgroup";
		return -1;
	}
	while (fgets(line, sizeof(line), file) != NULL)
		if (strncmp(line, "0::", 3) == 0) {
			snprintf(own, sizeof(own), "%s", line + 3);
			own[strcspn(own, "\n")] = '\0';
		}
	fclose(file);
	if (own[0] != '/') {
		*why = "weftd is in no cgroup v2 group (/proc/self/cgroup has no 0:: line)";
		return -1;
	}
	char mount_root[512] = "", mount_point[512] = "";
	file = fopen("/proc/self/mountinfo", "re");
	if (file == NULL) {
		*why = "cannot read /proc/self/mountinfo";
		return -1;
	}
	while (fgets(line, sizeof(line), file) != NULL) {
		char root[512], point[512];
		const char *separator = strstr(line, " - ");
		if (separator == NULL || strncmp(separator, " - cgroup2 ", 11) != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %511s %511s", root, point) == 2) {
			snprintf(mount_root, sizeof(mount_root), "%s", root);
			snprintf(mount_point, sizeof(mount_point), "%s", point);
			break;
		}
	}
	fclose(file);
	if (mount_point[0] == '\0') {
		*why = "no cgroup2 file system is mounted";
		return -1;
	}
	/* A mount of a subtree (a container's): our path is relative to its root. */
	const char *relative = own;
	size_t root_length = strlen(mount_root);
	if (strcmp(mount_root, "/") != 0 && strncmp(own, mount_root, root_length) == 0)
		relative = own + root_length;
	if ((size_t)snprintf(out, size, "%s%s", mount_point, strcmp(relative, "/") == 0 ? "" : relative) >=
	    size) {
		*why = "the cgroup path is too long";
		return -1;
	}
	*at_root = strcmp(relative, "/") == 0;
	return 0;
}

/* Whether dir_fd's cgroup.procs lists weftd alone. */
static bool alone_in(int dir_fd)
{
	int fd = openat(dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	FILE *list = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (list == NULL) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	bool self = false, others = false;
	long pid;
	while (fscanf(list, "%ld", &pid) == 1) {
		self = self || pid == (long)getpid();
		others = others || pid != (long)getpid();
	}
	fclose(list);
	return self && !others;
}

/*
 * cgroup v2 hands controllers (memory, pids) down only from a group with no
 * processes of its own. Under systemd with Delegate=yes weftd starts alone
 * in its unit's group, base: it moves itself into the leaf base/LEAF_NAME,
 * after which base can pass memory and pids on to the instance directory
 * and from there to each job group, the jobs' groups being siblings of
 * weftd's leaf, never children of a group that holds a process. When weftd
 * already is in a leaf of that name (systemd's DelegateSubgroup=, or a
 * manager that did the same), base becomes its parent. Nothing moves at the
 * root of the mount (exempt from the rule) or when other processes share
 * weftd's group (they would still be inside it: a shell's session scope).
 * state.leaf names weftd's leaf when it has one. Failures are not fatal:
 * job groups can still be made, only without the controllers. base is
 * rewritten to the parent when weftd already was in a leaf.
 */
#define LEAF_NAME "supervisor"

static void become_leaf(char *base)
{
	char *slash = strrchr(base, '/');
	bool in_leaf = slash != NULL && strcmp(slash + 1, LEAF_NAME) == 0;
	if (in_leaf) {
		snprintf(state.leaf, sizeof(state.leaf), "%s", base);
		*slash = '\0';
	}
	int fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (!in_leaf && alone_in(fd) && (mkdirat(fd, LEAF_NAME, 0755) == 0 || errno == EEXIST)) {
		char pid[24];
		snprintf(pid, sizeof(pid), "%ld", (long)getpid());
		if (write_small(fd, LEAF_NAME "/cgroup.procs", pid) == 0)
			snprintf(state.leaf, sizeof(state.leaf), "%s/%s", base, LEAF_NAME);
	}
	/* Only what base has can be passed on (cgroup.controllers). */
	char text[512];
	if (read_small(fd, "cgroup.controllers", text, sizeof(text)) >= 0)
		for (char *word = strtok(text, " \n"); word != NULL; word = strtok(NULL, " \n"))
			if (strcmp(word, "memory") == 0 || strcmp(word, "pids") == 0) {
				char enable[16];
				snprintf(enable, sizeof(enable), "+%s", word);
				(void)write_small(fd, "cgroup.subtree_control", enable);
			}
	close(fd);
}

/* FNV-1a: a short, stable name for the instance from its URL. */
static uint64_t name_hash(const char *text)
{
	uint64_t hash = 14695981039346656037ULL;
	for (const unsigned char *c = (const unsigned char *)text; *c != '\0'; c++)
		hash = (hash ^ *c) * 1099511628211ULL;
	return hash;
}

/*
 * The memory and pids controllers for the job groups (limits.memory,
 * limits.tasks): asked for in the instance directory's subtree_control,
 * which works when its parent has them enabled for it (under systemd, when
 * the instance directory is not weftd's own cgroup, which holds weftd and
 * so cannot hand controllers down: use --cgroup DIR on a prepared
 * directory). What the directory ends up with is what jobs may ask for.
 */
static void enable_controllers(void)
{
	(void)write_small(state.fd, "cgroup.subtree_control", "+memory");
	(void)write_small(state.fd, "cgroup.subtree_control", "+pids");
	char text[512];
	if (read_small(state.fd, "cgroup.subtree_control", text, sizeof(text)) < 0)
		return;
	for (char *word = strtok(text, " \n"); word != NULL; word = strtok(NULL, " \n")) {
		state.memory = state.memory || strcmp(word, "memory") == 0;
		state.pids = state.pids || strcmp(word, "pids") == 0;
	}
}

bool cgroup_has_limits(bool memory, bool tasks)
{
	return state.enabled && (!memory || state.memory) && (!tasks || state.pids);
}

int cgroup_job_limit(const struct cgroup_job *job, uint64_t memory_max, uint64_t tasks_max)
{
	char value[32];
	if (memory_max > 0) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)memory_max);
		/* No swap beyond the limit either, so the limit is what the job has. */
		if (write_small(job->fd, "memory.max", value) != 0)
			return WEFT_EINTERNAL;
		(void)write_small(job->fd, "memory.swap.max", "0");
	}
	if (tasks_max > 0) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)tasks_max);
		if (write_small(job->fd, "pids.max", value) != 0)
			return WEFT_EINTERNAL;
	}
	return WEFT_OK;
}

/* Kills and removes every group a previous weftd left in the instance. */
static void clean_leftovers(void)
{
	int fd = dup(state.fd);
	DIR *directory = fd >= 0 ? fdopendir(fd) : NULL;
	if (directory == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *entry;
	while ((entry = readdir(directory)) != NULL) {
		if (entry->d_type != DT_DIR || strncmp(entry->d_name, "job-", 4) != 0)
			continue;
		int job = openat(state.fd, entry->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (job < 0)
			continue;
		int listed = signal_listed(job, 0);
		kill_all(job);
		bool populated = true;
		double deadline = monotonic_seconds() + LEFTOVER_WAIT_SECONDS;
		while (populated_at(job, &populated) == WEFT_OK && populated &&
		       monotonic_seconds() < deadline) {
			kill_all(job); /* a fork that raced the first kill */
			pause_millisecond();
		}
		close(job);
		(void)remove_tree(state.fd, entry->d_name, 0);
		state.leftover_jobs++;
		state.leftover_processes += listed > 0 ? (unsigned)listed : 0;
	}
	closedir(directory);
}

/*
 * Opens the instance's directory (made when missing) into state.fd and locks
 * it (flock, held while weftd lives: the kernel lets go when it dies, even by
 * SIGKILL). A second weftd of the same instance would otherwise take the
 * first one's running jobs for leftovers and kill them, and remove its
 * directory when it gave up. A weftd that is stopping lets go within
 * moments, so the lock is waited for a little (a restart). Returns NULL, or
 * why the directory cannot be used; *taken: another live weftd holds it.
 */
static const char *take_instance(bool *taken)
{
	double deadline = monotonic_seconds() + INSTANCE_WAIT_SECONDS;
	for (;;) {
		if (mkdir(state.directory, 0755) != 0 && errno != EEXIST)
			return strerror(errno);
		state.fd = open(state.directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (state.fd < 0)
			return strerror(errno);
		/* It must be a cgroup directory we may make groups in. */
		if (faccessat(state.fd, "cgroup.procs", W_OK, AT_EACCESS) != 0)
			return errno == ENOENT ? "it is not a cgroup v2 directory" : strerror(errno);
		if (flock(state.fd, LOCK_EX | LOCK_NB) == 0) {
			/* The one that let go may have removed it since we opened it. */
			struct stat held, named;
			if (fstat(state.fd, &held) == 0 && stat(state.directory, &named) == 0 &&
			    held.st_ino == named.st_ino && held.st_dev == named.st_dev)
				return NULL;
		} else if (errno != EWOULDBLOCK) {
			return strerror(errno);
		} else if (monotonic_seconds() >= deadline) {
			close(state.fd);
			state.fd = -1;
			*taken = true;
			return NULL;
		}
		close(state.fd);
		state.fd = -1;
		for (int i = 0; i < 20; i++)
			pause_millisecond();
	}
}

int cgroup_init(const char *setting, const char *instance_key, char *message,
                size_t message_size)
{
	char base[512];
	const char *why = NULL;
	bool explicit_directory = setting[0] == '/';
	bool at_root = true;

	message[0] = '\0';
	if (strcmp(setting, "off") == 0) {
		state.fallback = "--cgroup off";
		snprintf(message, message_size,
		         "containment: process groups (--cgroup off); a job that calls setsid can "
		         "escape them");
		return WEFT_OK;
	}
	if (explicit_directory) {
		snprintf(state.directory, sizeof(state.directory), "%s", setting);
	} else if (own_directory(base, sizeof(base), &at_root, &why) == 0) {
		if (!at_root)
			become_leaf(base);
		snprintf(state.directory, sizeof(state.directory), "%s/weftd-%016llx", base,
		         (unsigned long long)name_hash(instance_key));
	}
	bool taken = false;
	if (why == NULL)
		why = take_instance(&taken);
	if (taken) {
		snprintf(message, message_size,
		         "another weftd already runs its jobs in %s (a weftd listening on the same "
		         "first --listen URL, or with the same --cgroup DIR); stop it first, or give "
		         "this one another --listen URL",
		         state.directory);
		return WEFT_EBUSY;
	}
	if (why != NULL) {
		if (state.fd >= 0)
			close(state.fd);
		state.fd = -1;
		if (explicit_directory) {
			snprintf(message, message_size,
			         "--cgroup %s: cannot keep the jobs' cgroups there (%s); give a writable "
			         "directory of a cgroup2 file system, or --cgroup auto / off",
			         setting, why);
			return WEFT_EINVAL;
		}
		state.fallback = "weftd cannot make cgroups here";
		state.leaf[0] = '\0';
		snprintf(message, message_size,
		         "containment: process groups, because weftd cannot make cgroups in %s (%s); "
		         "a job that calls setsid can escape them (run weftd with Delegate=yes under "
		         "systemd, or give --cgroup DIR)",
		         state.directory[0] != '\0' ? state.directory : "its own cgroup", why);
		state.directory[0] = '\0';
		return WEFT_OK;
	}
	clean_leftovers();
	enable_controllers();
	state.enabled = true;
	state.fallback = NULL;
	char leaf[sizeof(state.leaf) + 48] = "";
	if (state.leaf[0] != '\0')
		snprintf(leaf, sizeof(leaf), "; weftd itself in %s", state.leaf);
	if (state.leftover_jobs > 0)
		snprintf(message, message_size,
		         "containment: a cgroup per job in %s%s; killed %u processes of %u jobs left "
		         "there by a previous weftd",
		         state.directory, leaf, state.leftover_processes, state.leftover_jobs);
	else
		snprintf(message, message_size, "containment: a cgroup per job in %s%s", state.directory,
		         leaf);
	return WEFT_OK;
}

bool cgroup_enabled(void)
{
	return state.enabled;
}

const char *cgroup_directory(void)
{
	return state.enabled ? state.directory : "";
}

json_t *cgroup_stats(void)
{
	if (!state.enabled)
		return json_pack("{s:s, s:s}", "mode", "process-group", "reason",
		                 state.fallback != NULL ? state.fallback : "");
	json_t *limits = json_array();
	if (state.memory)
		json_array_append_new(limits, json_string("memory"));
	if (state.pids)
		json_array_append_new(limits, json_string("tasks"));
	json_t *stats = json_pack("{s:s, s:s, s:I, s:I, s:o}", "mode", "cgroup", "directory",
	                          state.directory, "leftover_jobs_killed",
	                          (json_int_t)state.leftover_jobs, "leftover_processes_killed",
	                          (json_int_t)state.leftover_processes, "limits", limits);
	if (stats != NULL && state.leaf[0] != '\0')
		json_object_set_new(stats, "supervisor", json_string(state.leaf));
	return stats;
}

void cgroup_fini(void)
{
	if (state.fd >= 0) {
		/* Before the lock goes with the descriptor, so that a weftd starting
		 * now never has its directory removed. Fails while groups remain
		 * (EBUSY, ENOTEMPTY): the next weftd cleans them. */
		(void)rmdir(state.directory);
		close(state.fd);
	}
	state.fd = -1;
	state.enabled = false;
}

/* --------------------------------------------------------------- job groups */

int cgroup_job_make(struct cgroup_job *job)
{
	struct cgroup_job made;
	uint64_t number = atomic_fetch_add_explicit(&serial, 1, memory_order_relaxed);
	snprintf(made.name, sizeof(made.name), "job-%ld-%llu", (long)getpid(),
	         (unsigned long long)number);
	if (mkdirat(state.fd, made.name, 0755) != 0)
		return WEFT_EINTERNAL;
	made.fd = openat(state.fd, made.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (made.fd < 0) {
		int error = errno;
		(void)unlinkat(state.fd, made.name, AT_REMOVEDIR);
		errno = error;
		return WEFT_EINTERNAL;
	}
	*job = made;
	return WEFT_OK;
}

int cgroup_job_procs_fd(const struct cgroup_job *job)
{
	return openat(job->fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
}

int cgroup_job_signal(const struct cgroup_job *job, int sig)
{
	if (sig == SIGKILL && write_small(job->fd, "cgroup.kill", "1") == 0)
		return WEFT_OK;
	return signal_listed(job->fd, sig) >= 0 ? WEFT_OK : WEFT_EINTERNAL;
}

int cgroup_job_populated(const struct cgroup_job *job, bool *populated)
{
	return populated_at(job->fd, populated);
}

int cgroup_job_oom_kills(const struct cgroup_job *job, uint64_t *kills)
{
	/* Six short lines today (low, high, max, oom, oom_kill, oom_group_kill);
	 * room for the kernel to add more. */
	char text[1024];
	if (read_small(job->fd, "memory.events", text, sizeof(text)) < 0) {
		if (errno != ENOENT)
			return WEFT_EINTERNAL;
		*kills = 0;
		return WEFT_OK;
	}
	/* Whole keys only: "oom_group_kill" is another count. */
	for (char *line = text; *line != '\0';) {
		size_t length = strcspn(line, "\n");
		if (strncmp(line, "oom_kill ", 9) == 0) {
			char *end;
			errno = 0;
			unsigned long long count = strtoull(line + 9, &end, 10);
			if (line[9] < '0' || line[9] > '9' || errno != 0 || end != line + length)
				break;
			*kills = count;
			return WEFT_OK;
		}
		line += length + (line[length] == '\n');
	}
	errno = EPROTO;
	return WEFT_EINTERNAL;
}

int cgroup_job_remove(struct cgroup_job *job)
{
	if (job == NULL || job->fd < 0)
		return WEFT_OK;
	close(job->fd);
	job->fd = -1;
	return remove_tree(state.fd, job->name, 0) == 0 ? WEFT_OK : WEFT_EINTERNAL;
}

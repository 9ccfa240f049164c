/*
 * proc_child: making an exec job's process (see proc_child.h).
 *
 * Both paths get the same preparation, done in the parent where allocating
 * is allowed: the environment (a fresh one, never the daemon's), the list of
 * paths to try for argv[0], and the pipe ends on 0/1/2.
 *
 * The fork path's child runs in a copy of a multi-threaded process: other
 * threads' locks (malloc's, stdio's) may be held forever in it. So the code
 * from the fork to execve uses only system calls and the plan the parent
 * built: nothing there allocates, formats or looks anything up.
 *
 * Order of the fork child's steps, and why:
 *   setsid                 its own session and process group: the whole tree
 *                          can be signalled, and it has no controlling
 *                          terminal, so it cannot open /dev/tty and push
 *                          keystrokes (TIOCSTI) into the shell weftd was
 *                          started from
 *   join the job's cgroup  "0" into its cgroup.procs: before the id change
 *                          (the group is weftd's, the job's user may not
 *                          write it) and before any process of the job can
 *                          exist, so nothing escapes it. A signal sent to the
 *                          child before it joined is still pending (all are
 *                          blocked) and kills it at the next step, before exec
 *   default signals, empty mask
 *                          the daemon's handlers must not run in the child;
 *                          the parent blocked every signal across the fork so
 *                          none can run before this point either
 *   dup2 onto 0, 1, 2      the pipe ends were kept >= 3 by the parent so dup2
 *                          always makes a fresh, inheritable descriptor
 *   setgroups, setresgid, setresuid
 *                          groups first (needs root), uid last; as raw
 *                          system calls (see child_run)
 *   setrlimit              after the id change: the job can lower its limits
 *                          or keep them, never raise them with root's rights
 *   chdir                  with the job's rights, so it cannot enter a
 *                          directory its user cannot
 *   close_range            nothing of the daemon survives exec, whatever a
 *                          library forgot to mark O_CLOEXEC
 *   PR_SET_PDEATHSIG       after the id change, which clears it; if the
 *                          daemon (the forking thread) already died, give up
 *   execve                 each candidate path in turn, like execvp
 *
 * The posix_spawn path gets the same through glibc's attributes (a new
 * session, default signals, empty mask), file actions (dup2 or /dev/null on
 * 0/1/2, chdir, closefrom 3) and a PATH search done here first.
 */
#include "daemon/executors/process/proc_child.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "weft/error.h"

/*
 * _Fork (glibc 2.34) skips the atfork handlers, which take malloc's locks in
 * the parent and would stall the other workers during each fork. Sanitizer
 * runtimes keep their own state consistent through their fork interceptor,
 * so their builds use fork.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PROC_CHILD_USE_FORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PROC_CHILD_USE_FORK 1
#endif
#endif
#ifndef PROC_CHILD_USE_FORK
#define PROC_CHILD_USE_FORK 0
#endif

/* What the fork child does. All memory is the parent's. */
struct child_plan {
	char *const *argv;             /* NULL-terminated */
	char *const *envp;             /* NULL-terminated */
	const char *const *candidates; /* paths to execve in turn, NULL-terminated, >= 1 */
	int stdio[3];                  /* child ends for 0, 1, 2 (each >= 3), or -1: /dev/null */
	int report_fd;                 /* write end of the O_CLOEXEC report pipe (>= 3) */
	int cgroup_fd;                 /* the job's cgroup.procs (O_CLOEXEC), or -1 */
	const struct execargs_limit *limits;
	size_t limit_count;
	const char *cwd;               /* NULL: stay */
	mode_t umask;                  /* the submitter's, set before chdir and exec */
	bool switch_identity;          /* setgroups/setresgid/setresuid to the fields below */
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t group_count;
	const char *oom_score;         /* to write to its oom_score_adj, or NULL (keep weftd's) */
};

/* execvp's rule: these errors mean "not here", try the next directory of
 * PATH; any other error ends the search. */
static bool error_ends_search(int error)
{
	switch (error) {
	case ENOENT:
	case ENOTDIR:
	case EACCES:
	case ELOOP:
	case ENAMETOOLONG:
	case ESTALE:
	case ENODEV:
	case ETIMEDOUT:
		return false;
	default:
		return true;
	}
}

_Noreturn static void child_fail(int report_fd, int stage, int error, int index)
{
	struct proc_child_report report = {stage, error, index};
	ssize_t written;

	do
		written = write(report_fd, &report, sizeof(report));
	while (written < 0 && errno == EINTR);
	_exit(127);
}

static void reset_signals(void)
{
	struct sigaction action;
	sigset_t empty;

	memset(&action, 0, sizeof(action));
	action.sa_handler = SIG_DFL;
	sigemptyset(&action.sa_mask);
	for (int signal_number = 1; signal_number < NSIG; signal_number++) {
		if (signal_number == SIGKILL || signal_number == SIGSTOP)
			continue;
		/* Fails (EINVAL) for the numbers the C library keeps for itself: fine. */
		(void)sigaction(signal_number, &action, NULL);
	}
	sigemptyset(&empty);
	(void)sigprocmask(SIG_SETMASK, &empty, NULL);
}

static int setup_stdio(const struct child_plan *plan)
{
	for (int target = 0; target < 3; target++) {
		int source = plan->stdio[target];
		if (source < 0) {
			source = open("/dev/null", (target == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
			if (source < 0)
				return errno;
		}
		/* source >= 3 (the parent made sure, and open returns >= 3 while 0-2
		 * are open), so dup2 makes a new descriptor without O_CLOEXEC. */
		if (dup2(source, target) < 0)
			return errno;
	}
	return 0;
}

_Noreturn static void child_run(const struct child_plan *plan, pid_t parent)
{
	int report_fd = plan->report_fd;
	int error = ENOENT;
	bool saw_eacces = false;

	/* Cannot fail: the child is no group leader (nobody made it one). */
	(void)setsid();
	if (plan->cgroup_fd >= 0 && write(plan->cgroup_fd, "0", 1) != 1)
		child_fail(report_fd, PROC_CHILD_STAGE_CGROUP, errno, 0);
	reset_signals();
	if (plan->oom_score != NULL) {
		/* Raising it needs no privilege, lowering it CAP_SYS_RESOURCE; a
		 * failure leaves the job at weftd's score, which is no reason not
		 * to run it. */
		int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		if (oom >= 0) {
			ssize_t ignored = write(oom, plan->oom_score, strlen(plan->oom_score));
			(void)ignored;
			close(oom);
		}
	}
	if ((error = setup_stdio(plan)) != 0)
		child_fail(report_fd, PROC_CHILD_STAGE_STDIO, error, 0);
	if (plan->switch_identity) {
		/* Raw system calls: glibc's wrappers would broadcast the change to
		 * every thread they remember from the parent, taking a lock that a
		 * parent thread may have held at the fork. The child has one
		 * thread, so the plain call is the whole job. */
		if (syscall(SYS_setgroups, plan->group_count, plan->groups) < 0)
			child_fail(report_fd, PROC_CHILD_STAGE_GROUPS, errno, 0);
		if (syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) < 0)
			child_fail(report_fd, PROC_CHILD_STAGE_GID, errno, 0);
		if (syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) < 0)
			child_fail(report_fd, PROC_CHILD_STAGE_UID, errno, 0);
	}
	for (size_t i = 0; i < plan->limit_count; i++) {
		struct rlimit limit = {plan->limits[i].value, plan->limits[i].value};
		if (setrlimit(plan->limits[i].resource, &limit) < 0)
			child_fail(report_fd, PROC_CHILD_STAGE_RLIMIT, errno, (int)i);
	}
	(void)umask(plan->umask);
	if (plan->cwd != NULL && chdir(plan->cwd) < 0)
		child_fail(report_fd, PROC_CHILD_STAGE_CHDIR, errno, 0);
	if (report_fd > 3)
		(void)close_range(3, (unsigned)report_fd - 1, 0);
	(void)close_range((unsigned)report_fd + 1, ~0U, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		child_fail(report_fd, PROC_CHILD_STAGE_DEATHSIG, errno, 0);
	/* The daemon died between fork and prctl: nobody would ever reap or stop us. */
	if (getppid() != parent)
		child_fail(report_fd, PROC_CHILD_STAGE_DEATHSIG, ESRCH, 0);

	for (size_t i = 0; plan->candidates[i] != NULL; i++) {
		execve(plan->candidates[i], plan->argv, plan->envp);
		error = errno;
		if (error == EACCES)
			saw_eacces = true;
		if (error_ends_search(error))
			break;
	}
	if (saw_eacces && !error_ends_search(error))
		error = EACCES;
	child_fail(report_fd, PROC_CHILD_STAGE_EXEC, error, 0);
}

/*
 * Forks a child that follows `plan`. Blocks every signal around the fork so
 * that no daemon handler can run in the child before it resets them. The
 * parent does not set the child's process group: that would make the child
 * a group leader, and setsid would then fail (proc.c signals the child
 * itself until its session exists). Returns 0 and *pid, or an errno value.
 */
static int fork_child(const struct child_plan *plan, pid_t *pid)
{
	sigset_t all, saved;
	pid_t parent = getpid();
	pid_t child;
	int error;

	sigfillset(&all);
	if ((error = pthread_sigmask(SIG_SETMASK, &all, &saved)) != 0)
		return error;
#if PROC_CHILD_USE_FORK
	child = fork();
#else
	child = _Fork();
#endif
	if (child == 0)
		child_run(plan, parent);
	error = child < 0 ? errno : 0;
	(void)pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (child < 0)
		return error;
	*pid = child;
	return 0;
}

/* weftd's own umask, which a posix_spawn child inherits. umask() can only be
 * read by setting it, so it is read once (and put back at once); weftd never
 * changes it afterwards. */
static mode_t inherited_umask;
static pthread_once_t umask_once = PTHREAD_ONCE_INIT;

static void read_umask(void)
{
	inherited_umask = umask(022);
	umask(inherited_umask);
}

static mode_t process_umask(void)
{
	pthread_once(&umask_once, read_umask);
	return inherited_umask;
}

/*
 * What a job's oom_score_adj becomes (proc_child_set_job_oom_score). By
 * default: 0 when weftd runs with a negative one (OOMScoreAdjust= in its
 * unit, so that the kernel kills jobs before the daemon), which jobs would
 * otherwise inherit; else weftd's own, inherited. Decided once, at the
 * first job; the main thread sets the policy before any worker runs.
 */
static struct {
	bool set;
	bool relative;
	int score;
} oom_policy;
static bool oom_change;       /* jobs get another score than weftd's */
static char oom_text[8];      /* that score, for the child to write */
static pthread_once_t oom_once = PTHREAD_ONCE_INIT;

void proc_child_set_job_oom_score(bool set, bool relative, int score)
{
	oom_policy.set = set;
	oom_policy.relative = relative;
	oom_policy.score = score;
}

static void read_oom_score(void)
{
	FILE *file = fopen("/proc/self/oom_score_adj", "re");
	int own = 0;
	if (file != NULL) {
		if (fscanf(file, "%d", &own) != 1)
			own = 0;
		fclose(file);
	}
	int target = own < 0 ? 0 : own;
	if (oom_policy.set)
		target = oom_policy.relative ? own + oom_policy.score : oom_policy.score;
	if (target > 1000)
		target = 1000;
	if (target < -1000)
		target = -1000;
	oom_change = target != own;
	snprintf(oom_text, sizeof(oom_text), "%d", target);
}

/* Whether jobs need their oom_score_adj written (which only the fork path can). */
static bool job_oom_change(void)
{
	pthread_once(&oom_once, read_oom_score);
	return oom_change;
}

/* ------------------------------------------------------------- preparation */

/*
 * The child's environment: an array of "KEY=VALUE" pointers. Entries made
 * here are in `owned` (freed by environment_free); the job's entries are
 * borrowed from execargs, which outlives the spawn.
 */
struct environment {
	char **entries;     /* NULL-terminated */
	size_t count;
	char *owned[6];
	size_t owned_count;
};

static void environment_free(struct environment *environment)
{
	for (size_t i = 0; i < environment->owned_count; i++)
		free(environment->owned[i]);
	free(environment->entries);
}

static int environment_add_default(struct environment *environment, const char *key,
	const char *value)
{
	char *entry;

	if (asprintf(&entry, "%s=%s", key, value) < 0)
		return WEFT_ENOMEM;
	environment->owned[environment->owned_count++] = entry;
	environment->entries[environment->count++] = entry;
	return WEFT_OK;
}

static int environment_build(struct environment *environment, const struct execargs *args,
	const struct account *identity)
{
	int rv = WEFT_OK;

	memset(environment, 0, sizeof(*environment));
	environment->entries = calloc(args->env_count + 7, sizeof(char *));
	if (environment->entries == NULL)
		return WEFT_ENOMEM;
	if (!args->env_clear) {
		if ((rv = environment_add_default(environment, "PATH", PROC_CHILD_DEFAULT_PATH)) != 0)
			return rv;
		if (identity != NULL && identity->home != NULL &&
			(rv = environment_add_default(environment, "HOME", identity->home)) != 0)
			return rv;
		if (identity != NULL && identity->user != NULL &&
			((rv = environment_add_default(environment, "USER", identity->user)) != 0 ||
				(rv = environment_add_default(environment, "LOGNAME", identity->user)) != 0))
			return rv;
		if ((rv = environment_add_default(environment, "SHELL",
			     identity != NULL && identity->shell != NULL ? identity->shell : "/bin/sh")) != 0)
			return rv;
		if ((rv = environment_add_default(environment, "LANG", "C.UTF-8")) != 0)
			return rv;
	}
	/* Linear: the job's keys are unique (they were a JSON object's), so each
	 * needs comparing with the few defaults alone, never with the others
	 * (comparing with all of them made 80,000 variables stall a worker for
	 * seconds). */
	size_t defaults = environment->count;
	for (size_t i = 0; i < args->env_count; i++) {
		char *entry = args->env[i];
		size_t key_length = (size_t)(strchr(entry, '=') - entry) + 1;
		size_t j;
		for (j = 0; j < defaults; j++)
			if (strncmp(environment->entries[j], entry, key_length) == 0)
				break;
		if (j < defaults)
			environment->entries[j] = entry;
		else
			environment->entries[environment->count++] = entry;
	}
	return WEFT_OK;
}

static const char *environment_path(const struct environment *environment)
{
	for (size_t i = 0; i < environment->count; i++)
		if (strncmp(environment->entries[i], "PATH=", 5) == 0)
			return environment->entries[i] + 5;
	return PROC_CHILD_DEFAULT_PATH;
}

/*
 * The paths execve should try for `command`: itself when it has a '/', else
 * each directory of `path` joined with it (an empty directory means the
 * working directory). One allocation (pointers, then the strings); NULL when
 * memory ran out.
 */
static char **candidates_build(const char *command, const char *path)
{
	size_t command_length = strlen(command), count = 1, size;
	char **candidates, *text;
	const char *start;

	if (strchr(command, '/') != NULL) {
		candidates = malloc(2 * sizeof(char *) + command_length + 1);
		if (candidates == NULL)
			return NULL;
		text = (char *)(candidates + 2);
		memcpy(text, command, command_length + 1);
		candidates[0] = text;
		candidates[1] = NULL;
		return candidates;
	}
	for (const char *c = path; *c != '\0'; c++)
		count += *c == ':';
	/* Each directory, '/' and the command; "." for an empty one. */
	size = (count + 1) * sizeof(char *) + strlen(path) + count * (command_length + 4);
	candidates = malloc(size);
	if (candidates == NULL)
		return NULL;
	text = (char *)(candidates + count + 1);
	start = path;
	for (size_t i = 0; i < count; i++) {
		const char *end = strchr(start, ':');
		size_t length = end != NULL ? (size_t)(end - start) : strlen(start);
		candidates[i] = text;
		if (length == 0) {
			memcpy(text, ".", 1);
			text += 1;
		} else {
			memcpy(text, start, length);
			text += length;
		}
		*text++ = '/';
		memcpy(text, command, command_length + 1);
		text += command_length + 1;
		start = end != NULL ? end + 1 : start + length;
	}
	candidates[count] = NULL;
	return candidates;
}

/*
 * The posix_spawn path searches PATH here, as the daemon's own user (which
 * is the job's on this path). Returns 0 and *found, or the errno execvp
 * would give.
 */
static int candidates_resolve(char **candidates, const char *cwd, const char **found)
{
	char joined[4096];
	bool saw_eacces = false;
	int error = ENOENT;

	for (size_t i = 0; candidates[i] != NULL; i++) {
		const char *check = candidates[i];
		struct stat status;
		if (cwd != NULL && check[0] != '/') {
			if ((size_t)snprintf(joined, sizeof(joined), "%s/%s", cwd, check) >= sizeof(joined)) {
				error = ENAMETOOLONG;
				continue;
			}
			check = joined;
		}
		if (stat(check, &status) < 0)
			error = errno;
		else if (!S_ISREG(status.st_mode))
			error = EACCES;
		else if (faccessat(AT_FDCWD, check, X_OK, AT_EACCESS) < 0)
			error = errno;
		else {
			*found = candidates[i];
			return 0;
		}
		if (error == EACCES)
			saw_eacces = true;
		if (error_ends_search(error))
			return error;
	}
	return saw_eacces ? EACCES : error;
}

/* ------------------------------------------------------------------ paths */

int proc_child_pipe(int ends[2], int nonblocking_end)
{
	int error = 0;

	if (pipe2(ends, O_CLOEXEC) < 0)
		return errno;
	for (int i = 0; i < 2 && error == 0; i++) {
		if (ends[i] < 3) {
			int moved = fcntl(ends[i], F_DUPFD_CLOEXEC, 3);
			if (moved < 0) {
				error = errno;
				break;
			}
			close(ends[i]);
			ends[i] = moved;
		}
	}
	if (error == 0 && nonblocking_end >= 0 && fcntl(ends[nonblocking_end], F_SETFL, O_NONBLOCK) < 0)
		error = errno;
	if (error != 0) {
		close(ends[0]);
		close(ends[1]);
	}
	return error;
}

static void describe(char *message, size_t message_size, const char *format, const char *subject,
	int error)
{
	snprintf(message, message_size, format, subject, strerror(error));
}

/* posix_spawn cannot tell a failed chdir from a failed exec: check the
 * directory first so the message names the right one. Returns 0 or errno. */
static int check_directory(const char *directory)
{
	struct stat status;

	if (stat(directory, &status) < 0)
		return errno;
	if (!S_ISDIR(status.st_mode))
		return ENOTDIR;
	if (faccessat(AT_FDCWD, directory, X_OK, AT_EACCESS) < 0)
		return errno;
	return 0;
}

/*
 * For a child that would take the posix_spawn path (it runs as the daemon's
 * own user): the directory and the command are checked here first, so that a
 * missing one is reported with no process made ("pid": null), also when a
 * cgroup makes it take the fork path. Returns true when
 * both are fine (*path: the command found), else false with the message.
 */
static bool precheck(const struct execargs *args, char **candidates, const char **path,
	char *message, size_t message_size)
{
	int error;

	if (args->cwd != NULL && (error = check_directory(args->cwd)) != 0) {
		describe(message, message_size, "cannot change to directory '%s': %s", args->cwd, error);
		return false;
	}
	/* Also for a path with '/': a missing or non-executable file is then
	 * reported from here, not through glibc's vfork error channel (which
	 * tools such as valgrind turn into a plain exit 127). */
	if ((error = candidates_resolve(candidates, args->cwd, path)) != 0) {
		describe(message, message_size, "cannot run '%s': %s", args->argv[0], error);
		return false;
	}
	return true;
}

static int spawn_fast(const struct execargs *args, char **candidates, char **envp,
	const int stdio[3], pid_t *pid, char *message, size_t message_size)
{
	static const int null_flags[3] = {O_RDONLY, O_WRONLY, O_WRONLY};
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attributes;
	sigset_t all, none;
	const char *path = candidates[0];
	int error;

	if (!precheck(args, candidates, &path, message, message_size))
		return WEFT_OK;

	if (posix_spawn_file_actions_init(&actions) != 0)
		return WEFT_ENOMEM;
	if (posix_spawnattr_init(&attributes) != 0) {
		posix_spawn_file_actions_destroy(&actions);
		return WEFT_ENOMEM;
	}
	error = 0;
	for (int target = 0; target < 3 && error == 0; target++) {
		if (stdio[target] >= 0)
			error = posix_spawn_file_actions_adddup2(&actions, stdio[target], target);
		else
			error = posix_spawn_file_actions_addopen(&actions, target, "/dev/null",
				null_flags[target], 0);
	}
	if (error == 0 && args->cwd != NULL)
		error = posix_spawn_file_actions_addchdir_np(&actions, args->cwd);
	if (error == 0)
		error = posix_spawn_file_actions_addclosefrom_np(&actions, 3);
	sigfillset(&all);
	sigemptyset(&none);
	if (error == 0)
		error = posix_spawnattr_setflags(&attributes,
			POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (error == 0)
		error = posix_spawnattr_setsigmask(&attributes, &none);
	if (error == 0)
		error = posix_spawnattr_setsigdefault(&attributes, &all);
	if (error == 0) {
		error = posix_spawn(pid, path, &actions, &attributes, args->argv, envp);
		/* glibc reports the child's exec failure here, and leaves no process. */
		if (error != 0) {
			*pid = 0;
			describe(message, message_size, "cannot run '%s': %s", args->argv[0], error);
		}
		error = 0;
	}
	posix_spawnattr_destroy(&attributes);
	posix_spawn_file_actions_destroy(&actions);
	/* Only building the actions can fail here, and only for memory. */
	return error == 0 ? WEFT_OK : WEFT_ENOMEM;
}

static int spawn_forked(const struct execargs *args, const struct account *identity,
	int cgroup_fd, bool cgroup_only, char **candidates, char **envp, const int stdio[3], pid_t *pid, int *report_fd,
	char *message, size_t message_size)
{
	struct child_plan plan;
	int report[2];
	int error;

	/* Forked only for its cgroup: report what the fast path would have. */
	if (cgroup_only) {
		const char *path;
		if (!precheck(args, candidates, &path, message, message_size))
			return WEFT_OK;
	}
	/* Blocking ends: the parent reads only after the child is dead. */
	if ((error = proc_child_pipe(report, -1)) != 0) {
		describe(message, message_size, "cannot create a pipe for '%s': %s", args->argv[0],
			error);
		return WEFT_OK;
	}
	memset(&plan, 0, sizeof(plan));
	plan.argv = args->argv;
	plan.envp = envp;
	plan.candidates = (const char *const *)candidates;
	memcpy(plan.stdio, stdio, sizeof(plan.stdio));
	plan.report_fd = report[1];
	plan.cgroup_fd = cgroup_fd;
	plan.limits = args->limits;
	plan.limit_count = args->limit_count;
	plan.cwd = args->cwd;
	plan.umask = (mode_t)args->umask;
	plan.oom_score = job_oom_change() ? oom_text : NULL;
	if (identity != NULL && identity->switch_to) {
		plan.switch_identity = true;
		plan.uid = identity->uid;
		plan.gid = identity->gid;
		plan.groups = identity->groups;
		plan.group_count = identity->group_count;
	}
	error = fork_child(&plan, pid);
	close(report[1]);
	if (error != 0) {
		close(report[0]);
		*pid = 0;
		describe(message, message_size, "cannot start '%s': %s", args->argv[0], error);
		return WEFT_OK;
	}
	*report_fd = report[0];
	return WEFT_OK;
}

int proc_child_spawn(const struct execargs *args, const struct account *identity,
	int cgroup_fd, const int stdio[3], pid_t *pid, int *report_fd, char *message, size_t message_size)
{
	struct environment environment;
	char **candidates = NULL;
	int rv;

	*pid = 0;
	*report_fd = -1;
	if ((rv = environment_build(&environment, args, identity)) != 0)
		goto done;
	candidates = candidates_build(args->argv[0], environment_path(&environment));
	if (candidates == NULL) {
		rv = WEFT_ENOMEM;
		goto done;
	}
	/* posix_spawn has no umask or cgroup attribute: a child that needs
	 * another umask than weftd's own, or a cgroup, is forked. */
	bool needs_fork = (identity != NULL && identity->switch_to) || args->limit_count > 0 ||
	                  (mode_t)args->umask != process_umask() || job_oom_change();
	if (needs_fork || cgroup_fd >= 0)
		rv = spawn_forked(args, identity, cgroup_fd, !needs_fork, candidates, environment.entries, stdio, pid,
			report_fd, message, message_size);
	else
		rv = spawn_fast(args, candidates, environment.entries, stdio, pid, message,
			message_size);
done:
	free(candidates);
	environment_free(&environment);
	return rv;
}

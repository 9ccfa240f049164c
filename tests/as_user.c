/* See as_user.h. */
#include "tests/as_user.h"

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* A memfd holding a copy of the file at path, or -1 with the reason in out. */
static int copy_to_memory(const char *path, char *out, size_t size)
{
	int source = open(path, O_RDONLY | O_CLOEXEC);
	if (source < 0) {
		snprintf(out, size, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	int copy = memfd_create("weft-test-program", MFD_CLOEXEC);
	off_t offset = 0;
	bool ok = copy >= 0 && fstat(source, &st) == 0;
	while (ok && offset < st.st_size)
		ok = sendfile(copy, source, &offset, (size_t)(st.st_size - offset)) > 0;
	if (!ok) {
		snprintf(out, size, "cannot copy %s into memory: %s", path, strerror(errno));
		if (copy >= 0)
			close(copy);
		copy = -1;
	}
	close(source);
	return copy;
}

/* The child's own failure before exec, written where the test reads. */
static void fail_in_child(int status, const char *what)
{
	char line[160];
	int length = snprintf(line, sizeof(line), "as_user: %s failed: %s\n", what, strerror(errno));
	if (write(STDERR_FILENO, line, (size_t)length) < 0)
		_exit(status);
	_exit(status);
}

int as_user_run(uid_t uid, gid_t gid, const char *path, char *const argv[], char *out, size_t size)
{
	int program = copy_to_memory(path, out, size);
	ck_assert_msg(program >= 0, "%s", out);
	int ends[2];
	ck_assert_int_eq(pipe2(ends, O_CLOEXEC), 0);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		dup2(ends[1], STDOUT_FILENO);
		dup2(ends[1], STDERR_FILENO);
		if (uid != (uid_t)-1) {
			if (syscall(SYS_setgroups, 1, &gid) != 0)
				fail_in_child(121, "setgroups");
			if (syscall(SYS_setresgid, gid, gid, gid) != 0)
				fail_in_child(122, "setresgid");
			if (syscall(SYS_setresuid, uid, uid, uid) != 0)
				fail_in_child(123, "setresuid");
		}
		extern char **environ;
		fexecve(program, argv, environ);
		fail_in_child(124, "fexecve");
	}
	close(ends[1]);
	close(program);
	size_t used = 0;
	ssize_t got;
	char rest[4096];
	/* Read to the end, keeping what fits: a full pipe would stop the child. */
	for (;;) {
		bool room = used < size - 1;
		got = room ? read(ends[0], out + used, size - 1 - used) : read(ends[0], rest, sizeof(rest));
		if (got == 0)
			break;
		if (got < 0 && errno == EINTR)
			continue;
		ck_assert_msg(got > 0, "reading the output of %s: %s", path, strerror(errno));
		if (room)
			used += (size_t)got;
	}
	out[used] = '\0';
	close(ends[0]);
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void as_user_skip(int count, const char *what, const char *why)
{
	printf("SKIP: %d %s: %s\n", count, what, why);
	fflush(stdout);
}

int as_user_shell(const char *command)
{
	char line[4096];
	if (snprintf(line, sizeof(line), "{ %s; } >/dev/null 2>&1", command) >= (int)sizeof(line))
		return -1;
	return system(line);
}

bool as_user_create(struct user *user, const char *prefix)
{
	char command[256], line[512];
	snprintf(user->name, sizeof(user->name), "%s%d", prefix, (int)getpid() % 100000);
	snprintf(command, sizeof(command), "useradd --no-create-home --user-group --shell /bin/sh %s",
	         user->name);
	if (as_user_shell(command) != 0)
		return false;
	snprintf(command, sizeof(command), "id -u %s; id -g %s", user->name, user->name);
	FILE *entry = popen(command, "r");
	if (entry == NULL)
		return false;
	unsigned uid = 0, gid = 0;
	bool ok = fgets(line, sizeof(line), entry) != NULL && sscanf(line, "%u", &uid) == 1 &&
	          fgets(line, sizeof(line), entry) != NULL && sscanf(line, "%u", &gid) == 1;
	pclose(entry);
	user->uid = uid;
	user->gid = gid;
	return ok && uid != 0;
}

void as_user_remove(const struct user *user)
{
	char command[128];
	if (user->name[0] == '\0')
		return;
	snprintf(command, sizeof(command), "userdel %s", user->name);
	as_user_shell(command);
}

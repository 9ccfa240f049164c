/*
 * Running a program as another local user from a test that runs as root, and
 * telling `make check` about tests that cannot run here.
 *
 * The program is copied into a memfd and started with fexecve, so the user
 * needs no access to the build tree (a checkout may sit in a directory other
 * users cannot enter). Between fork and exec the child makes raw system calls
 * only: the test process may have nng's threads, and glibc's set*id wrappers
 * would try to change theirs too. Test threads only.
 */
#ifndef TESTS_AS_USER_H
#define TESTS_AS_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A throwaway local user made for one test run. */
struct user {
	char name[32];
	uid_t uid;
	gid_t gid;
};

/* Runs command with /bin/sh, its output thrown away: its exit status, or -1
 * when it does not fit. Safe outside a test too (no ck_assert). */
int as_user_shell(const char *command);

/* Makes user "<prefix><pid>" with a group of its own name (useradd, no home):
 * true when it exists with a uid other than 0. Needs root. Safe outside a
 * test (call it from main, before the suite runs). */
bool as_user_create(struct user *user, const char *prefix);

/* Removes a user made by as_user_create (nothing when its name is empty). */
void as_user_remove(const struct user *user);

/* Runs path with argv (argv[0] included) as uid/gid with gid as its only
 * group; stdout and stderr go into out[size] (NUL-terminated). Returns the
 * exit status, or 128 + the signal that killed it. Exit statuses 121 to 123
 * mean the child could not start it, and out says which step failed. Fails
 * the test when it cannot even fork. uid -1: as the test itself. */
int as_user_run(uid_t uid, gid_t gid, const char *path, char *const argv[], char *out,
                size_t size);

/* Prints "SKIP: <count> <what>: <why>", which `make check` counts in its
 * closing line. */
void as_user_skip(int count, const char *what, const char *why);

#endif

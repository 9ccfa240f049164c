/*
 * A user's account as the user database knows it: uid, primary group,
 * supplementary groups, name, home and shell. The principal (principal.h)
 * caches one per user and decides when a job runs as it; the process
 * executor reads it to switch a child to that user.
 */
#ifndef ACCOUNT_H
#define ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Made by account_lookup (or by hand), freed by account_free; plain data,
 * only read once made, so any thread may read it and one account may serve
 * many jobs at once (the principal caches it per user).
 */
struct account {
	bool switch_to;     /* true: the child switches to uid/gid/groups (needs root) */
	uid_t uid;
	gid_t gid;
	gid_t *groups;      /* supplementary groups, group_count entries; owned */
	size_t group_count;
	char *user;         /* USER and LOGNAME; NULL: left out; owned */
	char *home;         /* HOME; NULL: left out; owned */
	char *shell;        /* SHELL; NULL: /bin/sh; owned */
};

/*
 * Builds the account of uid from the user database: its name, home, shell
 * and supplementary groups (getgrouplist, with gid as the primary group).
 * switch_to is copied into the result: pass true when the daemon runs as
 * root and uid is not the daemon's. A uid without a passwd entry still gets
 * an account (no USER/HOME, only gid as its group).
 * BLOCKING (the user database may be remote): call it on the thread pool or
 * once per client connection, never on a worker loop.
 * Returns WEFT_OK and *out (new, freed with account_free) or WEFT_ENOMEM.
 */
int account_lookup(uid_t uid, gid_t gid, bool switch_to, struct account **out);

/* Frees an account. NULL is fine. Any thread. */
void account_free(struct account *identity);

#endif

/*
 * principal: who is asking, and what they may do. This is the one place weftd
 * decides identity; every other module asks it. The rules:
 *
 *  1. Every connection gets a principal from its transport when it is added
 *     (server.c): an ipc peer is its credentials at connect time (uid, gid,
 *     and the supplementary groups its process holds then, read from
 *     /proc/PID/status, so a group the caller dropped stays dropped); a
 *     listener mapped to a local user (--insecure-tcp-user) is that user with
 *     the groups of the user database. A connection without a principal is
 *     closed before its first request: there is no anonymous caller.
 *  2. Every job holds a reference to its owner, the principal that submitted
 *     it. A job made on behalf of another (a gather/race child, a retry, an
 *     await) has its parent's owner.
 *  3. Work for a job runs with its owner's rights, and fails closed:
 *     principal_identity gives the identity a process runs as,
 *     principal_open_regular opens a file with the owner's file-system rights.
 *     Both refuse (WEFT_EPERM) when there is no owner; neither ever falls back
 *     to "run as the daemon" for a user other than the daemon's own.
 *  4. A caller may see, wait on, read, cancel and set only the jobs it owns;
 *     root and members of --admin-group may act on every job and change the
 *     configuration (named queues). principal_may_act_on and
 *     principal_is_admin say so.
 *
 * User database lookups (getpwuid_r, getgrouplist) may block on a remote
 * directory: they run on nng's threads when a connection is added, never on a
 * worker loop and never under a lock, and their answers are cached for
 * PRINCIPAL_ACCOUNT_TTL seconds, so a user removed from a group loses it for
 * new connections soon after.
 *
 * Threads: every function here may be called from any thread. A principal is
 * immutable once made; its reference count is atomic.
 */
#ifndef PRINCIPAL_H
#define PRINCIPAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/core/account.h"

/* How long a user database answer is reused, in seconds. */
#define PRINCIPAL_ACCOUNT_TTL 30.0

/* Immutable after principal_for_*; shared by reference. */
struct principal {
	atomic_int references;
	uid_t uid;
	gid_t gid;
	bool admin; /* root, or a member of the admin group */
	/* What a process of this principal runs as: uid, gid, the groups and the
	 * account's name, home and shell. switch_to is true when the daemon is
	 * root and the principal is not. Owned. */
	struct account identity;
};

/* Sets the admin group (--admin-group): its members act on every job. Main
 * thread, before the first principal is made. gid -1: none. */
void principal_set_admin_group(int64_t gid);

/*
 * The principal of an ipc peer with these credentials (from SO_PEERCRED).
 * pid names the peer process, whose current groups are taken when its
 * effective uid is still `uid`; otherwise (it has exited, or pid is -1) the
 * principal has the primary group alone, never more than the caller showed.
 * May block on the user database. Returns a new reference. Cannot fail: the
 * daemon aborts when out of memory.
 */
struct principal *principal_for_peer(uid_t uid, gid_t gid, pid_t pid);

/* The principal of a job's owner read back from the journal (journal.h):
 * these ids and exactly these supplementary groups (count 0: the primary
 * group alone); its name, home and shell from the user database. May block.
 * Returns a new reference. Cannot fail: the daemon aborts when out of memory. */
struct principal *principal_for_ids(uid_t uid, gid_t gid, const gid_t *groups, size_t count);

/* The principal of a local user named by the operator (a mapped listener):
 * its primary group and every group the user database gives it. Returns a
 * new reference, or NULL when no such user exists. May block. */
struct principal *principal_for_user(const char *name);

/* The daemon's own user, for work weftd does for itself and for tests. New
 * reference. May block. */
struct principal *principal_for_daemon(void);

/* NULL is fine for both. */
struct principal *principal_ref(struct principal *principal);
void principal_unref(struct principal *principal);

/* Whether `caller` may act on something `owner` owns. False when either is
 * NULL (fail closed). */
bool principal_may_act_on(const struct principal *caller, const struct principal *owner);

/* Whether `caller` may change the daemon's configuration. False for NULL. */
bool principal_is_admin(const struct principal *caller);

/*
 * The identity a process started for `owner` runs as: borrowed, valid while
 * the caller holds its reference to owner. Returns WEFT_OK, or WEFT_EPERM
 * when owner is NULL or the daemon could not act as it (a non-root daemon
 * asked to run another user's job).
 */
int principal_identity(const struct principal *owner, const struct account **out);

/*
 * Opens `path` for reading with owner's file-system rights (fsuid, fsgid and
 * groups of the calling thread, switched for the call and back), and only
 * when it is a regular file: the type is checked before the file itself is
 * opened, so a device or a FIFO is never opened at all. Returns WEFT_OK and
 * *fd (O_CLOEXEC; the caller closes it), or WEFT_EPERM (owner is NULL, or
 * the path is not the owner's to read: *error is EACCES/EPERM), or
 * WEFT_EINVAL with *error an errno value (ENOENT..., or ENODEV when the path
 * is not a regular file, EISDIR for a directory). Blocking: pool threads.
 */
int principal_open_regular(const struct principal *owner, const char *path, int *fd, int *error);

/*
 * Creates `path` as a new regular file for writing with owner's file-system
 * rights (as principal_open_regular switches them), mode `mode` less the
 * daemon's umask, owned by the owner. O_CREAT|O_EXCL|O_NOFOLLOW: an existing
 * name of any kind (a file, a symlink even dangling, a FIFO, a device) is
 * refused and never opened (EACCES when another user owns it, else EEXIST),
 * so the call cannot write over another's file, follow a planted link, or
 * wait on a FIFO. Returns WEFT_OK and *fd (O_WRONLY|O_CLOEXEC|O_NONBLOCK;
 * the caller closes it), WEFT_EPERM (no owner, or *error EACCES/EPERM), or
 * WEFT_EINVAL with *error an errno value (EEXIST, ENOENT...). Does not block on local file systems, so a
 * worker loop may call it; a path under a hung network mount could.
 */
int principal_create_regular(const struct principal *owner, const char *path, mode_t mode, int *fd,
                             int *error);

/* Removes `path` with owner's file-system rights: what the owner could remove
 * itself, never more. Returns WEFT_OK, or WEFT_EPERM/WEFT_EINVAL with *error
 * as principal_create_regular. Any thread. */
int principal_unlink(const struct principal *owner, const char *path, int *error);

/* Frees the account cache. Main thread, at exit. */
void principal_fini(void);

#endif

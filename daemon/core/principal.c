/*
 * See principal.h. Two parts: the account cache (uid → what the user
 * database says, for PRINCIPAL_ACCOUNT_TTL seconds) and the principals made
 * from it, each a private copy so that a cache entry can expire while jobs
 * still hold their owner.
 *
 * File rights on a pool thread: Linux keeps credentials per thread, and the
 * raw setfsuid, setfsgid and setgroups system calls change only the calling
 * thread (glibc's setgroups wrapper would change every thread of weftd). So a
 * pool thread takes the owner's file-system identity around one open and then
 * returns to the daemon's; if it cannot return, weftd aborts rather than let a
 * thread serve the next job with a user's rights.
 */
#include "daemon/core/principal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/base/log.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "weft/error.h"

/* Set once at start (principal_set_admin_group), read-only afterwards. */
static int64_t admin_gid = -1;

struct account_entry {
	struct account_entry *next;
	uid_t uid;
	gid_t gid;
	double expires;                  /* monotonic seconds */
	struct account *identity;  /* owned; what the database said */
};

/* Guards the list only: lookups run with it released, so a slow directory
 * never holds up another thread. A uid looked up twice at once is harmless:
 * the second answer replaces the first. */
static pthread_mutex_t accounts_lock = PTHREAD_MUTEX_INITIALIZER;
static struct account_entry *accounts;

void principal_set_admin_group(int64_t gid)
{
	admin_gid = gid;
}

static void identity_copy(struct account *to, const struct account *from)
{
	to->switch_to = from->switch_to;
	to->uid = from->uid;
	to->gid = from->gid;
	to->user = from->user != NULL ? memory_strdup(from->user) : NULL;
	to->home = from->home != NULL ? memory_strdup(from->home) : NULL;
	to->shell = from->shell != NULL ? memory_strdup(from->shell) : NULL;
	to->group_count = from->group_count;
	to->groups = memory_alloc(sizeof(gid_t) * (from->group_count > 0 ? from->group_count : 1));
	memcpy(to->groups, from->groups, sizeof(gid_t) * from->group_count);
}

/* What the user database says of uid (with gid as its primary group), copied
 * into *to. Blocks on a miss; any thread, no lock held by the caller. */
static void lookup_account(uid_t uid, gid_t gid, struct account *to)
{
	double now = now_monotonic();
	pthread_mutex_lock(&accounts_lock);
	for (struct account_entry *entry = accounts; entry != NULL; entry = entry->next) {
		if (entry->uid == uid && entry->gid == gid && entry->expires > now) {
			identity_copy(to, entry->identity);
			pthread_mutex_unlock(&accounts_lock);
			return;
		}
	}
	pthread_mutex_unlock(&accounts_lock);

	struct account *identity;
	bool switch_to = geteuid() == 0 && uid != 0;
	if (account_lookup(uid, gid, switch_to, &identity) != WEFT_OK) {
		log_error("out of memory looking up uid %u", (unsigned)uid);
		abort();
	}
	identity_copy(to, identity);

	struct account_entry *fresh = memory_zalloc(sizeof(*fresh));
	fresh->uid = uid;
	fresh->gid = gid;
	fresh->expires = now + PRINCIPAL_ACCOUNT_TTL;
	fresh->identity = identity;
	pthread_mutex_lock(&accounts_lock);
	/* Drop the expired entries (and an older answer for this uid) while here:
	 * the list stays as long as the users seen in one TTL. */
	struct account_entry **link = &accounts;
	while (*link != NULL) {
		struct account_entry *entry = *link;
		if (entry->expires <= now || (entry->uid == uid && entry->gid == gid)) {
			*link = entry->next;
			account_free(entry->identity);
			free(entry);
			continue;
		}
		link = &entry->next;
	}
	fresh->next = accounts;
	accounts = fresh;
	pthread_mutex_unlock(&accounts_lock);
}

static struct principal *principal_new(uid_t uid, gid_t gid)
{
	struct principal *principal = memory_zalloc(sizeof(*principal));
	atomic_init(&principal->references, 1);
	principal->uid = uid;
	principal->gid = gid;
	lookup_account(uid, gid, &principal->identity);
	return principal;
}

static bool has_group(const struct principal *principal, int64_t gid)
{
	if (gid < 0)
		return false;
	if (principal->gid == (gid_t)gid)
		return true;
	for (size_t i = 0; i < principal->identity.group_count; i++)
		if (principal->identity.groups[i] == (gid_t)gid)
			return true;
	return false;
}

static void decide_admin(struct principal *principal)
{
	principal->admin = principal->uid == 0 || has_group(principal, admin_gid);
}

/* The groups a live process holds now, from the "Groups:" line of its status,
 * when its effective uid is still `uid` (the pid was not reused by somebody
 * else). Returns the count written to groups (at most capacity), or -1. */
static int process_groups(pid_t pid, uid_t uid, gid_t *groups, size_t capacity, size_t *count)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *status = fopen(path, "re");
	if (status == NULL)
		return -1;
	char line[4096];
	bool uid_matches = false, have_groups = false;
	*count = 0;
	while (fgets(line, sizeof(line), status) != NULL) {
		unsigned real, effective;
		if (sscanf(line, "Uid: %u %u", &real, &effective) == 2) {
			uid_matches = effective == uid;
			continue;
		}
		if (strncmp(line, "Groups:", 7) != 0)
			continue;
		have_groups = true;
		char *cursor = line + 7, *end;
		for (;;) {
			errno = 0;
			unsigned long value = strtoul(cursor, &end, 10);
			if (end == cursor || errno != 0)
				break;
			if (*count == capacity) {
				have_groups = false; /* a line longer than we read: trust none of it */
				break;
			}
			groups[(*count)++] = (gid_t)value;
			cursor = end;
		}
	}
	fclose(status);
	return uid_matches && have_groups ? 0 : -1;
}

struct principal *principal_for_peer(uid_t uid, gid_t gid, pid_t pid)
{
	struct principal *principal = principal_new(uid, gid);
	/* The groups are the caller's own, not the database's: what it dropped
	 * stays dropped, and what the database added since is not yet its. */
	enum { MAX_READ = 1024 };
	gid_t *groups = memory_alloc(sizeof(gid_t) * MAX_READ);
	size_t count = 0;
	if (pid <= 0 || process_groups(pid, uid, groups, MAX_READ, &count) != 0)
		count = 0;
	free(principal->identity.groups);
	if (count == 0) {
		groups[0] = gid;
		count = 1;
	}
	principal->identity.groups = groups;
	principal->identity.group_count = count;
	decide_admin(principal);
	return principal;
}

struct principal *principal_for_ids(uid_t uid, gid_t gid, const gid_t *groups, size_t count)
{
	struct principal *principal = principal_new(uid, gid);
	/* The groups the job had when it was accepted: a restart neither gives
	 * it the groups the user gained since nor drops any. */
	free(principal->identity.groups);
	principal->identity.groups = memory_alloc(sizeof(gid_t) * (count > 0 ? count : 1));
	if (count > 0)
		memcpy(principal->identity.groups, groups, sizeof(gid_t) * count);
	else
		principal->identity.groups[0] = gid;
	principal->identity.group_count = count > 0 ? count : 1;
	decide_admin(principal);
	return principal;
}

struct principal *principal_for_user(const char *name)
{
	struct passwd entry, *found = NULL;
	char buffer[16384];
	if (getpwnam_r(name, &entry, buffer, sizeof(buffer), &found) != 0 || found == NULL)
		return NULL;
	struct principal *principal = principal_new(found->pw_uid, found->pw_gid);
	decide_admin(principal);
	return principal;
}

struct principal *principal_for_daemon(void)
{
	struct principal *principal = principal_new(geteuid(), getegid());
	decide_admin(principal);
	return principal;
}

struct principal *principal_ref(struct principal *principal)
{
	if (principal != NULL)
		atomic_fetch_add_explicit(&principal->references, 1, memory_order_relaxed);
	return principal;
}

void principal_unref(struct principal *principal)
{
	/* acq_rel: the last holder's free must see every other holder's reads done. */
	if (principal == NULL ||
	    atomic_fetch_sub_explicit(&principal->references, 1, memory_order_acq_rel) != 1)
		return;
	free(principal->identity.groups);
	free(principal->identity.user);
	free(principal->identity.home);
	free(principal->identity.shell);
	free(principal);
}

bool principal_may_act_on(const struct principal *caller, const struct principal *owner)
{
	if (caller == NULL || owner == NULL)
		return false;
	return caller->admin || caller->uid == owner->uid;
}

bool principal_is_admin(const struct principal *caller)
{
	return caller != NULL && caller->admin;
}

int principal_identity(const struct principal *owner, const struct account **out)
{
	if (owner == NULL)
		return WEFT_EPERM;
	/* A user's daemon can only run its own user's work. */
	if (geteuid() != 0 && owner->uid != geteuid())
		return WEFT_EPERM;
	*out = &owner->identity;
	return WEFT_OK;
}

/* The calling thread's groups, to go back to. */
struct thread_rights {
	gid_t groups[256];
	int group_count;
	uid_t fsuid;
	gid_t fsgid;
};

/* Switches the calling thread's file-system rights to owner's. Returns 0, or
 * an errno value; on an error after the first change, the caller gives the
 * saved rights back. */
static int take_rights(const struct principal *owner, struct thread_rights *saved)
{
	/* -1 is no id: the calls change nothing and return the current value. */
	saved->fsuid = (uid_t)setfsuid((uid_t)-1);
	saved->fsgid = (gid_t)setfsgid((gid_t)-1);
	saved->group_count = getgroups(256, saved->groups);
	if (saved->group_count < 0)
		return errno;
	if (syscall(SYS_setgroups, owner->identity.group_count, owner->identity.groups) != 0)
		return errno;
	/* setfsgid/setfsuid report no error: ask again whether the change took. */
	setfsgid(owner->gid);
	setfsuid(owner->uid);
	if ((gid_t)setfsgid((gid_t)-1) != owner->gid || (uid_t)setfsuid((uid_t)-1) != owner->uid)
		return EPERM;
	return 0;
}

static void give_back_rights(const struct thread_rights *saved)
{
	setfsuid(saved->fsuid);
	setfsgid(saved->fsgid);
	if ((uid_t)setfsuid((uid_t)-1) != saved->fsuid ||
	    (gid_t)setfsgid((gid_t)-1) != saved->fsgid ||
	    syscall(SYS_setgroups, saved->group_count, saved->groups) != 0) {
		log_error("cannot give a pool thread its own rights back: %s", strerror(errno));
		abort();
	}
}

int principal_open_regular(const struct principal *owner, const char *path, int *fd, int *error)
{
	*error = EPERM;
	if (owner == NULL)
		return WEFT_EPERM;
	if (geteuid() != 0 && owner->uid != geteuid())
		return WEFT_EPERM;
	struct thread_rights saved;
	bool switched = geteuid() == 0 && owner->uid != 0;
	if (switched && (*error = take_rights(owner, &saved)) != 0) {
		if (saved.group_count >= 0)
			give_back_rights(&saved);
		return WEFT_EPERM;
	}
	/* O_PATH opens nothing of the file itself (no device driver runs, a FIFO
	 * does not block): the type is known before anything is read. */
	int opened = -1, location = open(path, O_PATH | O_CLOEXEC);
	struct stat status;
	if (location < 0) {
		*error = errno;
	} else if (fstat(location, &status) != 0) {
		*error = errno;
	} else if (S_ISDIR(status.st_mode)) {
		*error = EISDIR;
	} else if (!S_ISREG(status.st_mode)) {
		*error = ENODEV;
	} else {
		/* Reopening the same inode through /proc checks read permission with
		 * the rights taken above, and cannot be raced by a rename. */
		char again[64];
		snprintf(again, sizeof(again), "/proc/self/fd/%d", location);
		opened = open(again, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		*error = opened < 0 ? errno : 0;
	}
	if (location >= 0)
		close(location);
	if (switched)
		give_back_rights(&saved);
	if (opened < 0)
		return *error == EACCES || *error == EPERM ? WEFT_EPERM : WEFT_EINVAL;
	*fd = opened;
	return WEFT_OK;
}

/* Runs operation(path) on the calling thread with owner's file-system rights;
 * the common part of principal_create_regular and principal_unlink. */
static int with_rights(const struct principal *owner, int (*operation)(const char *, mode_t),
                       const char *path, mode_t mode, int *error)
{
	*error = EPERM;
	if (owner == NULL)
		return -1;
	if (geteuid() != 0 && owner->uid != geteuid())
		return -1;
	struct thread_rights saved;
	bool switched = geteuid() == 0 && owner->uid != 0;
	if (switched && (*error = take_rights(owner, &saved)) != 0) {
		if (saved.group_count >= 0)
			give_back_rights(&saved);
		return -1;
	}
	int rv = operation(path, mode);
	*error = rv < 0 ? errno : 0;
	if (switched)
		give_back_rights(&saved);
	return rv;
}

static int create_exclusive(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
	              mode);
	if (fd >= 0 || errno != EEXIST)
		return fd;
	/* A name someone else owns is theirs to keep: say so as a permission
	 * error (asked with the owner's rights, so it tells nothing the owner
	 * could not see). */
	struct stat status;
	if (lstat(path, &status) == 0 && status.st_uid != (uid_t)setfsuid((uid_t)-1))
		errno = EACCES;
	else
		errno = EEXIST;
	return -1;
}

static int unlink_path(const char *path, mode_t mode)
{
	(void)mode;
	return unlink(path);
}

static int rights_error(int error)
{
	return error == EACCES || error == EPERM ? WEFT_EPERM : WEFT_EINVAL;
}

int principal_create_regular(const struct principal *owner, const char *path, mode_t mode, int *fd,
                             int *error)
{
	int opened = with_rights(owner, create_exclusive, path, mode, error);
	if (opened < 0)
		return rights_error(*error);
	*fd = opened;
	return WEFT_OK;
}

int principal_unlink(const struct principal *owner, const char *path, int *error)
{
	return with_rights(owner, unlink_path, path, 0, error) < 0 ? rights_error(*error) : WEFT_OK;
}

void principal_fini(void)
{
	pthread_mutex_lock(&accounts_lock);
	while (accounts != NULL) {
		struct account_entry *next = accounts->next;
		account_free(accounts->identity);
		free(accounts);
		accounts = next;
	}
	pthread_mutex_unlock(&accounts_lock);
}

/*
 * User accounts from the user database; see account.h.
 */
#include "daemon/core/account.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "weft/error.h"

int account_lookup(uid_t uid, gid_t gid, bool switch_to, struct account **out)
{
	struct account *identity;
	struct passwd entry, *found = NULL;
	char *buffer = NULL;
	size_t buffer_size = 4096;
	int rv;

	identity = calloc(1, sizeof(*identity));
	if (identity == NULL)
		return WEFT_ENOMEM;
	identity->switch_to = switch_to;
	identity->uid = uid;
	identity->gid = gid;

	for (;;) {
		char *bigger = realloc(buffer, buffer_size);
		if (bigger == NULL)
			goto fail_memory;
		buffer = bigger;
		rv = getpwuid_r(uid, &entry, buffer, buffer_size, &found);
		if (rv != ERANGE || buffer_size >= (size_t)1 << 20)
			break;
		buffer_size *= 2;
	}
	if (found != NULL) {
		identity->user = strdup(found->pw_name);
		identity->home = strdup(found->pw_dir);
		identity->shell = found->pw_shell[0] != '\0' ? strdup(found->pw_shell) : NULL;
		if (identity->user == NULL || identity->home == NULL ||
			(found->pw_shell[0] != '\0' && identity->shell == NULL))
			goto fail_memory;
		int count = 16;
		for (;;) {
			int wanted = count;
			gid_t *groups = realloc(identity->groups, sizeof(gid_t) * (size_t)count);
			if (groups == NULL)
				goto fail_memory;
			identity->groups = groups;
			if (getgrouplist(identity->user, gid, groups, &wanted) >= 0) {
				identity->group_count = (size_t)wanted;
				break;
			}
			/* glibc sets `wanted` to the size needed; grow at least by half. */
			count = wanted > count ? wanted : count + count / 2;
			if (count > 65536)
				break;
		}
	}
	if (identity->group_count == 0) {
		/* Unknown user (or absurd group list): only its primary group. */
		free(identity->groups);
		identity->groups = malloc(sizeof(gid_t));
		if (identity->groups == NULL)
			goto fail_memory;
		identity->groups[0] = gid;
		identity->group_count = 1;
	}
	free(buffer);
	*out = identity;
	return WEFT_OK;

fail_memory:
	free(buffer);
	account_free(identity);
	return WEFT_ENOMEM;
}

void account_free(struct account *identity)
{
	if (identity == NULL)
		return;
	free(identity->shell);
	free(identity->home);
	free(identity->user);
	free(identity->groups);
	free(identity);
}

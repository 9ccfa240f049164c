/*
 * One request sent to weftd as a throwaway user: the wire_send helper
 * (tests/helpers/wire_send) run with that user's uid and gid (as_user_run),
 * its stdout parsed as the reply. For the tests that show what a stranger may
 * and may not do; header only, so each test links it without another object.
 */
#ifndef AS_USER_CALL_H
#define AS_USER_CALL_H

#include <check.h>
#include <jansson.h>

#include "tests/as_user.h"

/* sender: the wire_send helper's path. Returns the reply, a new reference;
 * fails the test when the helper fails or prints no JSON. Main thread. */
static inline json_t *as_user_call(const struct user *user, const char *sender, const char *url,
                                   const char *request)
{
	static char buffer[65536];
	char *argv[] = {(char *)sender, (char *)url, (char *)request, NULL};
	int status = as_user_run(user->uid, user->gid, sender, argv, buffer, sizeof(buffer));
	ck_assert_msg(status == 0, "wire_send as %s failed (%d): %s", user->name, status, buffer);
	json_t *reply = json_loads(buffer, 0, NULL);
	ck_assert_msg(reply != NULL, "not JSON: %s", buffer);
	return reply;
}

#endif

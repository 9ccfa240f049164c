/*
 * principal: the rules of daemon/core/principal.h, called directly. Who may act on
 * what, fail-closed identities, and file rights taken on the calling thread.
 * The rights tests need root (they take another user's rights); as anyone
 * else they print SKIP and return.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/core/principal.h"
#include "tests/as_user.h"
#include "weft/error.h"

static struct principal *user(uid_t uid, gid_t gid)
{
	/* pid -1: no process to read groups from: the primary group alone. */
	return principal_for_peer(uid, gid, -1);
}

START_TEST(an_owner_acts_on_its_own_and_a_stranger_does_not)
{
	struct principal *alice = user(40001, 40001), *alice_again = user(40001, 40001);
	struct principal *bob = user(40002, 40002);
	ck_assert(principal_may_act_on(alice, alice_again));
	ck_assert(!principal_may_act_on(bob, alice));
	ck_assert(!principal_may_act_on(alice, bob));
	ck_assert(!principal_is_admin(alice));
	principal_unref(alice);
	principal_unref(alice_again);
	principal_unref(bob);
}
END_TEST

START_TEST(root_and_the_admin_group_act_on_all)
{
	struct principal *root = user(0, 0), *alice = user(40001, 40001);
	ck_assert(principal_is_admin(root));
	ck_assert(principal_may_act_on(root, alice));
	principal_unref(alice);
	/* Members of --admin-group: made after it is set (decided at creation). */
	principal_set_admin_group(40010);
	struct principal *operator = user(40003, 40010), *carol = user(40004, 40004);
	ck_assert(principal_is_admin(operator));
	ck_assert(principal_may_act_on(operator, carol));
	ck_assert(!principal_may_act_on(carol, operator));
	principal_unref(operator);
	principal_unref(carol);
	principal_unref(root);
}
END_TEST

START_TEST(nobody_is_refused_everything)
{
	struct principal *alice = user(40001, 40001);
	const struct account *identity = NULL;
	int fd = -1, error = 0;
	ck_assert(!principal_may_act_on(NULL, alice));
	ck_assert(!principal_may_act_on(alice, NULL));
	ck_assert(!principal_is_admin(NULL));
	ck_assert_int_eq(principal_identity(NULL, &identity), WEFT_EPERM);
	ck_assert_ptr_null(identity);
	ck_assert_int_eq(principal_open_regular(NULL, "/etc/hostname", &fd, &error), WEFT_EPERM);
	ck_assert_int_eq(fd, -1);
	principal_unref(alice);
}
END_TEST

START_TEST(a_user_identity_switches_and_never_falls_back_to_the_daemon)
{
	struct principal *alice = user(40001, 40001);
	const struct account *identity = NULL;
	int rv = principal_identity(alice, &identity);
	if (geteuid() == 0) {
		ck_assert_int_eq(rv, WEFT_OK);
		ck_assert(identity->switch_to);
		ck_assert_uint_eq(identity->uid, 40001);
		ck_assert_uint_eq(identity->gid, 40001);
		ck_assert_uint_eq(identity->group_count, 1);
	} else {
		/* A user's daemon cannot run another user's work, and says so. */
		ck_assert_int_eq(rv, WEFT_EPERM);
	}
	principal_unref(alice);
	/* The daemon's own user needs no switch. */
	struct principal *self = principal_for_daemon();
	ck_assert_int_eq(principal_identity(self, &identity), WEFT_OK);
	ck_assert(!identity->switch_to || geteuid() != 0);
	principal_unref(self);
}
END_TEST

START_TEST(files_open_with_the_owners_rights_and_only_regular_ones)
{
	if (geteuid() != 0) {
		as_user_skip(1, "files_open_with_the_owners_rights_and_only_regular_ones",
		             "needs root to take another user's rights");
		return;
	}
	char path[] = "/tmp/weft-principal-XXXXXX";
	int made = mkstemp(path);
	ck_assert_int_ge(made, 0);
	ck_assert_int_eq(fchmod(made, 0600), 0);
	close(made);
	struct principal *alice = user(40001, 40001), *root = user(0, 0);
	int fd = -1, error = 0;
	/* root's 0600 file: not alice's to read... */
	ck_assert_int_eq(principal_open_regular(alice, path, &fd, &error), WEFT_EPERM);
	ck_assert_int_eq(error, EACCES);
	/* ...and the thread has root's rights back: */
	ck_assert_int_eq(setfsuid((uid_t)-1), 0);
	ck_assert_int_eq(principal_open_regular(root, path, &fd, &error), WEFT_OK);
	close(fd);
	/* once it is hers, she reads it. */
	ck_assert_int_eq(chown(path, 40001, 40001), 0);
	ck_assert_int_eq(principal_open_regular(alice, path, &fd, &error), WEFT_OK);
	close(fd);
	/* A device or a directory is refused before it is opened. */
	ck_assert_int_eq(principal_open_regular(root, "/dev/zero", &fd, &error), WEFT_EINVAL);
	ck_assert_int_eq(error, ENODEV);
	ck_assert_int_eq(principal_open_regular(root, "/tmp", &fd, &error), WEFT_EINVAL);
	ck_assert_int_eq(error, EISDIR);
	unlink(path);
	principal_unref(alice);
	principal_unref(root);
}
END_TEST

int main(void)
{
	Suite *suite = suite_create("principal");
	TCase *rules = tcase_create("rules");
	tcase_add_test(rules, an_owner_acts_on_its_own_and_a_stranger_does_not);
	tcase_add_test(rules, root_and_the_admin_group_act_on_all);
	tcase_add_test(rules, nobody_is_refused_everything);
	tcase_add_test(rules, a_user_identity_switches_and_never_falls_back_to_the_daemon);
	tcase_add_test(rules, files_open_with_the_owners_rights_and_only_regular_ones);
	suite_add_tcase(suite, rules);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

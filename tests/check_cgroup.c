/*
 * cgroup: the parts that need no cgroup2 mount, on fake group directories (a
 * temporary directory holding the files the kernel would show): the OOM kill
 * count of memory.events, which turns a job's end into OutOfMemory.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/executors/process/cgroup.h"
#include "weft/error.h"

/* A fake job group: a temporary directory with memory.events holding text
 * (NULL: no such file, as without the memory controller). */
struct fake_group {
	char directory[64];
	struct cgroup_job job;
};

static void fake_make(struct fake_group *fake, const char *events)
{
	snprintf(fake->directory, sizeof(fake->directory), "/tmp/weft-cgroup-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(fake->directory));
	if (events != NULL) {
		char path[128];
		snprintf(path, sizeof(path), "%s/memory.events", fake->directory);
		FILE *file = fopen(path, "w");
		ck_assert_ptr_nonnull(file);
		ck_assert_int_eq(fputs(events, file) >= 0, 1);
		ck_assert_int_eq(fclose(file), 0);
	}
	fake->job.fd = open(fake->directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(fake->job.fd, 0);
	snprintf(fake->job.name, sizeof(fake->job.name), "fake");
}

static void fake_remove(struct fake_group *fake)
{
	char path[128];
	close(fake->job.fd);
	snprintf(path, sizeof(path), "%s/memory.events", fake->directory);
	(void)unlink(path);
	ck_assert_int_eq(rmdir(fake->directory), 0);
}

/* The kills a fake group with this memory.events (NULL: none) reads as;
 * fails the test unless the read succeeds. */
static uint64_t kills_of(const char *events)
{
	struct fake_group fake;
	fake_make(&fake, events);
	uint64_t kills = 99;
	int rv = cgroup_job_oom_kills(&fake.job, &kills);
	ck_assert_msg(rv == WEFT_OK, "\"%s\": %s", events != NULL ? events : "(none)",
	              weft_strerror(rv));
	fake_remove(&fake);
	return kills;
}

/* What the kernel (6.x) writes, for a group where 2 processes were killed. */
#define EVENTS_TWO_KILLS "low 0\nhigh 0\nmax 41\noom 2\noom_kill 2\noom_group_kill 0\n"

START_TEST(oom_kills_are_read_from_memory_events)
{
	ck_assert_uint_eq(kills_of(EVENTS_TWO_KILLS), 2);
}
END_TEST

START_TEST(no_oom_kill_reads_as_zero)
{
	ck_assert_uint_eq(kills_of("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"), 0);
}
END_TEST

/* Without the memory controller the group has no memory.events: nothing
 * was killed for memory, and that is not an error. */
START_TEST(a_group_without_memory_events_has_no_oom_kills)
{
	ck_assert_uint_eq(kills_of(NULL), 0);
}
END_TEST

/* The last line may come without its newline; "oom_group_kill" is not it. */
START_TEST(oom_kill_is_matched_as_a_whole_key_on_any_line)
{
	ck_assert_uint_eq(kills_of("oom_group_kill 7\noom_kill 3"), 3);
	ck_assert_uint_eq(kills_of("oom_kill 18446744073709551615\n"), UINT64_MAX);
	ck_assert_uint_eq(kills_of("oom_kill 1\n"), 1);
}
END_TEST

/* A file that does not say: an error (EPROTO), and *kills untouched. */
START_TEST(memory_events_without_a_readable_count_are_refused)
{
	static const char *const cases[] = {
		"",
		"low 0\nhigh 0\n",
		"oom_group_kill 1\n",
		"oom_kill\n",
		"oom_kill -1\n",
		"oom_kill x\n",
		"oom_kill 2x\n",
		"oom_kill 99999999999999999999\n",
		" oom_kill 1\n",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake_group fake;
		fake_make(&fake, cases[i]);
		uint64_t kills = 99;
		errno = 0;
		int rv = cgroup_job_oom_kills(&fake.job, &kills);
		ck_assert_msg(rv == WEFT_EINTERNAL, "case %zu (\"%s\"): %s", i, cases[i],
		              weft_strerror(rv));
		ck_assert_int_eq(errno, EPROTO);
		ck_assert_uint_eq(kills, 99);
		fake_remove(&fake);
	}
}
END_TEST

static Suite *cgroup_suite(void)
{
	Suite *suite = suite_create("cgroup");
	TCase *oom = tcase_create("oom_kills");
	tcase_add_test(oom, oom_kills_are_read_from_memory_events);
	tcase_add_test(oom, no_oom_kill_reads_as_zero);
	tcase_add_test(oom, a_group_without_memory_events_has_no_oom_kills);
	tcase_add_test(oom, oom_kill_is_matched_as_a_whole_key_on_any_line);
	tcase_add_test(oom, memory_events_without_a_readable_count_are_refused);
	suite_add_tcase(suite, oom);
	return suite;
}

int main(void)
{
	SRunner *runner = srunner_create(cgroup_suite());
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}

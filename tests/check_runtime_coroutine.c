/*
 * Coroutines: the raw context switch, nested spawns, deep recursion close to the stack size, a
 * stack overflow caught at the guard page (in a forked child), and a task resumed on another
 * worker keeping its locals and reading the new thread's errno.
 */
#include <check.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/runtime/context.h"
#include "daemon/runtime/runtime.h"
#include "daemon/runtime/sanitizer.h"

#if defined(SANITIZER_ASAN) || defined(SANITIZER_TSAN)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static runtime *start_runtime(int workers, size_t stack_size)
{
	runtime_config config = {.workers = workers, .stack_size = stack_size};
	runtime *rt = NULL;
	int error = runtime_new(&config, &rt);
	ck_assert_msg(error == WEFT_OK, "runtime_new: %s", weft_strerror(error));
	return rt;
}

/* Runs body as a task and returns its code. */
static int run_task(runtime *rt, weft_task_fn body, void *argument, int64_t *value_out)
{
	weft_task *task;
	int error = runtime_inject(rt, body, argument, NULL, &task);
	ck_assert_msg(error == WEFT_OK, "inject: %s", weft_strerror(error));
	error = runtime_join(task, 30);
	ck_assert_msg(error != WEFT_ETIMEOUT, "task did not finish in 30 s");
	if (value_out != NULL)
		*value_out = weft_task_value(task);
	weft_task_release(task);
	return error;
}

/* ---- raw switch ---- */

static context main_context, coroutine_context;
static sanitizer_fiber main_fiber, coroutine_fiber;
static void *main_fake_stack, *coroutine_fake_stack;
static int trace[8];
static int trace_length;

static void to_main(bool finished)
{
	sanitizer_start_switch(finished ? NULL : &coroutine_fake_stack, &main_fiber);
	context_switch(&coroutine_context, &main_context);
	sanitizer_finish_switch(coroutine_fake_stack);
}

static void to_coroutine(void)
{
	sanitizer_start_switch(&main_fake_stack, &coroutine_fiber);
	context_switch(&main_context, &coroutine_context);
	sanitizer_finish_switch(main_fake_stack);
}

static void coroutine_body(void *argument)
{
	sanitizer_finish_switch(NULL);
	int base = *(int *)argument;
	double kept = 2.5; /* a callee-saved value across switches */
	trace[trace_length++] = base + 1;
	to_main(false);
	trace[trace_length++] = base + 2;
	to_main(false);
	trace[trace_length++] = (int)(kept * 2) + base;
	to_main(true);
	abort();
}

START_TEST(context_switch_goes_back_and_forth)
{
	size_t size = 64 * 1024;
	char *memory = malloc(size);
	ck_assert_ptr_nonnull(memory);
	int base = 10;
	sanitizer_init_thread_fiber(&main_fiber);
	coroutine_fiber = (sanitizer_fiber){memory, size, sanitizer_create_fiber(), NULL};
	context_make(&coroutine_context, memory, size, coroutine_body, &base);
	trace_length = 0;
	to_coroutine();
	trace[trace_length++] = 100;
	to_coroutine();
	trace[trace_length++] = 200;
	to_coroutine();
	int expected[] = {11, 100, 12, 200, 15};
	ck_assert_int_eq(trace_length, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(trace[i], expected[i]);
	sanitizer_destroy_fiber(coroutine_fiber.tsan_fiber);
	free(memory);
}
END_TEST

/* ---- nested spawn ---- */

static int nested(void *argument)
{
	intptr_t depth = (intptr_t)argument;
	if (depth == 0) {
		weft_return_int(1);
		return WEFT_OK;
	}
	weft_task *left, *right;
	int error = weft_spawn(nested, (void *)(depth - 1), NULL, &left);
	if (error != WEFT_OK)
		return error;
	error = weft_spawn(nested, (void *)(depth - 1), NULL, &right);
	if (error != WEFT_OK)
		return error;
	weft_sleep(0.0005); /* block in the middle, so children run while the parent waits */
	int64_t total = 1;
	int left_error = weft_await(left, WEFT_FOREVER);
	int right_error = weft_await(right, WEFT_FOREVER);
	total += weft_task_value(left) + weft_task_value(right);
	weft_task_release(left);
	weft_task_release(right);
	if (left_error != WEFT_OK || right_error != WEFT_OK)
		return WEFT_EINTERNAL;
	weft_return_int(total);
	return WEFT_OK;
}

START_TEST(nested_spawns_complete_with_their_results)
{
	runtime *rt = start_runtime(2, 0);
	int64_t count = 0;
	ck_assert_int_eq(run_task(rt, nested, (void *)(intptr_t)8, &count), WEFT_OK);
	ck_assert_int_eq(count, 511); /* 2^9 - 1 tasks in a binary tree of depth 8 */
	runtime_free(rt, 5);
}
END_TEST

/* ---- deep recursion ---- */

enum { FRAME_BYTES = 1024 };

__attribute__((noinline)) static uint64_t recurse(int depth, uint64_t seed)
{
	volatile unsigned char frame[FRAME_BYTES];
	for (int i = 0; i < FRAME_BYTES; i += 64)
		frame[i] = (unsigned char)(seed + (uint64_t)i);
	uint64_t below = depth > 0 ? recurse(depth - 1, seed * 31 + 7) : 0;
	uint64_t sum = below;
	for (int i = 0; i < FRAME_BYTES; i += 64)
		sum += frame[i];
	return sum;
}

static uint64_t expected_recursion(int depth, uint64_t seed)
{
	uint64_t total = 0;
	for (int level = depth; level >= 0; level--) {
		for (int i = 0; i < FRAME_BYTES; i += 64)
			total += (unsigned char)(seed + (uint64_t)i);
		seed = seed * 31 + 7;
	}
	return total;
}

static int deep_body(void *argument)
{
	int depth = (int)(intptr_t)argument;
	weft_return_int((int64_t)recurse(depth, 3));
	return WEFT_OK;
}

START_TEST(recursion_close_to_the_stack_size_works)
{
	size_t stack_size = 256 * 1024;
	runtime *rt = start_runtime(1, stack_size);
	/* Each level takes a little more than FRAME_BYTES; sanitizers pad frames heavily. */
	int depth = (int)(stack_size / (FRAME_BYTES + 128)) * (SANITIZED ? 2 : 4) / 5;
	int64_t value = 0;
	ck_assert_int_eq(run_task(rt, deep_body, (void *)(intptr_t)depth, &value), WEFT_OK);
	ck_assert_uint_eq((uint64_t)value, expected_recursion(depth, 3));
	runtime_free(rt, 5);
}
END_TEST

/* ---- overflow ---- */

/* Recurses until the stack runs out; `limit` is never reached (it only hides the intent from
 * the compiler's infinite-recursion warning). */
static volatile uint64_t overflow_limit = UINT64_MAX;

__attribute__((noinline)) static uint64_t recurse_forever(uint64_t seed)
{
	volatile unsigned char frame[FRAME_BYTES];
	frame[0] = (unsigned char)seed;
	frame[FRAME_BYTES - 1] = (unsigned char)seed;
	if (seed == overflow_limit)
		return 0;
	return recurse_forever(seed + 1) + frame[0] + frame[FRAME_BYTES - 1];
}

static int overflow_body(void *argument)
{
	(void)argument;
	weft_return_int((int64_t)recurse_forever(1));
	return WEFT_OK;
}

START_TEST(stack_overflow_stops_at_the_guard_naming_the_task)
{
	int output[2];
	ck_assert_int_eq(pipe(output), 0);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		dup2(output[1], STDERR_FILENO);
		close(output[0]);
		runtime_config config = {.workers = 1, .stack_size = 64 * 1024};
		runtime *rt;
		if (runtime_new(&config, &rt) != WEFT_OK)
			_exit(3);
		weft_spawn_options options = {.name = "deliberate-overflow"};
		weft_task *task;
		if (runtime_inject(rt, overflow_body, NULL, &options, &task) != WEFT_OK)
			_exit(3);
		runtime_join(task, 30);
		_exit(0); /* reaching this means the overflow went unnoticed */
	}
	close(output[1]);
	char text[8192];
	size_t length = 0;
	ssize_t got;
	while (length < sizeof text - 1 &&
	       (got = read(output[0], text + length, sizeof text - 1 - length)) > 0)
		length += (size_t)got;
	text[length] = '\0';
	close(output[0]);
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_msg(!(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)),
		      "the overflowing child ended normally (status %d)", status);
	if (!SANITIZED) {
		/* Sanitizers report the overflow their own way; our handler speaks otherwise. */
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
			      "expected death by SIGSEGV, status %d", status);
		ck_assert_msg(strstr(text, "deliberate-overflow") != NULL &&
				      strstr(text, "guard page") != NULL,
			      "the message does not name the task: '%s'", text);
	}
}
END_TEST

/* A task that dereferences a wild pointer (not a guard page). */
static int wild_pointer_body(void *argument)
{
	volatile int *wild = (volatile int *)argument;
	weft_return_int(*wild);
	return WEFT_OK;
}

/* Issue 18: the runtime's SIGSEGV handler hands every fault on to the action that was there
 * before it, so a sanitizer build still prints the sanitizer's report and a plain build dies
 * by SIGSEGV. */
START_TEST(a_fault_reaches_the_sanitizer_or_the_default_action)
{
	int output[2];
	ck_assert_int_eq(pipe(output), 0);
	pid_t child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		dup2(output[1], STDERR_FILENO);
		close(output[0]);
		runtime_config config = {.workers = 1};
		runtime *rt;
		if (runtime_new(&config, &rt) != WEFT_OK)
			_exit(3);
		weft_spawn_options options = {.name = "wild-pointer"};
		weft_task *task;
		if (runtime_inject(rt, wild_pointer_body, (void *)(uintptr_t)16, &options, &task) !=
		    WEFT_OK)
			_exit(3);
		runtime_join(task, 30);
		_exit(0); /* reaching this means the fault went unnoticed */
	}
	close(output[1]);
	char text[16384];
	size_t length = 0;
	ssize_t got;
	while (length < sizeof text - 1 &&
	       (got = read(output[0], text + length, sizeof text - 1 - length)) > 0)
		length += (size_t)got;
	text[length] = '\0';
	close(output[0]);
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_msg(!(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)),
		      "the faulting child ended normally (status %d)", status);
	if (SANITIZED)
		ck_assert_msg(strstr(text, "Sanitizer: SEGV") != NULL,
			      "no sanitizer report for the fault: '%s'", text);
	else
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
			      "expected death by SIGSEGV, status %d", status);
}
END_TEST

/* ---- migration ---- */

typedef struct migration {
	int first_worker;
	int last_worker;
	int errno_seen;
	int locals_ok;
} migration;

static int migrating_body(void *argument)
{
	migration *seen = argument;
	volatile uint64_t locals[32];
	for (int i = 0; i < 32; i++)
		locals[i] = (uint64_t)i * 0x9e3779b97f4a7c15u;
	double kept = 1.25 * (double)weft_worker_index();
	seen->first_worker = weft_worker_index();
	errno = ENOENT; /* this thread's errno */
	/* Yielded tasks go through the global queue, so any worker may resume this one; on a busy
	 * machine the other worker's thread may not get a processor for a while: bound by time. */
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		weft_yield();
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (weft_worker_index() == seen->first_worker && now.tv_sec - start.tv_sec < 20);
	seen->last_worker = weft_worker_index();
	/* A syscall failing on the new thread: errno must be read from this thread. Reading
	 * `errno` directly here gives ENOENT at -O2: the compiler keeps the first thread's errno
	 * address (glibc's __errno_location is const). weft_errno() reads it afresh. */
	if (close(-1) == -1)
		seen->errno_seen = weft_errno();
	int ok = kept == 1.25 * (double)seen->first_worker;
	for (int i = 0; i < 32; i++)
		ok &= locals[i] == (uint64_t)i * 0x9e3779b97f4a7c15u;
	seen->locals_ok = ok;
	return WEFT_OK;
}

START_TEST(task_resumed_on_another_worker_keeps_locals_and_errno)
{
	runtime *rt = start_runtime(2, 0);
	migration seen = {-1, -1, 0, 0};
	ck_assert_int_eq(run_task(rt, migrating_body, &seen, NULL), WEFT_OK);
	ck_assert_msg(seen.first_worker != seen.last_worker,
		      "the task never moved to another worker (stayed on %d)", seen.first_worker);
	ck_assert_int_eq(seen.errno_seen, EBADF);
	ck_assert(seen.locals_ok);
	runtime_free(rt, 5);
}
END_TEST

/* ---- many waiting tasks ---- */

/* Not under ThreadSanitizer: every stack has a fiber there, which it counts as a thread, and it
 * stops at 8128 threads. */
#ifndef SANITIZER_TSAN
enum { WAITING_TASKS = 100000 };

static atomic_int waiting_count;

static int waits_for_oneshot(void *argument)
{
	atomic_fetch_add(&waiting_count, 1);
	return weft_oneshot_await(argument, 60);
}

static int count_mappings(void)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	ck_assert_ptr_nonnull(maps);
	int lines = 0, c;
	while ((c = fgetc(maps)) != EOF)
		lines += c == '\n';
	fclose(maps);
	return lines;
}

START_TEST(many_waiting_tasks_fit_within_the_mapping_limit)
{
	runtime *rt = start_runtime(2, 16 * 1024);
	weft_oneshot *oneshot;
	ck_assert_int_eq(weft_oneshot_new(&oneshot), WEFT_OK);
	weft_task **tasks = malloc(sizeof *tasks * WAITING_TASKS);
	ck_assert_ptr_nonnull(tasks);
	int mappings_before = count_mappings();
	for (int i = 0; i < WAITING_TASKS; i++)
		ck_assert_int_eq(runtime_inject(rt, waits_for_oneshot, oneshot, NULL, &tasks[i]),
				 WEFT_OK);
	/* A task holds its stack from the moment it counts itself. */
	for (int round = 0; round < 30000 && atomic_load(&waiting_count) < WAITING_TASKS; round++)
		usleep(1000);
	ck_assert_int_eq(atomic_load(&waiting_count), WAITING_TASKS);
	int mappings = count_mappings() - mappings_before;
	/* One mapping per stack would be WAITING_TASKS, two with guard pages; slabs of stacks and
	 * a bounded number of guarded ones keep it far lower, and under vm.max_map_count. */
	ck_assert_msg(mappings < WAITING_TASKS / 4 && mappings_before + mappings < 60000,
		      "%d waiting tasks took %d new mappings", WAITING_TASKS, mappings);
	ck_assert_int_eq(weft_oneshot_set(oneshot, WEFT_OK, NULL), WEFT_OK);
	for (int i = 0; i < WAITING_TASKS; i++) {
		ck_assert_int_eq(runtime_join(tasks[i], 60), WEFT_OK);
		weft_task_release(tasks[i]);
	}
	free(tasks);
	weft_oneshot_release(oneshot);
	runtime_free(rt, 10);
}
END_TEST
#endif

int main(void)
{
	Suite *suite = suite_create("runtime_coroutine");
	TCase *cases = tcase_create("coroutine");
	tcase_set_timeout(cases, 120);
	tcase_add_test(cases, context_switch_goes_back_and_forth);
	tcase_add_test(cases, nested_spawns_complete_with_their_results);
	tcase_add_test(cases, recursion_close_to_the_stack_size_works);
	tcase_add_test(cases, stack_overflow_stops_at_the_guard_naming_the_task);
	tcase_add_test(cases, a_fault_reaches_the_sanitizer_or_the_default_action);
	tcase_add_test(cases, task_resumed_on_another_worker_keeps_locals_and_errno);
#ifndef SANITIZER_TSAN
	tcase_add_test(cases, many_waiting_tasks_fit_within_the_mapping_limit);
#endif
	suite_add_tcase(suite, cases);
	SRunner *runner = srunner_create(suite);
	srunner_run_all(runner, CK_NORMAL);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*
 * Issue 15's Redis benchmark: N GETs as weft jobs (redis.command, submitted
 * in batches of 1000, all batches in flight) on a private weftd (2 workers)
 * against a redis-server on a unix socket; beside redis.asyncio (python3-redis)
 * with 50 concurrent clients and redis-benchmark (-c 50) as the floor.
 * Usage: redis_bench [N]   (WEFTD and WEFT_SOURCE set, as bench/run does)
 */
#include <check.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/fixture.h"
#include "tests/wire.h"

enum { BATCH = 1000 };
static int count = 100000;

/* Peak resident memory of a process (VmHWM), KiB; -1 when unknown. */
static long peak_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *file = fopen(path, "r");
	long kib = -1;
	while (file != NULL && fgets(line, sizeof(line), file) != NULL)
		if (strncmp(line, "VmHWM:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	if (file != NULL)
		fclose(file);
	return kib;
}

/* Runs argv, returns its stdout (static). */
static const char *output_of(const char *const argv[])
{
	static char text[4096];
	int out[2];
	if (pipe(out) != 0)
		return "";
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(out[1]);
	size_t length = 0;
	for (;;) {
		ssize_t got = read(out[0], text + length, sizeof(text) - 1 - length);
		if (got > 0)
			length += (size_t)got;
		else if (got == 0 || errno != EINTR || length == sizeof(text) - 1)
			break;
	}
	text[length] = '\0';
	close(out[0]);
	waitpid(pid, NULL, 0);
	return text;
}

START_TEST(bench)
{
	char directory[] = "/tmp/weft-redis-bench-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(directory));
	char socket_path[128];
	snprintf(socket_path, sizeof(socket_path), "%s/redis.sock", directory);
	pid_t redis = fork();
	if (redis == 0) {
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", socket_path, "--save", "",
		       "--appendonly", "no", "--dir", directory, "--logfile", "redis.log",
		       "--tcp-backlog", "2048", "--maxclients", "10000", (char *)NULL);
		_exit(127);
	}
	redisContext *control = NULL;
	while (control == NULL || control->err) {
		if (control != NULL)
			redisFree(control);
		usleep(5000);
		control = redisConnectUnix(socket_path);
	}
	freeReplyObject(redisCommand(control, "SET k v"));
	fixture daemon;
	const char *const args[] = {"--log-level", "warn", "--retain-max", "200000", NULL};
	fixture_start(&daemon, args);
	size_t size = BATCH * 160 + 64;
	char *request = malloc(size);
	int batches = count / BATCH;
	json_t **replies = calloc((size_t)batches, sizeof(*replies));
	double started = fixture_now();
	for (int b = 0; b < batches; b++) {
		size_t used = (size_t)snprintf(request, size, "{\"op\":\"submit\",\"jobs\":[");
		for (int i = 0; i < BATCH; i++)
			used += (size_t)snprintf(request + used, size - used,
			                         "%s{\"fn\":\"redis.command\",\"args\":{\"url\":\"redis://%s\","
			                         "\"argv\":[\"GET\",\"k\"]}}",
			                         i ? "," : "", socket_path);
		snprintf(request + used, size - used, "]}");
		replies[b] = wire_call_text(daemon.url, request, strlen(request), 60000);
		ck_assert_msg(replies[b] != NULL && json_object_get(replies[b], "ids") != NULL,
		              "batch %d was not accepted", b);
	}
	size_t done = 0;
	json_t *expected = json_string("v");
	for (int b = 0; b < batches; b++) {
		char *ids = json_dumps(json_object_get(replies[b], "ids"), 0);
		char *wait = malloc(strlen(ids) + 64);
		sprintf(wait, "{\"op\":\"result\",\"ids\":%s,\"timeout\":120}", ids);
		json_t *results = wire_call_text(daemon.url, wait, strlen(wait), 130000);
		ck_assert_msg(results != NULL, "no results for batch %d", b);
		json_t *list = json_object_get(results, "results");
		for (size_t i = 0; i < json_array_size(list); i++)
			done += json_equal(json_object_get(json_array_get(list, i), "result"), expected);
		json_decref(results);
		free(wait);
		free(ids);
		json_decref(replies[b]);
	}
	json_decref(expected);
	double elapsed = fixture_now() - started;
	fflush(stdout);
	printf("%d Redis GETs on a unix socket (%zu right through weft)\n\n", count, done);
	printf("| %-44s | %8s | %10s |\n", "client", "wall s", "GETs/s");
	printf("|%s|%s|%s|\n", "----------------------------------------------", "----------", "------------");
	printf("| %-44s | %8.3f | %10.0f |\n", "weft redis.command jobs (batches of 1000)", elapsed, count / elapsed);
	/* RESULT lines: bench/run collects them, bench/table.awk makes medians
	 * and the weft/peer ratios. */
	printf("RESULT bench=redis_get impl=weft n=%d secs=%.3f rate=%.0f rss_kb=%ld\n", count, elapsed,
	       count / elapsed, peak_kib(daemon.pid));
	char number[16], concurrency[] = "50";
	snprintf(number, sizeof(number), "%d", count);
	char source[512];
	snprintf(source, sizeof(source), "%s/bench/io/redis_asyncio_get.py", getenv("WEFT_SOURCE"));
	const char *python[] = {"/usr/bin/python3", source, socket_path, number, concurrency, NULL};
	double seconds = strtod(output_of(python), NULL);
	if (seconds > 0) {
		printf("| %-44s | %8.3f | %10.0f |\n", "redis.asyncio, 50 concurrent", seconds, count / seconds);
		printf("RESULT bench=redis_get impl=redis-asyncio n=%d secs=%.3f rate=%.0f\n", count, seconds,
		       count / seconds);
	} else {
		printf("| %-44s | (failed: is python3-redis installed?) | |\n", "redis.asyncio, 50 concurrent");
		printf("SKIP: 1 redis.asyncio: it failed (is python3-redis installed?)\n");
	}
	const char *floor_argv[] = {"/usr/bin/redis-benchmark", "-s", socket_path, "-n", number, "-c", concurrency,
	                      "-t", "get", "-q", NULL};
	const char *line = output_of(floor_argv);
	const char *rate = strrchr(line, ':');
	double per_second = rate != NULL ? strtod(rate + 1, NULL) : 0;
	printf("| %-44s | %8.3f | %10.0f |\n", "redis-benchmark -c 50 -t get (the floor)",
	       per_second > 0 ? count / per_second : 0, per_second);
	if (per_second > 0)
		printf("RESULT bench=redis_get impl=redis-benchmark n=%d secs=%.3f rate=%.0f\n", count,
		       count / per_second, per_second);
	else
		printf("SKIP: 1 redis-benchmark: no rate in its output\n");
	free(replies);
	free(request);
	fixture_stop(&daemon);
	redisFree(control);
	kill(redis, SIGTERM);
	waitpid(redis, NULL, 0);
	char command[128];
	snprintf(command, sizeof(command), "rm -rf %s", directory);
	if (system(command) != 0)
		fprintf(stderr, "could not remove %s\n", directory);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc > 1)
		count = atoi(argv[1]);
	Suite *suite = suite_create("redis bench");
	TCase *one = tcase_create("redis bench");
	tcase_set_timeout(one, 600);
	tcase_add_test(one, bench);
	suite_add_tcase(suite, one);
	SRunner *runner = srunner_create(suite);
	srunner_set_fork_status(runner, CK_NOFORK);
	srunner_run_all(runner, CK_SILENT);
	int failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? 0 : 1;
}

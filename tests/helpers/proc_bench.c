/*
 * proc_bench [COUNT [IN_FLIGHT [MODE]]]: runs COUNT times /bin/true through
 * proc on one event_base, keeping IN_FLIGHT running (each done callback
 * starts the next), and prints a RESULT line: rate is jobs per second,
 * cpu_us the CPU time this process spent per job (impl weft: capture,
 * weft-nocapture, weft-fork).
 * MODE: "capture" (default: stdout and stderr piped, as exec jobs are),
 * "nocapture" (both to /dev/null), or "fork" (capture, plus an rlimit, which
 * takes the fork path instead of posix_spawn).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <event2/event.h>

#include "daemon/executors/process/execargs.h"
#include "daemon/executors/process/proc.h"
#include "weft/error.h"

static struct event_base *base;
static struct execargs *args;
static long count, started, finished, failures;

/* CPU seconds this process (not its children) has used: the cost of
 * starting and collecting, whatever else loads the machine. */
static double own_cpu_seconds(void)
{
	struct rusage usage;
	getrusage(RUSAGE_SELF, &usage);
	return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
	       (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

static double now(void)
{
	struct timespec time;
	clock_gettime(CLOCK_MONOTONIC, &time);
	return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

static void start_one(void);

static void job_done(void *arg, json_t *result, const struct proc_outcome *outcome)
{
	(void)arg;
	if (outcome->status != PROC_STATUS_SUCCESS && failures++ == 0)
		fprintf(stderr, "proc_bench: %s: %s\n", outcome->error_type, outcome->message);
	json_decref(result);
	finished++;
	if (started < count)
		start_one();
}

static void start_one(void)
{
	struct proc *proc;
	int rv = proc_start(base, args, NULL, job_done, NULL, &proc);
	if (rv != WEFT_OK) {
		fprintf(stderr, "proc_bench: proc_start: %s\n", weft_strerror(rv));
		exit(1);
	}
	started++;
}

int main(int argc, char **argv)
{
	long in_flight;
	const char *mode;
	char text[160];
	struct execargs_error error;
	json_t *json;
	double begin, seconds, cpu;

	count = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
	in_flight = argc > 2 ? strtol(argv[2], NULL, 10) : 2;
	mode = argc > 3 ? argv[3] : "capture";
	if (count <= 0 || in_flight <= 0) {
		fprintf(stderr, "usage: proc_bench [COUNT [IN_FLIGHT [capture|nocapture|fork]]]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(text, sizeof(text), "{\"argv\": [\"/bin/true\"], \"capture\": %s%s}",
		strcmp(mode, "nocapture") == 0 ? "false" : "true",
		strcmp(mode, "fork") == 0 ? ", \"limits\": {\"core\": 0}" : "");
	json = json_loads(text, 0, NULL);
	if (json == NULL || execargs_parse(json, &args, &error) != WEFT_OK) {
		fprintf(stderr, "proc_bench: bad arguments\n");
		return 1;
	}
	json_decref(json);
	base = event_base_new();
	cpu = own_cpu_seconds();
	begin = now();
	for (long i = 0; i < in_flight && started < count; i++)
		start_one();
	event_base_dispatch(base);
	seconds = now() - begin;
	cpu = own_cpu_seconds() - cpu;
	/* The RESULT line of bench/README.md; in_flight and cpu_us are extra keys. */
	printf("RESULT bench=proc_exec_true impl=%s n=%ld secs=%.4f rate=%.1f in_flight=%ld "
	       "cpu_us=%.1f failures=%ld\n",
		strcmp(mode, "capture") == 0 ? "weft" : strcmp(mode, "fork") == 0 ? "weft-fork"
											  : "weft-nocapture",
		finished, seconds, (double)finished / seconds, in_flight,
		cpu * 1e6 / (double)finished, failures);
	event_base_free(base);
	execargs_free(args);
	return finished == count && failures == 0 ? 0 : 1;
}

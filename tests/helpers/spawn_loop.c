/*
 * spawn_loop [COUNT [IN_FLIGHT [PATH]]]: the peer of proc_bench. Runs COUNT
 * times PATH (default /bin/true) through bare posix_spawn, keeping IN_FLIGHT
 * running, and prints a RESULT line: rate is jobs per second, cpu_us the
 * CPU time this process spent per job. No pipes, no event loop: the fastest
 * a process can be started and reaped here.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <time.h>

extern char **environ;

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

int main(int argc, char **argv)
{
	long count = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
	long in_flight = argc > 2 ? strtol(argv[2], NULL, 10) : 2;
	static char default_path[] = "/bin/true";
	char *path = argc > 3 ? argv[3] : default_path;
	char *child_argv[] = {path, NULL};
	long started = 0, finished = 0, running = 0;
	double begin, seconds, cpu;

	if (count <= 0 || in_flight <= 0) {
		fprintf(stderr, "usage: spawn_loop [COUNT [IN_FLIGHT [PATH]]]\n");
		return 2;
	}
	cpu = own_cpu_seconds();
	begin = now();
	while (finished < count) {
		while (running < in_flight && started < count) {
			pid_t pid;
			int error = posix_spawn(&pid, path, NULL, NULL, child_argv, environ);
			if (error != 0) {
				fprintf(stderr, "spawn_loop: posix_spawn: error %d\n", error);
				return 1;
			}
			started++;
			running++;
		}
		int status;
		if (wait(&status) < 0) {
			perror("spawn_loop: wait");
			return 1;
		}
		running--;
		finished++;
	}
	seconds = now() - begin;
	cpu = own_cpu_seconds() - cpu;
	/* The RESULT line of bench/README.md; in_flight and cpu_us are extra keys. */
	printf("RESULT bench=proc_exec_true impl=posix_spawn_loop n=%ld secs=%.4f rate=%.1f "
	       "in_flight=%ld cpu_us=%.1f\n",
		count, seconds, (double)count / seconds, in_flight, cpu * 1e6 / (double)count);
	return 0;
}

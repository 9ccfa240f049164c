/*
 * Latency samples and the RESULT line that every benchmark program prints.
 *
 * The line is the harness's contract (bench/README.md):
 *   RESULT bench=<name> impl=<name> n=<N> secs=<S> rate=<ops per s> p50_us=<..> p99_us=<..> rss_kb=<..>
 * Latencies are per operation, from CLOCK_MONOTONIC timestamps taken around it.
 */
#ifndef BENCH_MEASURE_H
#define BENCH_MEASURE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A fixed-capacity set of latency samples. Adding is safe from many threads at
 * once (an atomic slot counter; each slot is written by exactly one thread);
 * reading (measure_print) happens after every adder has finished. Owns samples. */
struct measure {
	uint64_t *samples; /* nanoseconds; owned */
	size_t capacity;
	atomic_size_t count; /* slots claimed; may exceed capacity (extra samples are dropped) */
};

/* The time on CLOCK_MONOTONIC in nanoseconds. Any thread. */
uint64_t measure_now(void);

/* Allocates room for capacity samples. Returns 0, or -1 when out of memory. */
int measure_init(struct measure *measure, size_t capacity);

/* Frees the samples. */
void measure_fini(struct measure *measure);

/* Records one latency in nanoseconds. Any thread, concurrently with other adders. */
void measure_add(struct measure *measure, uint64_t nanoseconds);

/* The peak resident set of a process in KiB (VmHWM), or 0 when it cannot be read. */
long measure_peak_rss_kb(pid_t pid);

/* Prints the RESULT line on stdout. n operations took seconds. measure may be
 * NULL (no latency fields); server_pid 0 leaves rss_kb out. Sorts the samples. */
void measure_print(struct measure *measure, const char *bench, const char *impl, uint64_t n,
		   double seconds, pid_t server_pid);

/* Reads a positive integer option value; returns 0, or -1 with a message on stderr
 * naming the option. */
int measure_parse_count(const char *option, const char *text, uint64_t *out);

/* Reads a number of seconds > 0; returns 0, or -1 with a message on stderr. */
int measure_parse_seconds(const char *option, const char *text, double *out);

/* The options every benchmark client takes, under the same short values:
 * --inflight ('f'), --count ('n'), --seconds ('s'), --warmup ('w') and
 * --server-pid ('p'). The caller sets the defaults. */
struct measure_options {
	uint64_t inflight; /* 1 to 4096 */
	uint64_t count;
	double seconds;
	uint64_t warmup;
	uint64_t server_pid; /* 0: none */
};

/* Reads option's value (from getopt) into options when it is one of the
 * above. Returns 1 when it was, 0 when it is not one of them, or -1 with a
 * message on stderr when the value is bad. */
int measure_parse_option(int option, const char *value, struct measure_options *options);

#endif

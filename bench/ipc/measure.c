/*
 * Percentiles use the nearest-rank method over every recorded sample: with n
 * samples sorted ascending, the p-th percentile is sample ceil(p * n) - 1.
 */
#include "bench/ipc/measure.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t measure_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

int measure_init(struct measure *measure, size_t capacity)
{
	uint64_t *samples = calloc(capacity ? capacity : 1, sizeof(*samples));

	if (samples == NULL)
		return -1;
	measure->samples = samples;
	measure->capacity = capacity;
	atomic_init(&measure->count, 0);
	return 0;
}

void measure_fini(struct measure *measure)
{
	free(measure->samples);
	measure->samples = NULL;
}

void measure_add(struct measure *measure, uint64_t nanoseconds)
{
	/* Relaxed is enough: the reader runs after the adders have been joined,
	 * which orders their writes before its reads. */
	size_t slot = atomic_fetch_add_explicit(&measure->count, 1, memory_order_relaxed);

	if (slot < measure->capacity)
		measure->samples[slot] = nanoseconds;
}

long measure_peak_rss_kb(pid_t pid)
{
	char path[64];
	char line[256];
	long peak = 0;
	FILE *file;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if ((file = fopen(path, "r")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), file) != NULL) {
		if (strncmp(line, "VmHWM:", 6) == 0) {
			peak = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(file);
	return peak;
}

static int compare_samples(const void *left, const void *right)
{
	uint64_t a = *(const uint64_t *)left;
	uint64_t b = *(const uint64_t *)right;

	return (a > b) - (a < b);
}

static double percentile_us(const uint64_t *sorted, size_t count, unsigned percent)
{
	size_t rank = (count * percent + 99) / 100;

	if (rank == 0)
		rank = 1;
	return (double)sorted[rank - 1] / 1000.0;
}

void measure_print(struct measure *measure, const char *bench, const char *impl, uint64_t n,
		   double seconds, pid_t server_pid)
{
	printf("RESULT bench=%s impl=%s n=%" PRIu64 " secs=%.4f", bench, impl, n, seconds);
	if (seconds > 0)
		printf(" rate=%.0f", (double)n / seconds);
	if (measure != NULL) {
		size_t count = atomic_load(&measure->count);

		if (count > measure->capacity)
			count = measure->capacity;
		if (count > 0) {
			qsort(measure->samples, count, sizeof(*measure->samples), compare_samples);
			printf(" p50_us=%.1f p99_us=%.1f", percentile_us(measure->samples, count, 50),
			       percentile_us(measure->samples, count, 99));
		}
	}
	if (server_pid > 0) {
		long rss = measure_peak_rss_kb(server_pid);

		if (rss > 0)
			printf(" rss_kb=%ld", rss);
	}
	printf("\n");
	fflush(stdout);
}

int measure_parse_count(const char *option, const char *text, uint64_t *out)
{
	char *end;
	unsigned long long value;

	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value == 0 || text[0] == '-') {
		fprintf(stderr, "%s takes a positive integer, not '%s'\n", option, text);
		return -1;
	}
	*out = value;
	return 0;
}

int measure_parse_option(int option, const char *value, struct measure_options *options)
{
	switch (option) {
	case 'f':
		if (measure_parse_count("--inflight", value, &options->inflight) != 0)
			return -1;
		if (options->inflight > 4096) {
			fprintf(stderr, "--inflight takes 1 to 4096, not '%s'\n", value);
			return -1;
		}
		return 1;
	case 'n': return measure_parse_count("--count", value, &options->count) == 0 ? 1 : -1;
	case 's': return measure_parse_seconds("--seconds", value, &options->seconds) == 0 ? 1 : -1;
	case 'w': return measure_parse_count("--warmup", value, &options->warmup) == 0 ? 1 : -1;
	case 'p': return measure_parse_count("--server-pid", value, &options->server_pid) == 0 ? 1 : -1;
	default: return 0;
	}
}

int measure_parse_seconds(const char *option, const char *text, double *out)
{
	char *end;
	double value;

	errno = 0;
	value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !(value > 0) || value > 86400) {
		fprintf(stderr, "%s takes a number of seconds > 0 (at most 86400), not '%s'\n", option,
			text);
		return -1;
	}
	*out = value;
	return 0;
}

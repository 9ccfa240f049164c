/* See now.h. */
#include "daemon/base/now.h"

#include <time.h>

static double read_clock(clockid_t clock)
{
	struct timespec now;
	clock_gettime(clock, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

double now_wall(void)
{
	return read_clock(CLOCK_REALTIME);
}

double now_monotonic(void)
{
	return read_clock(CLOCK_MONOTONIC);
}

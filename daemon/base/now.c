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

struct timeval now_timeval(double seconds)
{
	if (!(seconds > 0)) /* also NaN */
		seconds = 0;
	struct timeval value = {.tv_sec = (time_t)seconds};
	value.tv_usec = (suseconds_t)((seconds - (double)value.tv_sec) * 1e6);
	if (value.tv_usec >= 1000000) /* rounding at the edge of a second */
		value.tv_usec = 999999;
	return value;
}

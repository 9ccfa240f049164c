/* Clocks, in seconds as doubles (the protocol's unit). Any thread. */
#ifndef NOW_H
#define NOW_H

#include <sys/time.h>

/* Unix time, for timestamps that clients see. */
double now_wall(void);
/* A monotonic clock, for measuring intervals and deadlines. */
double now_monotonic(void);

/* A number of seconds as a struct timeval for libevent's timers; negative
 * (a time already past) becomes 0. */
struct timeval now_timeval(double seconds);

#endif

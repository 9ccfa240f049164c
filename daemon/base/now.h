/* Clocks, in seconds as doubles (the protocol's unit). Any thread. */
#ifndef NOW_H
#define NOW_H

/* Unix time, for timestamps that clients see. */
double now_wall(void);
/* A monotonic clock, for measuring intervals and deadlines. */
double now_monotonic(void);

#endif

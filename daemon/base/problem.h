/*
 * A problem: what went wrong with a request, as the reply will say it. Filled
 * by decoders, argument checks and ops, turned into the reply's "error" object
 * by problem_to_reply(). Lives on the caller's stack; owns nothing.
 */
#ifndef PROBLEM_H
#define PROBLEM_H

#include <jansson.h>
#include <stdint.h>

#include "weft/error.h"

struct problem {
	int code;              /* a weft_error; WEFT_OK when there is no problem */
	char message[512];     /* for people: what is wrong and what to change */
	char field[96];        /* offending field path ("jobs[3].fn"), or "" */
	long index;            /* position in a batch, or -1 */
	uint64_t id;           /* the job id concerned, or 0 */
	const char *state;     /* a job state to report (static string), or NULL */
};

/* Resets to "no problem". */
void problem_init(struct problem *problem);

/* Records a problem and returns its code, so callers can `return problem_set(...)`. */
int problem_set(struct problem *problem, int code, const char *field, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

/* Prefixes the message and field with "jobs[i]" for a batch element. */
void problem_in_batch(struct problem *problem, long index);

/* The reply {"ok":false,"error":{...}}: a new reference, or NULL when out of memory. */
json_t *problem_to_reply(const struct problem *problem);

#endif

/*
 * The rules every field of a request follows, shared by the request decoder
 * (request.h) and the job specs (jobspec.h): ids, seconds, Unix times,
 * labels, and refusing a field nobody takes. Each returns WEFT_OK, or an
 * error code with the problem filled (naming the field and what would be
 * right, since that message is what a user reads). Any thread.
 */
#ifndef FIELDS_H
#define FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct problem;

/* Ids must stay exact in every JSON parser (doubles). */
#define FIELDS_MAX_ID ((json_int_t)1 << 53)
#define FIELDS_MAX_SECONDS (10.0 * 365 * 24 * 3600)
#define FIELDS_MAX_LABELS 32
#define FIELDS_MAX_LABEL_KEY 64
#define FIELDS_MAX_LABEL_VALUE 256

/* Whether key is in names (NULL-terminated). */
bool fields_listed(const char *const *names, const char *key);

/* Refuses any field of object not in allowed (and "op" when allow_op); `what`
 * names the object in the message ("op 'submit'", "a job"). */
int fields_check(const json_t *object, const char *const *allowed, bool allow_op,
                 const char *what, struct problem *problem);

/* A job id: an integer from 1 to 2^53. */
int fields_id(const json_t *value, const char *field, uint64_t *out, struct problem *problem);

/* A number of seconds up to FIELDS_MAX_SECONDS; `positive` excludes 0. */
int fields_seconds(const json_t *value, const char *field, bool positive, double *out,
                   struct problem *problem);

/* Labels: an object of at most FIELDS_MAX_LABELS strings. */
int fields_labels(const json_t *labels, const char *field, struct problem *problem);

/* A Unix time in the protocol's range. */
int fields_time(const json_t *value, const char *field, double *out, struct problem *problem);

#endif

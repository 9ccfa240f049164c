/*
 * A job as a client describes it — a function, its arguments, a timeout,
 * labels and the scheduling fields (PROTOCOL.md, "Scheduling fields") —
 * decoded from JSON and checked, function arguments included, before any job
 * exists. Used by the request decoder (a submit's jobs) and by the group
 * functions (gather's and race's children). Any thread.
 */
#ifndef JOBSPEC_H
#define JOBSPEC_H

#include <jansson.h>

struct function;
struct job_schedule;
struct problem;

/* The fields of a job: those every job may have, then its scheduling fields.
 * Macros, so every list of fields spells them once. */
#define JOBSPEC_FIELDS "fn", "args", "timeout", "labels", "buffer"
#define JOBSPEC_SCHEDULE_FIELDS                                                              \
	"after", "after_policy", "delay", "at", "retries", "retry_backoff", "retry_backoff_max", \
		"retry_on", "deadline", "priority", "queue", "on_interrupt"

#define JOBSPEC_MAX_AFTER 1000
#define JOBSPEC_MAX_RETRIES 100
#define JOBSPEC_MAX_RETRY_ON 32
#define JOBSPEC_MAX_PRIORITY 1000
#define JOBSPEC_MAX_BUFFER 1000000

/* args and labels are new references owned by the spec; schedule is owned
 * until taken (set to NULL by whoever takes it). */
struct jobspec {
	const struct function *function;
	json_t *args;
	json_t *labels; /* NULL when none */
	double timeout; /* 0 = none */
	unsigned buffer; /* unread items the job may run ahead (items.h); 0 = no count limit */
	struct job_schedule *schedule; /* NULL when it has none */
};

/* Decodes one job object ({"fn", "args", ...}), refusing fields a job does not
 * take. Returns WEFT_OK with *spec filled (free with jobspec_clear), or an
 * error code with the problem filled and *spec empty. */
int jobspec_decode(const json_t *object, struct jobspec *spec, struct problem *problem);

/* The same for an object whose fields the caller has checked already (a
 * single-job submit, whose object is the whole request). */
int jobspec_decode_fields(const json_t *object, struct jobspec *spec, struct problem *problem);

/* Frees what the spec owns and empties it. */
void jobspec_clear(struct jobspec *spec);

#endif

/*
 * The replies that describe how jobs ended, shared by the ops that answer at
 * once and the waiters that answer later. Every function returns a new
 * reference to a complete reply object. Any thread.
 */
#ifndef OUTCOME_H
#define OUTCOME_H

#include <jansson.h>
#include <stddef.h>


struct job;
struct jobs;

/* {"ok":true,"id":7,"state":"done","result":…} or with "error" for failed and
 * cancelled jobs; for an unfinished job {"ok":true,"id":7,"state":"running"}. */
json_t *outcome_reply(struct jobs *jobs, struct job *job);
/* The same without the command's output: an exec result's (or failure's
 * details') "stdout" and "stderr" are left out, for a client that has read
 * them as they came (the `output` op) and need not get them twice. */
json_t *outcome_reply_without_output(struct jobs *jobs, struct job *job);

/* The `result` timeout error: {"ok":false,"error":{"code":"timeout",…,"id","state"}}. */
json_t *outcome_timeout_reply(struct jobs *jobs, struct job *job, double waited);

/* The batch `result` reply, {"ok":true,"results":[outcome…]} in the given order,
 * written straight into a message (writer.h): a new message, or NULL when out
 * of memory. */
struct nng_msg *outcome_results_message(struct jobs *jobs, struct job *const *list, size_t count);

/* The `wait` reply: {"ok":true,"done":[ids],"pending":[ids]}, in the given order. */
json_t *outcome_wait_reply(struct jobs *jobs, struct job *const *list, size_t count);

/* The `as_completed` reply: like outcome_wait_reply, with `done` in the order
 * the jobs finished. */
json_t *outcome_completed_reply(struct jobs *jobs, struct job *const *list, size_t count);

/* A `shutting_down` error naming the job's state. */
json_t *outcome_shutdown_reply(struct jobs *jobs, struct job *job);

#endif

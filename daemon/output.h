/*
 * The `output` op (proto/PROTOCOL.md): reads an exec job's output from its
 * log (outlog.h), at once or as a long poll that is answered when bytes
 * arrive, the output ends, `wait` runs out, the client goes, or weftd shuts
 * down. A waiting reader holds an nng context and a timer, no thread, and
 * counts against the caller's --max-waiters-per-user.
 */
#ifndef OUTPUT_H
#define OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct job;
struct jobs;
struct principal;
struct problem;
struct request;
struct server_request;

/* At most max readers wait at once; jobs is the table (borrowed for the
 * daemon's life). Main thread, before requests come. */
void output_init(struct jobs *jobs, size_t max);

/*
 * Answers an `output` request for `job` (a reference, taken: the caller has
 * checked that the caller may act on it). exec_job: whether the job runs
 * exec (only those have output). nng callback thread.
 */
void output_read(struct server_request *slot, const struct principal *caller, struct job *job,
                 bool exec_job, const struct request *request);

/*
 * Answers an `input` request for `job` (a reference, taken; checked as for
 * output_read): appends the bytes to the job's streamed stdin as far as they
 * fit. nng callback thread.
 */
void output_input(struct server_request *slot, struct job *job, bool exec_job,
                  const struct request *request);

/* The client on this connection is gone: its readers end without a reply. Any
 * thread but nng's pipe callbacks. */
void output_pipe_closed(uint32_t pipe);
/* Answers every waiting reader now (shutdown). Any thread. */
void output_shutdown(void);
/* Readers waiting now. Any thread. */
size_t output_waiting(void);

#endif

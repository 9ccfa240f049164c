/*
 * Drives request/reply operations over one nng REQ socket with a fixed number
 * in flight, the same way for weft and for the bare nng floor, so the two are
 * measured by identical client machinery.
 *
 * Each of the `inflight` slots owns one nng context and one aio. A slot's
 * callback chains the whole life of its operations: send, receive, check the
 * reply, maybe send the operation's next request (a two-round-trip operation),
 * then start the next operation. No thread of ours sits between two requests,
 * so one slot in flight is a plain ping-pong.
 */
#ifndef BENCH_DRIVER_H
#define BENCH_DRIVER_H

#include <nng/nng.h>
#include <stdint.h>

#include "bench/ipc/measure.h"

/* One operation in flight. Touched only by the callbacks of its slot, which nng
 * runs one at a time (an aio has one operation pending at a time). */
struct driver_slot {
	uint64_t index;	  /* which operation, 0 .. count-1 */
	uint64_t started; /* CLOCK_MONOTONIC ns when its first request was sent */
	uint64_t job_id;  /* free for the operation's own use (a job id between steps) */
	unsigned step;	  /* how many replies this operation has had */
};

/* What an operation sends and how its replies are checked. Called on nng's
 * threads, concurrently for different slots. */
struct driver_ops {
	/* Builds the first request of operation slot->index. Returns 0 and a new
	 * message in *request (the driver owns it), or -1 after printing why. */
	int (*start)(void *context, struct driver_slot *slot, nng_msg **request);
	/* Checks reply (borrowed). Returns 0 with *next set to a further request of
	 * the same operation (new, the driver owns it) or NULL when the operation is
	 * complete; or -1 after printing why the reply is wrong. */
	int (*reply)(void *context, struct driver_slot *slot, nng_msg *reply, nng_msg **next);
};

struct driver_options {
	unsigned inflight;	/* slots, >= 1 */
	uint64_t count;		/* operations to run at most */
	double seconds;		/* stop starting operations after this long */
	double request_seconds; /* give up on one request after this long */
};

/* Runs up to options->count operations (fewer if options->seconds pass first)
 * with options->inflight in flight, recording each operation's latency in
 * measure (may be NULL). Blocks the calling thread until every slot is idle.
 * Returns 0 and writes the number of completed operations and the elapsed
 * seconds, or -1 when a request failed or a reply was wrong (printed). */
int driver_run(nng_socket socket, const struct driver_ops *ops, void *context,
	       const struct driver_options *options, struct measure *measure,
	       uint64_t *completed, double *seconds);

/* The other way to have operations in flight: threads each making blocking
 * calls, as a program using a blocking client library does. */
struct driver_calls {
	/* Makes operation index with a blocking call; returns 0, or -1 after printing
	 * why. *thread_state starts NULL in each thread and is the call's to use (for
	 * example a per-thread nng context made on the first call). */
	int (*call)(void *context, void **thread_state, uint64_t index);
	/* Frees what call left in thread_state (may be NULL); may be NULL itself. */
	void (*thread_done)(void *context, void *thread_state);
};

/* Runs up to options->count operations (fewer if options->seconds pass first)
 * on options->inflight threads, each making one blocking call at a time and
 * recording its latency in measure (may be NULL). Returns as driver_run does. */
int driver_run_threads(const struct driver_calls *calls, void *context,
		       const struct driver_options *options, struct measure *measure,
		       uint64_t *completed, double *seconds);

/* Opens a REQ socket dialled to url, with resend off and no receive limit.
 * Returns 0, or an nng error after printing it. */
int driver_dial(const char *url, nng_socket *socket);

/* A new message holding text (without its NUL); NULL when out of memory. */
nng_msg *driver_message(const char *text, size_t length);

#endif

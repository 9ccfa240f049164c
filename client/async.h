/*
 * The call engine under every libweft call, asynchronous and blocking alike
 * (weft/async.h is its public face; the blocking calls of weft/client.h start
 * a call here and wait for it). See the design block at the top of async.c.
 */
#ifndef CLIENT_ASYNC_H
#define CLIENT_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nng/nng.h>
#include <pthread.h>

#include "weft/async.h"
#include "weft/client.h"

/* What a kind of call does with its replies. Its functions run on nng's
 * threads (or on the starting thread for the first request), one at a time
 * per call, with no lock held. */
struct async_op {
	const char *name; /* the protocol op, for messages ("result") */
	/* true: any reply object is the answer (weft_request); false: a reply
	 * with ok false fails the call with the daemon's error. */
	bool raw;
	/* Decodes a reply that says ok (borrowed) into the call's answer fields.
	 * Returns WEFT_OK, or an error code after last_error_set. May be NULL. */
	int (*decode)(weft_call *call, const json_t *reply);
	/* For an op sent in several requests: after a decoded reply, sets the
	 * next request (async_call_set_request_json) and *more, or leaves *more
	 * false when the call is complete. Returns WEFT_OK, or an error code
	 * after last_error_set. May be NULL. */
	int (*next_part)(weft_call *call, bool *more);
	/* Before a reply is parsed: may take bytes out of *message (owned by the
	 * caller) into call->bytes and shrink it, or keep the message itself in
	 * call->kept and put a new one in *message, so that megabytes of output
	 * never go through the JSON parser. Returns WEFT_OK, or an error code
	 * after last_error_set. May be NULL. */
	int (*take)(weft_call *call, nng_msg **message);
};

/* Where a call is. Guarded by weft_call.lock. */
enum async_phase {
	ASYNC_NEW,       /* made, not started */
	ASYNC_SENDING,   /* a send is pending on the channel's aio */
	ASYNC_RECEIVING, /* a receive is pending on the channel's aio */
	ASYNC_DECODING,  /* a reply is being read; no aio operation pending */
	ASYNC_DONE,      /* completed: being delivered, or delivered */
};

/* An nng context with its aio, whose callback drives the call it serves.
 * Owned by the client's idle list, or by the call using it (call != NULL). */
struct async_channel {
	struct async_channel *next; /* idle list */
	struct async_channel *all_next; /* every channel of the client, for weft_close */
	nng_ctx context;
	bool context_open; /* false after an error: reopened before reuse */
	nng_aio *aio;
	weft_call *call; /* the call being served; written only by its owner */
	weft_client *client;
};

struct weft_call {
	/* --- the engine's; the lock orders after weft_client.calls_lock --- */
	pthread_mutex_t lock;   /* guards phase and stop_code (cancel vs. the aio callback) */
	enum async_phase phase; /* lock */
	int stop_code;          /* lock: 0, or WEFT_ECANCELED / WEFT_ECLOSED once asked to stop */
	weft_client *client;    /* borrowed; not used after the call has completed */
	const struct async_op *op;
	struct async_channel *channel; /* owned from start to completion */
	weft_call *list_prev, *list_next; /* the client's outstanding list: calls_lock */
	nng_msg *request;       /* owned until sent: the next request to send */
	nng_duration receive_timeout;
	weft_notify notify;     /* a copy; callback and queue both NULL: a blocking call */
	bool completed;         /* blocking calls: wait_lock */
	pthread_mutex_t wait_lock; /* blocking calls only: wakes the waiting thread */
	pthread_cond_t wait_cond;
	weft_call *queue_next;  /* on a completion queue: the queue's lock */

	uint64_t about_id;      /* the job the call is about, named in its error (0: none) */

	/* --- the outcome, written before completion, read-only after --- */
	int error;
	weft_error_info error_info;
	json_t *reply; /* new reference: the last reply */

	/* --- the answer fields the ops fill (owned by the call) --- */
	uint64_t id;
	uint64_t *ids;
	size_t id_count;
	weft_outcome *outcome;
	weft_outcome **outcomes;
	size_t outcome_count;
	weft_wait_result *wait;
	json_t *value; /* status: the job (new reference) */
	bool cancelled;
	weft_state state;
	unsigned char *bytes; /* output: the decoded data, owned (allocator_) */
	size_t byte_count;
	bool binary;          /* output: the bytes came after the JSON, not in it */
	nng_msg *kept;        /* output, binary: the reply, owned; bytes point into it */

	/* --- scratch for ops sent in parts (result_many): owned --- */
	uint64_t *want;    /* the ids asked for */
	size_t want_count; /* how many */
	size_t want_next;  /* the first not yet asked */
	size_t part_size;  /* ids per request */
	double timeout;    /* negative: forever */
	double deadline;   /* monotonic seconds, when the timeout is not forever */
};

/* A new call of op on client, to be told of through notify (borrowed, may be
 * NULL: a blocking call, ended with async_call_wait). WEFT_EINVAL (client
 * NULL), WEFT_ENOMEM. The caller then sets its request and starts it, or
 * frees it with weft_call_free. Any thread. */
int async_call_new(weft_client *client, const struct async_op *op, const weft_notify *notify,
                   weft_call **out);

/* Sets the call's next request to bytes[0..size) (copied), sent and awaited
 * as reply_wait says (seconds the daemon may take on purpose; negative:
 * forever). WEFT_ETOOLARGE, WEFT_ENOMEM, with the last error set. */
int async_call_set_request(weft_call *call, const void *bytes, size_t size, double reply_wait);
/* The same for a request in two parts, head then tail, both copied once into
 * the message (the binary form of `input`: its JSON and NUL, then the bytes). */
int async_call_set_request_parts(weft_call *call, const void *head, size_t head_size,
                                 const void *tail, size_t tail_size, double reply_wait);

/* The same for a request object (stolen, may be NULL: then WEFT_ENOMEM, so
 * that a caller can pass json_pack's result directly). */
int async_call_set_request_json(weft_call *call, json_t *request, double reply_wait);

/* Starts a call whose request is set: writes *handle (may be NULL) first,
 * then sends. Returns WEFT_OK, after which the call completes exactly once;
 * or an error (WEFT_ECLOSED when weft_close has begun, WEFT_ENOMEM), after
 * which the call is freed, with no completion. Any thread. */
int async_call_start(weft_call *call, weft_call **handle);

/* For a blocking call: waits for its completion on the calling thread and
 * makes its error the thread's last error. Returns the call's error. The
 * call is still the caller's to free. */
int async_call_wait(weft_call *call);

/* Checks a notify given to a public start function: WEFT_EINVAL unless
 * exactly one of callback and queue is set. */
int async_check_notify(const weft_notify *notify);

/* Ends every outstanding call of client with WEFT_ECLOSED and waits until
 * each has been delivered, then frees the channels. Called by weft_close
 * before it closes the socket; not from a callback. */
void async_client_close(weft_client *client);

/* Seconds on the monotonic clock. */
double async_now(void);

#endif

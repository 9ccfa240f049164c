/*
 * The connection to weftd: the weft_client handle, and blocking round trips
 * made as calls of the engine (client/async.h). Any thread; a client is
 * shared freely between threads.
 */
#ifndef CLIENT_CONNECTION_H
#define CLIENT_CONNECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <nng/nng.h>
#include <pthread.h>

#include "weft/client.h"

struct async_channel;
struct weft_call;

struct weft_client {
	nng_socket socket;  /* REQ; thread-safe in nng */
	nng_dialer dialer;  /* redials in the background after a drop */
	char *url;          /* owned (allocator_) */
	size_t max_message; /* the daemon's --max-message, from its ping; written once */
	/* The call engine's (client/async.c), all guarded by calls_lock: */
	pthread_mutex_t calls_lock;
	pthread_cond_t calls_done; /* outstanding_count reached 0 while closing */
	struct weft_call *outstanding; /* calls started and not yet completed */
	size_t outstanding_count;      /* calls started and not yet delivered */
	bool closing;                  /* weft_close has begun: no new calls */
	struct async_channel *idle_channels;
	struct async_channel *all_channels;
};

/* Sends bytes as one request and waits for the reply, which may take
 * reply_wait seconds on purpose (negative: no limit). *reply: the reply object
 * whatever its "ok" (new reference). Fills the last error on failure. */
int connection_round_trip(weft_client *client, const void *bytes, size_t size,
                          double reply_wait, json_t **reply);

/* The same for a request in two parts (async_call_set_request_parts). */
int connection_round_trip_parts(weft_client *client, const void *head, size_t head_size,
                                const void *tail, size_t tail_size, double reply_wait,
                                json_t **reply);

/* The same for a request object (borrowed). */
int connection_round_trip_json(weft_client *client, const json_t *request, double reply_wait,
                               json_t **reply);

/* An op: sends request (stolen, may be NULL: then WEFT_ENOMEM, so that a
 * caller can pass json_pack's result directly) and returns WEFT_OK with
 * *reply (new reference) only when the reply says ok; otherwise the daemon's
 * error code, with the last error filled from the reply. */
int connection_op(weft_client *client, json_t *request, double reply_wait, json_t **reply);

/* An op whose success carries nothing but ok: connection_op without the reply. */
int connection_simple_op(weft_client *client, json_t *request);

/* An op whose answer is one member of the reply: *member (new reference) is
 * reply[key] when it has type `type`; otherwise WEFT_EPROTO saying the reply
 * to `op` lacks `what`. *reply (may be NULL) gets the whole reply too (new
 * reference), for the rare op that has more to say. Outputs are written only
 * on success. */
int connection_op_member(weft_client *client, json_t *request, const char *op, const char *key,
                         json_type type, const char *what, json_t **member, json_t **reply);

/* The protocol's largest id (2^53) keeps every id exact in any JSON parser. */
#define CONNECTION_MAX_ID (1ULL << 53)

/* WEFT_EINVAL, with the last error set, unless id is a valid id (1 to 2^53). */
int connection_check_id(uint64_t id);

/* Reads a positive integer id from a reply; false when value is not one. */
bool connection_read_id(const json_t *value, uint64_t *id);

/* WEFT_EPROTO for a reply to op that says ok but lacks what the protocol
 * promises (what: "the job's id"). */
int connection_bad_reply(const char *op, const char *what);

#endif

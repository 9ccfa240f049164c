/*
 * Decoding and validating one request message into a struct request. Pure:
 * no daemon state is read except the static function registry, so the decoder
 * can be unit-tested and fuzzed directly. Any thread.
 */
#ifndef REQUEST_H
#define REQUEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/proto.h"

struct jobspec;
struct problem;

#define REQUEST_OP_ENUM_(name, wire) REQUEST_##name,
enum request_op { PROTO_OP_MAP(REQUEST_OP_ENUM_) REQUEST_OP_COUNT };
#undef REQUEST_OP_ENUM_

enum request_return_when {
	REQUEST_FIRST_COMPLETED,
	REQUEST_FIRST_EXCEPTION,
	REQUEST_ALL_COMPLETED,
};

/* Limits the decoder enforces (documented in proto/PROTOCOL.md). */
#define REQUEST_MAX_BATCH 100000
#define REQUEST_MAX_IDS 100000
#define REQUEST_MAX_LIST 10000
#define REQUEST_DEFAULT_LIST 1000

/* A decoded request; every member not used by its op is zero. Owns root,
 * jobs (and their references) and ids; freed with request_clear. */
struct request {
	enum request_op op;
	json_t *root;

	/* submit */
	struct jobspec *jobs; /* jobspec.h */
	size_t job_count;
	bool batch; /* the "jobs" form */
	bool has_wait;
	double wait;

	/* status, result, cancel: id; result (batch form) and wait: ids */
	uint64_t id;
	uint64_t *ids; /* duplicates removed, first appearance kept */
	size_t id_count;
	bool has_timeout;
	double timeout;
	enum request_return_when return_when;

	/* list (and future.new: labels) */
	int state;             /* an enum job_state, or -1 */
	const char *function;  /* borrowed from root, or NULL */
	const json_t *labels;  /* borrowed from root, or NULL */

	/* future.set: exactly one of the two, borrowed from root */
	const json_t *result;
	const json_t *error;   /* {"type": string, "message": string} */
	uint64_t after;
	uint64_t before;   /* list: 0 for no bound */
	bool newest_first; /* list */
	size_t limit;

	/* next: id, index, limit ("max": items in the reply; 0 for the one-item
	 * form), has_timeout/timeout ("wait") */
	uint64_t index;
	/* events: the cursor (after_epoch:after; 0:0 when absent), limit,
	 * has_timeout/timeout ("wait"), the filter: ids, function, event_type
	 * (0 any, 1 job, 2 queue) */
	uint64_t after_epoch;
	int event_type;
	/* output: id, and has_wait/wait */
	int output_stream;     /* 0 stdout, 1 stderr, 2 both (outlog.h's order) */
	int64_t output_offset; /* < 0: that many bytes before the end */
	size_t output_max;
	bool output_binary; /* the bytes after the reply's JSON, not base64 in it */
	/* result: "output" (default true): whether the result keeps stdout and stderr */
	bool result_output;

	/* input: id, the bytes and eof. The bytes are owned, or, for the binary
	 * form (the bytes after the JSON and a NUL), point into the decoded
	 * message (input_borrowed), which must outlive the request. */
	unsigned char *input_data;
	size_t input_length;
	bool input_eof;
	bool input_borrowed;
};

/* Decodes a message: JSON, or for `input` JSON, one NUL byte and the bytes
 * it carries (borrowed by *out, see input_borrowed). Returns WEFT_OK with *out filled, or an error code with the
 * problem filled (and *out left cleared). */
int request_decode(const void *data, size_t size, struct request *out, struct problem *problem);

void request_clear(struct request *request);

#endif

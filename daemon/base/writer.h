/*
 * Writing a reply's JSON text straight into an nng message, for the replies
 * that list many jobs (`submit` of a batch, `result` of many ids): building a
 * jansson tree of thousands of small objects only to serialise it at once
 * cost more than the rest of the request. Any thread; one writer per reply.
 */
#ifndef WRITER_H
#define WRITER_H

#include <jansson.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message being written. Owns `message` until writer_finish. */
struct writer {
	nng_msg *message;
	bool failed; /* an allocation failed: writer_finish returns NULL */
};

/* Starts an empty message of about `expected` bytes. */
void writer_init(struct writer *writer, size_t expected);
void writer_bytes(struct writer *writer, const char *bytes, size_t size);
/* A NUL-terminated literal piece of JSON text, as is. */
void writer_text(struct writer *writer, const char *text);
void writer_unsigned(struct writer *writer, uint64_t value);
/* A JSON value (borrowed), compactly encoded. */
void writer_json(struct writer *writer, const json_t *value);
/* The finished message (a new one the caller owns), or NULL when writing failed. */
nng_msg *writer_finish(struct writer *writer);

/* The json_dump_callback that appends to an nng message, growing it
 * geometrically (nng grows a message to the exact size asked for, which makes
 * many small appends quadratic). data is the nng_msg. */
int writer_append_callback(const char *buffer, size_t size, void *data);

/* The encoding flags of every reply. */
#define WRITER_JSON_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(16))

#endif

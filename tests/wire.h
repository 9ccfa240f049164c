/* Raw protocol calls for daemon tests; see wire.c. */
#ifndef TESTS_WIRE_H
#define TESTS_WIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Sends `text` and returns the reply's bytes as they came (malloc'd, with a
 * NUL after the last; *length counts them), or NULL when none came within
 * timeout_ms. */
char *wire_call_raw(const char *url, const char *text, size_t size, int timeout_ms,
                    size_t *length);
/* Sends `text` and returns the parsed reply (new reference), or NULL when none
 * came within timeout_ms. */
json_t *wire_call_text(const char *url, const char *text, size_t size, int timeout_ms);
/* The same with a 10 s limit; a missing reply fails the test. */
json_t *wire_call(const char *url, const char *text);
/* The reply's error code, or NULL for a success. Borrowed from reply. */
const char *wire_error_code(json_t *reply);
/* Pings (1 s each) until one is answered, for at most `seconds`. */
bool wire_answers_within(const char *url, double seconds);
/* The daemon's open long polls (`stats` "waiters"). */
json_int_t wire_waiters_now(const char *url);
/* wire_call of the request that format and the rest make (at most 256 KiB). */
json_t *wire_callf(const char *url, const char *format, ...) __attribute__((format(printf, 2, 3)));
/* The `result` op for every job of ids (an array of ids, borrowed), waiting
 * up to 60 s. The reply, a new reference; fails the test unless it has one
 * result per id. */
json_t *wire_results(const char *url, const json_t *ids);
/* The string `name` of object (borrowed), NULL when it has none. */
const char *wire_text(const json_t *object, const char *name);
/* The type of a reply's error (borrowed), NULL when it has none. */
const char *wire_error_type(const json_t *reply);

#endif

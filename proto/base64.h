/*
 * Base64 (RFC 4648, standard alphabet, with padding): how the protocol
 * carries bytes that are not text (job output, the "encoding":"base64"
 * form of a result's stdout/stderr). Pure functions over the caller's
 * buffers, used by weftd and libweft alike. Any thread.
 */
#ifndef PROTO_BASE64_H
#define PROTO_BASE64_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes of text that base64_encode writes for `length` bytes (no NUL). */
size_t base64_encoded_size(size_t length);

/* Writes base64_encoded_size(length) characters to out (no NUL). */
void base64_encode(const void *data, size_t length, char *out);

/* Upper bound of the bytes base64_decode writes for `length` characters. */
size_t base64_decoded_max(size_t length);

/* Decodes `length` characters into out (base64_decoded_max(length) bytes of
 * room); *written is set to the bytes written. Returns false (and writes
 * nothing defined) when the text is not padded base64: a length that is not
 * a multiple of 4, a character outside the alphabet, padding in the middle. */
bool base64_decode(const char *text, size_t length, void *out, size_t *written);

/* Whether the bytes are valid UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF); NUL bytes count as valid. */
bool base64_is_utf8(const void *data, size_t length);

#endif

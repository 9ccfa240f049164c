/*
 * A JSON syntax check that allocates nothing.
 *
 * jansson 2.14 reports a failed allocation inside json_loadb as a syntax
 * error, so libweft cannot tell "the daemon sent garbage" (WEFT_EPROTO) from
 * "we ran out of memory" (WEFT_ENOMEM) by jansson's answer alone. After a
 * failed parse it asks this check: text that is valid JSON failed for lack of
 * memory. Pure function over the caller's buffer; any thread.
 */
#ifndef CLIENT_JSON_CHECK_H
#define CLIENT_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* True when text[0..size) is one JSON value (RFC 8259, UTF-8) with optional
 * surrounding whitespace, nested at most 2048 deep, without \u0000 (which
 * jansson refuses by default). */
bool json_check_syntax(const char *text, size_t size);

#endif

/*
 * The calling thread's last error (weft_last_error). Thread-local, fixed-size
 * storage: setting it never allocates, so it works when memory runs out.
 * Every function runs on the calling thread and touches only its own record.
 */
#ifndef CLIENT_LAST_ERROR_H
#define CLIENT_LAST_ERROR_H

#include <jansson.h>

#include "weft/client.h"

/* Resets the record to WEFT_OK; every public call starts with it. */
void last_error_clear(void);

/* Records code with a printf-style message; returns code so that callers can
 * write `return last_error_set(WEFT_EINVAL, "...")`. */
int last_error_set(int code, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Records the daemon's error from a reply {"ok": false, "error": {...}}
 * (borrowed) and returns its code; a reply without a readable error gives
 * WEFT_EPROTO. */
int last_error_set_from_reply(const json_t *reply);

/* Makes info (borrowed) the thread's record: a blocking call hands on the
 * error its call met on nng's thread. */
void last_error_restore(const weft_error_info *info);

/* Adds the job id the error is about (when the daemon did not name one). */
void last_error_set_id(unsigned long long id);

#endif

/*
 * weft error codes, shared by libweft, weftd and the wire protocol.
 *
 * One table (WEFT_ERROR_MAP) produces the C enum, the protocol's "code"
 * strings and the default messages, so a C code and a wire code cannot drift.
 * To add an error: append a row (never reorder: the numbers are ABI), document
 * it in proto/PROTOCOL.md, and give it a test.
 */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* XX(NAME, "wire_code", "default message") */
#define WEFT_ERROR_MAP(XX)                                                                 \
	XX(OK, "ok", "success")                                                            \
	XX(ENOMEM, "no_memory", "out of memory")                                           \
	XX(EMALFORMED, "malformed_json", "the request is not a valid JSON object")         \
	XX(EBADFIELD, "bad_field", "a field has the wrong type or an invalid value")       \
	XX(EUNKNOWNFIELD, "unknown_field", "the request has a field this op does not take") \
	XX(EUNKNOWNOP, "unknown_op", "unknown op")                                         \
	XX(EUNKNOWNFN, "unknown_function", "no function of that name")                     \
	XX(EBADARGS, "bad_arguments", "the arguments do not fit the function")             \
	XX(EUNKNOWNID, "unknown_id", "no job with that id (never made, or expired)")       \
	XX(ETOOLARGE, "too_large", "the message is larger than the daemon accepts")        \
	XX(ESHUTDOWN, "shutting_down", "the daemon is shutting down")                      \
	XX(ETIMEOUT, "timeout", "timed out")                                               \
	XX(EBUSY, "busy", "the daemon is at a limit; try again later")                     \
	XX(EALREADYSET, "already_set", "the future is already set")                        \
	XX(EPERM, "permission_denied", "not permitted")                                    \
	XX(ECONNECT, "cannot_connect", "cannot connect to weftd")                          \
	XX(ECLOSED, "closed", "the connection or client is closed")                        \
	XX(EPROTO, "protocol_error", "the reply could not be understood")                  \
	XX(EINVAL, "invalid_argument", "invalid argument")                                 \
	XX(EINTERNAL, "internal", "internal error")                                        \
	XX(ECANCELED, "cancelled", "the task was cancelled")                               \
	XX(EJOURNALFULL, "journal_full", "the journal cannot be written (disk full); nothing was accepted") \
	XX(ECURSOREXPIRED, "cursor_expired", "the cursor is older than the oldest event held, or from another run of weftd") \
	XX(EITEMGONE, "item_gone", "the item was read and dropped (reading item k drops the items before it)")

#define WEFT_ERROR_ENUM_(name, code, message) WEFT_##name,
/* Error codes. WEFT_OK is 0; every other value is positive. */
typedef enum weft_error { WEFT_ERROR_MAP(WEFT_ERROR_ENUM_) WEFT_ERROR_COUNT_ } weft_error;
#undef WEFT_ERROR_ENUM_

/* The default message for an error code; never NULL, a static string. Any thread. */
const char *weft_strerror(int error);

/* The protocol's "code" string for an error ("unknown_id"); never NULL, static.
 * Codes outside the table give "internal". Any thread. */
const char *weft_error_code(int error);

/* The error for a protocol "code" string; WEFT_EINTERNAL when the string is unknown
 * (a newer daemon may send codes this library does not know). Any thread. */
int weft_error_from_code(const char *code);

#ifdef __cplusplus
}
#endif
#endif

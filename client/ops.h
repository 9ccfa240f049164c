/*
 * The typed ops as calls of the engine (client/async.h): one implementation
 * of each op's request and reply, shared by the asynchronous API
 * (weft/async.h) and the blocking one (weft/client.h), which starts the same
 * call with no notify and waits for it.
 *
 * Each ops_*_start checks its arguments, builds the request and starts the
 * call, as async_call_start says; notify NULL makes a blocking call, which
 * the caller ends with ops_wait. Any thread.
 */
#ifndef CLIENT_OPS_H
#define CLIENT_OPS_H

#include "client/async.h"

/* Waits for a blocking call started by an ops_*_start: rv is what the start
 * returned, *call what it wrote (read only when rv is WEFT_OK; a pointer,
 * because C leaves the order of evaluating arguments open). Returns the
 * call's error, with the thread's last error set; the caller frees the call. */
int ops_wait(int rv, weft_call *const *call);

/* Decodes {"id", "state", "result" | "error"} (borrowed) into a new
 * outcome; op names the request in messages. */
int ops_outcome_from_reply(const json_t *reply, const char *op, weft_outcome **out);

#endif

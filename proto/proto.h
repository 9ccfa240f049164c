/*
 * The one place that holds weft's protocol version, its ops and its limits.
 * proto/PROTOCOL.md documents every op; keep the two in step.
 *
 * WARNING: a change that an older peer would misread (a renamed field, a
 * changed meaning) must bump PROTO_VERSION. Adding an op or an optional
 * field does not.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>

#include "weft/version.h"

#define PROTO_VERSION 1
/* One version for weftd, libweft and the CLI: the public header has it. */
#define PROTO_SOFTWARE_VERSION WEFT_VERSION_STRING

/* Defaults shared by weftd and libweft. */
#define PROTO_DEFAULT_MAX_MESSAGE (1024 * 1024)
/* The transport reads messages up to this many times --max-message, so that an
 * oversized request can still be answered with "too_large"; beyond it nng drops
 * the connection without reading the message. */
#define PROTO_TRANSPORT_SLACK_FACTOR 4
#define PROTO_SOCKET_NAME "weft.sock"
#define PROTO_ROOT_URL "ipc:///run/weft/weft.sock"

/* The ops, as they are spelled on the wire. XX(enum suffix, "wire name") */
#define PROTO_OP_MAP(XX)                                                                   \
	XX(PING, "ping")                                                                   \
	XX(SUBMIT, "submit")                                                               \
	XX(STATUS, "status")                                                               \
	XX(RESULT, "result")                                                               \
	XX(WAIT, "wait")                                                                   \
	XX(CANCEL, "cancel")                                                               \
	XX(LIST, "list")                                                                   \
	XX(FUNCTIONS, "functions")                                                         \
	XX(STATS, "stats")                                                                 \
	XX(FUTURE_NEW, "future.new")                                                       \
	XX(FUTURE_SET, "future.set")                                                       \
	XX(AS_COMPLETED, "as_completed")                                                   \
	XX(QUEUE_SET, "queue.set")                                                         \
	XX(QUEUE_PAUSE, "queue.pause")                                                     \
	XX(QUEUE_RESUME, "queue.resume")                                                   \
	XX(QUEUES, "queues")                                                               \
	XX(NEXT, "next")                                                                   \
	XX(EVENTS, "events")                                                               \
	XX(OUTPUT, "output")                                                               \
	XX(INPUT, "input")

/* Limits of `next` and `events` (PROTOCOL.md). */
#define PROTO_NEXT_MAX_ITEMS 10000
#define PROTO_EVENTS_MAX_LIMIT 10000
#define PROTO_EVENTS_DEFAULT_LIMIT 1000
/* Job ids in an events filter, at most: every event a read or a wait looks at is matched against them. */
#define PROTO_EVENTS_MAX_IDS 1000
/* The output op's bounds (proto/PROTOCOL.md, "output"). */
#define PROTO_OUTPUT_DEFAULT_MAX (1024 * 1024)
#define PROTO_OUTPUT_MAX_MAX (16 * 1024 * 1024)
#define PROTO_OUTPUT_MAX_WAIT 300

/* Job states as they are spelled on the wire. */
#define PROTO_STATE_MAP(XX)                                                                \
	XX(WAITING, "waiting")                                                             \
	XX(QUEUED, "queued")                                                               \
	XX(RUNNING, "running")                                                             \
	XX(PENDING, "pending")                                                             \
	XX(DONE, "done")                                                                   \
	XX(FAILED, "failed")                                                               \
	XX(CANCELLED, "cancelled")

/*
 * Error types a failed job can carry besides those a function chooses: the
 * name in C, the wire spelling, and whether the type is final (a job that
 * fails with it is never retried, whatever its `retries`).
 */
#define PROTO_JOB_ERROR_MAP(XX)                                                            \
	XX(TIMEOUT, "Timeout", false)                                                      \
	XX(CANCELLED, "Cancelled", true)                                                   \
	XX(SHUTDOWN, "Shutdown", true)                                                     \
	XX(DEADLINE, "Deadline", true)                                                     \
	XX(DEPENDENCY_FAILED, "DependencyFailed", true)                                    \
	XX(INTERRUPTED, "Interrupted", false) /* weftd stopped while it ran (journal) */    \
	XX(PERMISSION, "PermissionError", false) /* the owner may not, or weftd cannot act as it */ \
	XX(EXIT_STATUS, "ExitStatus", false) /* a command exited with another status than 0 */ \
	XX(SIGNAL, "Signal", false)          /* a command was killed by a signal */        \
	XX(SPAWN, "SpawnError", false)       /* a command could not be started */             \
	XX(OUT_OF_MEMORY, "OutOfMemory", false) /* the OOM killer killed a process of the job */

#define PROTO_JOB_ERROR_ENUM_(name, wire, final) PROTO_JOB_ERROR_##name,
enum proto_job_error { PROTO_JOB_ERROR_MAP(PROTO_JOB_ERROR_ENUM_) PROTO_JOB_ERROR_COUNT };
#undef PROTO_JOB_ERROR_ENUM_

/* The wire spelling of a job error type ("Timeout"); static. Any thread. */
const char *proto_job_error(enum proto_job_error type);

/* Whether a job failed with this type is never retried (PROTO_JOB_ERROR_MAP). */
bool proto_job_error_final(const char *type);

#endif

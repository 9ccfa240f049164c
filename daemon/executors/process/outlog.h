/*
 * outlog: the output of exec jobs kept as bytes for readers (the `output`
 * op), while the job runs and after it ended.
 *
 * One log per job id, in one table. A log holds a window of the most recent
 * output: chunks in the order they were read from the pipes, each tagged
 * with its stream, numbered three ways: by byte of stdout, by byte of
 * stderr, and by byte of both merged in the order weftd read them. Bytes that
 * leave the window (it is full, or its owner's budget is) are gone; a reader
 * asking for them is told how many it lost.
 *
 * Budgets: a window holds at most `window` bytes (chunk headers counted);
 * all the logs of one user hold at most `budget` bytes. Past the budget the
 * user's finished logs are dropped first, oldest first, then the growing
 * log's own oldest chunks. So memory is bounded per user by
 * max(budget, running jobs × one chunk), plus one spare chunk of
 * OUTLOG_APPEND_MAX bytes per running job (outlog_reserve).
 *
 * Backpressure (a job's `output_wait`): when the window holds `window` bytes
 * that no reader has read yet, outlog_full says so and the process executor
 * stops reading the pipes (the command blocks on its next write) until a
 * reader reads, or until no reader has read for `idle` seconds (outlog_init).
 *
 * Threads: every function may be called from any thread. Each log has its
 * own lock; the table has one lock (order: table, then log). Watch callbacks
 * run with no lock held, on the appending thread (a worker loop).
 */
#ifndef OUTLOG_H
#define OUTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#define OUTLOG_DEFAULT_WINDOW ((size_t)4 * 1024 * 1024)
#define OUTLOG_DEFAULT_BUDGET ((size_t)64 * 1024 * 1024)
/* A backpressured job runs free again when no reader has read for this long
 * (the default of --output-idle): a reader that went away cannot stop a job
 * for ever. */
#define OUTLOG_IDLE_SECONDS 10.0
/* The most one outlog_append may add: outlog_full keeps room for one such
 * append, so a producer that waits for readers must append no more at once
 * (a longer one would push unread bytes out of the window). */
#define OUTLOG_APPEND_MAX 65536

enum outlog_stream { OUTLOG_STDOUT, OUTLOG_STDERR, OUTLOG_BOTH };

struct outlog;

/* A reader waiting for bytes past its offset; embedded in the waiter, which
 * owns it. notify is called once, with no lock held, when bytes arrive or the
 * log ends — unless outlog_unwatch removed it first. */
struct outlog_watch {
	LIST_ENTRY(outlog_watch) link; /* on the log's watches, then the woken; its lock */
	enum outlog_stream stream;
	uint64_t offset;
	void (*notify)(struct outlog_watch *watch);
};

/* What outlog_read returns. data is owned by the caller (free), NULL when
 * length is 0. For OUTLOG_BOTH, runs lists the stream of each run of bytes
 * in order: run_count pairs (stream, length), owned (free). */
struct outlog_slice {
	char *data;
	size_t length;
	uint64_t offset; /* where data starts: the asked offset, or later when lost > 0 */
	uint64_t next;   /* the offset to ask for next */
	uint64_t lost;   /* bytes between the asked offset and `offset` that left the window */
	bool eof;        /* the job's output has ended and `next` is its end */
	size_t run_count;
	struct { enum outlog_stream stream; size_t length; } *runs;
};

/* Sets the window, the budget and the idle time (0: defaults). Main thread,
 * before jobs run. */
void outlog_init(size_t window, size_t budget, double idle);
/* Drops every log. Main thread, when no job runs and no reader waits. */
void outlog_fini(void);

/* The log of job `id`, made (owned by uid) when it does not exist: a new
 * reference. wait_for_readers: the job asks for backpressure (sticky: once
 * asked, kept). spool: what leaves the window goes to a spool file
 * (spool.h) while the owner's spool budget lasts. Reopening a log whose job
 * ended (a retry) continues it. */
struct outlog *outlog_open(uint64_t id, uid_t owner, bool wait_for_readers, bool spool);
/* Whether the log has ended (its process is gone). */
bool outlog_ended(struct outlog *log);
/* Bytes appended so far to `stream` (OUTLOG_BOTH: to both). */
uint64_t outlog_total(struct outlog *log, enum outlog_stream stream);
/* The log of job `id`: a new reference, or NULL when there is none (never
 * made, or dropped for the budget). */
struct outlog *outlog_find(uint64_t id);
struct outlog *outlog_ref(struct outlog *log);
void outlog_unref(struct outlog *log);

/* The producer's side (the proc reading the pipes). */
void outlog_append(struct outlog *log, enum outlog_stream stream, const void *data, size_t length);
/* The same, without waking the readers: the next outlog_flush does. A
 * producer that reads a burst in several reads (a pipe holds more than one
 * read takes) wakes its readers once at the end of it, so a fast command's
 * output leaves in a few long replies rather than one per read, and a line
 * waits no longer than the reads of its burst. A reader that comes in
 * between sees the bytes at once. Every quiet append must be followed by a
 * flush on the same thread. */
void outlog_append_quiet(struct outlog *log, enum outlog_stream stream, const void *data,
                         size_t length);
void outlog_flush(struct outlog *log);
/* An append without a copy: where the producer may read up to *room bytes
 * (1 to max, and at most OUTLOG_APPEND_MAX) of `stream` at the log's end,
 * which outlog_commit then adds (length 0: none; the room is kept for the
 * next reserve). Readers see nothing of it before the commit. The producer's
 * thread; every reserve is followed by its commit, with no other append of
 * the log in between. */
void *outlog_reserve(struct outlog *log, enum outlog_stream stream, size_t max, size_t *room);
/* quiet: as outlog_append_quiet (outlog_flush wakes the readers). */
void outlog_commit(struct outlog *log, enum outlog_stream stream, size_t length, bool quiet);
/* The job is gone (retention dropped it): so is its finished log, bytes and
 * counters, since no reader can ask for it any more. Any thread. */
void outlog_forget(uint64_t id);
/* The output ended (the process is reaped, or never ran): wakes every reader. */
void outlog_end(struct outlog *log);
/* The producer should stop reading for now (see Backpressure). */
bool outlog_full(struct outlog *log);

/* Reads up to max bytes of `stream` from offset. Returns WEFT_OK (slice
 * filled; length 0 when nothing is there yet) or WEFT_ENOMEM. */
int outlog_read(struct outlog *log, enum outlog_stream stream, uint64_t offset, size_t max,
                struct outlog_slice *out);
/* The same, with the bytes copied to where place(arg, length) says (called
 * once, under the log's lock, when there are any; NULL: WEFT_ENOMEM), and
 * out->data left NULL: a reply is written straight into its message. */
int outlog_read_into(struct outlog *log, enum outlog_stream stream, uint64_t offset, size_t max,
                     void *(*place)(void *arg, size_t length), void *arg,
                     struct outlog_slice *out);
void outlog_slice_clear(struct outlog_slice *slice);

/* Registers a watch for bytes of watch->stream past watch->offset. Returns
 * false without registering when there are some already, or the log ended. */
bool outlog_watch(struct outlog *log, struct outlog_watch *watch);
/* Returns true when removed; false when notify has been or is being called. */
bool outlog_unwatch(struct outlog *log, struct outlog_watch *watch);

/* Bytes held by all logs of uid, and by all logs (stats, tests). */
size_t outlog_held(uid_t uid);
size_t outlog_held_total(void);

#endif

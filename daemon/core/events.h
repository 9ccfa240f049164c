/*
 * events: the feed of job state changes and queue changes (the `events` op,
 * PROTOCOL.md), bounded for the whole daemon and per user: each owner's job
 * events (and the queue events) are a lane of their own with a share of the
 * bounds, so one user's flood drops that user's oldest events, never
 * another's (events.c says how the bounds pick). Readers pull with a
 * cursor; a slow reader costs nothing, and one whose cursor fell off the feed
 * is told so (cursor_expired) rather than missing events silently. A cursor
 * is "EPOCH:SEQ". Without a journal the epoch changes at every start of
 * weftd, so a reader whose cursor is from another run resyncs. With one, the
 * journal keeps the epoch, and from the first `events` request on (before
 * that nobody holds a cursor, and keeping costs its writer) the events
 * (events_collect, with the commits of the job changes they describe), and
 * gives them back at start (events_restore_*): cursors stay good across a restart, but for the events
 * that were handed out and never committed (a kill -9), which the journal
 * reports as a gap: a cursor inside it is expired.
 *
 * What a reader sees: job events of the jobs it may act on (principal.h:
 * its own; root and --admin-group members all), and every queue change
 * (queues are listed to everyone).
 *
 * Threads: any thread. One mutex guards the lanes and the watches; it is
 * held to append or copy entries out, and no callback runs while it is held.
 */
#ifndef EVENTS_H
#define EVENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct jobs;
struct problem;
struct watch;

struct events_limits {
	size_t max_entries;   /* the whole feed (--events-max) */
	size_t max_bytes;     /* --events-max-bytes */
	size_t share_entries; /* one user's (--events-max-per-user); 0 or more: max_entries */
	size_t share_bytes;   /* --events-max-bytes-per-user; 0 or more: max_bytes */
};

/* Makes the feed within limits (copied) and hears of every job change in
 * `jobs` (NULL: none) through its observer. Main thread, before requests. */
void events_init(struct jobs *jobs, const struct events_limits *limits);
/* Main thread, at exit, when nobody uses it any more. */
void events_fini(void);

/* A job changed state (from JOB_STATE_COUNT: it was just made; worker -1:
 * none); function is static. The jobs observer calls it; tests too. Any
 * thread. */
void events_job(uint64_t id, uid_t owner, const char *function, int from, int to, int worker);

/* A named queue changed: change is "set", "pause" or "resume"; max the
 * queue's limit (set only). Any thread. */
void events_queue(const char *name, const char *change, long max);

/* What a reader asks for. Borrowed by the reading calls and by a watch
 * (watch->data) for as long as it is registered. */
struct events_filter {
	uid_t viewer;          /* whose jobs the reader may see */
	bool all;              /* root or an admin: every job */
	const uint64_t *ids;   /* only these jobs (and no queue events), in increasing order; NULL: any */
	size_t id_count;
	const char *function;  /* only jobs of this function; NULL: any */
	int type;              /* 0 any, 1 job events only, 2 queue events only */
};

/* Parses a cursor ("EPOCH:SEQ"). Returns 0, or -1 when text is not one. */
int events_parse_cursor(const char *text, uint64_t *epoch, uint64_t *seq);

/* The cursor of seq in this run, into text (at least EVENTS_CURSOR_SIZE bytes). */
#define EVENTS_CURSOR_SIZE 48
void events_cursor(uint64_t seq, char *text);

/*
 * Reads up to limit events after `seq` (0: from the oldest held) that the
 * filter keeps: *out a new array reference, *last the seq to read after next
 * time (how far this read looked). Returns WEFT_OK; WEFT_ECURSOREXPIRED when
 * epoch is not this run's or events after seq were dropped (the problem's
 * message names the oldest cursor, and *last is the seq before the oldest);
 * WEFT_EBADFIELD when seq is past the newest event.
 */
int events_read(uint64_t epoch, uint64_t seq, const struct events_filter *filter, size_t limit,
                json_t **out, uint64_t *last, struct problem *problem);

/* Registers watch (key: the seq read up to; data: the filter) to be notified
 * at the first event after key that the filter keeps. Returns false, not
 * registering, when one is there already. */
bool events_watch(struct watch *watch);
/* true when removed before it was notified. */
bool events_unwatch(struct watch *watch);

struct events_stats {
	uint64_t appended; /* every event since start */
	uint64_t held;
	uint64_t bytes;
	uint64_t dropped;  /* pushed out by the bounds */
	uint64_t epoch;
	uint64_t users;    /* owners with job events held */
	uint64_t share_entries, share_bytes; /* one user's share, as applied */
	uint64_t yours_held, yours_bytes, yours_dropped; /* the viewer's job events */
};
/* Any thread. */
void events_stats(uid_t viewer, struct events_stats *stats);

/* ---- durability: the journal's side (journal.c) ----
 *
 * The journal pulls: at each commit it collects the events appended since
 * the last one, and the lanes' drop marks (so that it deletes the rows the
 * ring dropped); it reserves seqs ahead (events_set_reserved), and a read
 * shows no event at or past the reservation, so that after a kill -9 no seq
 * a reader saw is handed out again. */

/* The lane of queue events in events_row and events_mark; a job event's lane is its owner's uid. */
#define EVENTS_QUEUE_LANE (-1LL)

struct events_row {
	uint64_t seq;
	long long lane;
	size_t bytes;  /* what the feed charges it against its bounds */
	const char *body; /* the event as JSON text, as the `events` op returns it but for its
	                   * cursor (the epoch and seq), in the batch's text */
	size_t body_size;
};

struct events_mark {
	long long lane;
	uint64_t dropped_upto; /* the seq of the newest event the lane dropped */
};

struct events_batch {
	struct events_row *rows;     /* in seq order */
	size_t row_count;
	struct events_mark *marks;   /* every lane that dropped any */
	size_t mark_count;
	uint64_t upto;      /* every event up to here is in rows, held before, or dropped */
	uint64_t next_seq;  /* the seq the next event gets */
	bool more;          /* held events past upto were left for the next collect (max) */
	char *text;         /* the bodies, one after another, each NUL-terminated */
	size_t text_size, text_capacity;
};

/* Copies into *batch the events held with after < seq <= until, at most max
 * of them (the oldest), and the drop marks. Returns WEFT_OK, or
 * WEFT_ESHUTDOWN once the feed is closed (batch empty). The journal's writer
 * thread; takes the lock for a copy only, and writes the bodies after it (by
 * hand, not through jansson: the journal's writer is the journal's
 * bottleneck). */
int events_collect(uint64_t after, uint64_t until, size_t max, struct events_batch *batch);
/* Frees what events_collect made. */
void events_batch_clear(struct events_batch *batch);

/* The seq of the newest event (0: none). Any thread. */
uint64_t events_newest(void);

/* Called after every append, on the appending thread with no lock held, so
 * that the journal wakes its writer: NULL for none. Set on the main thread
 * before the events it should hear of; read by any thread. */
typedef void events_hook_fn(void);
void events_set_hook(events_hook_fn *appended);

/* Reads show events below seq `below` only (the journal's reservation);
 * without a journal, every one. Raised after each commit. Any thread. */
void events_set_reserved(uint64_t below);

/* Replay (journal_replay), on the main thread before anything listens and
 * before replay's own job changes: begin takes the stored epoch, restore
 * gives back each stored event in seq order (bytes as stored, body the JSON
 * text the feed returned; WEFT_EINVAL when it is not an event, and nothing
 * is kept), mark a lane's stored drop mark, end the seq of the newest event
 * the store accounts for (`upto`) and the stored reservation: the next event
 * gets seq max(upto + 1, reserved), and a cursor between the two is expired.
 * Events beyond the bounds are dropped as appends drop them. */
void events_restore_begin(uint64_t epoch);
int events_restore(uint64_t seq, long long lane, size_t bytes, const char *body);
void events_restore_mark(long long lane, uint64_t dropped_upto);
void events_restore_end(uint64_t upto, uint64_t reserved);

#endif

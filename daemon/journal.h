/*
 * journal: the durable store of accepted jobs (issue 12). Every state change
 * that matters after a restart is written to an SQLite database in WAL mode,
 * STATE_DIR/weft.db, by one writer thread that commits in groups: whatever
 * arrives while one commit runs goes into the next, so a lone submit waits
 * for one commit and a burst shares them, with no timer adding latency.
 *
 * Acceptance is write-ahead: a submitted job is journaled, and only after its
 * commit does it run and does the client get its id (journal_after_commit).
 * Later changes (started, retried, finished, cancelled, evicted; queue
 * configuration) are queued by hooks in jobs.c and ops.c without waiting; a
 * reply that must not precede its record (cancel, future.set, queue.*) goes
 * out through journal_reply.
 *
 * With `--state-dir none` there is no journal: every hook does nothing and
 * journal_after_commit calls back at once, on the calling thread.
 *
 * Threads: journal_open, journal_replay, journal_start and journal_close run
 * on the main thread at start and at exit; every other function may be called
 * from any thread. Completion callbacks run on the journal's completion
 * thread ("weft-journal-ok"), in commit order, with no lock held; the writer
 * ("weft-journal") goes on with the next commit meanwhile. WAL checkpoints
 * run on a third thread ("weft-journal-ck"). The journal is one per process.
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct job;
struct jobs;
struct server_request;

enum journal_sync {
	JOURNAL_SYNC_FULL,   /* fsync at every commit: survives power loss and OS crashes */
	JOURNAL_SYNC_NORMAL, /* fsync at checkpoints: survives the daemon's death, not the OS's */
};

/*
 * Opens (making them when missing) DIR and DIR/weft.db and takes its lock.
 * Returns WEFT_OK, or WEFT_EINVAL with `message` naming the file, what is
 * wrong and the way out (a store that cannot be opened, is locked by another
 * weftd, is damaged or is not weft's): weftd must then refuse to start, never
 * begin afresh and forget jobs. Main thread, once.
 */
int journal_open(const char *directory, enum journal_sync sync, char *message, size_t size);

/*
 * Reads the store back into `jobs` and the named queues: finished jobs keep
 * their results; queued and waiting jobs are handed to the runner in id order
 * (their priority, times and `after` come with them); bare futures stay
 * pending; a job that was running ends failed with type "Interrupted", or
 * runs again when it asked for on_interrupt "retry" and has retries left.
 * Ids continue above every id ever handed out. Returns WEFT_OK, or WEFT_EINVAL
 * with a message as journal_open's. Main thread, after the runner and the
 * workers are up and before anything listens. Does nothing without a journal.
 */
int journal_replay(struct jobs *jobs, char *message, size_t size);

/* What became of the processes of jobs that were running when the last weftd
 * died (containment's check at start), appended to the message of each job
 * that replay ends Interrupted, and to replay's log line. note is copied.
 * Main thread, before journal_replay. */
void journal_set_interrupted_note(const char *note);

/* Starts the writer thread. Returns WEFT_OK or an error code. Main thread. */
int journal_start(struct jobs *jobs);

/* Whether a journal is open (false with --state-dir none). Any thread. */
bool journal_enabled(void);

/*
 * Calls done(context, status) once everything queued before this call is
 * committed (status WEFT_OK), or could not be (WEFT_EJOURNALFULL when the
 * disk is full, WEFT_EINTERNAL otherwise). On the completion thread; at once
 * on the calling thread (WEFT_OK) when there is no journal or it is frozen.
 */
typedef void journal_done_fn(void *context, int status);
void journal_after_commit(journal_done_fn *done, void *context);

/*
 * Queues the acceptance of new jobs (not yet running) and then calls
 * done(context, status) as journal_after_commit does: the jobs and the
 * callback are in one commit, so WEFT_OK means every one of them is durable
 * and an error means none is (the caller then discards them: jobs_discard).
 * From here on the jobs' changes are journaled. The journal takes references
 * of its own. Without a journal, done runs at once with WEFT_OK; once frozen
 * (shutdown), with WEFT_ESHUTDOWN. Any thread.
 */
void journal_accept(struct job *const *jobs, size_t count, journal_done_fn *done,
                    void *context);

/* Sends `reply` (stolen) on `request` once everything queued before is
 * committed. Any thread. */
void journal_reply(struct server_request *request, json_t *reply);

/* The named queues changed (ops.c). Cheap, never blocks on the disk. A job's
 * changes come through the job table's observer (jobs_set_observer), which
 * journal_replay installs; jobs never accepted through the journal (gather's
 * children) are ignored. */
void journal_queues_changed(void);

/*
 * Somebody reads the event feed: from now on the journal keeps it, for good
 * (the store remembers it, and a restart reloads the events). Until then the
 * journal does no work for the feed at all, so a weftd whose feed nobody
 * reads pays nothing for it. Any thread: the one serving an `events` request,
 * which must call it before it reads the feed (journal.c says why).
 * Does nothing without a journal, and once keeping is on.
 */
void journal_keep_events(void);

/*
 * Shutdown: from now on changes are not journaled, so that the jobs that
 * shutdown cancels stay queued (or running: Interrupted) in the store and
 * come back after the restart. What was queued before is still written.
 * Main thread.
 */
void journal_freeze(void);

/* Writes what is queued, stops the writer and closes the store. Main thread,
 * after the workers stopped. Does nothing without a journal. */
void journal_close(void);

/* `stats`'s "journal" object (PROTOCOL.md): a new reference. Any thread. */
json_t *journal_stats(void);

#endif

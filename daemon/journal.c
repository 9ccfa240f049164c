/*
 * The journal (journal.h). Design:
 *
 * Why SQLite: measured here, WAL mode with one writer and group commit keeps
 * up with a hand-written append-only log (fdatasync ~0.2 ms either way) and
 * brings atomic multi-row commits, recovery that drops a torn last
 * transaction by checksum, page reuse (no compaction code: an evicted job's
 * row is deleted and its pages reused) and `sqlite3 weft.db` for debugging.
 *
 * The store: one row per job in `jobs` (its immutable spec as JSON and its
 * changing fields as they were when it was accepted, written once), and in
 * `job_states` its changing fields alone, written (replaced) at each later
 * commit that changed them: rewriting the wide `jobs` row at every change
 * cost the writer more than the acceptance's insert itself. Replay reads a
 * job's state from job_states when it has a row there. An eviction deletes
 * both. Then the named queues, and a `meta` row holding the id reservation.
 * `PRAGMA application_id` marks the file as weft's; `user_version` is the
 * schema version (2; a store of schema 1, with jobs only, is upgraded at open
 * by making the empty job_states).
 *
 * The queue: producers (any thread) append records under `lock`; the writer
 * thread takes the whole list, runs it as one transaction and then calls the
 * completion callbacks of the barriers in it. Records of a later state
 * change are queued after those of an earlier one (the hooks run after the
 * job's own lock is released, but a job changes state on one thread at a
 * time and each record reads the job's state when it is written, so the last
 * record written always carries the latest state).
 *
 * What one commit costs (issue 12: at most 20% of the throughput with
 * `normal`): a job usually has several records in one batch (its start and
 * its end arrive together), and each record reads the job's latest state
 * anyway, so the writer coalesces them (coalesce): one row write per job per
 * commit, an INSERT when its acceptance is among them. Rows are encoded into
 * text buffers the writer reuses (struct text) by an encoder of its own
 * (text_value: jansson's dump formats every number with printf), the spec
 * by hand, with the owner's part kept from the job before (jobs of one
 * connection share their principal); no JSON tree is built for it and
 * nothing is allocated per row.
 *
 * Commits: a barrier (an acceptance, journal_reply, journal_after_commit)
 * wakes the writer at once. Changes nobody waits for do not start a commit
 * of their own unless CHANGE_BATCH of them are queued or CHANGE_DELAY_SECONDS
 * passed since the first: with many submits in flight they go with the
 * next acceptance's commit, instead of a commit between every two
 * acceptances (a commit costs about as much for 3 rows as for 30). A commit
 * of such changes alone takes at most CHANGE_CHUNK of them. And acceptances
 * go ahead of changes queued before them (two commits: theirs first), unless
 * one of their jobs has `after`: an acknowledgement promises its own jobs,
 * and only a dependent's fate depends on another job's end being written
 * first. In a stream of batches, the next batch's acceptance no longer waits
 * behind the thousands of ends of the one before.
 *
 * Acknowledgements: the completion callbacks of a commit (the replies of its
 * submits, and the inline jobs they start) are handed to a thread of their
 * own, "weft-journal-ok", in commit order, so that the writer starts the
 * next commit at once instead of sending replies; a reply still leaves only
 * after its commit. With 64 submits in flight, sending the replies took as
 * long as the commit itself. When no next commit waits (one submit at a
 * time), the writer calls back itself: a hand-off would only add a wake-up.
 *
 * A failed commit (a full disk) is rolled back. Its acceptances are refused
 * to their submitters (their barriers get the error, and ops.c discards the
 * jobs); its other records are kept and written again with the next commit,
 * or after RETRY_SECONDS, so that space coming back heals the store.
 *
 * Ids: the store holds a reservation, at least RESERVE_IDS above every id
 * handed out when a commit ran; after a restart ids continue from it, so an
 * id seen before a crash (a reply is sent only after a commit) is never
 * handed out again.
 *
 * Events (events.h): the feed's events are kept with the same commits. The
 * writer pulls what the feed appended since its last commit (events_collect)
 * at each commit and writes them, a row per lane holding a line per event
 * (write_events: a row per event doubled the writer's time), and for each
 * lane that dropped events since, one DELETE of that lane's rows whose last
 * event it dropped: the store holds what the ring holds (and at most one
 * partly dropped row more per lane), within the same bounds. An append
 * nobody else commits for (a queue change, a job that is not journaled)
 * wakes the writer like a change (journal_events_appended), once per
 * commit. The epoch of cursors is made once with the store; seqs are
 * reserved ahead like ids (EVENT_RESERVE), so that after a kill -9 the seqs
 * of events handed out but never committed are known to be lost (events.h).
 *
 * The feed is kept only once somebody reads it (journal_keep_events, at the
 * first `events` request; meta `events_kept` then keeps it on for good): it
 * costs the writer about a quarter of its fill rate, which a weftd whose feed
 * nobody reads must not pay. Until then no event wakes the writer (no hook)
 * and no commit collects any; each commit only keeps the seq reservation
 * ahead of the feed's newest seq (one look per commit), so that the first
 * reader is shown all the ring holds. Turning it on is ordered so that every
 * cursor ever handed out is durable (journal_keep_events says how).
 *
 * Checkpoints: on a thread of their own ("weft-journal-ck", with a second
 * connection), woken by the writer's WAL hook (open_checkpointer says why).
 *
 * Lock order: `lock`, `done_lock` and `checkpoint_lock` are leaves, never
 * held together; no
 * callback runs under either, and the shard locks of jobs.c are never taken
 * while one is held.
 */
#include "daemon/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/core/events.h"
#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/base/log.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/core/principal.h"
#include "daemon/core/queues.h"
#include "daemon/sched/runner.h"
#include "daemon/notify.h"
#include "daemon/sched/schedule.h"
#include "daemon/server/server.h"
#include "proto/proto.h"
#include "weft/error.h"

#define APPLICATION_ID 0x77656674 /* "weft" */
/* 1: a job's changes rewrote its row in `jobs`. 2: they go to `job_states`
 * (see the top of the file); a store of schema 1 is upgraded at open. */
#define SCHEMA_VERSION 2
#define RESERVE_IDS 16384
/* Event seqs reserved ahead in the store: a read shows no event past the
 * reservation, so this many events may come between two commits before the
 * feed waits for the writer. */
#define EVENT_RESERVE (1ULL << 20)
/* Events one commit writes at most; the rest go with the next one, at once. */
#define EVENTS_PER_COMMIT 4096
#define RETRY_SECONDS 1.0
/* Changes nobody waits for (a job started or finished, an eviction) wait at
 * most this long, or until this many are queued, for a commit that someone
 * waits for (an acceptance, a reply) to ride along with. */
#define CHANGE_DELAY_SECONDS 0.005
#define CHANGE_BATCH 512
/* A commit of such changes alone takes at most this many, so that an
 * acceptance arriving meanwhile waits for a short commit only. */
#define CHANGE_CHUNK 256
/* What each EXTEND_TIMEOUT_USEC asks for during replay: 30 s, far more than
 * the second between two of them. */
#define JOURNAL_EXTEND_USEC 30000000ULL
/* How long start waits for the state directory's lock (see journal_open). */
#define JOURNAL_LOCK_WAIT_SECONDS 3.0
#define INTERRUPTED_MESSAGE "weftd stopped while the job ran"
/* WAL pages after a commit that wake the checkpointer (SQLite's own
 * automatic checkpoint's default), and past which the writer checkpoints
 * itself: the checkpointer's passive checkpoints may not catch up with a
 * writer that never pauses, and only a checkpoint with no commit after it
 * lets the next one start the WAL over. */
#define CHECKPOINT_PAGES 1000
#define CHECKPOINT_WRITER_PAGES 16000
/* The WAL file is cut back to this after it started over (a burst grows it). */
#define WAL_SIZE_LIMIT (64LL * 1024 * 1024)

enum record_kind { RECORD_ACCEPT, RECORD_CHANGE, RECORD_EVICT, RECORD_QUEUES, RECORD_BARRIER };

/* One queued change. Owned by the queue, then by the writer. */
struct record {
	struct record *next;
	enum record_kind kind;
	struct job *job;        /* ACCEPT, CHANGE: a reference of the record's */
	uint64_t id;            /* EVICT */
	journal_done_fn *done;  /* BARRIER */
	void *context;
	int status;             /* BARRIER: its commit's, for the completion thread */
	/* Set by coalesce for the commit being written (writer thread). */
	bool skip;              /* a later record of the same job writes its row */
	bool insert;            /* the job's acceptance is in this commit: INSERT */
	bool ahead;             /* ACCEPT and its BARRIER: may go before earlier changes */
};

/* A text the writer encodes a column into, reused from row to row so that
 * no row allocates. Writer thread. */
struct text {
	char *data;
	size_t size, capacity;
};

/* coalesce's table: job id -> its last ACCEPT/CHANGE record in the commit
 * being written; entries of older commits are told apart by generation.
 * record NULL: the job was evicted in this commit, later records of it
 * stand on their own. Writer thread. */
struct seen {
	uint64_t id;
	uint64_t generation;
	struct record *record;
};

enum statement {
	STMT_INSERT,
	STMT_STATE,
	STMT_DELETE,
	STMT_DELETE_STATE,
	STMT_META,
	STMT_QUEUES_CLEAR,
	STMT_QUEUE_INSERT,
	STMT_EVENT_INSERT,
	STMT_EVENT_PRUNE,
	STMT_EVENT_MARK,
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_COUNT
};

static const char *const statement_sql[STMT_COUNT] = {
	[STMT_INSERT] = "INSERT OR REPLACE INTO jobs(id, spec, state, created, started, finished, "
	                "result, error, attempts, children) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
	                "?9, ?10)",
	/* The same parameters as STMT_INSERT's (2 and 4 unused), so that
	 * write_job binds both alike. */
	[STMT_STATE] = "INSERT OR REPLACE INTO job_states(id, state, started, finished, result, "
	               "error, attempts, children) VALUES(?1, ?3, ?5, ?6, ?7, ?8, ?9, ?10)",
	[STMT_DELETE] = "DELETE FROM jobs WHERE id = ?1",
	[STMT_DELETE_STATE] = "DELETE FROM job_states WHERE id = ?1",
	[STMT_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
	[STMT_QUEUES_CLEAR] = "DELETE FROM queues",
	[STMT_QUEUE_INSERT] = "INSERT INTO queues(name, max, paused) VALUES(?1, ?2, ?3)",
	[STMT_EVENT_INSERT] = "INSERT OR REPLACE INTO events(last, lane, first, lines) "
	                      "VALUES(?1, ?2, ?3, ?4)",
	/* Only the chunks that end where the lane dropped since its last prune
	 * are looked at. */
	[STMT_EVENT_PRUNE] = "DELETE FROM events WHERE last > ?3 AND last <= ?2 AND lane = ?1",
	[STMT_EVENT_MARK] = "INSERT OR REPLACE INTO event_lanes(lane, dropped_upto) VALUES(?1, ?2)",
	/* Prepared once like the rest: sqlite3_exec would compile them at every commit. */
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
};

static struct {
	/* Set on the main thread before the writer starts; then the writer's. */
	sqlite3 *db;
	sqlite3_stmt *statements[STMT_COUNT];
	char directory[PATH_MAX];
	char path[PATH_MAX];
	int lock_fd;
	enum journal_sync sync;
	struct jobs *jobs;
	uint64_t reserved_id; /* writer: ids below it are reserved in the store */
	struct record *retry_head, *retry_tail; /* writer: records of a failed commit */
	bool full_logged;     /* writer: the full disk has been reported */
	struct text columns[11]; /* writer: the text of each JSON column, by index */
	struct text owner_text;  /* writer: the owner part of owner_of_text's specs */
	struct principal *owner_of_text; /* writer: a reference, or NULL */
	struct seen *seen;       /* writer: coalesce's table, seen_capacity slots */
	size_t seen_capacity;
	uint64_t seen_generation;
	uint64_t events_upto;     /* writer: every event up to this seq is in the store */
	bool events_kept_stored;  /* writer: meta events_kept is in the store */
	uint64_t events_reserved; /* writer: event seqs below it are reserved in the store */
	struct events_mark *event_marks; /* writer: each lane's drop mark as stored */
	size_t event_mark_count, event_mark_capacity;

	pthread_t thread;
	pthread_t completer;
	pthread_t checkpointer;
	bool started; /* main thread */
	bool checkpointer_started; /* main thread */

	/* The checkpointer's own connection: opened on the main thread at
	 * open, then used on the checkpointer thread only (and closed on the
	 * main thread once it has stopped). */
	sqlite3 *checkpoint_db;
	/* Guards checkpoint_due and checkpoint_stop: set by the writer (in its
	 * WAL hook) and at close, taken by the checkpointer (a leaf lock). */
	pthread_mutex_t checkpoint_lock;
	pthread_cond_t checkpoint_wake;
	bool checkpoint_due;
	bool checkpoint_stop;

	/* Guards the barriers of finished commits, waiting for their callbacks:
	 * taken by the writer to append and by the completion thread to take
	 * them (a leaf lock, never held with `lock`). */
	pthread_mutex_t done_lock;
	pthread_cond_t done_wake;
	struct record *done_head, *done_tail;
	bool done_busy; /* the completion thread is running callbacks */
	bool done_stop;

	/* Guards the queue and the flags below it: taken by producers on every
	 * thread and by the writer to take the list (a leaf lock). */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct record *head, *tail;
	size_t queued_barriers; /* barriers in the queue */
	size_t queued_changes;  /* other records in the queue */
	double first_change_at; /* monotonic time the first of those came */
	bool events_due;        /* the feed appended since the writer last took the queue */
	uint64_t events_until;  /* events past this seq are not kept (appended once frozen) */
	bool stop;
	bool frozen;

	/* Set by appenders (journal_events_appended), cleared by the writer
	 * before it collects: only the first append after a collect takes
	 * `lock`. */
	atomic_bool events_unwritten;

	/* Whether the store keeps the feed: false until the first `events`
	 * request, then true for good. Set by journal_keep_events on the thread
	 * serving that request, under `lock` (one turns it on); read without
	 * the lock by the writer at each commit and by stats. Release on set,
	 * acquire on read: a thread that reads it true also sees the hook
	 * journal_keep_events installed before setting it. The writer does not
	 * rely on the flag alone for its first collection: that one is asked
	 * for with events_due, under `lock`, after the flag and the hook. */
	atomic_bool events_kept;

	/* Set once at open, before other threads read it. Relaxed: it only
	 * says whether to queue at all; the queue's lock orders the records. */
	atomic_bool enabled;

	/* Statistics, written by the writer, read by `stats` on any thread.
	 * Relaxed: each is one number read on its own. */
	atomic_uint_least64_t commits;
	atomic_uint_least64_t records;
	atomic_uint_least64_t rows;
	atomic_uint_least64_t accepted;
	atomic_uint_least64_t failures;
	atomic_uint_least64_t last_records;
	atomic_uint_least64_t last_latency_ns;
	atomic_uint_least64_t events_written;
	atomic_bool full;
} journal = {.lock_fd = -1,
             .events_until = UINT64_MAX,
             .lock = PTHREAD_MUTEX_INITIALIZER,
             .wake = PTHREAD_COND_INITIALIZER,
             .done_lock = PTHREAD_MUTEX_INITIALIZER,
             .done_wake = PTHREAD_COND_INITIALIZER,
             .checkpoint_lock = PTHREAD_MUTEX_INITIALIZER,
             .checkpoint_wake = PTHREAD_COND_INITIALIZER};

bool journal_enabled(void)
{
	return atomic_load_explicit(&journal.enabled, memory_order_relaxed);
}

/* ---- opening ---- */

static int refuse(char *message, size_t size, const char *what)
{
	snprintf(message, size,
	         "state store %s: %s. weftd will not start on it, so as not to forget the jobs it "
	         "holds: move it aside (mv %s %s.broken) to start with an empty store, restore it "
	         "from a backup, or pass --state-dir DIR (or none)",
	         journal.path, what, journal.path, journal.path);
	return WEFT_EINVAL;
}

/* mkdir -p with mode 0700 for what it makes: jobs hold secrets (env, stdin). */
static int make_directory(const char *directory)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", directory);
	for (char *slash = path + 1; *slash != '\0'; slash++) {
		if (*slash != '/')
			continue;
		*slash = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return errno;
		*slash = '/';
	}
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return errno;
	return 0;
}

static int exec_sql(const char *sql)
{
	return sqlite3_exec(journal.db, sql, NULL, NULL, NULL);
}

/* The integer a one-value query gives; -1 when it fails. */
static long long query_integer(const char *sql, int *rc)
{
	sqlite3_stmt *statement;
	long long value = -1;
	*rc = sqlite3_prepare_v2(journal.db, sql, -1, &statement, NULL);
	if (*rc != SQLITE_OK)
		return -1;
	*rc = sqlite3_step(statement);
	if (*rc == SQLITE_ROW) {
		value = sqlite3_column_int64(statement, 0);
		*rc = SQLITE_OK;
	} else if (*rc == SQLITE_DONE) {
		*rc = SQLITE_OK;
	}
	sqlite3_finalize(statement);
	return value;
}

static int check_and_create(char *message, size_t size)
{
	int rc;
	long long application = query_integer("PRAGMA application_id", &rc);
	if (rc != SQLITE_OK) {
		char what[256];
		snprintf(what, sizeof(what), "cannot be read (%s)", sqlite3_errmsg(journal.db));
		return refuse(message, size, what);
	}
	long long tables = query_integer("SELECT count(*) FROM sqlite_master", &rc);
	if (rc != SQLITE_OK)
		return refuse(message, size, "its schema cannot be read: it is damaged");
	if (application != APPLICATION_ID && !(application == 0 && tables == 0))
		return refuse(message, size, "it is an SQLite database, but not weft's");
	long long version = query_integer("PRAGMA user_version", &rc);
	if (application == APPLICATION_ID && version > SCHEMA_VERSION) {
		char what[160];
		snprintf(what, sizeof(what), "it was written by a newer weftd (schema %lld; this one "
		         "reads %d)", version, SCHEMA_VERSION);
		return refuse(message, size, what);
	}
	char *error = NULL;
	char setup_sql[2048];
	snprintf(setup_sql, sizeof(setup_sql),
	         "BEGIN;"
	         "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	         "CREATE TABLE IF NOT EXISTS jobs(id INTEGER PRIMARY KEY, spec TEXT NOT NULL, "
	         "state TEXT NOT NULL, created REAL, started REAL, finished REAL, result TEXT, "
	         "error TEXT, attempts TEXT, children TEXT);"
	         /* A job's changing fields once they changed after the commit
	          * of its acceptance (schema 2; made by the upgrade from 1). */
	         "CREATE TABLE IF NOT EXISTS job_states(id INTEGER PRIMARY KEY, "
	         "state TEXT NOT NULL, started REAL, finished REAL, result TEXT, error TEXT, "
	         "attempts TEXT, children TEXT);"
	         "CREATE TABLE IF NOT EXISTS queues(name TEXT PRIMARY KEY, max INTEGER NOT NULL, "
	         "paused INTEGER NOT NULL);"
	         /* A lane's events of one commit, one line each (see write_events),
	          * keyed by the seq of the last: an append at the end of the tree. */
	         "CREATE TABLE IF NOT EXISTS events(last INTEGER PRIMARY KEY, lane INTEGER NOT NULL, "
	         "first INTEGER NOT NULL, lines TEXT NOT NULL);"
	         "CREATE TABLE IF NOT EXISTS event_lanes(lane INTEGER PRIMARY KEY, "
	         "dropped_upto INTEGER NOT NULL);"
	         /* Made once, with the store (or the first weftd that keeps events
	          * in it): every later start keeps it, and so its cursors. */
	         "INSERT OR IGNORE INTO meta(key, value) VALUES('events_epoch', %lld);"
	         "PRAGMA application_id = %d;"
	         "PRAGMA user_version = %d;"
	         "COMMIT;",
	         (long long)(now_wall() * 1e6), APPLICATION_ID, SCHEMA_VERSION);
	char mode_sql[64];
	snprintf(mode_sql, sizeof(mode_sql), "PRAGMA synchronous = %s",
	         journal.sync == JOURNAL_SYNC_FULL ? "FULL" : "NORMAL");
	sqlite3_stmt *mode;
	if (sqlite3_prepare_v2(journal.db, "PRAGMA journal_mode = WAL", -1, &mode, NULL) !=
	            SQLITE_OK ||
	    sqlite3_step(mode) != SQLITE_ROW ||
	    strcmp((const char *)sqlite3_column_text(mode, 0), "wal") != 0) {
		sqlite3_finalize(mode);
		return refuse(message, size, "cannot be put in WAL mode (is the directory writable?)");
	}
	sqlite3_finalize(mode);
	if (exec_sql(mode_sql) != SQLITE_OK)
		return refuse(message, size, "refuses its synchronous mode");
	if (sqlite3_exec(journal.db, setup_sql,
	                 NULL, NULL, &error) != SQLITE_OK) {
		char what[256];
		snprintf(what, sizeof(what), "cannot be set up (%s)", error != NULL ? error : "?");
		sqlite3_free(error);
		exec_sql("ROLLBACK");
		return refuse(message, size, what);
	}
	/* The upgrade is the setup's transaction: job_states made (empty: every
	 * row of jobs holds its job's latest state) and the version raised. */
	if (application == APPLICATION_ID && version < SCHEMA_VERSION)
		log_info("journal %s: upgraded from schema %lld to %d", journal.path, version,
		         SCHEMA_VERSION);
	for (int i = 0; i < STMT_COUNT; i++) {
		if (sqlite3_prepare_v3(journal.db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &journal.statements[i], NULL) != SQLITE_OK)
			return refuse(message, size, "does not have weft's tables: it is damaged");
	}
	return WEFT_OK;
}

/* After a commit, on the writer's connection (sqlite3_wal_hook): wakes the
 * checkpointer once the WAL holds CHECKPOINT_PAGES, and checkpoints here past
 * CHECKPOINT_WRITER_PAGES. Writer thread. */
static int wal_committed(void *context, sqlite3 *db, const char *name, int pages)
{
	(void)context;
	if (pages >= CHECKPOINT_WRITER_PAGES) {
		/* Errors (a full disk) leave the frames in the WAL, to be copied later. */
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		return SQLITE_OK;
	}
	if (pages < CHECKPOINT_PAGES)
		return SQLITE_OK;
	pthread_mutex_lock(&journal.checkpoint_lock);
	if (!journal.checkpoint_due) {
		journal.checkpoint_due = true;
		pthread_cond_signal(&journal.checkpoint_wake);
	}
	pthread_mutex_unlock(&journal.checkpoint_lock);
	return SQLITE_OK;
}

/*
 * Checkpoints (copying the WAL into the database file, with its fsyncs) run
 * on a thread of their own, with a connection of their own, instead of in
 * the commit that crossed SQLite's threshold: in the writer they took 8% of
 * its time, and the submits of that commit waited for them. A passive
 * checkpoint takes no lock the writer needs, and a kill -9 in the middle of
 * one loses nothing (the WAL still holds every frame). Main thread, at open.
 */
static int open_checkpointer(char *message, size_t size)
{
	char what[256];
	if (sqlite3_open_v2(journal.path, &journal.checkpoint_db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(what, sizeof(what), "cannot be opened a second time, for checkpoints (%s)",
		         journal.checkpoint_db != NULL ? sqlite3_errmsg(journal.checkpoint_db) : "?");
		return refuse(message, size, what);
	}
	char sql[160];
	/* The checkpoint's fsyncs follow the connection that runs it. */
	snprintf(sql, sizeof(sql), "PRAGMA synchronous = %s; PRAGMA wal_autocheckpoint = 0",
	         journal.sync == JOURNAL_SYNC_FULL ? "FULL" : "NORMAL");
	if (sqlite3_exec(journal.checkpoint_db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return refuse(message, size, "refuses the checkpointer's settings");
	snprintf(sql, sizeof(sql), "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = %lld",
	         WAL_SIZE_LIMIT);
	if (exec_sql(sql) != SQLITE_OK)
		return refuse(message, size, "refuses the writer's checkpoint settings");
	sqlite3_wal_hook(journal.db, wal_committed, NULL);
	return WEFT_OK;
}

static void *checkpointer_main(void *argument)
{
	(void)argument;
	for (;;) {
		pthread_mutex_lock(&journal.checkpoint_lock);
		while (!journal.checkpoint_due && !journal.checkpoint_stop)
			pthread_cond_wait(&journal.checkpoint_wake, &journal.checkpoint_lock);
		bool stop = journal.checkpoint_stop;
		journal.checkpoint_due = false;
		pthread_mutex_unlock(&journal.checkpoint_lock);
		if (stop)
			break;
		/* Busy (the writer checkpoints itself) or failed (a full disk):
		 * the frames stay in the WAL, and the next commit asks again. */
		(void)sqlite3_wal_checkpoint_v2(journal.checkpoint_db, NULL, SQLITE_CHECKPOINT_PASSIVE,
		                                NULL, NULL);
	}
	return NULL;
}

int journal_open(const char *directory, enum journal_sync sync, char *message, size_t size)
{
	journal.sync = sync;
	snprintf(journal.directory, sizeof(journal.directory), "%s", directory);
	snprintf(journal.path, sizeof(journal.path), "%s/weft.db", directory);
	int error = make_directory(directory);
	if (error != 0) {
		snprintf(message, size,
		         "cannot make the state directory %s: %s; make it, or pass --state-dir DIR "
		         "(or none to keep jobs in memory only)",
		         directory, strerror(error));
		return WEFT_EINVAL;
	}
	char lock_path[PATH_MAX + 16];
	snprintf(lock_path, sizeof(lock_path), "%s/weft.lock", directory);
	journal.lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	/* A weftd killed a moment ago may leave the lock to a child that was
	 * between fork and exec (it holds the descriptor until it execs or its
	 * death signal lands): wait for it a little before taking this for a
	 * running weftd. Main thread, at start. */
	int locked = journal.lock_fd >= 0 ? flock(journal.lock_fd, LOCK_EX | LOCK_NB) : -1;
	for (int round = 0; locked != 0 && errno == EWOULDBLOCK &&
	                    round < (int)(JOURNAL_LOCK_WAIT_SECONDS * 50);
	     round++) {
		struct timespec pause = {.tv_nsec = 20 * 1000 * 1000};
		nanosleep(&pause, NULL);
		locked = flock(journal.lock_fd, LOCK_EX | LOCK_NB);
	}
	if (locked != 0) {
		int saved = errno;
		snprintf(message, size,
		         "state directory %s is in use by another weftd (%s is locked%s%s): stop "
		         "that one, or give this one its own --state-dir",
		         directory, lock_path, saved != EWOULDBLOCK ? ": " : "",
		         saved != EWOULDBLOCK ? strerror(saved) : "");
		if (journal.lock_fd >= 0)
			close(journal.lock_fd);
		journal.lock_fd = -1;
		return WEFT_EINVAL;
	}
	int rc = sqlite3_open_v2(journal.path, &journal.db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	int rv;
	if (rc != SQLITE_OK) {
		char what[256];
		snprintf(what, sizeof(what), "cannot be opened (%s)",
		         journal.db != NULL ? sqlite3_errmsg(journal.db) : sqlite3_errstr(rc));
		rv = refuse(message, size, what);
		goto fail;
	}
	sqlite3_extended_result_codes(journal.db, 1);
	if ((rv = check_and_create(message, size)) != WEFT_OK)
		goto fail;
	if ((rv = open_checkpointer(message, size)) != WEFT_OK)
		goto fail;
	atomic_store_explicit(&journal.enabled, true, memory_order_relaxed);
	return WEFT_OK;

fail:
	for (int i = 0; i < STMT_COUNT; i++) {
		sqlite3_finalize(journal.statements[i]);
		journal.statements[i] = NULL;
	}
	sqlite3_close(journal.checkpoint_db);
	journal.checkpoint_db = NULL;
	sqlite3_close(journal.db);
	journal.db = NULL;
	close(journal.lock_fd);
	journal.lock_fd = -1;
	return rv;
}

/* ---- the queue ---- */

static void settle_unwritten(struct record *record);

static struct record *record_new(enum record_kind kind)
{
	struct record *record = memory_zalloc(sizeof(*record));
	record->kind = kind;
	return record;
}

/* Appends records (a chain ending at last). Queue lock held. */
static void append_locked(struct record *first, struct record *last)
{
	if (journal.tail != NULL)
		journal.tail->next = first;
	else
		journal.head = first;
	journal.tail = last;
}

/* Queues a record nobody waits for (not a barrier): the writer is woken
 * for the first one, to time CHANGE_DELAY_SECONDS, and at CHANGE_BATCH. */
static void append(struct record *record)
{
	pthread_mutex_lock(&journal.lock);
	bool taken = !journal.frozen;
	if (taken) {
		append_locked(record, record);
		if (++journal.queued_changes == 1)
			journal.first_change_at = now_monotonic();
		if (journal.queued_changes == 1 || journal.queued_changes == CHANGE_BATCH)
			pthread_cond_signal(&journal.wake);
	}
	pthread_mutex_unlock(&journal.lock);
	if (!taken) {
		job_unref(record->job);
		free(record);
	}
}

void journal_accept(struct job *const *jobs, size_t count, journal_done_fn *done,
                    void *context)
{
	if (!journal_enabled()) {
		done(context, WEFT_OK);
		return;
	}
	/* Made before the lock is taken: the lock stays short. */
	struct record *first = NULL, *last = NULL;
	for (size_t i = 0; i < count; i++) {
		struct record *record = record_new(RECORD_ACCEPT);
		job_ref(jobs[i]);
		record->job = jobs[i];
		if (last != NULL)
			last->next = record;
		else
			first = record;
		last = record;
	}
	struct record *barrier = record_new(RECORD_BARRIER);
	barrier->done = done;
	barrier->context = context;
	/* Without `after`, nothing of these jobs depends on what is queued before. */
	bool ahead = true;
	for (size_t i = 0; i < count && ahead; i++)
		ahead = jobs[i]->schedule == NULL || jobs[i]->schedule->after_count == 0;
	for (struct record *record = first; record != NULL; record = record->next)
		record->ahead = ahead;
	barrier->ahead = ahead;
	if (last != NULL)
		last->next = barrier;
	else
		first = barrier;
	pthread_mutex_lock(&journal.lock);
	bool taken = !journal.frozen;
	if (taken) {
		/* Under the lock, so that a hook that sees the flag queues its
		 * record after the acceptance. One append, so the acceptances and
		 * their barrier are in one commit: they succeed or fail together. */
		for (size_t i = 0; i < count; i++)
			atomic_store_explicit(&jobs[i]->journaled, true, memory_order_release);
		append_locked(first, barrier);
		journal.queued_barriers++;
		pthread_cond_signal(&journal.wake);
	}
	pthread_mutex_unlock(&journal.lock);
	if (!taken) {
		/* Frozen: shutting down, and admit() refuses new jobs already. */
		settle_unwritten(first);
		done(context, WEFT_ESHUTDOWN);
	}
}

void journal_after_commit(journal_done_fn *done, void *context)
{
	if (!journal_enabled()) {
		done(context, WEFT_OK);
		return;
	}
	struct record *record = record_new(RECORD_BARRIER);
	record->done = done;
	record->context = context;
	pthread_mutex_lock(&journal.lock);
	bool taken = !journal.frozen;
	if (taken) {
		append_locked(record, record);
		journal.queued_barriers++;
		pthread_cond_signal(&journal.wake);
	}
	pthread_mutex_unlock(&journal.lock);
	if (!taken) {
		free(record);
		done(context, WEFT_OK);
	}
}

struct pending_reply {
	struct server_request *request;
	json_t *reply;
};

static void send_reply(void *context, int status)
{
	struct pending_reply *pending = context;
	if (status != WEFT_OK)
		log_warn("a change was answered before the journal could keep it (%s); it is kept "
		         "in memory and written when the store can be written again",
		         weft_strerror(status));
	server_reply(pending->request, pending->reply);
	free(pending);
}

void journal_reply(struct server_request *request, json_t *reply)
{
	if (!journal_enabled()) {
		server_reply(request, reply);
		return;
	}
	struct pending_reply *pending = memory_alloc(sizeof(*pending));
	pending->request = request;
	pending->reply = reply;
	journal_after_commit(send_reply, pending);
}

static void journal_job_changed(struct job *job)
{
	if (!journal_enabled() || !atomic_load_explicit(&job->journaled, memory_order_acquire))
		return;
	struct record *record = record_new(RECORD_CHANGE);
	job_ref(job);
	record->job = job;
	append(record);
}

static void journal_job_evicted(struct job *job)
{
	if (!journal_enabled() || !atomic_load_explicit(&job->journaled, memory_order_acquire))
		return;
	struct record *record = record_new(RECORD_EVICT);
	record->id = job->id;
	append(record);
}

static const struct jobs_observer journal_observer = {
	.changed = journal_job_changed,
	.evicted = journal_job_evicted,
};

void journal_queues_changed(void)
{
	if (journal_enabled())
		append(record_new(RECORD_QUEUES));
}

/* The feed appended an event (events_set_hook): the writer commits it
 * within CHANGE_DELAY_SECONDS, with whatever else comes. Any thread; the
 * lock only for the first event since the writer's last collect. */
static void journal_events_appended(void)
{
	if (atomic_exchange_explicit(&journal.events_unwritten, true, memory_order_acq_rel))
		return;
	pthread_mutex_lock(&journal.lock);
	if (!journal.frozen && !journal.events_due) {
		journal.events_due = true;
		if (journal.queued_changes == 0) {
			journal.first_change_at = now_monotonic();
			pthread_cond_signal(&journal.wake);
		}
	}
	pthread_mutex_unlock(&journal.lock);
}

/*
 * Turns keeping on before the caller reads the ring, in this order: the hook
 * (appends from here on wake the writer), the flag, then events_due (the
 * writer's next commit collects everything the ring holds after the store's
 * newest event, as if it had always been kept, within the ring's bounds).
 * Why every cursor handed out is then durable: a read happens after all
 * three, so each event it shows is either in the ring when the writer makes
 * that first collection (and goes with it), or appended after it, when the
 * hook was already in place (the ring's lock orders the append after the
 * collection, and the collection after the hook) and asks for the next
 * commit. A read's cursor also stays below the seq reservation, which is in
 * the store: if a kill -9 comes before the commit, the restarted weftd
 * knows those seqs are lost and expires the cursor (events_restore_end).
 */
void journal_keep_events(void)
{
	if (!journal_enabled() || atomic_load_explicit(&journal.events_kept, memory_order_acquire))
		return;
	pthread_mutex_lock(&journal.lock);
	if (!atomic_load_explicit(&journal.events_kept, memory_order_relaxed)) {
		events_set_hook(journal_events_appended);
		atomic_store_explicit(&journal.events_kept, true, memory_order_release);
		log_info("journal %s: somebody reads the event feed: the journal keeps it from now on",
		         journal.path);
		if (!journal.frozen && !journal.events_due) {
			journal.events_due = true;
			if (journal.queued_changes == 0) {
				journal.first_change_at = now_monotonic();
				pthread_cond_signal(&journal.wake);
			}
		}
	}
	pthread_mutex_unlock(&journal.lock);
}

void journal_freeze(void)
{
	/* Events from here on tell of what shutdown does (jobs cancelled),
	 * which the store does not keep: they are not kept either. */
	uint64_t newest = journal_enabled() ? events_newest() : 0;
	pthread_mutex_lock(&journal.lock);
	journal.frozen = true;
	journal.events_until = newest;
	pthread_mutex_unlock(&journal.lock);
}

/* Frees records that were never written (barriers are not called). */
static void settle_unwritten(struct record *record)
{
	while (record != NULL) {
		struct record *next = record->next;
		job_unref(record->job);
		free(record);
		record = next;
	}
}

/* ---- the writer ---- */

static void text_reserve(struct text *text, size_t more)
{
	if (text->size + more <= text->capacity)
		return;
	size_t capacity = text->capacity > 0 ? text->capacity : 256;
	while (capacity < text->size + more)
		capacity *= 2;
	text->data = memory_realloc(text->data, capacity);
	text->capacity = capacity;
}

static void text_add(struct text *text, const char *bytes, size_t size)
{
	text_reserve(text, size);
	memcpy(text->data + text->size, bytes, size);
	text->size += size;
}

static void text_literal(struct text *text, const char *literal)
{
	text_add(text, literal, strlen(literal));
}

static int text_dump_callback(const char *buffer, size_t size, void *data)
{
	text_add(data, buffer, size);
	return 0;
}

/* Appends value (borrowed) as compact JSON text. */
static void text_json(struct text *text, const json_t *value)
{
	(void)json_dump_callback(value, text_dump_callback, text, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* value as decimal digits, without printf (it showed in the writer's profile). */
static void text_integer(struct text *text, long long value)
{
	char digits[24];
	char *end = digits + sizeof(digits), *at = end;
	unsigned long long magnitude = value < 0 ? 0ULL - (unsigned long long)value
	                                         : (unsigned long long)value;
	do {
		*--at = (char)('0' + magnitude % 10);
		magnitude /= 10;
	} while (magnitude > 0);
	if (value < 0)
		*--at = '-';
	text_add(text, at, (size_t)(end - at));
}

/* A string of `length` bytes (valid UTF-8: it came from JSON or from weft)
 * as a JSON string: runs that need no escape are copied whole. */
static void text_string_n(struct text *text, const char *value, size_t length)
{
	static const char hex[] = "0123456789abcdef";
	text_add(text, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < length; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		text_add(text, value + run, i - run);
		run = i + 1;
		char escape[6] = {'\\', 0};
		size_t size = 2;
		switch (c) {
		case '"': escape[1] = '"'; break;
		case '\\': escape[1] = '\\'; break;
		case '\b': escape[1] = 'b'; break;
		case '\f': escape[1] = 'f'; break;
		case '\n': escape[1] = 'n'; break;
		case '\r': escape[1] = 'r'; break;
		case '\t': escape[1] = 't'; break;
		default:
			memcpy(escape, "\\u00", 4);
			escape[4] = hex[c >> 4];
			escape[5] = hex[c & 15];
			size = 6;
		}
		text_add(text, escape, size);
	}
	text_add(text, value + run, length - run);
	text_add(text, "\"", 1);
}

static void text_string(struct text *text, const char *value)
{
	text_string_n(text, value, strlen(value));
}

/* Appends value (borrowed) as compact JSON text that jansson reads back as
 * the same value, without jansson's printf for every number; reals go
 * through jansson, so that they keep its exact form. */
static void text_value(struct text *text, const json_t *value)
{
	switch (json_typeof(value)) {
	case JSON_OBJECT: {
		text_add(text, "{", 1);
		bool first = true;
		for (void *iter = json_object_iter((json_t *)value); iter != NULL;
		     iter = json_object_iter_next((json_t *)value, iter)) {
			if (!first)
				text_add(text, ",", 1);
			first = false;
			text_string_n(text, json_object_iter_key(iter), json_object_iter_key_len(iter));
			text_add(text, ":", 1);
			text_value(text, json_object_iter_value(iter));
		}
		text_add(text, "}", 1);
		break;
	}
	case JSON_ARRAY:
		text_add(text, "[", 1);
		for (size_t i = 0; i < json_array_size(value); i++) {
			if (i > 0)
				text_add(text, ",", 1);
			text_value(text, json_array_get(value, i));
		}
		text_add(text, "]", 1);
		break;
	case JSON_STRING:
		text_string_n(text, json_string_value(value), json_string_length(value));
		break;
	case JSON_INTEGER:
		text_integer(text, (long long)json_integer_value(value));
		break;
	case JSON_TRUE:
		text_literal(text, "true");
		break;
	case JSON_FALSE:
		text_literal(text, "false");
		break;
	case JSON_NULL:
		text_literal(text, "null");
		break;
	case JSON_REAL:
		text_json(text, value);
		break;
	}
}

/* A finite number as JSON; a whole one (a timeout of 0, most often) as an
 * integer, which replay reads as the same number. */
static void text_number(struct text *text, double value)
{
	if (value > -1e15 && value < 1e15 && value == (double)(long long)value) {
		text_integer(text, (long long)value);
		return;
	}
	char digits[40];
	int length = snprintf(digits, sizeof(digits), "%.17g", value);
	text_add(text, digits, (size_t)length);
}

static void text_free(struct text *text)
{
	free(text->data);
	memset(text, 0, sizeof(*text));
}

/* Binds the JSON text of value (NULL: SQL NULL) from the column's reusable
 * text: it stays untouched until the statement has been stepped. */
static int bind_json(sqlite3_stmt *statement, int index, const json_t *value)
{
	if (value == NULL)
		return sqlite3_bind_null(statement, index);
	struct text *text = &journal.columns[index];
	text->size = 0;
	text_value(text, value);
	if (text->size == 0)
		return sqlite3_bind_null(statement, index);
	return sqlite3_bind_text(statement, index, text->data, (int)text->size, SQLITE_STATIC);
}

static int bind_time(sqlite3_stmt *statement, int index, double seconds)
{
	return seconds > 0 ? sqlite3_bind_double(statement, index, seconds)
	                   : sqlite3_bind_null(statement, index);
}

static json_t *schedule_to_json(const struct job_schedule *schedule)
{
	json_t *after = json_array();
	for (size_t i = 0; i < schedule->after_count; i++)
		json_array_append_new(after, json_integer((json_int_t)schedule->after[i]));
	json_t *object = json_pack("{s:o, s:b, s:f, s:I, s:f, s:f, s:f, s:I, s:b}", "after", after,
	                           "after_always", schedule->after_always, "run_at",
	                           schedule->run_at, "retries", (json_int_t)schedule->retries,
	                           "retry_backoff", schedule->retry_backoff, "retry_backoff_max",
	                           schedule->retry_backoff_max, "deadline", schedule->deadline,
	                           "priority", (json_int_t)schedule->priority, "retry_interrupted",
	                           schedule->retry_interrupted);
	if (schedule->retry_on != NULL)
		json_object_set(object, "retry_on", schedule->retry_on);
	if (schedule->queue_name != NULL)
		json_object_set_new(object, "queue", json_string(schedule->queue_name));
	return object;
}

/* The spec's "owner" member, as JSON text, kept for the next job of the same
 * principal (a reference keeps its address from being reused). */
static const struct text *owner_text(struct principal *owner)
{
	struct text *text = &journal.owner_text;
	if (journal.owner_of_text == owner)
		return text;
	if (journal.owner_of_text != NULL)
		principal_unref(journal.owner_of_text);
	journal.owner_of_text = principal_ref(owner);
	const struct account *identity = &owner->identity;
	text->size = 0;
	text_literal(text, "{\"uid\":");
	text_integer(text, (long long)owner->uid);
	text_literal(text, ",\"gid\":");
	text_integer(text, (long long)owner->gid);
	text_literal(text, ",\"groups\":[");
	for (size_t i = 0; i < identity->group_count; i++) {
		if (i > 0)
			text_literal(text, ",");
		text_integer(text, (long long)identity->groups[i]);
	}
	text_literal(text, "]}");
	return text;
}

/* Binds what never changes of a job, as the JSON text replay reads: fn,
 * args, timeout, owner, and labels, schedule and buffer when set. Its fields
 * are immutable, so the writer reads them without a lock. */
static int bind_spec(sqlite3_stmt *statement, int index, struct job *job)
{
	struct text *text = &journal.columns[index];
	text->size = 0;
	text_literal(text, "{\"fn\":");
	text_string(text, functions_name_of(job->function));
	text_literal(text, ",\"args\":");
	text_value(text, job->args);
	text_literal(text, ",\"timeout\":");
	text_number(text, job->timeout);
	text_literal(text, ",\"owner\":");
	const struct text *owner = owner_text(job->owner);
	text_add(text, owner->data, owner->size);
	if (job->labels != NULL) {
		text_literal(text, ",\"labels\":");
		text_value(text, job->labels);
	}
	if (job->schedule != NULL) {
		json_t *schedule = schedule_to_json(job->schedule);
		text_literal(text, ",\"schedule\":");
		text_value(text, schedule);
		json_decref(schedule);
	}
	/* Set before the job was accepted (ops.c), so the writer sees it. */
	unsigned buffer = atomic_load_explicit(&job->item_buffer, memory_order_relaxed);
	if (buffer > 0) {
		text_literal(text, ",\"buffer\":");
		text_integer(text, buffer);
	}
	text_literal(text, "}");
	return sqlite3_bind_text(statement, index, text->data, (int)text->size, SQLITE_STATIC);
}

static int step_reset(sqlite3_stmt *statement)
{
	int rc = sqlite3_step(statement);
	sqlite3_reset(statement);
	sqlite3_clear_bindings(statement);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_job(struct record *record)
{
	struct job *job = record->job;
	bool insert = record->insert;
	sqlite3_stmt *statement = journal.statements[insert ? STMT_INSERT : STMT_STATE];
	struct jobs_durable durable;
	jobs_durable(journal.jobs, job, &durable);
	sqlite3_bind_int64(statement, 1, (sqlite3_int64)job->id);
	if (insert) {
		bind_spec(statement, 2, job);
		sqlite3_bind_double(statement, 4, job->created);
	}
	sqlite3_bind_text(statement, 3, job_state_name(durable.state), -1, SQLITE_STATIC);
	bind_time(statement, 5, durable.started);
	bind_time(statement, 6, durable.finished);
	bind_json(statement, 7, durable.state == JOB_DONE ? (durable.result != NULL
	                                                          ? durable.result
	                                                          : json_null())
	                                                 : NULL);
	bind_json(statement, 8, durable.error);
	bind_json(statement, 9, durable.attempts);
	bind_json(statement, 10, durable.children);
	jobs_durable_clear(&durable);
	return step_reset(statement);
}

static int write_queues(void)
{
	int rc = step_reset(journal.statements[STMT_QUEUES_CLEAR]);
	json_t *queues = queues_to_json();
	size_t i;
	json_t *queue;
	json_array_foreach(queues, i, queue) {
		if (rc != SQLITE_OK)
			break;
		sqlite3_stmt *statement = journal.statements[STMT_QUEUE_INSERT];
		sqlite3_bind_text(statement, 1, json_string_value(json_object_get(queue, "name")), -1,
		                  SQLITE_TRANSIENT);
		sqlite3_bind_int64(statement, 2, json_integer_value(json_object_get(queue, "max")));
		sqlite3_bind_int(statement, 3, json_is_true(json_object_get(queue, "paused")));
		rc = step_reset(statement);
	}
	json_decref(queues);
	return rc;
}

static int write_record(struct record *record)
{
	switch (record->kind) {
	case RECORD_ACCEPT:
	case RECORD_CHANGE:
		return record->skip ? SQLITE_OK : write_job(record);
	case RECORD_EVICT: {
		int rc = SQLITE_OK;
		for (int which = STMT_DELETE; which <= STMT_DELETE_STATE && rc == SQLITE_OK;
		     which++) {
			sqlite3_stmt *statement = journal.statements[which];
			sqlite3_bind_int64(statement, 1, (sqlite3_int64)record->id);
			rc = step_reset(statement);
		}
		return rc;
	}
	case RECORD_QUEUES:
		return write_queues();
	case RECORD_BARRIER:
		break;
	}
	return SQLITE_OK;
}

/* Keeps the id reservation RESERVE_IDS/2 or more ahead of the ids handed out. */
static int write_reservation(void)
{
	uint64_t next = jobs_next_id(journal.jobs);
	if (next + RESERVE_IDS / 2 <= journal.reserved_id)
		return SQLITE_OK;
	sqlite3_stmt *statement = journal.statements[STMT_META];
	sqlite3_bind_text(statement, 1, "next_id", -1, SQLITE_STATIC);
	sqlite3_bind_int64(statement, 2, (sqlite3_int64)(next + RESERVE_IDS));
	int rc = step_reset(statement);
	if (rc == SQLITE_OK)
		journal.reserved_id = next + RESERVE_IDS;
	return rc;
}

/* The slot of job `id` in coalesce's table (capacity a power of two, never full). */
static struct seen *seen_slot(uint64_t id)
{
	size_t mask = journal.seen_capacity - 1;
	size_t slot = (size_t)((id * 0x9E3779B97F4A7C15ULL) >> 17) & mask;
	while (journal.seen[slot].generation == journal.seen_generation &&
	       journal.seen[slot].id != id)
		slot = (slot + 1) & mask;
	return &journal.seen[slot];
}

/* Marks which records of the batch write a row: of a job's ACCEPT/CHANGE
 * records only the last one, as an INSERT when an ACCEPT is among them (each
 * write reads the job's state as it is then, so the last one carries every
 * change before it). An EVICT drops the job's records before it (its DELETE
 * would remove what they write) and ends the run: what follows it stands
 * alone. Returns how many rows will be written. Writer thread. */
static size_t coalesce(struct record *batch)
{
	size_t count = 0;
	for (struct record *record = batch; record != NULL; record = record->next)
		count++;
	size_t wanted = 64;
	while (wanted < 2 * count)
		wanted *= 2;
	/* Grown for this batch; shrunk again after a burst, so as not to keep it. */
	if (wanted > journal.seen_capacity || (journal.seen_capacity > 4096 &&
	                                       journal.seen_capacity > 8 * wanted)) {
		free(journal.seen);
		journal.seen = memory_zalloc(wanted * sizeof(*journal.seen));
		journal.seen_capacity = wanted;
		journal.seen_generation = 0;
	}
	journal.seen_generation++;
	size_t rows = 0;
	for (struct record *record = batch; record != NULL; record = record->next) {
		if (record->kind == RECORD_EVICT) {
			struct seen *seen = seen_slot(record->id);
			if (seen->generation == journal.seen_generation && seen->record != NULL) {
				seen->record->skip = true;
				rows--;
			}
			seen->id = record->id;
			seen->generation = journal.seen_generation;
			seen->record = NULL;
			continue;
		}
		if (record->kind != RECORD_ACCEPT && record->kind != RECORD_CHANGE)
			continue;
		record->skip = false;
		record->insert = record->kind == RECORD_ACCEPT;
		struct seen *seen = seen_slot(record->job->id);
		if (seen->generation == journal.seen_generation && seen->record != NULL) {
			seen->record->skip = true;
			record->insert = record->insert || seen->record->insert;
		} else {
			rows++;
		}
		seen->id = record->job->id;
		seen->generation = journal.seen_generation;
		seen->record = record;
	}
	return rows;
}

/* The stored drop mark of lane (0: none). Writer thread. */
static uint64_t stored_mark(long long lane)
{
	for (size_t i = 0; i < journal.event_mark_count; i++)
		if (journal.event_marks[i].lane == lane)
			return journal.event_marks[i].dropped_upto;
	return 0;
}

static void store_mark(long long lane, uint64_t dropped_upto)
{
	for (size_t i = 0; i < journal.event_mark_count; i++)
		if (journal.event_marks[i].lane == lane) {
			journal.event_marks[i].dropped_upto = dropped_upto;
			return;
		}
	if (journal.event_mark_count == journal.event_mark_capacity) {
		journal.event_mark_capacity = journal.event_mark_capacity > 0
		                                      ? 2 * journal.event_mark_capacity
		                                      : 8;
		journal.event_marks = memory_realloc(journal.event_marks,
		                                     journal.event_mark_capacity *
		                                             sizeof(*journal.event_marks));
	}
	journal.event_marks[journal.event_mark_count++] =
		(struct events_mark){.lane = lane, .dropped_upto = dropped_upto};
}

/* Whether the seq reservation must move ahead of next_seq. Writer thread. */
static bool seqs_short(uint64_t next_seq)
{
	return next_seq + EVENT_RESERVE / 2 > journal.events_reserved;
}

/* Whether the collected events change the store at all. Writer thread. */
static bool events_to_write(const struct events_batch *events)
{
	if (events->row_count > 0 || events->upto != journal.events_upto ||
	    seqs_short(events->next_seq) || !journal.events_kept_stored)
		return true;
	for (size_t i = 0; i < events->mark_count; i++)
		if (events->marks[i].dropped_upto > stored_mark(events->marks[i].lane))
			return true;
	return false;
}

static int write_meta(const char *key, uint64_t value)
{
	sqlite3_stmt *statement = journal.statements[STMT_META];
	sqlite3_bind_text(statement, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(statement, 2, (sqlite3_int64)value);
	return step_reset(statement);
}

/* qsort's order of a commit's events: by lane, then by seq. */
static int by_lane(const void *left, const void *right)
{
	const struct events_row *a = *(const struct events_row *const *)left;
	const struct events_row *b = *(const struct events_row *const *)right;
	if (a->lane != b->lane)
		return a->lane < b->lane ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* One INSERT per lane: the lane's events of this commit as a chunk of
 * lines "SEQ BYTES BODY\n" (a row per event cost the writer as much as
 * every job row together: 3 events a job), then one DELETE (and its mark)
 * per lane that dropped since, and the reservation when it runs short. A
 * chunk goes when its last event is dropped: the store holds what the ring
 * holds, and at most a chunk's worth more of each lane. Writer thread, in
 * the commit's transaction. */
static int write_events(const struct events_batch *events)
{
	int rc = SQLITE_OK;
	const struct events_row **order = memory_alloc((events->row_count + 1) * sizeof(*order));
	for (size_t i = 0; i < events->row_count; i++)
		order[i] = &events->rows[i];
	qsort(order, events->row_count, sizeof(*order), by_lane);
	struct text *text = &journal.columns[4];
	sqlite3_stmt *insert = journal.statements[STMT_EVENT_INSERT];
	for (size_t i = 0; i < events->row_count && rc == SQLITE_OK;) {
		size_t first = i;
		text->size = 0;
		for (; i < events->row_count && order[i]->lane == order[first]->lane; i++) {
			text_integer(text, (long long)order[i]->seq);
			text_add(text, " ", 1);
			text_integer(text, (long long)order[i]->bytes);
			text_add(text, " ", 1);
			text_add(text, order[i]->body, order[i]->body_size);
			text_add(text, "\n", 1);
		}
		sqlite3_bind_int64(insert, 1, (sqlite3_int64)order[i - 1]->seq);
		sqlite3_bind_int64(insert, 2, (sqlite3_int64)order[first]->lane);
		sqlite3_bind_int64(insert, 3, (sqlite3_int64)order[first]->seq);
		sqlite3_bind_text(insert, 4, text->data, (int)text->size, SQLITE_STATIC);
		rc = step_reset(insert);
	}
	free(order);
	for (size_t i = 0; i < events->mark_count && rc == SQLITE_OK; i++) {
		const struct events_mark *mark = &events->marks[i];
		if (mark->dropped_upto <= stored_mark(mark->lane))
			continue;
		for (int which = STMT_EVENT_PRUNE; which <= STMT_EVENT_MARK && rc == SQLITE_OK;
		     which++) {
			sqlite3_stmt *statement = journal.statements[which];
			sqlite3_bind_int64(statement, 1, (sqlite3_int64)mark->lane);
			sqlite3_bind_int64(statement, 2, (sqlite3_int64)mark->dropped_upto);
			if (which == STMT_EVENT_PRUNE)
				sqlite3_bind_int64(statement, 3, (sqlite3_int64)stored_mark(mark->lane));
			rc = step_reset(statement);
		}
	}
	if (rc == SQLITE_OK && events->upto != journal.events_upto)
		rc = write_meta("events_upto", events->upto);
	if (rc == SQLITE_OK && seqs_short(events->next_seq))
		rc = write_meta("events_next", events->next_seq + EVENT_RESERVE);
	/* With the first events: a restart keeps the feed from then on. */
	if (rc == SQLITE_OK && !journal.events_kept_stored)
		rc = write_meta("events_kept", 1);
	return rc;
}

/* After a commit that reserved seqs up to next_seq + EVENT_RESERVE: reads
 * may show them. Writer thread. */
static void seqs_reserved(uint64_t next_seq)
{
	journal.events_reserved = next_seq + EVENT_RESERVE;
	events_set_reserved(journal.events_reserved);
}

/* After a commit that wrote events: what the store now holds. Writer thread. */
static void events_written(const struct events_batch *events)
{
	journal.events_upto = events->upto;
	for (size_t i = 0; i < events->mark_count; i++)
		if (events->marks[i].dropped_upto > stored_mark(events->marks[i].lane))
			store_mark(events->marks[i].lane, events->marks[i].dropped_upto);
	if (seqs_short(events->next_seq))
		seqs_reserved(events->next_seq);
	journal.events_kept_stored = true;
	atomic_fetch_add_explicit(&journal.events_written, events->row_count,
	                          memory_order_relaxed);
}

/* Makes the writer try the events again: after a failed commit (in
 * RETRY_SECONDS), or at once when a collect left some for the next. */
static void events_again(double delay)
{
	pthread_mutex_lock(&journal.lock);
	if (!journal.events_due) {
		journal.events_due = true;
		if (journal.queued_changes == 0)
			journal.first_change_at = now_monotonic() + delay;
	}
	pthread_mutex_unlock(&journal.lock);
}

/* One transaction for the whole batch, and the feed's new events when
 * until > 0 (up to that seq). Returns WEFT_OK or the error. Writer thread. */
static int commit(struct record *batch, uint64_t until)
{
	struct events_batch events = {0};
	bool with_events = false;
	/* Acquire: see journal.events_kept. */
	bool kept = atomic_load_explicit(&journal.events_kept, memory_order_acquire);
	uint64_t unkept_next = 0;
	if (until > 0 && kept) {
		/* Cleared first: an event appended from here on asks for another commit. */
		atomic_store_explicit(&journal.events_unwritten, false, memory_order_release);
		with_events = events_collect(journal.events_upto, until, EVENTS_PER_COMMIT, &events) ==
		                      WEFT_OK &&
		              events_to_write(&events);
	}
	if (batch == NULL && !with_events) {
		events_batch_clear(&events);
		return WEFT_OK;
	}
	/* A feed nobody reads: no event is written, but its seqs stay reserved
	 * ahead of it (see the top of the file). */
	if (!kept) {
		uint64_t next = events_newest() + 1;
		if (seqs_short(next))
			unkept_next = next;
	}
	double began = now_monotonic();
	uint64_t reserved = journal.reserved_id;
	size_t rows = coalesce(batch);
	int rc = step_reset(journal.statements[STMT_BEGIN]);
	size_t records = 0, accepted = 0;
	for (struct record *record = batch; rc == SQLITE_OK && record != NULL;
	     record = record->next) {
		rc = write_record(record);
		records++;
		accepted += record->kind == RECORD_ACCEPT;
	}
	if (rc == SQLITE_OK && with_events)
		rc = write_events(&events);
	if (rc == SQLITE_OK && unkept_next > 0)
		rc = write_meta("events_next", unkept_next + EVENT_RESERVE);
	if (rc == SQLITE_OK)
		rc = write_reservation();
	if (rc == SQLITE_OK)
		rc = step_reset(journal.statements[STMT_COMMIT]);
	if (unkept_next > 0 && rc == SQLITE_OK)
		seqs_reserved(unkept_next);
	if (with_events && rc == SQLITE_OK) {
		events_written(&events);
		if (events.more)
			events_again(0);
	} else if (with_events) {
		events_again(RETRY_SECONDS);
	}
	events_batch_clear(&events);
	if (rc != SQLITE_OK) {
		int failed = rc;
		if (!sqlite3_get_autocommit(journal.db))
			step_reset(journal.statements[STMT_ROLLBACK]);
		journal.reserved_id = reserved;
		atomic_fetch_add_explicit(&journal.failures, 1, memory_order_relaxed);
		bool full = (failed & 0xff) == SQLITE_FULL;
		if (full) {
			atomic_store_explicit(&journal.full, true, memory_order_relaxed);
			if (!journal.full_logged)
				log_error("journal %s: the disk is full; submits are refused until there "
				          "is space again", journal.path);
			journal.full_logged = true;
			return WEFT_EJOURNALFULL;
		}
		log_error("journal %s: commit failed: %s", journal.path, sqlite3_errstr(failed));
		return WEFT_EINTERNAL;
	}
	if (journal.full_logged)
		log_info("journal %s: writable again", journal.path);
	journal.full_logged = false;
	atomic_store_explicit(&journal.full, false, memory_order_relaxed);
	atomic_fetch_add_explicit(&journal.commits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&journal.records, records, memory_order_relaxed);
	atomic_fetch_add_explicit(&journal.rows, rows, memory_order_relaxed);
	atomic_fetch_add_explicit(&journal.accepted, accepted, memory_order_relaxed);
	atomic_store_explicit(&journal.last_records, records, memory_order_relaxed);
	atomic_store_explicit(&journal.last_latency_ns,
	                      (uint64_t)((now_monotonic() - began) * 1e9), memory_order_relaxed);
	return WEFT_OK;
}

/* Runs the callbacks of barriers (a chain) and frees them. Completion
 * thread, or the main thread at close once that thread is gone; no lock held. */
static void complete(struct record *barriers)
{
	while (barriers != NULL) {
		struct record *record = barriers;
		barriers = record->next;
		record->done(record->context, record->status);
		free(record);
	}
}

static void *completer_main(void *argument)
{
	(void)argument;
	for (;;) {
		pthread_mutex_lock(&journal.done_lock);
		while (journal.done_head == NULL && !journal.done_stop)
			pthread_cond_wait(&journal.done_wake, &journal.done_lock);
		struct record *barriers = journal.done_head;
		journal.done_head = journal.done_tail = NULL;
		journal.done_busy = barriers != NULL;
		pthread_mutex_unlock(&journal.done_lock);
		if (barriers == NULL)
			break; /* stopped, and nothing is left */
		complete(barriers);
		pthread_mutex_lock(&journal.done_lock);
		journal.done_busy = false;
		pthread_mutex_unlock(&journal.done_lock);
	}
	return NULL;
}

/* After a commit: hands its barriers to the completion thread (in order),
 * frees the rest; on failure keeps what must be written again. Writer
 * thread, no lock held. */
static void settle(struct record *batch, int status, bool next)
{
	struct record *barriers = NULL, *last = NULL;
	while (batch != NULL) {
		struct record *record = batch;
		batch = record->next;
		record->next = NULL;
		if (record->kind == RECORD_BARRIER) {
			record->status = status;
			if (last != NULL)
				last->next = record;
			else
				barriers = record;
			last = record;
			continue;
		}
		bool again = status != WEFT_OK && record->kind != RECORD_ACCEPT;
		if (again) {
			if (journal.retry_tail != NULL)
				journal.retry_tail->next = record;
			else
				journal.retry_head = record;
			journal.retry_tail = record;
			continue;
		}
		job_unref(record->job);
		free(record);
	}
	if (barriers == NULL)
		return;
	/* With no next commit waiting, a hand-off would only add a thread's
	 * wake-up to the reply (one submit at a time): the writer calls back
	 * itself, when the completion thread has nothing of earlier commits
	 * left, so that the order stays the commits'. */
	pthread_mutex_lock(&journal.lock);
	next = next || journal.queued_barriers > 0 || journal.stop;
	pthread_mutex_unlock(&journal.lock);
	pthread_mutex_lock(&journal.done_lock);
	if (!next && journal.done_head == NULL && !journal.done_busy) {
		pthread_mutex_unlock(&journal.done_lock);
		complete(barriers);
		return;
	}
	if (journal.done_tail != NULL)
		journal.done_tail->next = barriers;
	else
		journal.done_head = barriers;
	journal.done_tail = last;
	pthread_cond_signal(&journal.done_wake);
	pthread_mutex_unlock(&journal.done_lock);
}

static void *writer_main(void *argument)
{
	(void)argument;
	for (;;) {
		pthread_mutex_lock(&journal.lock);
		while (!journal.stop && journal.queued_barriers == 0 &&
		       journal.queued_changes < CHANGE_BATCH) {
			double wait;
			if (journal.head != NULL || journal.events_due)
				wait = journal.first_change_at + CHANGE_DELAY_SECONDS - now_monotonic();
			else if (journal.retry_head != NULL)
				wait = RETRY_SECONDS;
			else {
				pthread_cond_wait(&journal.wake, &journal.lock);
				continue;
			}
			if (wait <= 0)
				break;
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			long long nanoseconds = until.tv_nsec + (long long)(wait * 1e9);
			until.tv_sec += (time_t)(nanoseconds / 1000000000);
			until.tv_nsec = (long)(nanoseconds % 1000000000);
			if (pthread_cond_timedwait(&journal.wake, &journal.lock, &until) == ETIMEDOUT &&
			    journal.head == NULL && !journal.events_due)
				break; /* the retry's pause is over */
		}
		struct record *batch = journal.head;
		if (journal.queued_barriers == 0 && !journal.stop &&
		    journal.queued_changes > CHANGE_CHUNK) {
			/* Changes alone: a chunk now, the rest at once after it. */
			struct record *end = batch;
			for (size_t i = 1; i < CHANGE_CHUNK; i++)
				end = end->next;
			journal.head = end->next;
			end->next = NULL;
			journal.queued_changes -= CHANGE_CHUNK;
			journal.first_change_at = 0;
		} else {
			journal.head = journal.tail = NULL;
			journal.queued_barriers = journal.queued_changes = 0;
		}
		bool stop = journal.stop;
		/* At stop, whatever the feed holds unwritten goes too. */
		uint64_t events_until = journal.events_due || stop ? journal.events_until : 0;
		journal.events_due = false;
		pthread_mutex_unlock(&journal.lock);
		/* What failed before goes first: it is older. */
		if (journal.retry_head != NULL) {
			journal.retry_tail->next = batch;
			batch = journal.retry_head;
			journal.retry_head = journal.retry_tail = NULL;
		}
		if (batch == NULL) {
			if (events_until > 0)
				(void)commit(NULL, events_until);
			if (stop)
				break;
			continue;
		}
		/* Acceptances that may go ahead, then the rest, each in its order. */
		struct record *ahead = NULL, **ahead_end = &ahead, *rest = NULL, **rest_end = &rest;
		for (struct record *record = batch, *next; record != NULL; record = next) {
			next = record->next;
			record->next = NULL;
			struct record ***end = record->ahead ? &ahead_end : &rest_end;
			**end = record;
			*end = &record->next;
		}
		/* The events go with the last commit, after the changes they tell of. */
		if (ahead != NULL)
			settle(ahead, commit(ahead, rest == NULL ? events_until : 0), rest != NULL);
		if (rest != NULL)
			settle(rest, commit(rest, events_until), false);
		/* A store that stays unwritable is not waited for at exit. */
		if (stop && journal.retry_head != NULL) {
			log_error("journal %s: changes that could not be written are lost at exit",
			          journal.path);
			settle(journal.retry_head, WEFT_OK, true);
			journal.retry_head = journal.retry_tail = NULL;
		}
	}
	return NULL;
}

/* Stops the checkpointer thread, when it runs. Main thread. */
static void stop_checkpointer(void)
{
	if (!journal.checkpointer_started)
		return;
	pthread_mutex_lock(&journal.checkpoint_lock);
	journal.checkpoint_stop = true;
	pthread_cond_signal(&journal.checkpoint_wake);
	pthread_mutex_unlock(&journal.checkpoint_lock);
	pthread_join(journal.checkpointer, NULL);
	journal.checkpointer_started = false;
}

int journal_start(struct jobs *jobs)
{
	if (!journal_enabled())
		return WEFT_OK;
	journal.jobs = jobs;
	if (pthread_create(&journal.checkpointer, NULL, checkpointer_main, NULL) != 0)
		return WEFT_EINTERNAL;
	pthread_setname_np(journal.checkpointer, "weft-journal-ck");
	journal.checkpointer_started = true;
	if (pthread_create(&journal.completer, NULL, completer_main, NULL) != 0) {
		stop_checkpointer();
		return WEFT_EINTERNAL;
	}
	pthread_setname_np(journal.completer, "weft-journal-ok");
	if (pthread_create(&journal.thread, NULL, writer_main, NULL) != 0) {
		pthread_mutex_lock(&journal.done_lock);
		journal.done_stop = true;
		pthread_cond_signal(&journal.done_wake);
		pthread_mutex_unlock(&journal.done_lock);
		pthread_join(journal.completer, NULL);
		stop_checkpointer();
		return WEFT_EINTERNAL;
	}
	pthread_setname_np(journal.thread, "weft-journal");
	journal.started = true;
	return WEFT_OK;
}

void journal_close(void)
{
	if (!journal_enabled())
		return;
	if (journal.started) {
		pthread_mutex_lock(&journal.lock);
		journal.stop = true;
		pthread_cond_signal(&journal.wake);
		pthread_mutex_unlock(&journal.lock);
		pthread_join(journal.thread, NULL);
		/* The writer is gone: what it handed over is all there is. */
		pthread_mutex_lock(&journal.done_lock);
		journal.done_stop = true;
		pthread_cond_signal(&journal.done_wake);
		pthread_mutex_unlock(&journal.done_lock);
		pthread_join(journal.completer, NULL);
		journal.started = false;
	}
	/* Records queued without a writer (a failed start) are dropped; their
	 * barriers are called here. */
	settle(journal.head, WEFT_OK, true);
	journal.head = journal.tail = NULL;
	complete(journal.done_head);
	journal.done_head = journal.done_tail = NULL;
	/* The writer is gone, so no commit asks for a checkpoint any more; the
	 * checkpointer's connection goes first, so that closing the writer's,
	 * the last, copies the WAL into the database and removes it. */
	stop_checkpointer();
	sqlite3_close(journal.checkpoint_db);
	journal.checkpoint_db = NULL;
	journal.checkpoint_stop = false;
	journal.checkpoint_due = false;
	for (int i = 0; i < STMT_COUNT; i++) {
		sqlite3_finalize(journal.statements[i]);
		journal.statements[i] = NULL;
	}
	sqlite3_close(journal.db);
	journal.db = NULL;
	close(journal.lock_fd);
	journal.lock_fd = -1;
	for (size_t i = 0; i < sizeof(journal.columns) / sizeof(journal.columns[0]); i++)
		text_free(&journal.columns[i]);
	text_free(&journal.owner_text);
	if (journal.owner_of_text != NULL)
		principal_unref(journal.owner_of_text);
	journal.owner_of_text = NULL;
	free(journal.seen);
	journal.seen = NULL;
	journal.seen_capacity = 0;
	events_set_hook(NULL);
	atomic_store_explicit(&journal.events_kept, false, memory_order_relaxed);
	journal.events_kept_stored = false;
	free(journal.event_marks);
	journal.event_marks = NULL;
	journal.event_mark_count = journal.event_mark_capacity = 0;
	atomic_store_explicit(&journal.enabled, false, memory_order_relaxed);
}

/* ---- replay ---- */

/* Owners read back, shared between the jobs of one user (as before the
 * restart, when a connection's jobs shared its principal). */
struct owner_cache {
	struct principal **owners;
	size_t count, capacity;
};

static bool same_groups(const struct principal *owner, const gid_t *groups, size_t count)
{
	if (owner->identity.group_count != (count > 0 ? count : 1))
		return false;
	for (size_t i = 0; i < count; i++)
		if (owner->identity.groups[i] != groups[i])
			return false;
	return true;
}

static struct principal *owner_of(struct owner_cache *cache, const json_t *object)
{
	uid_t uid = (uid_t)json_integer_value(json_object_get(object, "uid"));
	gid_t gid = (gid_t)json_integer_value(json_object_get(object, "gid"));
	const json_t *list = json_object_get(object, "groups");
	size_t count = json_array_size(list);
	gid_t *groups = memory_alloc(sizeof(gid_t) * (count > 0 ? count : 1));
	for (size_t i = 0; i < count; i++)
		groups[i] = (gid_t)json_integer_value(json_array_get(list, i));
	struct principal *found = NULL;
	for (size_t i = 0; i < cache->count && found == NULL; i++) {
		struct principal *owner = cache->owners[i];
		if (owner->uid == uid && owner->gid == gid && same_groups(owner, groups, count))
			found = owner;
	}
	if (found == NULL) {
		found = principal_for_ids(uid, gid, groups, count);
		if (cache->count == cache->capacity) {
			cache->capacity = cache->capacity > 0 ? 2 * cache->capacity : 8;
			cache->owners = memory_realloc(cache->owners,
			                               cache->capacity * sizeof(*cache->owners));
		}
		cache->owners[cache->count++] = found;
	}
	free(groups);
	return found;
}

static double number_or(const json_t *object, const char *key, double otherwise)
{
	const json_t *value = json_object_get(object, key);
	return json_is_number(value) ? json_number_value(value) : otherwise;
}

static struct job_schedule *schedule_from_json(const json_t *object)
{
	if (!json_is_object(object))
		return NULL;
	struct job_schedule *schedule = memory_zalloc(sizeof(*schedule));
	const json_t *after = json_object_get(object, "after");
	schedule->after_count = json_array_size(after);
	if (schedule->after_count > 0) {
		schedule->after = memory_alloc(schedule->after_count * sizeof(*schedule->after));
		for (size_t i = 0; i < schedule->after_count; i++)
			schedule->after[i] = (uint64_t)json_integer_value(json_array_get(after, i));
	}
	schedule->after_always = json_is_true(json_object_get(object, "after_always"));
	schedule->run_at = number_or(object, "run_at", 0);
	schedule->retries = (unsigned)number_or(object, "retries", 0);
	schedule->retry_backoff = number_or(object, "retry_backoff", 1);
	schedule->retry_backoff_max = number_or(object, "retry_backoff_max", 60);
	schedule->deadline = number_or(object, "deadline", 0);
	schedule->priority = (int)number_or(object, "priority", 0);
	schedule->retry_interrupted = json_is_true(json_object_get(object, "retry_interrupted"));
	const json_t *retry_on = json_object_get(object, "retry_on");
	if (json_is_array(retry_on))
		schedule->retry_on = json_incref((json_t *)retry_on);
	const json_t *queue = json_object_get(object, "queue");
	if (json_is_string(queue)) {
		schedule->queue_name = memory_strdup(json_string_value(queue));
		schedule->queue = queues_find(schedule->queue_name);
	}
	return schedule;
}

/* A JSON column: a new reference, or NULL for SQL NULL. *bad is set when the
 * text is not JSON. */
static json_t *column_json(sqlite3_stmt *statement, int column, bool *bad)
{
	if (sqlite3_column_type(statement, column) == SQLITE_NULL)
		return NULL;
	const char *text = (const char *)sqlite3_column_text(statement, column);
	json_t *value = json_loads(text != NULL ? text : "", JSON_DECODE_ANY, NULL);
	if (value == NULL)
		*bad = true;
	return value;
}

static double column_time(sqlite3_stmt *statement, int column)
{
	return sqlite3_column_type(statement, column) == SQLITE_NULL
	               ? 0
	               : sqlite3_column_double(statement, column);
}

/* journal_set_interrupted_note's text; main thread, before replay. */
static char interrupted_note[256];

void journal_set_interrupted_note(const char *note)
{
	snprintf(interrupted_note, sizeof(interrupted_note), "%s", note);
}

/* The message of an interrupted job or attempt: a new reference. */
static json_t *interrupted_error(void)
{
	char message[sizeof(interrupted_note) + 64];
	snprintf(message, sizeof(message), "%s%s%s", INTERRUPTED_MESSAGE,
	         interrupted_note[0] != '\0' ? "; " : "", interrupted_note);
	return json_pack("{s:s, s:s}", "type", proto_job_error(PROTO_JOB_ERROR_INTERRUPTED),
	                 "message", message);
}

/* The last attempt, still open when weftd died, ends Interrupted. */
static void close_interrupted_attempt(json_t *attempts, double now)
{
	size_t count = json_array_size(attempts);
	json_t *last = count > 0 ? json_array_get(attempts, count - 1) : NULL;
	if (last == NULL || !json_is_null(json_object_get(last, "finished")))
		return;
	json_object_set_new(last, "finished", json_real(now));
	json_object_set_new(last, "error", interrupted_error());
}

static int replay_queues(char *message, size_t size)
{
	sqlite3_stmt *statement;
	if (sqlite3_prepare_v2(journal.db, "SELECT name, max, paused FROM queues", -1, &statement,
	                       NULL) != SQLITE_OK)
		return refuse(message, size, "its queues cannot be read: it is damaged");
	int rc;
	while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(statement, 0);
		sqlite3_int64 max = sqlite3_column_int64(statement, 1);
		/* A queue of the same name given by --queue wins. */
		if (name == NULL || max < 1 || max > UINT32_MAX || queues_find(name) != NULL ||
		    queues_set(name, (unsigned)max) != WEFT_OK)
			continue;
		if (sqlite3_column_int(statement, 2))
			queues_pause(name, true);
	}
	sqlite3_finalize(statement);
	return rc == SQLITE_DONE ? WEFT_OK : refuse(message, size, "its queues are damaged");
}

/* Under systemd (notify.h): more time to start (systemd >= 236 adds this
 * much from now; older ones ignore it), and what is going on, for
 * `systemctl status`. Main thread. */
static void extend_start_timeout(size_t restored)
{
	char text[160];
	snprintf(text, sizeof(text),
	         "EXTEND_TIMEOUT_USEC=%llu\nSTATUS=replaying the journal: %zu jobs so far",
	         (unsigned long long)JOURNAL_EXTEND_USEC, restored);
	(void)notify_send(text);
}

/* One line of a stored chunk, during replay. */
struct stored_event {
	uint64_t seq;
	long long lane;
	size_t bytes;
	const char *body;
};

static int by_seq(const void *left, const void *right)
{
	const struct stored_event *a = left, *b = right;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* A meta value; 0 when missing. */
static uint64_t meta_value(const char *key, int *rc)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "SELECT value FROM meta WHERE key = '%s'", key);
	long long value = query_integer(sql, rc);
	return value > 0 ? (uint64_t)value : 0;
}

/* Gives the feed back its epoch and the events the store holds, before the
 * jobs' replay makes events of its own (they come after). A row that cannot
 * be read is taken as dropped from its lane: a reader whose cursor is before
 * it resyncs rather than missing it. Then reserves seqs for this run at once,
 * before anything listens. Main thread. */
static int replay_events(char *message, size_t size)
{
	int rc;
	uint64_t epoch = meta_value("events_epoch", &rc);
	if (rc != SQLITE_OK)
		return refuse(message, size, "its event epoch cannot be read: it is damaged");
	if (epoch > 0)
		events_restore_begin(epoch);
	/* The marks first: a chunk may hold events its lane dropped since. */
	sqlite3_stmt *statement;
	if (sqlite3_prepare_v2(journal.db, "SELECT lane, dropped_upto FROM event_lanes", -1,
	                       &statement, NULL) != SQLITE_OK)
		return refuse(message, size, "its event lanes cannot be read: it is damaged");
	while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
		long long lane = sqlite3_column_int64(statement, 0);
		uint64_t mark = (uint64_t)sqlite3_column_int64(statement, 1);
		events_restore_mark(lane, mark);
		store_mark(lane, mark);
	}
	sqlite3_finalize(statement);
	if (rc != SQLITE_DONE)
		return refuse(message, size, "its event lanes are damaged");
	if (sqlite3_prepare_v2(journal.db, "SELECT last, lane, lines FROM events", -1, &statement,
	                       NULL) != SQLITE_OK)
		return refuse(message, size, "its events cannot be read: it is damaged");
	/* Every line of every chunk, to be given back in seq order (chunks of
	 * lanes interleave). Bounded by the feed's bounds of the run before. */
	struct stored_event *stored = NULL;
	size_t count = 0, capacity = 0, restored = 0, bad = 0;
	char **chunks = NULL;
	size_t chunk_count = 0, chunk_capacity = 0;
	while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
		uint64_t last = (uint64_t)sqlite3_column_int64(statement, 0);
		long long lane = sqlite3_column_int64(statement, 1);
		const char *lines = (const char *)sqlite3_column_text(statement, 2);
		if (lines == NULL)
			continue;
		if (chunk_count == chunk_capacity) {
			chunk_capacity = chunk_capacity > 0 ? 2 * chunk_capacity : 64;
			chunks = memory_realloc(chunks, chunk_capacity * sizeof(*chunks));
		}
		char *chunk = chunks[chunk_count++] = memory_strdup(lines);
		uint64_t mark = stored_mark(lane);
		for (char *line = chunk; *line != '\0';) {
			char *end = strchr(line, '\n');
			char *next = end != NULL ? end + 1 : line + strlen(line);
			if (end != NULL)
				*end = '\0';
			char *after;
			uint64_t seq = strtoull(line, &after, 10);
			unsigned long long bytes = *after == ' ' ? strtoull(after + 1, &after, 10) : 0;
			line = next;
			if (seq == 0 || *after != ' ') {
				/* Not a line write_events made: the whole chunk counts
				 * as dropped, so that no reader misses it silently. */
				events_restore_mark(lane, last);
				bad++;
				continue;
			}
			if (seq <= mark)
				continue; /* dropped from its lane since */
			if (count == capacity) {
				capacity = capacity > 0 ? 2 * capacity : 1024;
				stored = memory_realloc(stored, capacity * sizeof(*stored));
			}
			stored[count++] = (struct stored_event){
				.seq = seq, .lane = lane, .bytes = (size_t)bytes, .body = after + 1};
		}
	}
	sqlite3_finalize(statement);
	int rv = WEFT_OK;
	if (rc != SQLITE_DONE)
		rv = refuse(message, size, "its events are damaged");
	if (count > 0)
		qsort(stored, count, sizeof(*stored), by_seq);
	for (size_t i = 0; i < count && rv == WEFT_OK; i++) {
		if (events_restore(stored[i].seq, stored[i].lane, stored[i].bytes, stored[i].body) ==
		    WEFT_OK) {
			restored++;
			continue;
		}
		events_restore_mark(stored[i].lane, stored[i].seq);
		bad++;
	}
	free(stored);
	for (size_t i = 0; i < chunk_count; i++)
		free(chunks[i]);
	free(chunks);
	if (rv != WEFT_OK)
		return rv;
	uint64_t upto = meta_value("events_upto", &rc);
	uint64_t reserved = rc == SQLITE_OK ? meta_value("events_next", &rc) : 0;
	uint64_t kept = rc == SQLITE_OK ? meta_value("events_kept", &rc) : 0;
	if (rc != SQLITE_OK)
		return refuse(message, size, "its event seqs cannot be read: it is damaged");
	events_restore_end(upto, reserved);
	journal.events_upto = events_newest();
	/* Before anything listens: every seq this run hands out is reserved. */
	uint64_t next = journal.events_upto + 1;
	if (write_meta("events_next", next + EVENT_RESERVE) != SQLITE_OK)
		return refuse(message, size, "its event seqs cannot be written");
	journal.events_reserved = next + EVENT_RESERVE;
	events_set_reserved(journal.events_reserved);
	/* A store whose feed was read keeps it; in one whose feed nobody read
	 * no cursor exists (reading turns keeping on), and should one come,
	 * its seq is below the reservation of the run that made it and past
	 * what the store kept (upto): the gap events_restore_end made expires
	 * it, with the oldest cursor of this run. */
	if (kept > 0) {
		journal.events_kept_stored = true;
		events_set_hook(journal_events_appended);
		atomic_store_explicit(&journal.events_kept, true, memory_order_release);
	}
	if (restored > 0 || bad > 0)
		log_info("journal %s: %zu events kept for the feed%s (next cursor seq %llu)",
		         journal.path, restored, bad > 0 ? ", some unreadable ones dropped" : "",
		         (unsigned long long)next);
	return WEFT_OK;
}

int journal_replay(struct jobs *jobs, char *message, size_t size)
{
	if (!journal_enabled())
		return WEFT_OK;
	int rv = replay_events(message, size);
	if (rv != WEFT_OK)
		return rv;
	jobs_set_observer(jobs, &journal_observer);
	double began = now_monotonic();
	rv = replay_queues(message, size);
	if (rv != WEFT_OK)
		return rv;
	int rc;
	long long next = query_integer("SELECT value FROM meta WHERE key = 'next_id'", &rc);
	if (rc != SQLITE_OK)
		return refuse(message, size, "its id reservation cannot be read: it is damaged");
	if (next > 0) {
		jobs_set_next_id(jobs, (uint64_t)next);
		journal.reserved_id = (uint64_t)next;
	}
	sqlite3_stmt *statement;
	/* A job's changing fields are its job_states row's when it has one
	 * (columns 10 to 16), else its own row's (2 and 4 to 9). */
	if (sqlite3_prepare_v2(journal.db,
	                       "SELECT j.id, j.spec, j.state, j.created, j.started, j.finished, "
	                       "j.result, j.error, j.attempts, j.children, s.state, s.started, "
	                       "s.finished, s.result, s.error, s.attempts, s.children, "
	                       "s.id IS NOT NULL FROM jobs AS j LEFT JOIN job_states AS s "
	                       "ON s.id = j.id ORDER BY j.id",
	                       -1, &statement, NULL) != SQLITE_OK)
		return refuse(message, size, "its jobs cannot be read: it is damaged");
	struct owner_cache owners = {0};
	struct job **unfinished = NULL;
	size_t unfinished_count = 0, unfinished_capacity = 0, restored = 0, interrupted = 0;
	double now = now_wall();
	char what[256];
	rv = WEFT_OK;
	double extended = -1;
	while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
		/* A long replay keeps systemd's start timeout from running out:
		 * from the first job on, at least every second, ask for more time. */
		if (restored % 1024 == 0 && now_monotonic() - extended >= 1.0) {
			extend_start_timeout(restored);
			extended = now_monotonic();
		}
		uint64_t id = (uint64_t)sqlite3_column_int64(statement, 0);
		bool bad = false;
		json_t *spec = column_json(statement, 1, &bad);
		bool changed = sqlite3_column_int(statement, 17) != 0;
		int state_column = changed ? 10 : 2, column = changed ? 11 : 4;
		const char *state_name = (const char *)sqlite3_column_text(statement, state_column);
		struct jobs_durable durable = {0};
		durable.started = column_time(statement, column);
		durable.finished = column_time(statement, column + 1);
		durable.result = column_json(statement, column + 2, &bad);
		durable.error = column_json(statement, column + 3, &bad);
		durable.attempts = column_json(statement, column + 4, &bad);
		durable.children = column_json(statement, column + 5, &bad);
		const json_t *fn = json_object_get(spec, "fn");
		const struct function *function = NULL;
		if (json_is_string(fn))
			function = strcmp(json_string_value(fn), functions_name_of(&functions_future)) == 0
			                   ? &functions_future
			                   : functions_find(json_string_value(fn));
		const json_t *args = json_object_get(spec, "args");
		const json_t *owner = json_object_get(spec, "owner");
		enum job_state state;
		if (bad || !json_is_object(spec) || !json_is_object(args) || !json_is_object(owner) ||
		    state_name == NULL || job_state_parse(state_name, &state) != 0 || function == NULL) {
			if (function == NULL && json_is_string(fn))
				snprintf(what, sizeof(what),
				         "job %llu runs function '%.64s', which this weftd does not have",
				         (unsigned long long)id, json_string_value(fn));
			else
				snprintf(what, sizeof(what), "the row of job %llu is damaged",
				         (unsigned long long)id);
			json_decref(spec);
			jobs_durable_clear(&durable);
			rv = refuse(message, size, what);
			break;
		}
		struct job_schedule *schedule = schedule_from_json(json_object_get(spec, "schedule"));
		bool rerun = false;
		if (state == JOB_RUNNING) {
			unsigned attempts = (unsigned)json_array_size(durable.attempts);
			rerun = schedule != NULL && schedule->retry_interrupted &&
			        attempts <= schedule->retries;
			if (rerun) {
				close_interrupted_attempt(durable.attempts, now);
				state = JOB_QUEUED;
			}
		}
		/* Waiting is recomputed: schedule_submit holds it again. */
		if (state == JOB_WAITING)
			state = JOB_QUEUED;
		durable.state = state;
		const json_t *labels = json_object_get(spec, "labels");
		struct job *job = jobs_restore(
			jobs, id, function, json_incref((json_t *)args),
			json_is_object(labels) ? json_incref((json_t *)labels) : NULL,
			number_or(spec, "timeout", 0), column_time(statement, 3),
			owner_of(&owners, owner), schedule, &durable);
		/* Before any request: nobody reads it yet. */
		atomic_store_explicit(&job->item_buffer, (unsigned)number_or(spec, "buffer", 0),
		                      memory_order_relaxed);
		json_decref(spec);
		restored++;
		if (job_state_finished(job->state) || job->state == JOB_PENDING) {
			job_unref(job);
			continue;
		}
		if (unfinished_count == unfinished_capacity) {
			unfinished_capacity = unfinished_capacity > 0 ? 2 * unfinished_capacity : 64;
			unfinished = memory_realloc(unfinished, unfinished_capacity * sizeof(*unfinished));
		}
		unfinished[unfinished_count++] = job;
	}
	if (rv == WEFT_OK && rc != SQLITE_DONE) {
		snprintf(what, sizeof(what), "reading its jobs failed (%s)", sqlite3_errmsg(journal.db));
		rv = refuse(message, size, what);
	}
	sqlite3_finalize(statement);
	/* Every job is listed before any is submitted, so `after` finds them all. */
	for (size_t i = 0; i < unfinished_count; i++) {
		struct job *job = unfinished[i];
		if (rv == WEFT_OK && job->state == JOB_RUNNING) {
			jobs_finish(jobs, job, JOB_FAILED, NULL, interrupted_error(), NULL, NULL);
			interrupted++;
		} else if (rv == WEFT_OK) {
			schedule_submit(job);
		}
		job_unref(job);
	}
	free(unfinished);
	for (size_t i = 0; i < owners.count; i++)
		principal_unref(owners.owners[i]);
	free(owners.owners);
	if (rv == WEFT_OK)
		log_info("journal %s: replayed %zu jobs (%zu unfinished, %zu interrupted%s%s) in %.3f s",
		         journal.path, restored, unfinished_count, interrupted,
		         interrupted > 0 && interrupted_note[0] != '\0' ? ": " : "",
		         interrupted > 0 ? interrupted_note : "", now_monotonic() - began);
	return rv;
}

/* ---- stats ---- */

static long long file_size(const char *path)
{
	struct stat info;
	return stat(path, &info) == 0 ? (long long)info.st_size : 0;
}

json_t *journal_stats(void)
{
	if (!journal_enabled())
		return json_pack("{s:b}", "enabled", 0);
	char wal[PATH_MAX + 8];
	snprintf(wal, sizeof(wal), "%s-wal", journal.path);
	uint64_t commits = atomic_load_explicit(&journal.commits, memory_order_relaxed);
	uint64_t records = atomic_load_explicit(&journal.records, memory_order_relaxed);
	uint64_t rows = atomic_load_explicit(&journal.rows, memory_order_relaxed);
	uint64_t accepted = atomic_load_explicit(&journal.accepted, memory_order_relaxed);
	json_t *stats = json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:I, s:f, s:I, s:b}",
	                 "enabled", 1, "path", journal.path, "sync",
	                 journal.sync == JOURNAL_SYNC_FULL ? "full" : "normal", "file_bytes",
	                 (json_int_t)file_size(journal.path), "wal_bytes",
	                 (json_int_t)file_size(wal), "commits", (json_int_t)commits, "records",
	                 (json_int_t)records, "jobs", (json_int_t)accepted, "jobs_per_commit",
	                 commits > 0 ? (double)accepted / (double)commits : 0.0,
	                 "records_per_commit", commits > 0 ? (double)records / (double)commits : 0.0,
	                 "last_commit_records",
	                 (json_int_t)atomic_load_explicit(&journal.last_records, memory_order_relaxed),
	                 "last_commit_ms",
	                 (double)atomic_load_explicit(&journal.last_latency_ns, memory_order_relaxed) /
	                         1e6,
	                 "failures",
	                 (json_int_t)atomic_load_explicit(&journal.failures, memory_order_relaxed),
	                 "full", atomic_load_explicit(&journal.full, memory_order_relaxed));
	/* Rows written: fewer than records, as a job's records coalesce in a commit. */
	json_object_set_new(stats, "rows", json_integer((json_int_t)rows));
	json_object_set_new(stats, "events",
	                    json_integer((json_int_t)atomic_load_explicit(&journal.events_written,
	                                                                  memory_order_relaxed)));
	json_object_set_new(stats, "events_kept",
	                    json_boolean(atomic_load_explicit(&journal.events_kept,
	                                                      memory_order_relaxed)));
	return stats;
}

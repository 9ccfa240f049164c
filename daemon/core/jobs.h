/*
 * The job table: every job weftd knows, by id, with its state machine, the
 * watchers waiting for it to finish, and the retention of finished jobs.
 *
 * Threads: every function here may be called from any thread (nng's callback
 * threads, worker loops, the main thread). The table is split into shards,
 * each with its own mutex, so that requests for different jobs do not contend;
 * a job's mutable fields are guarded by its shard's lock. A second lock guards
 * the retention queue. The two are never held together, and no callback (a
 * watcher's notify) runs while either is held.
 *
 * A job moves queued → running → done | failed | cancelled, forward only; the
 * first call that finishes a job wins and later ones are refused, which is
 * what makes cancel, timeout and completion racing on different threads safe.
 */
#ifndef JOBS_H
#define JOBS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

#include "daemon/core/slots.h"
#include "proto/proto.h"

/* waiting: for dependencies, a delay or a retry's pause (schedule.h).
 * pending: a bare future (future.new), waiting for a client to set it. The
 * finished states come last: job_state_finished relies on it. */
#define JOB_STATE_ENUM_(name, wire) JOB_##name,
enum job_state { PROTO_STATE_MAP(JOB_STATE_ENUM_) JOB_STATE_COUNT };
#undef JOB_STATE_ENUM_

/* The wire name of a state ("queued"); static. */
const char *job_state_name(enum job_state state);
/* Parses a wire name. Returns 0, or -1 when it names no state. */
int job_state_parse(const char *name, enum job_state *out);

static inline bool job_state_finished(enum job_state state)
{
	return state >= JOB_DONE;
}

struct function;
struct job;
struct principal;

/* What a job was submitted with to control when it runs (issue 5's
 * scheduling fields); NULL for a job without any. Immutable once the job is
 * made; owned by the job (freed with it by job_schedule_free). */
struct job_schedule {
	uint64_t *after;       /* ids the job waits for; owned */
	size_t after_count;
	bool after_always;     /* run even when one of them failed or was cancelled */
	double run_at;         /* wall clock before which it may not run; 0 = none */
	unsigned retries;      /* attempts after the first, at most */
	double retry_backoff;  /* the first pause, doubled each time */
	double retry_backoff_max;
	json_t *retry_on;      /* array of error types (owned), or NULL for any */
	double deadline;       /* wall clock past which the job fails; 0 = none */
	int priority;          /* higher runs first among jobs queued for one executor */
	char *queue_name;      /* the named queue it runs in (owned), or NULL */
	struct slots *queue;   /* that queue's gate (queues.h; lives as long as the daemon) */
	bool retry_interrupted; /* on_interrupt "retry": a restart reruns it while retries last */
};

void job_schedule_free(struct job_schedule *schedule);

/*
 * A watcher's registration on one job, embedded in the watcher (which owns
 * it). While registered its links are guarded by the job's shard lock. notify
 * is called exactly once, on the thread that finishes the job, with no lock
 * held — unless jobs_unwatch() removed the registration first.
 */
struct job_watch {
	LIST_ENTRY(job_watch) link;
	void (*notify)(struct job_watch *watch, struct job *job);
};
LIST_HEAD(job_watches, job_watch);

/*
 * One attempt at running a job: what the function running it keeps, on the
 * worker loop that runs it. A job with retries has one attempt per run; each
 * is a new object, so nothing an old attempt still does (a call coming back
 * from the pool, a task winding down, a group's children ending) can reach
 * the next attempt's state.
 *
 * Rule: code that needs "where does this job run" reads attempt->worker of
 * the attempt it belongs to (the one its own state points to), never a field
 * of the job, which a later attempt may already own.
 *
 * Lifetime: reference counted (runner_attempt_hold / runner_attempt_release,
 * runner.h). The runner holds one from start until the run ends; a posted
 * stop call, a function's pending call, task or group hold their own. It is
 * freed when the last goes, which is when the attempt is gone for good: only
 * then is a retry scheduled (runner.c), so the next attempt cannot start
 * while anything of this one remains.
 */
struct job_attempt {
	/* Set when the attempt is made and never changed: any thread reads them. */
	struct job *job;               /* a reference, dropped when the attempt is freed */
	struct workers_worker *worker; /* the loop it runs on; NULL for an inline function */

	/* acq_rel on release: the freeing thread sees every holder's writes. */
	atomic_int references;

	/* Owned by the attempt's worker thread (for an inline function, the
	 * thread that started it); the runner module owns the first three. */
	struct event *timeout_event;   /* the attempt's timeout timer, or NULL */
	bool active;                   /* the function started and has not ended */
	bool retry;                    /* it ended by jobs_retry: run again once it is freed */
	void *data;                    /* the function's own state, or NULL */
};

/*
 * A job. Reference counted (job_ref/job_unref); the table holds one reference
 * while the job is listed, and whoever got a job from jobs_create or
 * jobs_find holds another.
 */
struct job {
	/* Set by jobs_create and never changed: any thread reads them without a lock. */
	uint64_t id;
	const struct function *function;
	json_t *args;   /* owned; never modified after creation */
	json_t *labels; /* owned; an object of strings, or NULL */
	double timeout; /* seconds from start; 0 = none */
	double created; /* wall clock */
	uint32_t shard;
	/* Who submitted it (principal.h): a reference, never NULL; a job made
	 * for another job has its parent's owner. */
	struct principal *owner;
	struct job_schedule *schedule; /* owned; NULL when it has none */

	atomic_int references;
	/* Set (under the journal's queue lock) once the job's acceptance is in
	 * the journal's queue; from then on its changes are journaled
	 * (journal.h). Acquire/release: a hook that sees it true orders its
	 * record after the acceptance. */
	atomic_bool journaled;

	/* Guarded by the shard lock (read them through jobs_snapshot or jobs_to_json). */
	enum job_state state;
	double started;  /* wall clock; 0 = not yet */
	double finished; /* wall clock; 0 = not yet */
	/* When it finished on the monotonic clock (retention's age, which a step
	 * of the wall clock must not shift) and in which place among all jobs
	 * (as_completed's order, exact where clock readings tie). */
	double finished_monotonic;
	uint64_t finish_order;
	int worker;      /* worker index that ran it, or -1 */
	json_t *result;  /* owned; set when the job is done */
	json_t *error;   /* owned; {"type","message"} when failed or cancelled */
	json_t *attempts; /* owned array of {"number","started","finished","error"}, or NULL */
	json_t *children; /* owned array of child job ids (gather, race), or NULL */
	struct job_watches watches;
	struct job *hash_next;

	/* Guarded by the retention lock. */
	STAILQ_ENTRY(job) retained_link;

	/* The running attempt, NULL unless the job is running. Guarded by the
	 * shard lock: set by jobs_start, cleared by whatever moves the job out of
	 * running (jobs_retry, jobs_finish). Read it only through jobs_finish,
	 * which hands out a reference. */
	struct job_attempt *attempt;

	/* The job's place in its function's slot queue and in its named queue
	 * (runner.c; guarded by each gate). */
	struct slots_waiter slot_waiter;
	struct slots_waiter queue_waiter;
};

/* A consistent copy of a job's changing fields, taken under its lock. */
struct job_snapshot {
	enum job_state state;
	double finished; /* wall clock; 0 = not yet */
	uint64_t finish_order; /* 0 = not yet; see struct job */
	json_t *result; /* new reference, or NULL */
	json_t *error;  /* new reference, or NULL */
};

/* The table's counters: jobs held now, by state, and ever submitted. */
struct jobs_counts {
	uint64_t by_state[JOB_STATE_COUNT];
	uint64_t submitted;
	uint64_t retained; /* finished jobs still held */
};

struct jobs;

/* A new, empty table. Finished jobs are dropped after retain_seconds, and beyond
 * retain_max of them the oldest go first. Freed with jobs_free. */
struct jobs *jobs_new(double retain_seconds, size_t retain_max);
/*
 * Who must hear of every change that outlives a restart (the journal), so the
 * job model knows nothing of how it is stored. Both run on the thread that
 * made the change, with the job's lock released; they must not block.
 */
struct jobs_observer {
	void (*changed)(struct job *job); /* a state change, an attempt started or ended */
	void (*evicted)(struct job *job); /* retention dropped the job */
};
/* Main thread, before any other thread uses the table. observer: static, or NULL. */
void jobs_set_observer(struct jobs *jobs, const struct jobs_observer *observer);
/* Frees the table and drops its references. No other thread may use it any more. */
void jobs_free(struct jobs *jobs);

/*
 * Makes a queued job and lists it. args and labels are stolen (labels may be
 * NULL); owner is the submitter (a new reference is taken); schedule
 * (may be NULL) is stolen. Returns a new reference to the job. Any thread. Cannot fail: the
 * daemon aborts when out of memory (memory.h).
 */
struct job *jobs_create(struct jobs *jobs, const struct function *function, json_t *args,
                        json_t *labels, double timeout, struct principal *owner,
                        struct job_schedule *schedule);

/* The job with that id: a new reference, or NULL when it is unknown or expired. */
struct job *jobs_find(struct jobs *jobs, uint64_t id);

void job_ref(struct job *job);
/* Drops a reference; the last one frees the job. */
void job_unref(struct job *job);

/* queued → running on the given worker (index, -1 for none) as `attempt`
 * (borrowed; may be NULL in unit tests). Returns false (and changes nothing)
 * when the job is no longer queued, e.g. it was cancelled while it waited. */
bool jobs_start(struct jobs *jobs, struct job *job, int worker, struct job_attempt *attempt);

/* queued → pending, for a bare future: it waits for a client to set it. */
void jobs_make_pending(struct jobs *jobs, struct job *job);

/* queued → waiting, for a job with a schedule (schedule.h). */
void jobs_make_waiting(struct jobs *jobs, struct job *job);

/* waiting → queued, when what it waited for is over. Returns false when the
 * job is no longer waiting (it was cancelled meanwhile). */
bool jobs_release(struct jobs *jobs, struct job *job);

/* running → waiting, for a retry: the attempt ends with error (stolen) and is
 * recorded, and the job no longer names it. Returns false (error dropped) when
 * the job is no longer running. */
bool jobs_retry(struct jobs *jobs, struct job *job, json_t *error);

/* Records the ids of the job's children (ids: stolen array). */
void jobs_set_children(struct jobs *jobs, struct job *job, json_t *ids);

/* How many attempts the job has started. */
unsigned jobs_attempts(struct jobs *jobs, struct job *job);

/*
 * Finishes a job: state is JOB_DONE (result set, error NULL) or JOB_FAILED /
 * JOB_CANCELLED (error = {"type","message"}). result and error are stolen in
 * every case. Returns true when this call finished the job; false when it was
 * already finished (the values are dropped). *previous, when not NULL, receives
 * the state before the call. *attempt, when not NULL, receives the attempt the
 * job was running as, with a new reference taken under the lock (the caller
 * releases it with runner_attempt_release), or NULL when it was not running or
 * this call did not finish it. Notifies watchers after the lock is released,
 * on this thread.
 */
bool jobs_finish(struct jobs *jobs, struct job *job, enum job_state state, json_t *result,
                 json_t *error, enum job_state *previous, struct job_attempt **attempt);

/* Registers a watcher. Returns false, without registering, when the job is
 * already finished (then the caller acts as if notified, without the call). */
bool jobs_watch(struct jobs *jobs, struct job *job, struct job_watch *watch);
/* Unregisters a watcher. Returns true when removed; false when the job finished
 * meanwhile and notify has been or is being called. */
bool jobs_unwatch(struct jobs *jobs, struct job *job, struct job_watch *watch);

/* The job's state, read under its shard lock: for callers that need nothing
 * else, so no reference is taken on the result or error. */
enum job_state jobs_state(struct jobs *jobs, struct job *job);

/* Fills a snapshot; the caller drops its references with jobs_snapshot_clear. */
void jobs_snapshot(struct jobs *jobs, struct job *job, struct job_snapshot *snapshot);
void jobs_snapshot_clear(struct job_snapshot *snapshot);

/* The job as the protocol's job object (proto/PROTOCOL.md): a new reference. */
json_t *jobs_to_json(struct jobs *jobs, struct job *job);

/* Filters for jobs_list; every member is optional. */
struct jobs_filter {
	int state;              /* an enum job_state, or -1 for any */
	const char *function;   /* borrowed; NULL for any */
	const json_t *labels;   /* borrowed object of strings; every pair must match; NULL for any */
	uint64_t after;         /* only ids greater than this */
	uint64_t before;        /* only ids less than this; 0 for no bound */
	bool newest_first;      /* walk from the newest down, else from the oldest up */
	size_t limit;           /* at most this many */
	const struct principal *viewer; /* borrowed: only jobs it may act on; NULL for all */
};

/* The most ids one page looks at: a page of a filter that matches little
 * comes back short (even empty) with *more set, and goes on from *next. */
#define JOBS_LIST_SCAN_MAX 65536

/*
 * A page of the jobs matching the filter, newest first or oldest first, as a
 * new array of job objects. Costs O(limit) lookups when most ids match, and
 * at most JOBS_LIST_SCAN_MAX however few do. *more: the list may go on;
 * *next: the cursor to go on from (`before` when newest first, `after`
 * otherwise). Any thread.
 */
json_t *jobs_list(struct jobs *jobs, const struct jobs_filter *filter, bool *more,
                  uint64_t *next);

void jobs_counts(struct jobs *jobs, struct jobs_counts *counts);

/* Jobs not finished now (waiting, queued, running, pending), without a lock. Any thread. */
uint64_t jobs_unfinished(struct jobs *jobs);

/* Drops finished jobs older than the retention time; now: now_monotonic(), so a
 * step of the wall clock expires nothing early or late. Called periodically from the
 * main loop; any thread. Returns how many were dropped. */
size_t jobs_expire(struct jobs *jobs, double now);

/* Calls visit for every unfinished job (with a reference the visitor may keep by
 * calling job_ref). Used at shutdown to cancel what remains. Any thread. */
void jobs_for_each_unfinished(struct jobs *jobs, void (*visit)(struct job *job, void *context),
                              void *context);

/*
 * For the journal (journal.h): what of a job must survive a restart, read
 * under its lock. result, error and children are new references; attempts is
 * a copy (it changes while the job runs). Clear with jobs_durable_clear.
 * Any thread.
 */
struct jobs_durable {
	enum job_state state;
	double started, finished;
	json_t *result, *error, *attempts, *children;
};
void jobs_durable(struct jobs *jobs, struct job *job, struct jobs_durable *out);
void jobs_durable_clear(struct jobs_durable *durable);

/*
 * Lists a job read back from the journal at start, with its old id and
 * state. args, labels, schedule, result, error and attempts are stolen (any
 * may be NULL but args); owner gets a new reference. A finished job joins
 * the retention queue. Returns a new reference. Main thread, before any
 * request is served.
 */
struct job *jobs_restore(struct jobs *jobs, uint64_t id, const struct function *function,
                         json_t *args, json_t *labels, double timeout, double created,
                         struct principal *owner, struct job_schedule *schedule,
                         const struct jobs_durable *durable);

/* Unlists a job that never started and was not accepted after all (its
 * journal commit failed): it goes as if never made. Any thread. */
void jobs_discard(struct jobs *jobs, struct job *job);

/* The id the next job gets; ids below it are taken. Any thread. */
uint64_t jobs_next_id(struct jobs *jobs);
/* Ids continue from `next` (never lowered). Main thread, at start. */
void jobs_set_next_id(struct jobs *jobs, uint64_t next);

#endif

/*
 * The ops of the protocol (proto/PROTOCOL.md), run on the server's request
 * threads (server.h) as each request arrives. Cheap ops answer at once; those that wait for jobs
 * hand the request to a waiter (waiters.h), which answers it later.
 */
#include "daemon/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/executors/io/pool.h"
#include "daemon/executors/process/cgroup.h"
#include "daemon/executors/process/exec.h"
#include "daemon/base/watch.h"
#include "daemon/core/events.h"
#include "daemon/executors/process/subreaper.h"
#include "daemon/executors/process/outlog.h"
#include "daemon/executors/process/spool.h"
#include "daemon/core/functions.h"
#include "daemon/core/items.h"
#include "daemon/core/jobs.h"
#include "daemon/journal.h"
#include "daemon/output.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/core/outcome.h"
#include "daemon/core/principal.h"
#include "daemon/base/problem.h"
#include "daemon/core/queues.h"
#include "daemon/core/quota.h"
#include "daemon/core/jobspec.h"
#include "daemon/server/request.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/schedule.h"
#include "daemon/server/server.h"
#include "daemon/core/slots.h"
#include "daemon/executors/thread/threaded.h"
#include "daemon/executors/thread/threadpool.h"
#include "daemon/server/waiters.h"
#include "daemon/weftd.h"
#include "daemon/sched/workers.h"
#include "daemon/base/writer.h"
#include "proto/proto.h"

static void reply_problem(struct server_request *slot, const struct problem *problem)
{
	server_reply(slot, problem_to_reply(problem));
}

static int unknown_id(struct problem *problem, uint64_t id)
{
	problem_set(problem, WEFT_EUNKNOWNID, NULL,
	            "no job %llu (never submitted, or finished and expired: see --retain)",
	            (unsigned long long)id);
	problem->id = id;
	return WEFT_EUNKNOWNID;
}

static int not_yours(struct problem *problem, const struct job *job)
{
	problem_set(problem, WEFT_EPERM, NULL,
	            "job %llu belongs to another user; only its owner, root or a member of "
	            "--admin-group may see or change it",
	            (unsigned long long)job->id);
	problem->id = job->id;
	return WEFT_EPERM;
}

/* The job with that id if `caller` may act on it (principal.h, rule 4): a new
 * reference, or NULL with the problem filled (unknown_id, permission_denied). */
static struct job *find_for(struct weftd *daemon, const struct principal *caller, uint64_t id,
                            struct problem *problem)
{
	struct job *job = jobs_find(daemon->jobs, id);
	if (job == NULL) {
		unknown_id(problem, id);
		return NULL;
	}
	if (!principal_may_act_on(caller, job->owner)) {
		not_yours(problem, job);
		job_unref(job);
		return NULL;
	}
	return job;
}

/* References to the jobs with these ids, or the problem naming the first id
 * that is unknown or not the caller's. */
static int find_all(struct weftd *daemon, const struct principal *caller, const uint64_t *ids,
                    size_t count, struct job ***out, struct problem *problem)
{
	struct job **list = memory_zalloc(count * sizeof(*list));
	for (size_t i = 0; i < count; i++) {
		list[i] = find_for(daemon, caller, ids[i], problem);
		if (list[i] == NULL) {
			for (size_t j = 0; j < i; j++)
				job_unref(list[j]);
			free(list);
			return problem->code;
		}
	}
	*out = list;
	return WEFT_OK;
}

/* Hands the request to a waiter; on failure (busy) answers with the problem.
 * The waiter takes the job references only on success. */
static void wait_for(struct weftd *daemon, struct server_request *slot,
                     const struct principal *caller, enum waiter_kind kind, struct job **list,
                     size_t count, enum request_return_when when, double timeout)
{
	struct problem problem;
	problem_init(&problem);
	if (waiters_start(daemon->waiters, slot, caller->uid, kind, list, count, when, timeout,
	                  &problem) !=
	    WEFT_OK) {
		for (size_t i = 0; i < count; i++)
			job_unref(list[i]);
		reply_problem(slot, &problem);
	}
}

static json_t *op_ping(struct weftd *daemon)
{
	return json_pack("{s:b, s:s, s:i, s:I}", "ok", 1, "version", PROTO_SOFTWARE_VERSION,
	                 "protocol", PROTO_VERSION, "max_message",
	                 (json_int_t)daemon->options.max_message);
}

/* Whether `count` new jobs may be accepted: not while shutting down, and not
 * past --max-pending (backpressure: endless submits meet a clear refusal
 * instead of unbounded memory). */
static int admit(struct weftd *daemon, size_t count, struct problem *problem)
{
	if (atomic_load(&daemon->shutting_down))
		return problem_set(problem, WEFT_ESHUTDOWN, NULL,
		                   "weftd is shutting down and accepts no new jobs; submit to the "
		                   "next one");
	uint64_t unfinished = jobs_unfinished(daemon->jobs);
	if (unfinished + count > daemon->options.max_pending)
		return problem_set(problem, WEFT_EBUSY, NULL,
		                   "weftd holds %llu unfinished jobs and takes at most %zu "
		                   "(--max-pending); submit again when some have finished",
		                   (unsigned long long)unfinished, daemon->options.max_pending);
	return WEFT_OK;
}

/* Reserves `count` of the caller's pending quota (--max-pending-per-user)
 * for jobs about to be made; the caller gives the reservation back with
 * quota_give once jobs_create has counted them, so a burst of submits on
 * several threads cannot overshoot. */
static int admit_user(const struct principal *caller, size_t count, struct problem *problem)
{
	return quota_take(QUOTA_PENDING, caller->uid, count, problem);
}

/*
 * The byte budgets (--max-bytes, --max-bytes-per-user): measures each job's
 * args and labels into *bytes (a new array, one per job; the caller frees
 * it) and reserves their sum, *total, of the caller's QUOTA_BYTES; the
 * caller gives the reservation back once jobs_add_bytes has charged the
 * jobs. Finished results give way to new jobs (jobs.h), so only unfinished
 * jobs count against the daemon-wide budget here.
 */
static int admit_bytes(struct weftd *daemon, const struct principal *caller,
                       const struct request *request, uint64_t **bytes, uint64_t *total,
                       struct problem *problem)
{
	memory_refusable_begin();
	uint64_t *each = memory_try_alloc(request->job_count * sizeof(*each));
	(void)memory_refusable_end();
	if (each == NULL)
		return problem_set(problem, WEFT_ENOMEM, NULL,
		                   "weftd is out of memory and accepted none of these jobs; submit "
		                   "again later, or fewer at once");
	uint64_t sum = 0;
	for (size_t i = 0; i < request->job_count; i++) {
		each[i] = jobs_json_bytes(request->jobs[i].args) +
		          jobs_json_bytes(request->jobs[i].labels);
		sum += each[i];
	}
	uint64_t held = jobs_unfinished_bytes(daemon->jobs);
	if (held + sum > daemon->options.max_bytes) {
		free(each);
		return problem_set(problem, WEFT_EBUSY, NULL,
		                   "weftd holds %llu bytes of unfinished jobs' arguments and takes at "
		                   "most %llu (--max-bytes); these jobs need %llu more: submit again "
		                   "when some have finished, or send smaller arguments",
		                   (unsigned long long)held,
		                   (unsigned long long)daemon->options.max_bytes,
		                   (unsigned long long)sum);
	}
	int rv = quota_take(QUOTA_BYTES, caller->uid, sum, problem);
	if (rv != WEFT_OK) {
		free(each);
		return rv;
	}
	*bytes = each;
	*total = sum;
	return WEFT_OK;
}

/* A submit (or future.new) waiting for its journal commit (journal.h). */
struct accepted {
	struct weftd *daemon;
	struct server_request *slot;
	struct principal *caller; /* a reference: the waiter's quota is the caller's */
	bool batch, has_wait, future;
	double wait;
	size_t count;
	struct job *jobs[]; /* references */
};

/* The journal's answer for a submit: run the jobs and reply, or refuse them.
 * On the journal's writer thread (or the receiving thread without a journal). */
static void submit_committed(void *context, int status)
{
	struct accepted *accepted = context;
	struct weftd *daemon = accepted->daemon;
	if (status != WEFT_OK) {
		for (size_t i = 0; i < accepted->count; i++) {
			jobs_discard(daemon->jobs, accepted->jobs[i]);
			job_unref(accepted->jobs[i]);
		}
		struct problem problem;
		problem_init(&problem);
		problem_set(&problem, status, NULL,
		            status == WEFT_EJOURNALFULL
		                    ? "the journal under --state-dir cannot be written (the disk is "
		                      "full): nothing was accepted; free space and submit again"
		                    : "the journal under --state-dir cannot be written: nothing was "
		                      "accepted (see weftd's log)");
		reply_problem(accepted->slot, &problem);
		principal_unref(accepted->caller);
		free(accepted);
		return;
	}
	if (accepted->future) {
		struct job *job = accepted->jobs[0];
		server_reply(accepted->slot, json_pack("{s:b, s:I}", "ok", 1, "id", (json_int_t)job->id));
		job_unref(job);
		principal_unref(accepted->caller);
		free(accepted);
		return;
	}
	for (size_t i = 0; i < accepted->count; i++)
		schedule_submit(accepted->jobs[i]);
	struct job *last = accepted->jobs[accepted->count - 1];
	if (accepted->batch) {
		struct writer ids = {0};
		writer_init(&ids, 12 * accepted->count + 32);
		writer_text(&ids, "{\"ok\":true,\"ids\":[");
		for (size_t i = 0; i < accepted->count; i++) {
			if (i > 0)
				writer_text(&ids, ",");
			writer_unsigned(&ids, accepted->jobs[i]->id);
			job_unref(accepted->jobs[i]);
		}
		writer_text(&ids, "]}");
		server_reply_message(accepted->slot, writer_finish(&ids));
	} else if (!accepted->has_wait) {
		server_reply(accepted->slot, json_pack("{s:b, s:I}", "ok", 1, "id", (json_int_t)last->id));
		job_unref(last);
	} else {
		/* The waiter answers at once when the job is already over (inline functions). */
		wait_for(daemon, accepted->slot, accepted->caller, WAITER_SUBMIT, &last, 1,
		         REQUEST_ALL_COMPLETED, accepted->wait);
	}
	principal_unref(accepted->caller);
	free(accepted);
}

static void op_submit(struct weftd *daemon, struct server_request *slot,
                      struct principal *caller, struct request *request,
                      struct problem *problem)
{
	if (admit(daemon, request->job_count, problem) != WEFT_OK) {
		reply_problem(slot, problem);
		return;
	}
	/* Named queues must exist: a misspelt name would otherwise make a queue of one. */
	for (size_t i = 0; i < request->job_count; i++) {
		struct job_schedule *schedule = request->jobs[i].schedule;
		if (schedule == NULL || schedule->queue_name == NULL)
			continue;
		schedule->queue = queues_find(schedule->queue_name);
		if (schedule->queue != NULL)
			continue;
		problem_set(problem, WEFT_EBADFIELD, "queue",
		            "no queue '%s'; make it first with queue.set (weft queue set %s --max N)",
		            schedule->queue_name, schedule->queue_name);
		if (request->batch)
			problem_in_batch(problem, (long)i);
		reply_problem(slot, problem);
		return;
	}
	/* Dependencies must exist now, so that no cycle can ever be made. */
	for (size_t i = 0; i < request->job_count; i++) {
		const struct job_schedule *schedule = request->jobs[i].schedule;
		for (size_t a = 0; schedule != NULL && a < schedule->after_count; a++) {
			/* Waiting on a job tells when it ended and how: the caller's only. */
			struct job *after = find_for(daemon, caller, schedule->after[a], problem);
			if (after != NULL) {
				job_unref(after);
				continue;
			}
			snprintf(problem->field, sizeof(problem->field), "after[%zu]", a);
			if (request->batch)
				problem_in_batch(problem, (long)i);
			reply_problem(slot, problem);
			return;
		}
	}
	uint64_t *bytes = NULL;
	uint64_t total_bytes = 0;
	if (admit_bytes(daemon, caller, request, &bytes, &total_bytes, problem) != WEFT_OK) {
		reply_problem(slot, problem);
		return;
	}
	if (admit_user(caller, request->job_count, problem) != WEFT_OK) {
		quota_give(QUOTA_BYTES, caller->uid, total_bytes);
		free(bytes);
		reply_problem(slot, problem);
		return;
	}
	/* Every job was checked by the decoder, so from here on all are accepted
	 * unless memory runs out (then none is: memory.h); they run, and the
	 * client hears of them, once the journal holds them. */
	memory_refusable_begin();
	struct accepted *accepted =
		memory_try_zalloc(sizeof(*accepted) + request->job_count * sizeof(struct job *));
	size_t made = 0;
	for (size_t i = 0; accepted != NULL && i < request->job_count; i++) {
		struct jobspec *spec = &request->jobs[i];
		accepted->jobs[i] = jobs_try_create(daemon->jobs, spec->function, spec->args,
		                                    spec->labels, spec->timeout, caller, spec->schedule);
		if (accepted->jobs[i] == NULL)
			break;
		/* Before the job is scheduled, which publishes it to its producer. */
		atomic_store_explicit(&accepted->jobs[i]->item_buffer, spec->buffer,
		                      memory_order_relaxed);
		spec->args = spec->labels = NULL; /* taken by the job */
		spec->schedule = NULL;
		jobs_add_bytes(daemon->jobs, accepted->jobs[i], bytes[i]);
		made++;
	}
	(void)memory_refusable_end();
	quota_give(QUOTA_PENDING, caller->uid, request->job_count); /* counted by jobs_create now */
	quota_give(QUOTA_BYTES, caller->uid, total_bytes);          /* and by jobs_add_bytes */
	free(bytes);
	if (made < request->job_count) {
		for (size_t i = 0; i < made; i++) {
			jobs_discard(daemon->jobs, accepted->jobs[i]);
			job_unref(accepted->jobs[i]);
		}
		free(accepted);
		problem_set(problem, WEFT_ENOMEM, NULL,
		            "weftd is out of memory and accepted none of these jobs; submit again "
		            "later, or fewer at once");
		reply_problem(slot, problem);
		return;
	}
	accepted->daemon = daemon;
	accepted->slot = slot;
	accepted->caller = principal_ref(caller);
	accepted->batch = request->batch;
	accepted->has_wait = request->has_wait;
	accepted->wait = request->wait;
	accepted->count = request->job_count;
	journal_accept(accepted->jobs, accepted->count, submit_committed, accepted);
}

static void op_result(struct weftd *daemon, struct server_request *slot,
                      const struct principal *caller, struct request *request,
                      struct problem *problem)
{
	double timeout = request->has_timeout ? request->timeout : -1;
	if (request->ids != NULL) {
		struct job **list;
		if (find_all(daemon, caller, request->ids, request->id_count, &list, problem) !=
		    WEFT_OK) {
			reply_problem(slot, problem);
			return;
		}
		wait_for(daemon, slot, caller, WAITER_RESULTS, list, request->id_count, REQUEST_ALL_COMPLETED,
		         timeout);
		free(list);
		return;
	}
	struct job *job = find_for(daemon, caller, request->id, problem);
	if (job == NULL) {
		reply_problem(slot, problem);
		return;
	}
	bool finished = job_state_finished(jobs_state(daemon->jobs, job));
	if (finished || timeout == 0) {
		json_t *reply = !finished             ? outcome_timeout_reply(daemon->jobs, job, 0)
		                : request->result_output ? outcome_reply(daemon->jobs, job)
		                                         : outcome_reply_without_output(daemon->jobs, job);
		server_reply(slot, reply);
		job_unref(job);
		return;
	}
	wait_for(daemon, slot, caller,
	         request->result_output ? WAITER_RESULT : WAITER_RESULT_WITHOUT_OUTPUT, &job, 1,
	         REQUEST_ALL_COMPLETED, timeout);
}

static void op_wait(struct weftd *daemon, struct server_request *slot,
                    const struct principal *caller, struct request *request,
                    struct problem *problem)
{
	struct job **list;
	if (find_all(daemon, caller, request->ids, request->id_count, &list, problem) != WEFT_OK) {
		reply_problem(slot, problem);
		return;
	}
	wait_for(daemon, slot, caller, request->op == REQUEST_AS_COMPLETED ? WAITER_AS_COMPLETED : WAITER_WAIT,
	         list, request->id_count,
	         request->op == REQUEST_AS_COMPLETED ? REQUEST_FIRST_COMPLETED : request->return_when,
	         request->has_timeout ? request->timeout : -1);
	free(list);
}

static json_t *op_future_new(struct weftd *daemon, struct server_request *slot,
                             struct principal *caller, struct request *request,
                             struct problem *problem)
{
	if (admit(daemon, 1, problem) != WEFT_OK || admit_user(caller, 1, problem) != WEFT_OK)
		return problem_to_reply(problem);
	json_t *labels = request->labels != NULL ? json_incref((json_t *)request->labels) : NULL;
	struct accepted *accepted = memory_zalloc(sizeof(*accepted) + sizeof(struct job *));
	accepted->daemon = daemon;
	accepted->slot = slot;
	accepted->caller = principal_ref(caller);
	accepted->future = true;
	accepted->count = 1;
	accepted->jobs[0] = jobs_create(daemon->jobs, &functions_future, json_object(), labels, 0,
	                                caller, NULL);
	quota_give(QUOTA_PENDING, caller->uid, 1); /* counted by jobs_create now */
	jobs_make_pending(daemon->jobs, accepted->jobs[0]);
	/* The id is given once the journal holds the future (submit_committed). */
	journal_accept(accepted->jobs, 1, submit_committed, accepted);
	return NULL;
}

static json_t *op_future_set(struct weftd *daemon, const struct principal *caller,
                             struct request *request, struct problem *problem)
{
	/* Whoever made the future decides it, or an admin. */
	struct job *job = find_for(daemon, caller, request->id, problem);
	if (job == NULL)
		return problem_to_reply(problem);
	json_t *reply = NULL;
	if (job->function != &functions_future) {
		problem_set(problem, WEFT_EBADFIELD, "id",
		            "job %llu runs '%s'; only ids made by future.new can be set",
		            (unsigned long long)job->id, functions_name_of(job->function));
	} else {
		bool done = request->result != NULL;
		enum job_state previous;
		bool set = jobs_finish(daemon->jobs, job, done ? JOB_DONE : JOB_FAILED,
		                       done ? json_incref((json_t *)request->result) : NULL,
		                       done ? NULL : json_incref((json_t *)request->error), &previous,
		                       NULL);
		if (set) {
			reply = json_pack("{s:b, s:I, s:s}", "ok", 1, "id", (json_int_t)job->id, "state",
			                  job_state_name(done ? JOB_DONE : JOB_FAILED));
		} else {
			problem_set(problem, WEFT_EALREADYSET, "id", "future %llu is already %s",
			            (unsigned long long)job->id, job_state_name(previous));
			problem->state = job_state_name(previous);
		}
	}
	if (reply == NULL) {
		problem->id = job->id;
		reply = problem_to_reply(problem);
	}
	job_unref(job);
	return reply;
}

static json_t *op_cancel(struct weftd *daemon, const struct principal *caller,
                         struct request *request, struct problem *problem)
{
	struct job *job = find_for(daemon, caller, request->id, problem);
	if (job == NULL)
		return problem_to_reply(problem);
	bool cancelled = runner_cancel(job, proto_job_error(PROTO_JOB_ERROR_CANCELLED), "job was cancelled");
	json_t *reply = json_pack("{s:b, s:b, s:s}", "ok", 1, "cancelled", cancelled, "state",
	                          job_state_name(jobs_state(daemon->jobs, job)));
	job_unref(job);
	return reply;
}

static json_t *op_status(struct weftd *daemon, const struct principal *caller,
                         struct request *request, struct problem *problem)
{
	struct job *job = find_for(daemon, caller, request->id, problem);
	if (job == NULL)
		return problem_to_reply(problem);
	json_t *reply = json_pack("{s:b, s:o}", "ok", 1, "job", jobs_to_json(daemon->jobs, job));
	job_unref(job);
	return reply;
}

static json_t *op_list(struct weftd *daemon, const struct principal *caller,
                       struct request *request)
{
	struct jobs_filter filter = {
		.viewer = caller,
		.state = request->state,
		.function = request->function,
		.labels = request->labels,
		.after = request->after,
		.before = request->before,
		.newest_first = request->newest_first,
		.limit = request->limit,
	};
	bool more;
	uint64_t next;
	json_t *list = jobs_list(daemon->jobs, &filter, &more, &next);
	return json_pack("{s:b, s:o, s:b, s:s, s:I}", "ok", 1, "jobs", list, "more", more, "order",
	                 request->newest_first ? "newest" : "oldest",
	                 request->newest_first ? "before" : "after", (json_int_t)next);
}

static long resident_kilobytes(void)
{
	FILE *statm = fopen("/proc/self/statm", "re");
	long pages_total = 0, pages_resident = 0;
	if (statm != NULL) {
		if (fscanf(statm, "%ld %ld", &pages_total, &pages_resident) != 2)
			pages_resident = 0;
		fclose(statm);
	}
	return pages_resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* stats.memory: what the process holds (resident), what the allocator has
 * handed out (allocated) and keeps mapped (allocator_resident), and what the
 * byte budget counts (jobs_bytes). */
static json_t *memory_stats(const struct jobs_counts *counts)
{
	struct memory_usage usage;
	memory_usage(&usage);
	json_t *memory = json_pack("{s:I, s:I, s:I, s:I, s:I}", "rss_kb",
	                           (json_int_t)resident_kilobytes(), "jobs_bytes",
	                           (json_int_t)counts->bytes, "retained_bytes",
	                           (json_int_t)counts->retained_bytes, "max_bytes",
	                           (json_int_t)counts->max_bytes, "purges",
	                           (json_int_t)usage.purges);
	if (usage.known) {
		json_object_set_new(memory, "allocated", json_integer((json_int_t)usage.allocated));
		json_object_set_new(memory, "allocator_resident",
		                    json_integer((json_int_t)usage.resident));
	}
	return memory;
}

/* stats.containment: the cgroup's, or the subreaper's when it stands in. */
static json_t *containment_stats(void)
{
	json_t *containment = cgroup_stats();
	json_t *subreaper = subreaper_stats();
	if (subreaper != NULL) {
		json_object_set_new(containment, "mode", json_string("subreaper"));
		json_object_update(containment, subreaper);
		json_decref(subreaper);
	}
	return containment;
}

static json_t *op_stats(struct weftd *daemon, struct server_request *slot,
                        const struct principal *caller)
{
	json_t *workers = json_array();
	for (int i = 0; i < workers_count(daemon->workers); i++) {
		struct workers_stats stats;
		workers_stats(workers_get(daemon->workers, i), &stats);
		json_array_append_new(
			workers,
			json_pack("{s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "id", i, "jobs_run",
		                  (json_int_t)stats.jobs_run, "tasks_run", (json_int_t)stats.tasks_run,
		                  "stolen_by", (json_int_t)stats.stolen_by, "stolen_from",
		                  (json_int_t)stats.stolen_from, "injected", (json_int_t)stats.injected,
		                  "queue_depth", (json_int_t)stats.queue_depth, "parks",
		                  (json_int_t)stats.parks, "wakes", (json_int_t)stats.wakes));
	}
	struct jobs_counts counts;
	jobs_counts(daemon->jobs, &counts);
	json_t *by_state = json_object();
	for (int state = 0; state < JOB_STATE_COUNT; state++)
		json_object_set_new(by_state, job_state_name((enum job_state)state),
		                    json_integer((json_int_t)counts.by_state[state]));
	json_object_set_new(by_state, "retained", json_integer((json_int_t)counts.retained));
	json_object_set_new(by_state, "submitted", json_integer((json_int_t)counts.submitted));
	struct slots *procs = exec_slots();
	struct threadpool_stats pool;
	threaded_stats(&pool);
	/* The caller's own use of its quotas, and how many users hold any: a
	 * stranger learns only the count. */
	json_t *quotas = json_pack(
		"{s:I, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}}", "users",
		(json_int_t)quota_users(), "limits", "pending",
		(json_int_t)quota_limit(QUOTA_PENDING), "waiters",
		(json_int_t)quota_limit(QUOTA_WAITERS), "connections",
		(json_int_t)quota_limit(QUOTA_CONNECTIONS), "bytes",
		(json_int_t)quota_limit(QUOTA_BYTES), "yours", "pending",
		(json_int_t)quota_held(QUOTA_PENDING, caller->uid), "waiters",
		(json_int_t)quota_held(QUOTA_WAITERS, caller->uid), "connections",
		(json_int_t)quota_held(QUOTA_CONNECTIONS, caller->uid), "bytes",
		(json_int_t)quota_held(QUOTA_BYTES, caller->uid));
	json_object_set_new(json_object_get(quotas, "limits"), "item_bytes",
	                    json_integer((json_int_t)quota_limit(QUOTA_ITEM_BYTES)));
	json_object_set_new(json_object_get(quotas, "yours"), "item_bytes",
	                    json_integer((json_int_t)quota_held(QUOTA_ITEM_BYTES, caller->uid)));
	struct events_stats feed;
	events_stats(caller->uid, &feed);
	json_t *events = json_pack("{s:I, s:I, s:I, s:I, s:I}", "appended", (json_int_t)feed.appended,
	                           "held", (json_int_t)feed.held, "bytes", (json_int_t)feed.bytes,
	                           "dropped", (json_int_t)feed.dropped, "epoch",
	                           (json_int_t)feed.epoch);
	/* Each user's share, how many hold events, and the caller's own lane. */
	json_object_set_new(events, "users", json_integer((json_int_t)feed.users));
	json_object_set_new(events, "per_user",
	                    json_pack("{s:I, s:I}", "max", (json_int_t)feed.share_entries,
	                              "max_bytes", (json_int_t)feed.share_bytes));
	json_object_set_new(events, "yours",
	                    json_pack("{s:I, s:I, s:I}", "held", (json_int_t)feed.yours_held,
	                              "bytes", (json_int_t)feed.yours_bytes, "dropped",
	                              (json_int_t)feed.yours_dropped));
	json_t *stats = json_pack("{s:b, s:s, s:f, s:o, s:o, s:I, s:{s:i, s:i, s:i, s:i}, "
	                 "s:{s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:o, s:o, s:o}",
	                 "ok", 1, "version", PROTO_SOFTWARE_VERSION, "uptime",
	                 now_monotonic() - daemon->started, "workers", workers, "jobs", by_state,
	                 "waiters", (json_int_t)(waiters_count(daemon->waiters) + output_waiting()), "procs", "limit",
	                 (int)slots_limit(procs), "running", (int)slots_held(procs), "queued",
	                 (int)slots_queued(procs), "queued_users", (int)slots_queued_keys(procs),
	                 "threads", "size", (json_int_t)pool.threads, "busy",
	                 (json_int_t)pool.busy, "queued", (json_int_t)pool.queued, "queued_users",
	                 (json_int_t)pool.queued_keys, "held_by_cancelled",
	                 (json_int_t)pool.held_by_cancelled,
	                 "memory", memory_stats(&counts), "housekeeping",
	                 weftd_housekeeping_stats(daemon, server_request_server(slot)),
	                 "containment", containment_stats(), "quotas", quotas, "journal",
	                 journal_stats());
	json_object_set_new(stats, "schedule",
	                    json_pack("{s:I}", "timers", (json_int_t)schedule_timers_armed()));
	json_object_set_new(stats, "events", events);
	/* The request threads and what waits for them (server.h). */
	struct server_request_stats requests;
	server_request_stats(server_request_server(slot), &requests);
	json_object_set_new(stats, "requests",
	                    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "threads",
	                              (json_int_t)requests.threads, "share",
	                              (json_int_t)requests.share, "running",
	                              (json_int_t)requests.running, "queued",
	                              (json_int_t)requests.queued, "queued_users",
	                              (json_int_t)requests.queued_users, "refused",
	                              (json_int_t)requests.refused));
	/* Bytes of output windows: all users' together (a count, as for quotas) and the caller's. */
	json_object_set_new(stats, "output",
	                    json_pack("{s:I, s:I, s:I, s:I}", "held_bytes",
	                              (json_int_t)outlog_held_total(), "yours_bytes",
	                              (json_int_t)outlog_held(caller->uid), "yours_spool_bytes",
	                              (json_int_t)spool_held(caller->uid), "readers_waiting",
	                              (json_int_t)output_waiting()));
	/* The IO built-ins' connection pools, every worker's together (counts only). */
	json_object_set_new(stats, "io_pools", pool_stats());
	return stats;
}

/* Named queues are configuration: root and admins only (principal.h, rule 4). */
static json_t *op_queue_change(const struct principal *caller, struct request *request,
                               struct problem *problem)
{
	if (!principal_is_admin(caller)) {
		problem_set(problem, WEFT_EPERM, NULL,
		            "changing named queues is for root and members of --admin-group; ask "
		            "the administrator");
		return problem_to_reply(problem);
	}
	if (request->op == REQUEST_QUEUE_SET) {
		if (queues_set(request->function, (unsigned)request->limit) != WEFT_OK) {
			problem_set(problem, WEFT_EINTERNAL, NULL, "cannot make queue '%s'",
			            request->function);
			return problem_to_reply(problem);
		}
		journal_queues_changed();
		events_queue(request->function, "set", (long)request->limit);
		return json_pack("{s:b}", "ok", 1);
	}
	if (queues_pause(request->function, request->op == REQUEST_QUEUE_PAUSE) != WEFT_OK) {
		problem_set(problem, WEFT_EBADFIELD, "name", "no queue '%s'; 'queues' lists them",
		            request->function);
		return problem_to_reply(problem);
	}
	journal_queues_changed();
	events_queue(request->function, request->op == REQUEST_QUEUE_PAUSE ? "pause" : "resume", 0);
	return json_pack("{s:b}", "ok", 1);
}

/* ---- next: a job's items ---- */

/* A `next` request: the source of its long poll (waiters.h). Owned by the
 * waiter once started (released by next_release), else by op_next. */
struct next_poll {
	struct weftd *daemon;
	struct job *job;      /* a reference */
	struct items *items;  /* the job's, borrowed while the reference lasts */
	uint64_t index;
	size_t max;           /* 0: the one-item form */
};

static json_t *next_reply(void *context, bool timed_out)
{
	struct next_poll *poll = context;
	struct weftd *daemon = poll->daemon;
	json_t *list = NULL;
	uint64_t count, first;
	/* Half the message limit leaves room for the envelope and the escapes. */
	enum items_read read =
		items_read(poll->items, poll->index, poll->max > 0 ? poll->max : 1,
	                   daemon->options.max_message / 2, &list, &count, &first);
	struct problem problem;
	problem_init(&problem);
	json_t *reply;
	switch (read) {
	case ITEMS_READ_ITEMS:
		if (poll->max > 0)
			return json_pack("{s:b, s:I, s:I, s:o, s:I}", "ok", 1, "id",
			                 (json_int_t)poll->job->id, "index", (json_int_t)poll->index,
			                 "items", list, "count", (json_int_t)count);
		reply = json_pack("{s:b, s:I, s:I, s:O}", "ok", 1, "id", (json_int_t)poll->job->id,
		                  "index", (json_int_t)poll->index, "item", json_array_get(list, 0));
		json_decref(list);
		return reply;
	case ITEMS_READ_END:
		reply = outcome_reply(daemon->jobs, poll->job);
		json_object_set_new(reply, "done", json_true());
		json_object_set_new(reply, "count", json_integer((json_int_t)count));
		return reply;
	case ITEMS_READ_GONE:
		problem_set(&problem, WEFT_EITEMGONE, "index",
		            "item %llu of job %llu was dropped: reading an item drops the ones before "
		            "it, and the first item held is %llu",
		            (unsigned long long)poll->index, (unsigned long long)poll->job->id,
		            (unsigned long long)first);
		problem.id = poll->job->id;
		reply = problem_to_reply(&problem);
		json_object_set_new(reply, "first", json_integer((json_int_t)first));
		return reply;
	case ITEMS_READ_NOT_YET:
		break;
	}
	if (timed_out && atomic_load(&daemon->shutting_down)) {
		problem_set(&problem, WEFT_ESHUTDOWN, NULL,
		            "weftd is shutting down: item %llu of job %llu did not come; ask the "
		            "next weftd (the job is %s)",
		            (unsigned long long)poll->index, (unsigned long long)poll->job->id,
		            job_state_name(jobs_state(daemon->jobs, poll->job)));
		problem.id = poll->job->id;
		return problem_to_reply(&problem);
	}
	problem_set(&problem, WEFT_ETIMEOUT, NULL,
	            "job %llu has yielded %llu items and is %s: item %llu did not come in time",
	            (unsigned long long)poll->job->id, (unsigned long long)count,
	            job_state_name(jobs_state(daemon->jobs, poll->job)),
	            (unsigned long long)poll->index);
	problem.id = poll->job->id;
	problem.state = job_state_name(jobs_state(daemon->jobs, poll->job));
	return problem_to_reply(&problem);
}

static bool next_watch(void *context, struct watch *watch)
{
	struct next_poll *poll = context;
	watch->key = poll->index;
	return items_watch(poll->items, watch);
}

static bool next_unwatch(void *context, struct watch *watch)
{
	struct next_poll *poll = context;
	return items_unwatch(poll->items, watch);
}

static void next_release(void *context)
{
	struct next_poll *poll = context;
	job_unref(poll->job);
	free(poll);
}

static const struct waiter_source next_source = {
	.watch = next_watch,
	.unwatch = next_unwatch,
	.reply = next_reply,
	.release = next_release,
};

/* Items are their job's: only who may see the job may read them (principal.h). */
static void op_next(struct weftd *daemon, struct server_request *slot,
                    const struct principal *caller, struct request *request,
                    struct problem *problem)
{
	struct job *job = find_for(daemon, caller, request->id, problem);
	if (job == NULL) {
		reply_problem(slot, problem);
		return;
	}
	struct next_poll *poll = memory_zalloc(sizeof(*poll));
	poll->daemon = daemon;
	poll->job = job;
	poll->items = jobs_items(daemon->jobs, job);
	poll->index = request->index;
	poll->max = request->limit;
	double wait = request->has_timeout ? request->timeout : -1;
	/* Answered at once when the item is there (the common case of a reader
	 * behind its producer), without a waiter. */
	uint64_t count, first;
	json_t *list = NULL;
	enum items_read read = items_read(poll->items, poll->index, 1, 1, &list, &count, &first);
	json_decref(list);
	if (read != ITEMS_READ_NOT_YET || wait == 0) {
		server_reply(slot, next_reply(poll, true));
		next_release(poll);
		return;
	}
	if (waiters_start_source(daemon->waiters, slot, caller->uid, &next_source, poll, wait,
	                         problem) != WEFT_OK) {
		next_release(poll);
		reply_problem(slot, problem);
	}
}

/* ---- events: the feed of job and queue changes ---- */

struct events_poll {
	struct events_filter filter; /* its ids and function are owned copies */
	uint64_t epoch, after;
	size_t limit;
};

static int compare_ids(const void *left, const void *right)
{
	uint64_t a = *(const uint64_t *)left, b = *(const uint64_t *)right;
	return a < b ? -1 : a > b;
}

static void events_poll_free(struct events_poll *poll)
{
	free((void *)poll->filter.ids);
	free((void *)poll->filter.function);
	free(poll);
}

static json_t *events_reply(void *context, bool timed_out)
{
	(void)timed_out;
	struct events_poll *poll = context;
	json_t *list = NULL;
	uint64_t last = 0;
	struct problem problem;
	problem_init(&problem);
	char cursor[EVENTS_CURSOR_SIZE];
	int rv = events_read(poll->epoch, poll->after, &poll->filter, poll->limit, &list, &last,
	                     &problem);
	if (rv != WEFT_OK) {
		json_t *reply = problem_to_reply(&problem);
		if (rv == WEFT_ECURSOREXPIRED) {
			events_cursor(last, cursor);
			json_object_set_new(reply, "oldest", json_string(cursor));
		}
		return reply;
	}
	events_cursor(last, cursor);
	return json_pack("{s:b, s:o, s:s}", "ok", 1, "events", list, "cursor", cursor);
}

static bool events_source_watch(void *context, struct watch *watch)
{
	struct events_poll *poll = context;
	watch->key = poll->after;
	watch->data = &poll->filter;
	return events_watch(watch);
}

static bool events_source_unwatch(void *context, struct watch *watch)
{
	(void)context;
	return events_unwatch(watch);
}

static void events_source_release(void *context)
{
	events_poll_free(context);
}

static const struct waiter_source events_source = {
	.watch = events_source_watch,
	.unwatch = events_source_unwatch,
	.reply = events_reply,
	.release = events_source_release,
};

static void op_events(struct weftd *daemon, struct server_request *slot,
                      const struct principal *caller, struct request *request,
                      struct problem *problem)
{
	/* Before the feed is read: the cursors this request hands out must be
	 * ones the journal keeps (journal_keep_events). */
	journal_keep_events();
	struct events_poll *poll = memory_zalloc(sizeof(*poll));
	poll->filter.viewer = caller->uid;
	poll->filter.all = principal_is_admin(caller);
	poll->filter.type = request->event_type;
	if (request->ids != NULL) {
		uint64_t *ids = memory_alloc(request->id_count * sizeof(*ids));
		memcpy(ids, request->ids, request->id_count * sizeof(*ids));
		qsort(ids, request->id_count, sizeof(*ids), compare_ids); /* events.h wants them sorted */
		poll->filter.ids = ids;
		poll->filter.id_count = request->id_count;
	}
	if (request->function != NULL)
		poll->filter.function = memory_strdup(request->function);
	poll->epoch = request->after_epoch;
	poll->after = request->after;
	poll->limit = request->limit;
	double wait = request->has_timeout ? request->timeout : 0;
	/* Read at once; wait only when nothing the reader may see is there. */
	json_t *reply = events_reply(poll, false);
	json_t *events = json_object_get(reply, "events");
	if (wait == 0 || events == NULL || json_array_size(events) > 0) {
		server_reply(slot, reply);
		events_poll_free(poll);
		return;
	}
	/* Read on from where this read looked to. */
	uint64_t epoch;
	if (events_parse_cursor(json_string_value(json_object_get(reply, "cursor")), &epoch,
	                        &poll->after) == 0)
		poll->epoch = epoch;
	json_decref(reply);
	if (waiters_start_source(daemon->waiters, slot, caller->uid, &events_source, poll, wait,
	                         problem) != WEFT_OK) {
		events_poll_free(poll);
		reply_problem(slot, problem);
	}
}

void ops_handle(void *context, struct server_request *slot, const void *body, size_t size)
{
	struct weftd *daemon = context;
	struct problem problem;
	problem_init(&problem);
	if (size > daemon->options.max_message) {
		problem_set(&problem, WEFT_ETOOLARGE, NULL,
		            "request of %zu bytes exceeds the daemon's limit of %zu (--max-message)", size,
		            daemon->options.max_message);
		reply_problem(slot, &problem);
		return;
	}
	struct request request;
	if (request_decode(body, size, &request, &problem) != WEFT_OK) {
		reply_problem(slot, &problem);
		return;
	}
	/* Every op but ping acts for somebody (principal.h, rule 1). */
	struct principal *caller = server_request_principal(slot);
	if (caller == NULL && request.op != REQUEST_PING) {
		problem_set(&problem, WEFT_EPERM, NULL,
		            "this connection has no identity (it was closed); connect again");
		reply_problem(slot, &problem);
		request_clear(&request);
		return;
	}
	json_t *reply = NULL;
	switch (request.op) {
	case REQUEST_PING:
		reply = op_ping(daemon);
		break;
	case REQUEST_SUBMIT:
		op_submit(daemon, slot, caller, &request, &problem);
		break;
	case REQUEST_STATUS:
		reply = op_status(daemon, caller, &request, &problem);
		break;
	case REQUEST_RESULT:
		op_result(daemon, slot, caller, &request, &problem);
		break;
	case REQUEST_WAIT:
	case REQUEST_AS_COMPLETED:
		op_wait(daemon, slot, caller, &request, &problem);
		break;
	case REQUEST_CANCEL:
		reply = op_cancel(daemon, caller, &request, &problem);
		break;
	case REQUEST_LIST:
		reply = op_list(daemon, caller, &request);
		break;
	case REQUEST_FUNCTIONS:
		reply = json_pack("{s:b, s:o}", "ok", 1, "functions", functions_to_json());
		break;
	case REQUEST_STATS:
		reply = op_stats(daemon, slot, caller);
		break;
	case REQUEST_FUTURE_NEW:
		reply = op_future_new(daemon, slot, caller, &request, &problem);
		break;
	case REQUEST_FUTURE_SET:
		reply = op_future_set(daemon, caller, &request, &problem);
		break;
	case REQUEST_QUEUE_SET:
	case REQUEST_QUEUE_PAUSE:
	case REQUEST_QUEUE_RESUME:
		reply = op_queue_change(caller, &request, &problem);
		break;
	case REQUEST_QUEUES:
		reply = json_pack("{s:b, s:o}", "ok", 1, "queues", queues_to_json());
		break;
	case REQUEST_NEXT:
		op_next(daemon, slot, caller, &request, &problem);
		break;
	case REQUEST_EVENTS:
		op_events(daemon, slot, caller, &request, &problem);
		break;
	case REQUEST_OUTPUT: {
		struct job *job = find_for(daemon, caller, request.id, &problem);
		if (job == NULL)
			reply_problem(slot, &problem);
		else
			output_read(slot, caller, job, job->function == &exec_function, &request);
		break;
	}
	case REQUEST_INPUT: {
		struct job *job = find_for(daemon, caller, request.id, &problem);
		if (job == NULL)
			reply_problem(slot, &problem);
		else
			output_input(slot, job, job->function == &exec_function, &request);
		break;
	}
	case REQUEST_OP_COUNT:
		break;
	}
	/* A change the client is told of must be in the journal first. */
	bool durable = request.op == REQUEST_CANCEL || request.op == REQUEST_FUTURE_SET ||
	               request.op == REQUEST_QUEUE_SET || request.op == REQUEST_QUEUE_PAUSE ||
	               request.op == REQUEST_QUEUE_RESUME;
	if (reply != NULL && durable)
		journal_reply(slot, reply);
	else if (reply != NULL)
		server_reply(slot, reply);
	principal_unref(caller);
	request_clear(&request);
}

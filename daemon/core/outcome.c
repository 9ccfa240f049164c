/* See outcome.h. */
#include "daemon/core/outcome.h"

#include <stdlib.h>

#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/base/writer.h"

/* The members describing a job's outcome, added to object. */
static void describe(struct jobs *jobs, struct job *job, json_t *object)
{
	struct job_snapshot snapshot;
	jobs_snapshot(jobs, job, &snapshot);
	json_object_set_new(object, "id", json_integer((json_int_t)job->id));
	json_object_set_new(object, "state", json_string(job_state_name(snapshot.state)));
	if (snapshot.state == JOB_DONE)
		json_object_set(object, "result", snapshot.result);
	else if (snapshot.error != NULL)
		json_object_set(object, "error", snapshot.error);
	jobs_snapshot_clear(&snapshot);
}

json_t *outcome_reply(struct jobs *jobs, struct job *job)
{
	json_t *reply = json_pack("{s:b}", "ok", 1);
	describe(jobs, job, reply);
	return reply;
}

static bool has_output(const json_t *value)
{
	return json_is_object(value) &&
	       (json_object_get(value, "stdout") != NULL || json_object_get(value, "stderr") != NULL);
}

/* A copy of object (shared with the job, never changed) without "stdout"
 * and "stderr"; shallow: the other members are shared, not copied. NULL
 * when memory ran out. */
static json_t *without_output(const json_t *object)
{
	json_t *copy = json_copy((json_t *)object);
	if (copy != NULL) {
		json_object_del(copy, "stdout");
		json_object_del(copy, "stderr");
	}
	return copy;
}

json_t *outcome_reply_without_output(struct jobs *jobs, struct job *job)
{
	json_t *reply = outcome_reply(jobs, job);
	/* Out of memory for a copy: the whole reply, which is still right. */
	json_t *result = json_object_get(reply, "result");
	json_t *copy;
	if (has_output(result) && (copy = without_output(result)) != NULL)
		json_object_set_new(reply, "result", copy);
	json_t *error = json_object_get(reply, "error");
	json_t *details = json_object_get(error, "details");
	if (has_output(details) && (copy = json_copy(error)) != NULL) {
		json_t *brief = without_output(details);
		if (brief != NULL)
			json_object_set_new(copy, "details", brief);
		json_object_set_new(reply, "error", copy);
	}
	return reply;
}

json_t *outcome_timeout_reply(struct jobs *jobs, struct job *job, double waited)
{
	struct job_snapshot snapshot;
	jobs_snapshot(jobs, job, &snapshot);
	struct problem problem;
	problem_init(&problem);
	problem_set(&problem, WEFT_ETIMEOUT, NULL, "job %llu is still %s after %g s",
	            (unsigned long long)job->id, job_state_name(snapshot.state), waited);
	problem.id = job->id;
	problem.state = job_state_name(snapshot.state);
	jobs_snapshot_clear(&snapshot);
	return problem_to_reply(&problem);
}

struct nng_msg *outcome_results_message(struct jobs *jobs, struct job *const *list, size_t count)
{
	struct writer writer;
	writer_init(&writer, 64 * count + 32);
	writer_text(&writer, "{\"ok\":true,\"results\":[");
	for (size_t i = 0; i < count; i++) {
		struct job_snapshot snapshot;
		jobs_snapshot(jobs, list[i], &snapshot);
		writer_text(&writer, i == 0 ? "{\"id\":" : ",{\"id\":");
		writer_unsigned(&writer, list[i]->id);
		writer_text(&writer, ",\"state\":\"");
		writer_text(&writer, job_state_name(snapshot.state));
		if (snapshot.state == JOB_DONE) {
			writer_text(&writer, "\",\"result\":");
			writer_json(&writer, snapshot.result);
		} else if (snapshot.error != NULL) {
			writer_text(&writer, "\",\"error\":");
			writer_json(&writer, snapshot.error);
		} else {
			writer_text(&writer, "\"");
		}
		writer_text(&writer, "}");
		jobs_snapshot_clear(&snapshot);
	}
	writer_text(&writer, "]}");
	return writer_finish(&writer);
}

json_t *outcome_wait_reply(struct jobs *jobs, struct job *const *list, size_t count)
{
	json_t *done = json_array();
	json_t *pending = json_array();
	for (size_t i = 0; i < count; i++) {
		struct job_snapshot snapshot;
		jobs_snapshot(jobs, list[i], &snapshot);
		json_array_append_new(job_state_finished(snapshot.state) ? done : pending,
		                      json_integer((json_int_t)list[i]->id));
		jobs_snapshot_clear(&snapshot);
	}
	return json_pack("{s:b, s:o, s:o}", "ok", 1, "done", done, "pending", pending);
}

struct finished_job {
	uint64_t id;
	uint64_t order; /* its place among all finishes (jobs.h) */
};

static int by_finish_order(const void *left, const void *right)
{
	const struct finished_job *a = left, *b = right;
	return a->order < b->order ? -1 : a->order > b->order;
}

json_t *outcome_completed_reply(struct jobs *jobs, struct job *const *list, size_t count)
{
	struct finished_job *finished = memory_alloc((count > 0 ? count : 1) * sizeof(*finished));
	size_t done = 0;
	json_t *pending = json_array();
	for (size_t i = 0; i < count; i++) {
		struct job_snapshot snapshot;
		jobs_snapshot(jobs, list[i], &snapshot);
		if (job_state_finished(snapshot.state))
			finished[done++] = (struct finished_job){list[i]->id, snapshot.finish_order};
		else
			json_array_append_new(pending, json_integer((json_int_t)list[i]->id));
		jobs_snapshot_clear(&snapshot);
	}
	qsort(finished, done, sizeof(*finished), by_finish_order);
	json_t *ids = json_array();
	for (size_t i = 0; i < done; i++)
		json_array_append_new(ids, json_integer((json_int_t)finished[i].id));
	free(finished);
	return json_pack("{s:b, s:o, s:o}", "ok", 1, "done", ids, "pending", pending);
}

json_t *outcome_shutdown_reply(struct jobs *jobs, struct job *job)
{
	struct job_snapshot snapshot;
	jobs_snapshot(jobs, job, &snapshot);
	struct problem problem;
	problem_init(&problem);
	problem_set(&problem, WEFT_ESHUTDOWN, NULL, "weftd is shutting down; job %llu is %s",
	            (unsigned long long)job->id, job_state_name(snapshot.state));
	problem.id = job->id;
	problem.state = job_state_name(snapshot.state);
	jobs_snapshot_clear(&snapshot);
	return problem_to_reply(&problem);
}

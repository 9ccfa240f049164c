/*
 * Job specs from JSON; see jobspec.h.
 */
#include "daemon/core/jobspec.h"

#include <stdio.h>
#include <string.h>

#include "daemon/base/fields.h"
#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/base/memory.h"
#include "daemon/base/now.h"
#include "daemon/base/problem.h"
#include "daemon/core/queues.h"

/* Out of memory in a refusable region (memory.h): the request is refused. */
static int no_memory(struct problem *problem)
{
	return problem_set(problem, WEFT_ENOMEM, NULL,
	                   "weftd is out of memory and did nothing of this request; try again "
	                   "later, or send a smaller one");
}

static int decode_schedule(const json_t *object, struct job_schedule **out,
                           struct problem *problem)
{
	bool any = false;
	static const char *const schedule_fields[] = {JOBSPEC_SCHEDULE_FIELDS, NULL};
	for (const char *const *name = schedule_fields; *name != NULL; name++)
		any = any || json_object_get(object, *name) != NULL;
	if (!any)
		return WEFT_OK;
	struct job_schedule *schedule = memory_try_zalloc(sizeof(*schedule));
	if (schedule == NULL)
		return no_memory(problem);
	schedule->retry_backoff = 1;
	schedule->retry_backoff_max = 60;
	int rv = WEFT_OK;
	json_t *value;
	if ((value = json_object_get(object, "after")) != NULL) {
		if (!json_is_array(value) || json_array_size(value) == 0 ||
		    json_array_size(value) > JOBSPEC_MAX_AFTER) {
			rv = problem_set(problem, WEFT_EBADFIELD, "after",
			                 "field 'after' must be an array of 1 to %d job ids",
			                 JOBSPEC_MAX_AFTER);
			goto fail;
		}
		schedule->after_count = json_array_size(value);
		schedule->after = memory_try_alloc(schedule->after_count * sizeof(*schedule->after));
		if (schedule->after == NULL) {
			rv = no_memory(problem);
			goto fail;
		}
		for (size_t i = 0; i < schedule->after_count; i++) {
			char field[32];
			snprintf(field, sizeof(field), "after[%zu]", i);
			if ((rv = fields_id(json_array_get(value, i), field, &schedule->after[i], problem)) !=
			    WEFT_OK)
				goto fail;
		}
	}
	if ((value = json_object_get(object, "after_policy")) != NULL) {
		const char *policy = json_is_string(value) ? json_string_value(value) : "";
		if (strcmp(policy, "always") != 0 && strcmp(policy, "success") != 0) {
			rv = problem_set(problem, WEFT_EBADFIELD, "after_policy",
			                 "field 'after_policy' must be \"success\" or \"always\"");
			goto fail;
		}
		schedule->after_always = strcmp(policy, "always") == 0;
	}
	json_t *delay = json_object_get(object, "delay");
	json_t *at = json_object_get(object, "at");
	if (delay != NULL && at != NULL) {
		rv = problem_set(problem, WEFT_EBADFIELD, "delay", "give 'delay' or 'at', not both");
		goto fail;
	}
	double seconds;
	if (delay != NULL) {
		if ((rv = fields_seconds(delay, "delay", false, &seconds, problem)) != WEFT_OK)
			goto fail;
		schedule->run_at = now_wall() + seconds;
	}
	if (at != NULL && (rv = fields_time(at, "at", &schedule->run_at, problem)) != WEFT_OK)
		goto fail;
	if ((value = json_object_get(object, "retries")) != NULL) {
		if (!json_is_integer(value) || json_integer_value(value) < 0 ||
		    json_integer_value(value) > JOBSPEC_MAX_RETRIES) {
			rv = problem_set(problem, WEFT_EBADFIELD, "retries",
			                 "field 'retries' must be an integer from 0 to %d",
			                 JOBSPEC_MAX_RETRIES);
			goto fail;
		}
		schedule->retries = (unsigned)json_integer_value(value);
	}
	if ((value = json_object_get(object, "retry_backoff")) != NULL &&
	    (rv = fields_seconds(value, "retry_backoff", false, &schedule->retry_backoff, problem)) !=
	            WEFT_OK)
		goto fail;
	if ((value = json_object_get(object, "retry_backoff_max")) != NULL &&
	    (rv = fields_seconds(value, "retry_backoff_max", false, &schedule->retry_backoff_max,
	                      problem)) != WEFT_OK)
		goto fail;
	if (schedule->retry_backoff_max < schedule->retry_backoff) {
		rv = problem_set(problem, WEFT_EBADFIELD, "retry_backoff_max",
		                 "field 'retry_backoff_max' must not be less than 'retry_backoff'");
		goto fail;
	}
	if ((value = json_object_get(object, "retry_on")) != NULL) {
		bool good = json_is_array(value) && json_array_size(value) > 0 &&
		            json_array_size(value) <= JOBSPEC_MAX_RETRY_ON;
		for (size_t i = 0; good && i < json_array_size(value); i++)
			good = json_is_string(json_array_get(value, i)) &&
			       json_string_length(json_array_get(value, i)) > 0;
		if (!good) {
			rv = problem_set(problem, WEFT_EBADFIELD, "retry_on",
			                 "field 'retry_on' must be an array of 1 to %d error types, like "
			                 "[\"ExitStatus\", \"Timeout\"]",
			                 JOBSPEC_MAX_RETRY_ON);
			goto fail;
		}
		schedule->retry_on = json_incref(value);
	}
	if ((value = json_object_get(object, "deadline")) != NULL &&
	    (rv = fields_time(value, "deadline", &schedule->deadline, problem)) != WEFT_OK)
		goto fail;
	if ((value = json_object_get(object, "priority")) != NULL) {
		if (!json_is_integer(value) || json_integer_value(value) < -JOBSPEC_MAX_PRIORITY ||
		    json_integer_value(value) > JOBSPEC_MAX_PRIORITY) {
			rv = problem_set(problem, WEFT_EBADFIELD, "priority",
			                 "field 'priority' must be an integer from %d to %d (higher first)",
			                 -JOBSPEC_MAX_PRIORITY, JOBSPEC_MAX_PRIORITY);
			goto fail;
		}
		schedule->priority = (int)json_integer_value(value);
	}
	if ((value = json_object_get(object, "queue")) != NULL) {
		if (!json_is_string(value) || json_string_length(value) == 0 ||
		    json_string_length(value) > QUEUES_NAME_MAX) {
			rv = problem_set(problem, WEFT_EBADFIELD, "queue",
			                 "field 'queue' must be a queue name of 1 to %d bytes",
			                 QUEUES_NAME_MAX);
			goto fail;
		}
		/* The queue itself is looked up when the job is accepted (ops.c). */
		schedule->queue_name = memory_try_strdup(json_string_value(value));
		if (schedule->queue_name == NULL) {
			rv = no_memory(problem);
			goto fail;
		}
	}
	if ((value = json_object_get(object, "on_interrupt")) != NULL) {
		const char *policy = json_is_string(value) ? json_string_value(value) : "";
		if (strcmp(policy, "fail") != 0 && strcmp(policy, "retry") != 0) {
			rv = problem_set(problem, WEFT_EBADFIELD, "on_interrupt",
			                 "field 'on_interrupt' must be \"fail\" or \"retry\"");
			goto fail;
		}
		schedule->retry_interrupted = strcmp(policy, "retry") == 0;
	}
	*out = schedule;
	return WEFT_OK;

fail:
	job_schedule_free(schedule);
	return rv;
}

int jobspec_decode_fields(const json_t *object, struct jobspec *job, struct problem *problem)
{
	int rv;
	memset(job, 0, sizeof(*job));
	json_t *fn = json_object_get(object, "fn");
	if (fn == NULL || !json_is_string(fn))
		return problem_set(problem, WEFT_EBADFIELD, "fn",
		                   "field 'fn' must be the name of a function (a string)");
	const struct function *function = functions_find(json_string_value(fn));
	if (function == NULL) {
		char names[256];
		functions_names(names, sizeof(names));
		return problem_set(problem, WEFT_EUNKNOWNFN, "fn", "no function '%.64s'; there are: %s",
		                   json_string_value(fn), names);
	}
	json_t *args = json_object_get(object, "args");
	if (args != NULL && !json_is_object(args))
		return problem_set(problem, WEFT_EBADFIELD, "args",
		                   "field 'args' must be an object of the function's arguments");
	json_t *timeout = json_object_get(object, "timeout");
	double timeout_seconds = 0;
	if (timeout != NULL &&
	    (rv = fields_seconds(timeout, "timeout", true, &timeout_seconds, problem)) != WEFT_OK)
		return rv;
	json_t *labels = json_object_get(object, "labels");
	if (labels != NULL && (rv = fields_labels(labels, "labels", problem)) != WEFT_OK)
		return rv;
	json_t *buffer = json_object_get(object, "buffer");
	if (buffer != NULL && (!json_is_integer(buffer) || json_integer_value(buffer) < 1 ||
	                       json_integer_value(buffer) > JOBSPEC_MAX_BUFFER))
		return problem_set(problem, WEFT_EBADFIELD, "buffer",
		                   "field 'buffer' must be an integer from 1 to %d: how many unread "
		                   "items the job may yield ahead of its reader before it is paused",
		                   JOBSPEC_MAX_BUFFER);
	struct job_schedule *schedule = NULL;
	if ((rv = decode_schedule(object, &schedule, problem)) != WEFT_OK)
		return rv;
	json_t *empty = NULL;
	if (args == NULL && (args = empty = json_object()) == NULL) {
		job_schedule_free(schedule);
		return no_memory(problem);
	}
	/* The checks are the functions' own code, which expects allocations
	 * never to fail: outside the caller's refusable region (memory.h). */
	unsigned refusable = memory_refusable_suspend();
	rv = function->check(function, args, problem);
	memory_refusable_resume(refusable);
	if (rv != WEFT_OK) {
		json_decref(empty);
		job_schedule_free(schedule);
		return rv;
	}
	job->schedule = schedule;
	job->function = function;
	job->args = empty != NULL ? empty : json_incref(args);
	job->labels = json_incref(labels);
	job->timeout = timeout_seconds;
	job->buffer = buffer != NULL ? (unsigned)json_integer_value(buffer) : 0;
	return WEFT_OK;
}

int jobspec_decode(const json_t *object, struct jobspec *job, struct problem *problem)
{
	static const char *const job_fields[] = {JOBSPEC_FIELDS, JOBSPEC_SCHEDULE_FIELDS, NULL};
	memset(job, 0, sizeof(*job));
	if (!json_is_object(object))
		return problem_set(problem, WEFT_EBADFIELD, "", "each job must be an object");
	int rv = fields_check(object, job_fields, false, "a job", problem);
	if (rv != WEFT_OK)
		return rv;
	return jobspec_decode_fields(object, job, problem);
}

void jobspec_clear(struct jobspec *job)
{
	json_decref(job->args);
	json_decref(job->labels);
	job_schedule_free(job->schedule);
	memset(job, 0, sizeof(*job));
}

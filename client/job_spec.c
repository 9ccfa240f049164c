/* The job spec; see job_spec.h and weft/client.h. */
#include "client/job_spec.h"

#include <math.h>
#include <string.h>

#include "client/allocator.h"
#include "client/last_error.h"

/* The protocol's limits, checked here so that a mistake is caught before a
 * round trip and named in the caller's words. */
#define JOB_SPEC_MAX_ID (1ULL << 53)
#define JOB_SPEC_MAX_AFTER 1000
#define JOB_SPEC_MAX_RETRIES 100
#define JOB_SPEC_MAX_SECONDS 315360000.0 /* ten years: the longest duration weftd takes */
#define JOB_SPEC_MAX_TYPE_BYTES 64

struct weft_job_spec {
	char *fn;       /* owned */
	json_t *args;   /* own reference, or NULL for {} */
	double timeout; /* seconds; 0 for none */
	json_t *labels; /* own reference to an object of strings, or NULL */
	/* Scheduling fields: each is sent only once set. */
	uint64_t *after; /* owned (allocator_); after_count ids, room for after_capacity */
	size_t after_count;
	size_t after_capacity;
	bool after_always;  /* after_policy "always" instead of the default "success" */
	bool has_delay;     /* delay and at exclude each other */
	double delay;       /* seconds from submission */
	bool has_at;
	double at;          /* Unix time */
	bool has_retries;
	int retries;
	double retry_backoff;     /* seconds; negative: the daemon's default */
	double retry_backoff_max; /* seconds; negative: the daemon's default */
	json_t *retry_on;         /* own reference to an array of error types, or NULL */
	bool has_deadline;
	double deadline;          /* Unix time */
	int priority;             /* 0: not sent */
	unsigned buffer;          /* 0: not sent */
	char *queue;              /* owned (allocator_), or NULL: not sent */
};

bool job_spec_is_utf8(const char *text, size_t size)
{
	const unsigned char *byte = (const unsigned char *)text;
	size_t i = 0;
	while (i < size) {
		unsigned char lead = byte[i];
		size_t length;
		unsigned int code_point;
		if (lead < 0x80) {
			i++;
			continue;
		} else if ((lead & 0xE0) == 0xC0) {
			length = 2;
			code_point = lead & 0x1F;
		} else if ((lead & 0xF0) == 0xE0) {
			length = 3;
			code_point = lead & 0x0F;
		} else if ((lead & 0xF8) == 0xF0) {
			length = 4;
			code_point = lead & 0x07;
		} else {
			return false;
		}
		if (size - i < length)
			return false;
		for (size_t k = 1; k < length; k++) {
			if ((byte[i + k] & 0xC0) != 0x80)
				return false;
			code_point = (code_point << 6) | (byte[i + k] & 0x3F);
		}
		/* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
		static const unsigned int smallest[] = {0, 0, 0x80, 0x800, 0x10000};
		if (code_point < smallest[length] || code_point > 0x10FFFF ||
		    (code_point >= 0xD800 && code_point <= 0xDFFF))
			return false;
		i += length;
	}
	return true;
}

int weft_job_spec_new(const char *fn, weft_job_spec **out)
{
	last_error_clear();
	if (fn == NULL || fn[0] == '\0')
		return last_error_set(WEFT_EINVAL, "a job needs a function name");
	if (!job_spec_is_utf8(fn, strlen(fn)))
		return last_error_set(WEFT_EINVAL, "the function name is not valid UTF-8");
	weft_job_spec *spec = allocator_calloc(1, sizeof(*spec));
	if (spec == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory creating a job spec");
	if ((spec->fn = allocator_strdup(fn)) == NULL) {
		allocator_free(spec);
		return last_error_set(WEFT_ENOMEM, "out of memory creating a job spec");
	}
	*out = spec;
	return WEFT_OK;
}

void weft_job_spec_free(weft_job_spec *spec)
{
	if (spec == NULL)
		return;
	json_decref(spec->retry_on);
	allocator_free(spec->queue);
	allocator_free(spec->after);
	json_decref(spec->labels);
	json_decref(spec->args);
	allocator_free(spec->fn);
	allocator_free(spec);
}

int weft_job_spec_set_args(weft_job_spec *spec, json_t *args)
{
	last_error_clear();
	if (args != NULL && !json_is_object(args))
		return last_error_set(WEFT_EINVAL, "a job's arguments must be a JSON object");
	/* Take the new reference first: args may be the object already held. */
	json_incref(args);
	json_decref(spec->args);
	spec->args = args;
	return WEFT_OK;
}

int weft_job_spec_set_timeout(weft_job_spec *spec, double seconds)
{
	last_error_clear();
	if (!isfinite(seconds) || seconds < 0)
		return last_error_set(WEFT_EINVAL,
		                      "a job's timeout must be a finite number of seconds >= 0 "
		                      "(0 for none)");
	spec->timeout = seconds;
	return WEFT_OK;
}

int weft_job_spec_set_label(weft_job_spec *spec, const char *key, const char *value)
{
	last_error_clear();
	if (key == NULL || value == NULL || key[0] == '\0')
		return last_error_set(WEFT_EINVAL, "a label needs a non-empty key and a value");
	if (!job_spec_is_utf8(key, strlen(key)) || !job_spec_is_utf8(value, strlen(value)))
		return last_error_set(WEFT_EINVAL, "label '%s' is not valid UTF-8", key);
	bool created = false;
	if (spec->labels == NULL) {
		if ((spec->labels = json_object()) == NULL)
			return last_error_set(WEFT_ENOMEM, "out of memory adding a label");
		created = true;
	}
	/* Checked above, so jansson need not check again; the only failure
	 * left is memory. */
	if (json_object_set_new_nocheck(spec->labels, key, json_string_nocheck(value)) != 0) {
		if (created) {
			json_decref(spec->labels);
			spec->labels = NULL;
		}
		return last_error_set(WEFT_ENOMEM, "out of memory adding a label");
	}
	return WEFT_OK;
}

int weft_job_spec_add_after(weft_job_spec *spec, uint64_t id)
{
	last_error_clear();
	if (id == 0 || id > JOB_SPEC_MAX_ID)
		return last_error_set(WEFT_EINVAL, "after: job id %llu is out of range (1 to 2^53)",
		                      (unsigned long long)id);
	for (size_t i = 0; i < spec->after_count; i++)
		if (spec->after[i] == id)
			return WEFT_OK; /* waiting for a job twice is waiting for it once */
	if (spec->after_count == JOB_SPEC_MAX_AFTER)
		return last_error_set(WEFT_EINVAL, "a job waits for at most %d others (after)",
		                      JOB_SPEC_MAX_AFTER);
	if (spec->after_count == spec->after_capacity) {
		size_t capacity = spec->after_capacity == 0 ? 4 : spec->after_capacity * 2;
		if (capacity > JOB_SPEC_MAX_AFTER)
			capacity = JOB_SPEC_MAX_AFTER;
		uint64_t *grown = allocator_calloc(capacity, sizeof(*grown));
		if (grown == NULL)
			return last_error_set(WEFT_ENOMEM, "out of memory adding a job to wait for");
		if (spec->after_count > 0)
			memcpy(grown, spec->after, spec->after_count * sizeof(*grown));
		allocator_free(spec->after);
		spec->after = grown;
		spec->after_capacity = capacity;
	}
	spec->after[spec->after_count++] = id;
	return WEFT_OK;
}

int weft_job_spec_set_after_always(weft_job_spec *spec, bool always)
{
	last_error_clear();
	spec->after_always = always;
	return WEFT_OK;
}

/* Whether seconds is a duration weftd takes (finite, 0 to ten years). */
static bool is_duration(double seconds)
{
	return isfinite(seconds) && seconds >= 0 && seconds <= JOB_SPEC_MAX_SECONDS;
}

/* Whether time is a Unix time (finite, after the epoch). */
static bool is_unix_time(double time)
{
	return isfinite(time) && time > 0;
}

int weft_job_spec_set_delay(weft_job_spec *spec, double seconds)
{
	last_error_clear();
	if (!is_duration(seconds))
		return last_error_set(WEFT_EINVAL, "a job's delay must be a number of seconds from "
		                                   "0 to 315360000");
	if (spec->has_at)
		return last_error_set(WEFT_EINVAL, "a job takes a delay or a start time (at), not "
		                                   "both");
	spec->has_delay = true;
	spec->delay = seconds;
	return WEFT_OK;
}

int weft_job_spec_set_at(weft_job_spec *spec, double unix_time)
{
	last_error_clear();
	if (!is_unix_time(unix_time))
		return last_error_set(WEFT_EINVAL, "a job's start time (at) must be a Unix time "
		                                   "in seconds, > 0");
	if (spec->has_delay)
		return last_error_set(WEFT_EINVAL, "a job takes a delay or a start time (at), not "
		                                   "both");
	spec->has_at = true;
	spec->at = unix_time;
	return WEFT_OK;
}

int weft_job_spec_set_retries(weft_job_spec *spec, int count, double first_backoff,
                              double backoff_max)
{
	last_error_clear();
	if (count < 0 || count > JOB_SPEC_MAX_RETRIES)
		return last_error_set(WEFT_EINVAL, "a job's retries must be from 0 to %d, not %d",
		                      JOB_SPEC_MAX_RETRIES, count);
	if (isnan(first_backoff) || first_backoff > JOB_SPEC_MAX_SECONDS)
		return last_error_set(WEFT_EINVAL, "the first retry backoff must be a number of "
		                                   "seconds up to 315360000 (negative: the default)");
	if (isnan(backoff_max) || backoff_max > JOB_SPEC_MAX_SECONDS)
		return last_error_set(WEFT_EINVAL, "the largest retry backoff must be a number of "
		                                   "seconds up to 315360000 (negative: the default)");
	spec->has_retries = true;
	spec->retries = count;
	spec->retry_backoff = first_backoff;
	spec->retry_backoff_max = backoff_max;
	return WEFT_OK;
}

int weft_job_spec_add_retry_on(weft_job_spec *spec, const char *type)
{
	last_error_clear();
	if (type == NULL || type[0] == '\0' || strlen(type) > JOB_SPEC_MAX_TYPE_BYTES)
		return last_error_set(WEFT_EINVAL, "an error type to retry on must be 1 to %d bytes",
		                      JOB_SPEC_MAX_TYPE_BYTES);
	if (!job_spec_is_utf8(type, strlen(type)))
		return last_error_set(WEFT_EINVAL, "the error type to retry on is not valid UTF-8");
	size_t index;
	json_t *known;
	json_array_foreach(spec->retry_on, index, known)
		if (strcmp(json_string_value(known), type) == 0)
			return WEFT_OK;
	bool created = false;
	if (spec->retry_on == NULL) {
		if ((spec->retry_on = json_array()) == NULL)
			return last_error_set(WEFT_ENOMEM, "out of memory adding an error type");
		created = true;
	}
	if (json_array_append_new(spec->retry_on, json_string_nocheck(type)) != 0) {
		if (created) {
			json_decref(spec->retry_on);
			spec->retry_on = NULL;
		}
		return last_error_set(WEFT_ENOMEM, "out of memory adding an error type");
	}
	return WEFT_OK;
}

int weft_job_spec_set_deadline(weft_job_spec *spec, double unix_time)
{
	last_error_clear();
	if (!is_unix_time(unix_time))
		return last_error_set(WEFT_EINVAL, "a job's deadline must be a Unix time in "
		                                   "seconds, > 0");
	spec->has_deadline = true;
	spec->deadline = unix_time;
	return WEFT_OK;
}

int weft_job_spec_set_priority(weft_job_spec *spec, int priority)
{
	last_error_clear();
	if (priority < -1000 || priority > 1000)
		return last_error_set(WEFT_EINVAL, "a job's priority must be from -1000 to 1000");
	spec->priority = priority;
	return WEFT_OK;
}

int weft_job_spec_set_buffer(weft_job_spec *spec, unsigned items)
{
	last_error_clear();
	if (items > 1000000)
		return last_error_set(WEFT_EINVAL, "a job's buffer must be from 1 to 1000000 items "
		                                   "(0 for none)");
	spec->buffer = items;
	return WEFT_OK;
}

int weft_job_spec_set_queue(weft_job_spec *spec, const char *queue)
{
	last_error_clear();
	if (queue != NULL && (queue[0] == '\0' || strlen(queue) > 64 ||
	                      !job_spec_is_utf8(queue, strlen(queue))))
		return last_error_set(WEFT_EINVAL, "a queue name must be 1 to 64 bytes of UTF-8");
	char *copy = NULL;
	if (queue != NULL && (copy = allocator_strdup(queue)) == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory setting a job's queue");
	allocator_free(spec->queue);
	spec->queue = copy;
	return WEFT_OK;
}

/* Adds "key": value (a new reference, may be NULL: out of memory) to job;
 * false when out of memory. */
static bool add_field(json_t *job, const char *key, json_t *value)
{
	return value != NULL && json_object_set_new_nocheck(job, key, value) == 0;
}

/* Adds the scheduling fields that are set; false when out of memory. */
static bool add_scheduling(const weft_job_spec *spec, json_t *job)
{
	if (spec->after_count > 0) {
		json_t *after = json_array();
		if (!add_field(job, "after", after))
			return false;
		for (size_t i = 0; i < spec->after_count; i++)
			if (json_array_append_new(after, json_integer((json_int_t)spec->after[i])) != 0)
				return false;
		if (spec->after_always && !add_field(job, "after_policy", json_string("always")))
			return false;
	}
	if (spec->has_delay && !add_field(job, "delay", json_real(spec->delay)))
		return false;
	if (spec->has_at && !add_field(job, "at", json_real(spec->at)))
		return false;
	if (spec->has_retries) {
		if (!add_field(job, "retries", json_integer(spec->retries)))
			return false;
		if (spec->retry_backoff >= 0 &&
		    !add_field(job, "retry_backoff", json_real(spec->retry_backoff)))
			return false;
		if (spec->retry_backoff_max >= 0 &&
		    !add_field(job, "retry_backoff_max", json_real(spec->retry_backoff_max)))
			return false;
	}
	if (spec->retry_on != NULL && json_object_set_nocheck(job, "retry_on", spec->retry_on) != 0)
		return false;
	if (spec->has_deadline && !add_field(job, "deadline", json_real(spec->deadline)))
		return false;
	if (spec->buffer != 0 && !add_field(job, "buffer", json_integer(spec->buffer)))
		return false;
	if (spec->priority != 0 && !add_field(job, "priority", json_integer(spec->priority)))
		return false;
	if (spec->queue != NULL && !add_field(job, "queue", json_string(spec->queue)))
		return false;
	return true;
}

int job_spec_to_json(const weft_job_spec *spec, json_t **out)
{
	json_t *job = json_pack("{s:s}", "fn", spec->fn);
	if (job == NULL)
		goto fail;
	if (spec->args != NULL && json_object_set(job, "args", spec->args) != 0)
		goto fail_job;
	if (spec->timeout > 0 && json_object_set_new(job, "timeout", json_real(spec->timeout)) != 0)
		goto fail_job;
	if (spec->labels != NULL && json_object_set(job, "labels", spec->labels) != 0)
		goto fail_job;
	if (!add_scheduling(spec, job))
		goto fail_job;
	*out = job;
	return WEFT_OK;

fail_job:
	json_decref(job);
fail:
	return last_error_set(WEFT_ENOMEM, "out of memory encoding a job");
}

/*
 * The protocol's field rules; see fields.h.
 */
#include "daemon/base/fields.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daemon/base/problem.h"

bool fields_listed(const char *const *names, const char *key)
{
	for (; *names != NULL; names++)
		if (strcmp(*names, key) == 0)
			return true;
	return false;
}

int fields_check(const json_t *object, const char *const *allowed, bool allow_op,
                 const char *what, struct problem *problem)
{
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)object, key, value)
	{
		if (allow_op && strcmp(key, "op") == 0)
			continue;
		if (!fields_listed(allowed, key))
			return problem_set(problem, WEFT_EUNKNOWNFIELD, key, "%s takes no field '%s'",
			                   what, key);
	}
	return WEFT_OK;
}

int fields_id(const json_t *value, const char *field, uint64_t *out, struct problem *problem)
{
	if (!json_is_integer(value) || json_integer_value(value) < 1 ||
	    json_integer_value(value) > FIELDS_MAX_ID)
		return problem_set(problem, WEFT_EBADFIELD, field,
		                   "field '%s' must be a job id: an integer from 1 to 2^53", field);
	*out = (uint64_t)json_integer_value(value);
	return WEFT_OK;
}

int fields_seconds(const json_t *value, const char *field, bool positive, double *out,
                   struct problem *problem)
{
	double seconds = json_is_number(value) ? json_number_value(value) : -1;
	if (!json_is_number(value) || !isfinite(seconds) || seconds < 0 ||
	    (positive && seconds == 0) || seconds > FIELDS_MAX_SECONDS)
		return problem_set(problem, WEFT_EBADFIELD, field,
		                   "field '%s' must be a number of seconds %s 0 (at most %.0f)", field,
		                   positive ? ">" : ">=", FIELDS_MAX_SECONDS);
	*out = seconds;
	return WEFT_OK;
}

int fields_labels(const json_t *labels, const char *field, struct problem *problem)
{
	if (!json_is_object(labels))
		return problem_set(problem, WEFT_EBADFIELD, field,
		                   "field '%s' must be an object of strings, like {\"team\": \"ci\"}",
		                   field);
	if (json_object_size(labels) > FIELDS_MAX_LABELS)
		return problem_set(problem, WEFT_EBADFIELD, field, "at most %d labels are allowed",
		                   FIELDS_MAX_LABELS);
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)labels, key, value)
	{
		char path[96];
		snprintf(path, sizeof(path), "%s.%.64s", field, key);
		if (strlen(key) == 0 || strlen(key) > FIELDS_MAX_LABEL_KEY)
			return problem_set(problem, WEFT_EBADFIELD, path,
			                   "label names must be 1 to %d bytes long",
			                   FIELDS_MAX_LABEL_KEY);
		if (!json_is_string(value) || json_string_length(value) > FIELDS_MAX_LABEL_VALUE)
			return problem_set(problem, WEFT_EBADFIELD, path,
			                   "label '%.64s' must be a string of at most %d bytes", key,
			                   FIELDS_MAX_LABEL_VALUE);
	}
	return WEFT_OK;
}

int fields_time(const json_t *value, const char *field, double *out, struct problem *problem)
{
	if (!json_is_number(value) || !isfinite(json_number_value(value)) ||
	    json_number_value(value) <= 0 || json_number_value(value) > 1e11)
		return problem_set(problem, WEFT_EBADFIELD, field,
		                   "field '%s' must be a Unix time (seconds since 1970)", field);
	*out = json_number_value(value);
	return WEFT_OK;
}

/* The scheduling fields of a job (PROTOCOL.md, "Scheduling fields"); *out stays
 * NULL when it has none. */

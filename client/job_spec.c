/* The job spec; see job_spec.h and weft/client.h. */
#include "client/job_spec.h"

#include <math.h>
#include <string.h>

#include "client/allocator.h"
#include "client/last_error.h"

struct weft_job_spec {
	char *fn;       /* owned */
	json_t *args;   /* own reference, or NULL for {} */
	double timeout; /* seconds; 0 for none */
	json_t *labels; /* own reference to an object of strings, or NULL */
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
	*out = job;
	return WEFT_OK;

fail_job:
	json_decref(job);
fail:
	return last_error_set(WEFT_ENOMEM, "out of memory encoding a job");
}

/*
 * The job spec (weft_job_spec): what the submit calls send for one job.
 * One thread at a time per spec.
 */
#ifndef CLIENT_JOB_SPEC_H
#define CLIENT_JOB_SPEC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "weft/client.h"

/* The job as the protocol's submit takes it: {"fn", "args", "timeout",
 * "labels"} plus the scheduling fields that are set ("after", "after_policy",
 * "delay", "at", "retries", "retry_backoff", "retry_backoff_max", "retry_on",
 * "deadline"). *out: new reference. WEFT_ENOMEM or WEFT_OK. */
int job_spec_to_json(const weft_job_spec *spec, json_t **out);

/* True when text[0..size) is well-formed UTF-8 (what JSON strings must be). */
bool job_spec_is_utf8(const char *text, size_t size);

#endif

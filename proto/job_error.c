/* The job error types' table (PROTO_JOB_ERROR_MAP); compiled into weftd and
 * the CLI. */
#include <stdbool.h>
#include <string.h>

#include "proto/proto.h"

#define PROTO_JOB_ERROR_WIRE_(name, wire, final) wire,
static const char *const job_error_types[] = {PROTO_JOB_ERROR_MAP(PROTO_JOB_ERROR_WIRE_)};
#undef PROTO_JOB_ERROR_WIRE_

#define PROTO_JOB_ERROR_FINAL_(name, wire, final) final,
static const bool job_error_final[] = {PROTO_JOB_ERROR_MAP(PROTO_JOB_ERROR_FINAL_)};
#undef PROTO_JOB_ERROR_FINAL_

const char *proto_job_error(enum proto_job_error type)
{
	return (unsigned)type < PROTO_JOB_ERROR_COUNT ? job_error_types[type] : "InternalError";
}

bool proto_job_error_final(const char *type)
{
	for (unsigned i = 0; i < PROTO_JOB_ERROR_COUNT; i++)
		if (strcmp(type, job_error_types[i]) == 0)
			return job_error_final[i];
	return false;
}

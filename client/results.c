/*
 * Freeing what libweft hands out as results (weft/client.h). Its own file, so
 * that the calls that make results (async.c) and the typed API (jobs.c) both
 * use it without including each other.
 */
#include "client/allocator.h"
#include "weft/client.h"

void weft_outcome_free(weft_outcome *outcome)
{
	if (outcome == NULL)
		return;
	json_decref(outcome->result);
	json_decref(outcome->error_details);
	allocator_free(outcome->error_type);
	allocator_free(outcome->error_message);
	allocator_free(outcome);
}

void weft_wait_result_free(weft_wait_result *result)
{
	if (result == NULL)
		return;
	allocator_free(result->done);
	allocator_free(result->pending);
	allocator_free(result);
}

/* Named queues (queue.set, queue.pause, queue.resume, queues): weft/client.h. */
#include <string.h>

#include "client/connection.h"
#include "client/last_error.h"

/* The daemon's limit on queue names. */
#define QUEUES_NAME_MAX 64

static int check_name(const char *name)
{
	if (name == NULL || name[0] == '\0' || strlen(name) > QUEUES_NAME_MAX)
		return last_error_set(WEFT_EINVAL, "a queue name must be 1 to %d bytes",
		                      QUEUES_NAME_MAX);
	return WEFT_OK;
}

int weft_queue_set(weft_client *client, const char *name, unsigned max)
{
	last_error_clear();
	int rv = check_name(name);
	if (rv != WEFT_OK)
		return rv;
	if (max == 0 || max > 1000000)
		return last_error_set(WEFT_EINVAL, "a queue's max must be from 1 to 1000000");
	return connection_simple_op(client, json_pack("{s:s, s:s, s:I}", "op", "queue.set", "name",
	                                              name, "max", (json_int_t)max));
}

int weft_queue_pause(weft_client *client, const char *name, bool paused)
{
	last_error_clear();
	int rv = check_name(name);
	if (rv != WEFT_OK)
		return rv;
	return connection_simple_op(client, json_pack("{s:s, s:s}", "op",
	                                              paused ? "queue.pause" : "queue.resume",
	                                              "name", name));
}

int weft_queues(weft_client *client, json_t **queues)
{
	last_error_clear();
	if (queues == NULL)
		return last_error_set(WEFT_EINVAL, "weft_queues needs somewhere to put the queues "
		                                   "(queues is NULL)");
	return connection_op_member(client, json_pack("{s:s}", "op", "queues"), "queues", "queues",
	                            JSON_ARRAY, "the list", queues, NULL);
}

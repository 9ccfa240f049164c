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

/* Sends an op whose success carries nothing more than ok. */
static int simple_op(weft_client *client, json_t *request)
{
	json_t *reply = NULL;
	int rv = connection_op(client, request, 0, &reply);
	json_decref(reply);
	return rv;
}

int weft_queue_set(weft_client *client, const char *name, unsigned max)
{
	last_error_clear();
	int rv = check_name(name);
	if (rv != WEFT_OK)
		return rv;
	if (max == 0 || max > 1000000)
		return last_error_set(WEFT_EINVAL, "a queue's max must be from 1 to 1000000");
	return simple_op(client, json_pack("{s:s, s:s, s:I}", "op", "queue.set", "name", name,
	                                   "max", (json_int_t)max));
}

int weft_queue_pause(weft_client *client, const char *name, bool paused)
{
	last_error_clear();
	int rv = check_name(name);
	if (rv != WEFT_OK)
		return rv;
	return simple_op(client, json_pack("{s:s, s:s}", "op", paused ? "queue.pause" : "queue.resume",
	                                   "name", name));
}

int weft_queues(weft_client *client, json_t **queues)
{
	last_error_clear();
	json_t *reply = NULL;
	int rv = connection_op(client, json_pack("{s:s}", "op", "queues"), 0, &reply);
	if (rv != WEFT_OK)
		return rv;
	json_t *list = json_object_get(reply, "queues");
	if (!json_is_array(list)) {
		json_decref(reply);
		return last_error_set(WEFT_EPROTO, "weftd's reply to 'queues' lacks the list");
	}
	*queues = json_incref(list);
	json_decref(reply);
	return WEFT_OK;
}

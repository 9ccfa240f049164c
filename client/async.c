/*
 * The call engine: every libweft call, blocking or not, is a weft_call
 * driven by the callback of an nng aio.
 *
 * One REQ socket per client, one nng context per call in flight: nng
 * matches each reply to its context, so any number of calls share the
 * socket. A call takes a channel (a context and an aio whose callback is
 * channel_callback) from the client's idle list, or makes one, and gives it
 * back when it completes. The callback chains the call's life: send done ->
 * receive -> decode the reply -> (for an op sent in parts) send the next part
 * -> complete. Nothing of ours runs between two steps but that callback, on
 * nng's threads.
 *
 * Completion runs once per call (finish()): it sets the phase to DONE under
 * the call's lock, takes the call off the client's outstanding list, gives
 * the channel back, then delivers the call: a blocking caller is woken, a
 * callback is called, or the call goes on a completion queue. Only after the
 * delivery does the client's outstanding count drop, so weft_close, which
 * waits for that count to reach 0, never frees the client while a callback
 * of it runs.
 *
 * Stopping (weft_call_cancel, weft_close): under the call's lock, record the
 * stop code and, when an aio operation is pending, nng_aio_cancel it (nng
 * runs the aborted aio's callback later on its own thread, never inside
 * nng_aio_cancel, so holding our lock there is safe). The callback looks at
 * the stop code under the same lock before each next step, and finish()
 * looks once more, so a stop that was accepted always ends the call with its
 * code, whatever the reply said.
 *
 * A channel whose call did not end with a reply read in full may still have
 * a request outstanding at the daemon: its context is closed, and a fresh
 * one opened when the channel is next used. Channels are never freed from
 * their own callback (nng_aio_free waits for it); the idle list keeps them
 * until weft_close.
 *
 * Locks, in this order (a thread holding one may take the ones below it):
 *   weft_client.calls_lock  the outstanding list and count, closing, channels
 *   weft_call.lock          phase and stop_code
 *   weft_completion_queue.lock
 * No user callback ever runs with one of them held.
 *
 * Resend is off (NNG_OPT_REQ_RESENDTIME = infinite, set in connection.c):
 * with it off, nng 1.5 fails a context's pending receive with
 * NNG_ECONNRESET when the connection it was sent on closes, instead of
 * sending the request again. We report that as WEFT_ECLOSED: a long poll is
 * never sent twice and a submit never creates a job twice.
 *
 * A send waits for a connection at most SEND_TIMEOUT_MS. The reply is waited
 * for as long as the request asks the daemon to wait plus REPLY_SLACK_MS.
 */
#include "client/async.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client/allocator.h"
#include "client/connection.h"
#include "client/json_check.h"
#include "client/last_error.h"
#include "proto/proto.h"

#define SEND_TIMEOUT_MS 10000
#define REPLY_SLACK_MS 30000

double async_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static nng_duration reply_timeout_ms(double reply_wait)
{
	if (reply_wait < 0 || isnan(reply_wait) || isinf(reply_wait))
		return NNG_DURATION_INFINITE;
	double milliseconds = ceil(reply_wait * 1000.0) + REPLY_SLACK_MS;
	if (milliseconds >= (double)INT32_MAX)
		return NNG_DURATION_INFINITE;
	return (nng_duration)milliseconds;
}

/* ------------------------------------------------------------ messages */

static int send_failure(const weft_client *client, int nng_error)
{
	switch (nng_error) {
	case NNG_ENOMEM:
		return last_error_set(WEFT_ENOMEM, "out of memory sending a request to %s",
		                      client->url);
	case NNG_ECLOSED:
		return last_error_set(WEFT_ECLOSED, "the client for %s is closed", client->url);
	case NNG_ETIMEDOUT:
		return last_error_set(WEFT_ECONNECT,
		                      "no connection to weftd at %s for %d s (did it stop?)",
		                      client->url, SEND_TIMEOUT_MS / 1000);
	default:
		return last_error_set(WEFT_ECONNECT, "cannot send to weftd at %s: %s", client->url,
		                      nng_strerror(nng_error));
	}
}

static int receive_failure(const weft_client *client, int nng_error, nng_duration waited)
{
	switch (nng_error) {
	case NNG_ENOMEM:
		return last_error_set(WEFT_ENOMEM, "out of memory receiving a reply from %s",
		                      client->url);
	case NNG_ECLOSED:
		return last_error_set(WEFT_ECLOSED, "the client for %s is closed", client->url);
	case NNG_ECONNRESET:
		return last_error_set(WEFT_ECLOSED,
		                      "the connection to weftd at %s was lost before the reply "
		                      "came; the request was not sent again, so it may or may "
		                      "not have been carried out",
		                      client->url);
	case NNG_ETIMEDOUT:
		return last_error_set(WEFT_ETIMEOUT, "weftd at %s sent no reply within %.1f s",
		                      client->url, waited / 1000.0);
	default:
		return last_error_set(WEFT_ECLOSED, "no reply from weftd at %s: %s", client->url,
		                      nng_strerror(nng_error));
	}
}

static int stopped_failure(const weft_client *client, int code)
{
	if (code == WEFT_ECLOSED)
		return last_error_set(WEFT_ECLOSED,
		                      "the client for %s was closed (weft_close) before the reply "
		                      "came; the request may or may not have been carried out",
		                      client->url);
	return last_error_set(WEFT_ECANCELED,
	                      "the call was cancelled (weft_call_cancel); the request may or "
	                      "may not have reached weftd and been carried out");
}

/* Reads a reply message (borrowed) into *reply (new reference). */
static int parse_reply(const weft_client *client, nng_msg *message, json_t **reply)
{
	/* JSON_ALLOW_NUL: a command's output may hold NUL bytes (\u0000), and one
	 * such job must not make every reply that lists it unreadable. jansson
	 * leaves the error's code byte unset on some allocation failures: start
	 * from json_error_unknown. */
	json_error_t parse_error;
	memset(&parse_error, 0, sizeof(parse_error));
	json_t *parsed = json_loadb(nng_msg_body(message), nng_msg_len(message), JSON_ALLOW_NUL,
	                            &parse_error);
	if (parsed == NULL) {
		/* jansson 2.14 reports most failed allocations as syntax errors:
		 * text that is valid JSON failed for lack of memory. */
		enum json_error_code kind = json_error_code(&parse_error);
		if (kind == json_error_out_of_memory ||
		    ((kind == json_error_unknown || kind == json_error_invalid_syntax) &&
		     json_check_syntax(nng_msg_body(message), nng_msg_len(message))))
			return last_error_set(WEFT_ENOMEM, "out of memory reading a reply");
		return last_error_set(WEFT_EPROTO, "the reply from %s is not JSON: %s", client->url,
		                      parse_error.text);
	}
	if (!json_is_object(parsed) || !json_is_boolean(json_object_get(parsed, "ok"))) {
		json_decref(parsed);
		return last_error_set(WEFT_EPROTO,
		                      "the reply from %s is not a weft reply (no \"ok\"); "
		                      "is the URL a weftd?",
		                      client->url);
	}
	*reply = parsed;
	return WEFT_OK;
}

/* ------------------------------------------------------------ channels */

static void channel_callback(void *arg);

/* An idle channel, or a new one, with an open context. Returns 0 or an nng
 * error. Any thread; takes calls_lock. */
static int channel_take(weft_client *client, struct async_channel **out)
{
	pthread_mutex_lock(&client->calls_lock);
	struct async_channel *channel = client->idle_channels;
	if (channel != NULL)
		client->idle_channels = channel->next;
	pthread_mutex_unlock(&client->calls_lock);
	int rv;
	if (channel == NULL) {
		if ((channel = allocator_calloc(1, sizeof(*channel))) == NULL)
			return NNG_ENOMEM;
		channel->client = client;
		if ((rv = nng_aio_alloc(&channel->aio, channel_callback, channel)) != 0) {
			allocator_free(channel);
			return rv;
		}
		pthread_mutex_lock(&client->calls_lock);
		channel->all_next = client->all_channels;
		client->all_channels = channel;
		pthread_mutex_unlock(&client->calls_lock);
	}
	if (!channel->context_open) {
		if ((rv = nng_ctx_open(&channel->context, client->socket)) != 0) {
			pthread_mutex_lock(&client->calls_lock);
			channel->next = client->idle_channels;
			client->idle_channels = channel;
			pthread_mutex_unlock(&client->calls_lock);
			return rv;
		}
		channel->context_open = true;
	}
	*out = channel;
	return 0;
}

/* Back to the idle list. clean: the last request's reply was read, so the
 * context may serve another request; otherwise it is closed. */
static void channel_give(weft_client *client, struct async_channel *channel, bool clean)
{
	channel->call = NULL;
	if (!clean && channel->context_open) {
		nng_ctx_close(channel->context);
		channel->context_open = false;
	}
	pthread_mutex_lock(&client->calls_lock);
	channel->next = client->idle_channels;
	client->idle_channels = channel;
	pthread_mutex_unlock(&client->calls_lock);
}

/* --------------------------------------------------------- completion queue */

struct weft_completion_queue {
	pthread_mutex_t lock; /* guards the list and the eventfd's count */
	pthread_cond_t cond;  /* signalled when a call arrives (CLOCK_MONOTONIC) */
	weft_call *head, *tail;
	int fd; /* eventfd: count 1 while the list is not empty, 0 while it is */
};

int weft_completion_queue_new(weft_completion_queue **out)
{
	last_error_clear();
	if (out == NULL)
		return last_error_set(WEFT_EINVAL, "weft_completion_queue_new needs somewhere to "
		                                   "put the queue");
	weft_completion_queue *queue = allocator_calloc(1, sizeof(*queue));
	if (queue == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory making a completion queue");
	queue->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (queue->fd < 0) {
		int error = errno;
		allocator_free(queue);
		if (error == ENOMEM)
			return last_error_set(WEFT_ENOMEM, "out of memory making an eventfd");
		return last_error_set(WEFT_EINTERNAL, "cannot make an eventfd: %s", strerror(error));
	}
	pthread_condattr_t attributes;
	pthread_condattr_init(&attributes);
	pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
	pthread_cond_init(&queue->cond, &attributes);
	pthread_condattr_destroy(&attributes);
	pthread_mutex_init(&queue->lock, NULL);
	*out = queue;
	return WEFT_OK;
}

void weft_completion_queue_free(weft_completion_queue *queue)
{
	if (queue == NULL)
		return;
	weft_call *call = queue->head;
	while (call != NULL) {
		weft_call *next = call->queue_next;
		weft_call_free(call);
		call = next;
	}
	close(queue->fd);
	pthread_cond_destroy(&queue->cond);
	pthread_mutex_destroy(&queue->lock);
	allocator_free(queue);
}

int weft_completion_queue_fd(const weft_completion_queue *queue)
{
	return queue != NULL ? queue->fd : -1;
}

/* nng's thread: appends a completed call; the fd turns readable with the first. */
static void queue_push(weft_completion_queue *queue, weft_call *call)
{
	call->queue_next = NULL;
	pthread_mutex_lock(&queue->lock);
	if (queue->tail == NULL) {
		queue->head = call;
		uint64_t one = 1;
		/* Cannot fail: the count is 0 here (it is 1 only while the list
		 * has calls), far from the eventfd's limit. */
		ssize_t written = write(queue->fd, &one, sizeof(one));
		(void)written;
	} else {
		queue->tail->queue_next = call;
	}
	queue->tail = call;
	pthread_cond_signal(&queue->cond);
	pthread_mutex_unlock(&queue->lock);
}

/* The oldest call, or NULL; lock held. The fd turns unreadable with the last. */
static weft_call *queue_pop_locked(weft_completion_queue *queue)
{
	weft_call *call = queue->head;
	if (call == NULL)
		return NULL;
	queue->head = call->queue_next;
	call->queue_next = NULL;
	if (queue->head == NULL) {
		queue->tail = NULL;
		uint64_t count;
		ssize_t got = read(queue->fd, &count, sizeof(count));
		(void)got;
	}
	return call;
}

int weft_completion_queue_next(weft_completion_queue *queue, weft_call **call)
{
	last_error_clear();
	if (queue == NULL || call == NULL)
		return last_error_set(WEFT_EINVAL, "weft_completion_queue_next needs a queue and "
		                                   "somewhere to put the call");
	pthread_mutex_lock(&queue->lock);
	*call = queue_pop_locked(queue);
	pthread_mutex_unlock(&queue->lock);
	return WEFT_OK;
}

int weft_completion_queue_wait(weft_completion_queue *queue, double timeout, weft_call **call)
{
	last_error_clear();
	if (queue == NULL || call == NULL || isnan(timeout))
		return last_error_set(WEFT_EINVAL, "weft_completion_queue_wait needs a queue, a "
		                                   "timeout and somewhere to put the call");
	struct timespec deadline;
	bool forever = timeout < 0 || isinf(timeout);
	if (!forever) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		double whole = floor(timeout);
		deadline.tv_sec += (time_t)whole;
		deadline.tv_nsec += (long)((timeout - whole) * 1e9);
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&queue->lock);
	weft_call *found;
	while ((found = queue_pop_locked(queue)) == NULL) {
		if (forever)
			pthread_cond_wait(&queue->cond, &queue->lock);
		else if (pthread_cond_timedwait(&queue->cond, &queue->lock, &deadline) != 0)
			break;
	}
	if (found == NULL)
		found = queue_pop_locked(queue);
	pthread_mutex_unlock(&queue->lock);
	if (found == NULL)
		return last_error_set(WEFT_ETIMEOUT, "no call completed within %.3f s", timeout);
	*call = found;
	return WEFT_OK;
}

/* ------------------------------------------------------------- calls */

int async_check_notify(const weft_notify *notify)
{
	if (notify == NULL || (notify->callback == NULL) == (notify->queue == NULL))
		return last_error_set(WEFT_EINVAL, "a weft_notify needs exactly one of a callback "
		                                   "and a completion queue");
	return WEFT_OK;
}

int async_call_new(weft_client *client, const struct async_op *op, const weft_notify *notify,
                   weft_call **out)
{
	if (client == NULL)
		return last_error_set(WEFT_EINVAL, "no client given (NULL); connect first with "
		                                   "weft_connect");
	weft_call *call = allocator_calloc(1, sizeof(*call));
	if (call == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory starting a call");
	pthread_mutex_init(&call->lock, NULL);
	if (notify != NULL) {
		call->notify = *notify;
	} else {
		pthread_mutex_init(&call->wait_lock, NULL);
		pthread_cond_init(&call->wait_cond, NULL);
	}
	call->client = client;
	call->op = op;
	call->phase = ASYNC_NEW;
	*out = call;
	return WEFT_OK;
}

static bool call_is_blocking(const weft_call *call)
{
	return call->notify.callback == NULL && call->notify.queue == NULL;
}

int async_call_set_request(weft_call *call, const void *bytes, size_t size, double reply_wait)
{
	return async_call_set_request_parts(call, bytes, size, NULL, 0, reply_wait);
}

int async_call_set_request_parts(weft_call *call, const void *head, size_t head_size,
                                 const void *tail, size_t tail_size, double reply_wait)
{
	weft_client *client = call->client;
	size_t transport_limit = client->max_message * PROTO_TRANSPORT_SLACK_FACTOR;
	size_t size = head_size + tail_size;
	if (size > transport_limit)
		return last_error_set(WEFT_ETOOLARGE,
		                      "request of %zu bytes is more than %d x weftd's --max-message "
		                      "(%zu bytes), so the daemon would drop it unread; send less "
		                      "at a time (a smaller batch) or raise --max-message",
		                      size, PROTO_TRANSPORT_SLACK_FACTOR, client->max_message);
	nng_msg *message = NULL;
	if (nng_msg_alloc(&message, size) != 0)
		return last_error_set(WEFT_ENOMEM, "out of memory sending a request to %s",
		                      client->url);
	if (head_size > 0)
		memcpy(nng_msg_body(message), head, head_size);
	if (tail_size > 0)
		memcpy((char *)nng_msg_body(message) + head_size, tail, tail_size);
	if (call->request != NULL)
		nng_msg_free(call->request);
	call->request = message;
	call->receive_timeout = reply_timeout_ms(reply_wait);
	return WEFT_OK;
}

int async_call_set_request_json(weft_call *call, json_t *request, double reply_wait)
{
	if (request == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory building a request");
	/* Serialise once to learn the size, once into the message: jansson has
	 * no cheaper way to size a document. */
	weft_client *client = call->client;
	int rv = WEFT_OK;
	size_t size = json_dumpb(request, NULL, 0, JSON_COMPACT);
	nng_msg *message = NULL;
	if (size == 0) {
		rv = last_error_set(WEFT_ENOMEM, "out of memory encoding a request");
	} else if (size > client->max_message * PROTO_TRANSPORT_SLACK_FACTOR) {
		rv = last_error_set(WEFT_ETOOLARGE,
		                    "request of %zu bytes is more than %d x weftd's --max-message "
		                    "(%zu bytes), so the daemon would drop it unread; send less at "
		                    "a time (a smaller batch) or raise --max-message",
		                    size, PROTO_TRANSPORT_SLACK_FACTOR, client->max_message);
	} else if (nng_msg_alloc(&message, size) != 0) {
		rv = last_error_set(WEFT_ENOMEM, "out of memory sending a request to %s",
		                    client->url);
	} else if (json_dumpb(request, nng_msg_body(message), size, JSON_COMPACT) != size) {
		nng_msg_free(message);
		rv = last_error_set(WEFT_ENOMEM, "out of memory encoding a request");
	}
	json_decref(request);
	if (rv != WEFT_OK)
		return rv;
	if (call->request != NULL)
		nng_msg_free(call->request);
	call->request = message;
	call->receive_timeout = reply_timeout_ms(reply_wait);
	return WEFT_OK;
}

/* Sends call->request on the call's channel; call->lock held. */
static void send_locked(weft_call *call)
{
	nng_aio *aio = call->channel->aio;
	call->phase = ASYNC_SENDING;
	nng_aio_set_timeout(aio, SEND_TIMEOUT_MS);
	nng_aio_set_msg(aio, call->request);
	call->request = NULL; /* nng's now, until the send fails */
	nng_ctx_send(call->channel->context, aio);
}

int async_call_start(weft_call *call, weft_call **handle)
{
	weft_client *client = call->client;
	struct async_channel *channel = NULL;
	int rv;
	if ((rv = channel_take(client, &channel)) != 0) {
		rv = send_failure(client, rv);
		goto fail;
	}
	channel->call = call;
	call->channel = channel;
	pthread_mutex_lock(&client->calls_lock);
	if (client->closing) {
		pthread_mutex_unlock(&client->calls_lock);
		channel_give(client, channel, true);
		call->channel = NULL;
		rv = last_error_set(WEFT_ECLOSED, "the client for %s is being closed",
		                    client->url);
		goto fail;
	}
	call->list_next = client->outstanding;
	call->list_prev = NULL;
	if (client->outstanding != NULL)
		client->outstanding->list_prev = call;
	client->outstanding = call;
	client->outstanding_count++;
	pthread_mutex_unlock(&client->calls_lock);
	if (handle != NULL)
		*handle = call;
	/* From here the call may complete (and be freed by its owner) on another
	 * thread as soon as the lock is released: touch nothing of it after. */
	pthread_mutex_lock(&call->lock);
	send_locked(call);
	pthread_mutex_unlock(&call->lock);
	return WEFT_OK;

fail:
	weft_call_free(call);
	return rv;
}

/* Completes the call once: rv is its result (the thread's last error holds
 * the details when rv is not WEFT_OK); clean says whether the channel may
 * serve again as it is. Runs on nng's thread, with no lock held. */
static void finish(weft_call *call, int rv, bool clean)
{
	weft_client *client = call->client;
	pthread_mutex_lock(&call->lock);
	call->phase = ASYNC_DONE;
	int stop = call->stop_code;
	pthread_mutex_unlock(&call->lock);
	if (stop != 0) {
		rv = stopped_failure(client, stop);
		clean = false; /* the stop may have cut a request short */
	}
	call->error = rv;
	if (rv != WEFT_OK && call->about_id != 0)
		last_error_set_id(call->about_id);
	if (rv != WEFT_OK)
		call->error_info = *weft_last_error();
	else
		call->error_info.index = -1; /* the rest is zero from calloc */

	struct async_channel *channel = call->channel;
	call->channel = NULL;
	channel_give(client, channel, clean);

	pthread_mutex_lock(&client->calls_lock);
	if (call->list_prev != NULL)
		call->list_prev->list_next = call->list_next;
	else
		client->outstanding = call->list_next;
	if (call->list_next != NULL)
		call->list_next->list_prev = call->list_prev;
	call->list_prev = call->list_next = NULL;
	pthread_mutex_unlock(&client->calls_lock);
	call->client = NULL;

	/* Deliver; the call is its owner's from here on. */
	if (call_is_blocking(call)) {
		pthread_mutex_lock(&call->wait_lock);
		call->completed = true;
		pthread_cond_signal(&call->wait_cond);
		pthread_mutex_unlock(&call->wait_lock);
	} else if (call->notify.callback != NULL) {
		call->notify.callback(call, call->notify.user_data);
	} else {
		queue_push(call->notify.queue, call);
	}

	/* weft_close waits for this: only now is the client free of us. */
	pthread_mutex_lock(&client->calls_lock);
	client->outstanding_count--;
	if (client->closing && client->outstanding_count == 0)
		pthread_cond_broadcast(&client->calls_done);
	pthread_mutex_unlock(&client->calls_lock);
}

/* A reply arrived (message: owned): parse, decode, maybe send the next part. */
static void on_reply(weft_call *call, nng_msg *message)
{
	weft_client *client = call->client;
	json_t *reply = NULL;
	int rv = WEFT_OK;
	if (call->op->take != NULL)
		rv = call->op->take(call, &message);
	if (rv == WEFT_OK)
		rv = parse_reply(client, message, &reply);
	nng_msg_free(message);
	if (rv != WEFT_OK) {
		finish(call, rv, true);
		return;
	}
	json_decref(call->reply);
	call->reply = reply;
	if (!call->op->raw && !json_is_true(json_object_get(reply, "ok"))) {
		finish(call, last_error_set_from_reply(reply), true);
		return;
	}
	if (call->op->decode != NULL && (rv = call->op->decode(call, reply)) != WEFT_OK) {
		finish(call, rv, true);
		return;
	}
	bool more = false;
	if (call->op->next_part != NULL && (rv = call->op->next_part(call, &more)) != WEFT_OK) {
		finish(call, rv, true);
		return;
	}
	if (!more) {
		finish(call, WEFT_OK, true);
		return;
	}
	pthread_mutex_lock(&call->lock);
	if (call->stop_code != 0) {
		pthread_mutex_unlock(&call->lock);
		finish(call, WEFT_ECANCELED, true);
		return;
	}
	send_locked(call);
	pthread_mutex_unlock(&call->lock);
}

static void channel_callback(void *arg)
{
	struct async_channel *channel = arg;
	weft_call *call = channel->call;
	weft_client *client = call->client;
	nng_aio *aio = channel->aio;
	int result = nng_aio_result(aio);
	last_error_clear();
	pthread_mutex_lock(&call->lock);
	if (call->phase == ASYNC_SENDING) {
		if (result != 0) {
			/* A failed send leaves the message with us. */
			call->request = nng_aio_get_msg(aio);
			nng_aio_set_msg(aio, NULL);
			pthread_mutex_unlock(&call->lock);
			finish(call, send_failure(client, result), false);
			return;
		}
		if (call->stop_code != 0) {
			pthread_mutex_unlock(&call->lock);
			finish(call, WEFT_ECANCELED, false);
			return;
		}
		call->phase = ASYNC_RECEIVING;
		nng_aio_set_timeout(aio, call->receive_timeout);
		nng_ctx_recv(channel->context, aio);
		pthread_mutex_unlock(&call->lock);
		return;
	}
	/* ASYNC_RECEIVING */
	nng_msg *message = NULL;
	if (result == 0) {
		message = nng_aio_get_msg(aio);
		nng_aio_set_msg(aio, NULL);
	}
	call->phase = ASYNC_DECODING;
	pthread_mutex_unlock(&call->lock);
	if (result != 0) {
		finish(call, receive_failure(client, result, call->receive_timeout), false);
		return;
	}
	on_reply(call, message);
}

int async_call_wait(weft_call *call)
{
	pthread_mutex_lock(&call->wait_lock);
	while (!call->completed)
		pthread_cond_wait(&call->wait_cond, &call->wait_lock);
	pthread_mutex_unlock(&call->wait_lock);
	if (call->error != WEFT_OK)
		last_error_restore(&call->error_info);
	else
		last_error_clear();
	return call->error;
}

/* Records a stop; call->lock held. Returns false when the call is past it. */
static bool stop_locked(weft_call *call, int code)
{
	if (call->phase == ASYNC_DONE || call->phase == ASYNC_NEW || call->stop_code != 0)
		return false;
	call->stop_code = code;
	if (call->phase == ASYNC_SENDING || call->phase == ASYNC_RECEIVING)
		nng_aio_cancel(call->channel->aio);
	return true;
}

int weft_call_cancel(weft_call *call)
{
	last_error_clear();
	if (call == NULL)
		return last_error_set(WEFT_EINVAL, "no call given (NULL)");
	pthread_mutex_lock(&call->lock);
	bool stopped = stop_locked(call, WEFT_ECANCELED);
	pthread_mutex_unlock(&call->lock);
	if (!stopped)
		return last_error_set(WEFT_EALREADYSET,
		                      "the call has already completed or been cancelled");
	return WEFT_OK;
}

void async_client_close(weft_client *client)
{
	pthread_mutex_lock(&client->calls_lock);
	client->closing = true;
	for (weft_call *call = client->outstanding; call != NULL; call = call->list_next) {
		pthread_mutex_lock(&call->lock);
		stop_locked(call, WEFT_ECLOSED);
		pthread_mutex_unlock(&call->lock);
	}
	while (client->outstanding_count > 0)
		pthread_cond_wait(&client->calls_done, &client->calls_lock);
	struct async_channel *channel = client->all_channels;
	client->all_channels = NULL;
	client->idle_channels = NULL;
	pthread_mutex_unlock(&client->calls_lock);
	while (channel != NULL) {
		struct async_channel *next = channel->all_next;
		if (channel->context_open)
			nng_ctx_close(channel->context);
		nng_aio_free(channel->aio);
		allocator_free(channel);
		channel = next;
	}
}

void weft_call_free(weft_call *call)
{
	if (call == NULL)
		return;
	if (call->request != NULL)
		nng_msg_free(call->request);
	json_decref(call->reply);
	json_decref(call->value);
	allocator_free(call->ids);
	weft_outcome_free(call->outcome);
	for (size_t i = 0; i < call->outcome_count; i++)
		weft_outcome_free(call->outcomes[i]);
	allocator_free(call->outcomes);
	weft_wait_result_free(call->wait);
	allocator_free(call->want);
	if (call->kept != NULL)
		nng_msg_free(call->kept);
	else
		allocator_free(call->bytes);
	if (call_is_blocking(call)) {
		pthread_cond_destroy(&call->wait_cond);
		pthread_mutex_destroy(&call->wait_lock);
	}
	pthread_mutex_destroy(&call->lock);
	allocator_free(call);
}

/* ------------------------------------------------------------- accessors */

int weft_call_error(const weft_call *call)
{
	return call != NULL ? call->error : WEFT_EINVAL;
}

const weft_error_info *weft_call_error_info(const weft_call *call)
{
	return &call->error_info;
}

void *weft_call_user_data(const weft_call *call)
{
	return call->notify.user_data;
}

json_t *weft_call_reply(const weft_call *call)
{
	return call->reply;
}

uint64_t weft_call_id(const weft_call *call)
{
	return call->error == WEFT_OK ? call->id : 0;
}

const uint64_t *weft_call_ids(const weft_call *call, size_t *count)
{
	bool ok = call->error == WEFT_OK && call->ids != NULL;
	if (count != NULL)
		*count = ok ? call->id_count : 0;
	return ok ? call->ids : NULL;
}

const weft_outcome *weft_call_outcome(const weft_call *call)
{
	return call->error == WEFT_OK ? call->outcome : NULL;
}

weft_outcome *weft_call_take_outcome(weft_call *call)
{
	if (call->error != WEFT_OK)
		return NULL;
	weft_outcome *outcome = call->outcome;
	call->outcome = NULL;
	return outcome;
}

weft_outcome *const *weft_call_outcomes(const weft_call *call, size_t *count)
{
	bool ok = call->error == WEFT_OK && call->outcomes != NULL;
	if (count != NULL)
		*count = ok ? call->outcome_count : 0;
	return ok ? call->outcomes : NULL;
}

const weft_wait_result *weft_call_wait_result(const weft_call *call)
{
	return call->error == WEFT_OK ? call->wait : NULL;
}

json_t *weft_call_job(const weft_call *call)
{
	return call->error == WEFT_OK ? call->value : NULL;
}

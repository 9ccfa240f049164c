/*
 * The connection to weftd.
 *
 * One REQ socket per client, one nng context per call in flight: nng matches
 * each reply to its context, so threads share the socket. Contexts are kept
 * on an idle list between calls (the only lock of ours), and one that saw an
 * error is closed rather than reused.
 *
 * Resend is off (NNG_OPT_REQ_RESENDTIME = infinite) before any context is
 * opened, because contexts copy the socket's setting when they are created.
 * With resend off, nng 1.5 fails a context's pending receive with
 * NNG_ECONNRESET when the connection it was sent on closes, instead of
 * sending the request again on the next connection. We report that as
 * WEFT_ECLOSED: a long poll is never sent twice and a submit never creates a
 * job twice, at the price that the caller does not know whether a request
 * that was in flight was carried out.
 *
 * A send waits for a connection (nng holds it until a pipe is ready) at most
 * SEND_TIMEOUT_MS. The reply is waited for as long as the request asks the
 * daemon to wait (result/wait timeouts) plus REPLY_SLACK_MS, so that a
 * daemon that never answers cannot hang a caller forever, except for the
 * requests that ask to wait forever.
 */
#include "client/connection.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "client/allocator.h"
#include "client/json_check.h"
#include "client/last_error.h"
#include "proto/proto.h"
#include "proto/tls.h"
#include "proto/url.h"

#define SEND_TIMEOUT_MS 10000
#define REPLY_SLACK_MS 30000
/* Replies can be large (a list of 10000 jobs, a batch of 100000 ids); this
 * bounds what a broken or hostile peer can make us allocate. */
#define REPLY_MAX_BYTES (64 * 1024 * 1024)
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000
#define URL_MAX 4096

static nng_duration reply_timeout_ms(double reply_wait)
{
	if (reply_wait < 0 || isnan(reply_wait))
		return NNG_DURATION_INFINITE;
	double milliseconds = ceil(reply_wait * 1000.0) + REPLY_SLACK_MS;
	if (milliseconds >= (double)INT32_MAX)
		return NNG_DURATION_INFINITE;
	return (nng_duration)milliseconds;
}

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
		 * text that is valid JSON failed for lack of memory. Number
		 * overflows are reported as themselves. */
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

/* Most contexts kept idle; more are closed after their call. */
#define IDLE_CHANNELS_MAX 64

static void channel_free(struct connection_channel *channel)
{
	nng_ctx_close(channel->context);
	nng_aio_free(channel->aio);
	allocator_free(channel);
}

/* An idle channel, or a new one. Returns 0 or an nng error (NNG_ENOMEM). */
static int channel_take(weft_client *client, struct connection_channel **out)
{
	pthread_mutex_lock(&client->channel_lock);
	struct connection_channel *channel = client->idle_channels;
	if (channel != NULL) {
		client->idle_channels = channel->next;
		client->idle_count--;
	}
	pthread_mutex_unlock(&client->channel_lock);
	if (channel != NULL) {
		*out = channel;
		return 0;
	}
	if ((channel = allocator_calloc(1, sizeof(*channel))) == NULL)
		return NNG_ENOMEM;
	int rv = nng_aio_alloc(&channel->aio, NULL, NULL);
	if (rv != 0) {
		allocator_free(channel);
		return rv;
	}
	if ((rv = nng_ctx_open(&channel->context, client->socket)) != 0) {
		nng_aio_free(channel->aio);
		allocator_free(channel);
		return rv;
	}
	*out = channel;
	return 0;
}

/* Back to the idle list after a call that went right. */
static void channel_give(weft_client *client, struct connection_channel *channel)
{
	pthread_mutex_lock(&client->channel_lock);
	bool keep = client->idle_count < IDLE_CHANNELS_MAX;
	if (keep) {
		channel->next = client->idle_channels;
		client->idle_channels = channel;
		client->idle_count++;
	}
	pthread_mutex_unlock(&client->channel_lock);
	if (!keep)
		channel_free(channel);
}

int connection_round_trip(weft_client *client, const void *bytes, size_t size,
                          double reply_wait, json_t **reply)
{
	/* Every call reaches the daemon through here, so one check covers them all. */
	if (client == NULL)
		return last_error_set(WEFT_EINVAL, "no client given (NULL); connect first with "
		                                   "weft_connect");
	size_t transport_limit = client->max_message * PROTO_TRANSPORT_SLACK_FACTOR;
	if (size > transport_limit)
		return last_error_set(WEFT_ETOOLARGE,
		                      "request of %zu bytes is more than %d x weftd's --max-message "
		                      "(%zu bytes), so the daemon would drop it unread; send less "
		                      "at a time (a smaller batch) or raise --max-message",
		                      size, PROTO_TRANSPORT_SLACK_FACTOR, client->max_message);
	nng_msg *message = NULL;
	struct connection_channel *channel = NULL;
	int rv;
	if ((rv = nng_msg_alloc(&message, size)) != 0) {
		rv = send_failure(client, rv);
		goto fail;
	}
	memcpy(nng_msg_body(message), bytes, size);
	if ((rv = channel_take(client, &channel)) != 0) {
		rv = send_failure(client, rv);
		goto fail_message;
	}
	nng_aio *aio = channel->aio;

	nng_aio_set_timeout(aio, SEND_TIMEOUT_MS);
	nng_aio_set_msg(aio, message);
	nng_ctx_send(channel->context, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		/* A failed send leaves the message with us. */
		rv = send_failure(client, rv);
		goto fail_channel;
	}
	message = NULL;

	nng_duration waited = reply_timeout_ms(reply_wait);
	nng_aio_set_timeout(aio, waited);
	nng_ctx_recv(channel->context, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		rv = receive_failure(client, rv, waited);
		goto fail_channel;
	}
	message = nng_aio_get_msg(aio);
	json_t *parsed = NULL;
	if ((rv = parse_reply(client, message, &parsed)) != 0)
		goto fail_channel;
	nng_msg_free(message);
	channel_give(client, channel);
	*reply = parsed;
	return WEFT_OK;

fail_channel:
	/* A context that saw an error may still hold a request: never reuse it. */
	channel_free(channel);
fail_message:
	if (message != NULL)
		nng_msg_free(message);
fail:
	return rv;
}

int connection_round_trip_json(weft_client *client, const json_t *request, double reply_wait,
                               json_t **reply)
{
	/* Serialise once to learn the size, once into the buffer: jansson has
	 * no cheaper way to size a document. */
	size_t size = json_dumpb(request, NULL, 0, JSON_COMPACT);
	if (size == 0)
		return last_error_set(WEFT_ENOMEM, "out of memory encoding a request");
	char *buffer = allocator_alloc(size);
	if (buffer == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory encoding a request");
	int rv;
	if (json_dumpb(request, buffer, size, JSON_COMPACT) != size)
		rv = last_error_set(WEFT_ENOMEM, "out of memory encoding a request");
	else
		rv = connection_round_trip(client, buffer, size, reply_wait, reply);
	allocator_free(buffer);
	return rv;
}

int connection_op(weft_client *client, json_t *request, double reply_wait, json_t **reply)
{
	if (request == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory building a request");
	json_t *answer = NULL;
	int rv = connection_round_trip_json(client, request, reply_wait, &answer);
	json_decref(request);
	if (rv != 0)
		return rv;
	if (!json_is_true(json_object_get(answer, "ok"))) {
		rv = last_error_set_from_reply(answer);
		json_decref(answer);
		return rv;
	}
	*reply = answer;
	return WEFT_OK;
}

int connection_simple_op(weft_client *client, json_t *request)
{
	json_t *reply = NULL;
	int rv = connection_op(client, request, 0, &reply);
	json_decref(reply);
	return rv;
}

int connection_op_member(weft_client *client, json_t *request, const char *op, const char *key,
                         json_type type, const char *what, json_t **member, json_t **reply)
{
	json_t *answer = NULL;
	int rv = connection_op(client, request, 0, &answer);
	if (rv != WEFT_OK)
		return rv;
	json_t *found = json_object_get(answer, key);
	if (found == NULL || json_typeof(found) != type) {
		json_decref(answer);
		return connection_bad_reply(op, what);
	}
	*member = json_incref(found);
	if (reply != NULL)
		*reply = answer;
	else
		json_decref(answer);
	return WEFT_OK;
}

int connection_check_id(uint64_t id)
{
	if (id == 0 || id > CONNECTION_MAX_ID)
		return last_error_set(WEFT_EINVAL, "job id %llu is out of range (1 to 2^53)",
		                      (unsigned long long)id);
	return WEFT_OK;
}

bool connection_read_id(const json_t *value, uint64_t *id)
{
	if (!json_is_integer(value) || json_integer_value(value) <= 0)
		return false;
	*id = (uint64_t)json_integer_value(value);
	return true;
}

int connection_bad_reply(const char *op, const char *what)
{
	return last_error_set(WEFT_EPROTO, "weftd's reply to '%s' lacks %s", op, what);
}

/* How often weft_connect sends its ping again after losing the connection:
 * a daemon that re-creates a stuck listener resets the connections that
 * were waiting on it, and a ping is safe to repeat. */
#define CONNECT_PING_ATTEMPTS 3

static int check_ping(weft_client *client)
{
	json_t *reply = NULL;
	int rv = WEFT_ECLOSED;
	for (int attempt = 0; attempt < CONNECT_PING_ATTEMPTS && rv == WEFT_ECLOSED; attempt++)
		rv = connection_op(client, json_pack("{s:s}", "op", "ping"), 0, &reply);
	if (rv != 0)
		return rv;
	json_t *protocol = json_object_get(reply, "protocol");
	if (!json_is_integer(protocol) || json_integer_value(protocol) != PROTO_VERSION) {
		rv = last_error_set(WEFT_EPROTO,
		                    "weftd at %s speaks protocol %lld; this library speaks %d "
		                    "(upgrade the older of the two)",
		                    client->url,
		                    json_is_integer(protocol) ? (long long)json_integer_value(protocol)
		                                              : -1LL,
		                    PROTO_VERSION);
		json_decref(reply);
		return rv;
	}
	json_t *max_message = json_object_get(reply, "max_message");
	if (json_is_integer(max_message) && json_integer_value(max_message) > 0)
		client->max_message = (size_t)json_integer_value(max_message);
	json_decref(reply);
	return WEFT_OK;
}

/* A tls+tcp:// dialer shows our certificate and checks weftd's against the
 * CA and the URL's host: WEFT_TLS_CERT, WEFT_TLS_KEY, WEFT_TLS_CA (the CLI's
 * --tls-cert, --tls-key, --tls-ca set them). */
static int tls_setup(weft_client *client)
{
	const char *cert = getenv("WEFT_TLS_CERT"), *key = getenv("WEFT_TLS_KEY"),
		   *ca = getenv("WEFT_TLS_CA");
	if (cert == NULL || key == NULL || ca == NULL || !cert[0] || !key[0] || !ca[0])
		return last_error_set(WEFT_EINVAL,
		                      "%s needs a client certificate: set WEFT_TLS_CERT, WEFT_TLS_KEY "
		                      "and WEFT_TLS_CA (or give weft --tls-cert, --tls-key, --tls-ca)",
		                      client->url);
	/* The host: after "://", up to the port's colon (or inside [ ]). */
	char host[256] = "";
	const char *start = strstr(client->url, "://") + 3;
	const char *end = *start == '[' ? strchr(start, ']') : strrchr(start, ':');
	if (*start == '[')
		start++;
	if (end != NULL && end > start && (size_t)(end - start) < sizeof(host))
		memcpy(host, start, (size_t)(end - start));
	char message[512];
	nng_tls_config *config;
	if (proto_tls_config(false, cert, key, ca, host[0] != '\0' ? host : NULL, &config, message,
	                     sizeof(message)) != 0)
		return last_error_set(WEFT_EINVAL, "%s", message);
	int rv = nng_dialer_set_ptr(client->dialer, NNG_OPT_TLS_CONFIG, config);
	nng_tls_config_free(config); /* the dialer holds its own reference */
	if (rv != 0)
		return last_error_set(WEFT_EINTERNAL, "cannot use TLS for %s: %s", client->url,
		                      nng_strerror(rv));
	return WEFT_OK;
}

static int dial(weft_client *client)
{
	int rv;
	const char *path = proto_ipc_path(client->url);
	char problem[512];
	/* Requests carry argv, env and stdin: send them only to a socket no other
	 * user can have made. */
	if (path != NULL &&
	    proto_check_socket_path(path, (unsigned)geteuid(), 1, 1, problem, sizeof(problem)) != 0)
		return last_error_set(WEFT_EPERM, "refusing to connect to %s: %s", client->url,
		                      problem);
	if ((rv = nng_req0_open(&client->socket)) != 0)
		return last_error_set(rv == NNG_ENOMEM ? WEFT_ENOMEM : WEFT_EINTERNAL,
		                      "cannot open an nng REQ socket: %s", nng_strerror(rv));
	if ((rv = nng_socket_set_ms(client->socket, NNG_OPT_REQ_RESENDTIME,
	                            NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_socket_set_size(client->socket, NNG_OPT_RECVMAXSZ, REPLY_MAX_BYTES)) != 0 ||
	    (rv = nng_socket_set_ms(client->socket, NNG_OPT_RECONNMINT, RECONNECT_MIN_MS)) != 0 ||
	    (rv = nng_socket_set_ms(client->socket, NNG_OPT_RECONNMAXT, RECONNECT_MAX_MS)) != 0) {
		rv = last_error_set(WEFT_EINTERNAL, "cannot set up the nng REQ socket: %s",
		                    nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_dialer_create(&client->dialer, client->socket, client->url)) != 0) {
		rv = last_error_set(rv == NNG_ENOMEM ? WEFT_ENOMEM : WEFT_EINVAL,
		                    "cannot use the URL '%s': %s (expected ipc:///path/to/weft.sock "
		                    "or tcp://host:port)",
		                    client->url, nng_strerror(rv));
		goto fail;
	}
	if (proto_tls_url(client->url) && (rv = tls_setup(client)) != WEFT_OK)
		goto fail;
	/* Flags 0: block until the first connection is made, so that "no daemon"
	 * is an error now rather than a hang later. */
	if ((rv = nng_dialer_start(client->dialer, 0)) != 0) {
		rv = last_error_set(rv == NNG_ENOMEM ? WEFT_ENOMEM : WEFT_ECONNECT,
		                    "cannot connect to weftd at %s: %s (is weftd running there? "
		                    "give another address with --url or WEFT_URL)",
		                    client->url, nng_strerror(rv));
		goto fail;
	}
	return WEFT_OK;

fail:
	nng_close(client->socket);
	return rv;
}

/* Frees the idle channels; no call may be running. */
static void close_channels(weft_client *client)
{
	struct connection_channel *channel = client->idle_channels;
	client->idle_channels = NULL;
	client->idle_count = 0;
	while (channel != NULL) {
		struct connection_channel *next = channel->next;
		channel_free(channel);
		channel = next;
	}
}

int weft_connect(const char *url, weft_client **out)
{
	last_error_clear();
	char default_url[URL_MAX];
	if (url == NULL) {
		if (proto_default_client_url(default_url, sizeof(default_url)) != 0)
			return last_error_set(WEFT_EINVAL,
			                      "the default URL (from WEFT_URL or the runtime directory) "
			                      "is longer than %d bytes",
			                      URL_MAX - 1);
		url = default_url;
	}
	if (url[0] == '\0')
		return last_error_set(WEFT_EINVAL, "the URL is empty; give ipc:///path/weft.sock");
	int rv;
	weft_client *client = allocator_calloc(1, sizeof(*client));
	if (client == NULL)
		return last_error_set(WEFT_ENOMEM, "out of memory creating a client");
	client->max_message = PROTO_DEFAULT_MAX_MESSAGE;
	pthread_mutex_init(&client->channel_lock, NULL);
	if ((client->url = allocator_strdup(url)) == NULL) {
		rv = last_error_set(WEFT_ENOMEM, "out of memory creating a client");
		goto fail_client;
	}
	if ((rv = dial(client)) != 0)
		goto fail_url;
	if ((rv = check_ping(client)) != 0)
		goto fail_socket;
	*out = client;
	return WEFT_OK;

fail_socket:
	close_channels(client);
	nng_close(client->socket);
fail_url:
	allocator_free(client->url);
fail_client:
	pthread_mutex_destroy(&client->channel_lock);
	allocator_free(client);
	return rv;
}

void weft_close(weft_client *client)
{
	if (client == NULL)
		return;
	close_channels(client);
	nng_close(client->socket);
	pthread_mutex_destroy(&client->channel_lock);
	allocator_free(client->url);
	allocator_free(client);
}

const char *weft_client_url(const weft_client *client)
{
	return client->url;
}

size_t weft_client_max_message(const weft_client *client)
{
	return client->max_message;
}

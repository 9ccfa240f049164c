/*
 * The connection to weftd: dialing, the first ping, closing, and the
 * blocking round trip that the blocking calls share.
 *
 * Every request, blocking or not, is a call of the engine in client/async.c
 * (its design block explains contexts, resend, timeouts and stopping): a
 * blocking round trip starts one and waits for it on the calling thread.
 *
 * Resend is off (NNG_OPT_REQ_RESENDTIME = infinite) before any context is
 * opened, because contexts copy the socket's setting when they are created.
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
#include "client/async.h"
#include "client/json_check.h"
#include "client/last_error.h"
#include "proto/proto.h"
#include "proto/tls.h"
#include "proto/url.h"

/* Replies can be large (a list of 10000 jobs, a batch of 100000 ids); this
 * bounds what a broken or hostile peer can make us allocate. */
#define REPLY_MAX_BYTES (64 * 1024 * 1024)
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000
#define URL_MAX 4096

/* A blocking round trip is a raw call (any reply object is the answer). */
static const struct async_op round_trip_op = {.name = "request", .raw = true};

/* Starts call (its request set, or rv an error from setting it) and waits. */
static int wait_for(weft_call *call, int rv, json_t **reply)
{
	if (rv != WEFT_OK) {
		weft_call_free(call);
		return rv;
	}
	if ((rv = async_call_start(call, NULL)) != WEFT_OK)
		return rv; /* the call is freed */
	if ((rv = async_call_wait(call)) == WEFT_OK) {
		*reply = call->reply;
		call->reply = NULL;
	}
	weft_call_free(call);
	return rv;
}

int connection_round_trip(weft_client *client, const void *bytes, size_t size,
                          double reply_wait, json_t **reply)
{
	weft_call *call = NULL;
	int rv = async_call_new(client, &round_trip_op, NULL, &call);
	if (rv != WEFT_OK)
		return rv;
	return wait_for(call, async_call_set_request(call, bytes, size, reply_wait), reply);
}

int connection_round_trip_parts(weft_client *client, const void *head, size_t head_size,
                                const void *tail, size_t tail_size, double reply_wait,
                                json_t **reply)
{
	weft_call *call = NULL;
	int rv = async_call_new(client, &round_trip_op, NULL, &call);
	if (rv != WEFT_OK)
		return rv;
	return wait_for(call,
	                async_call_set_request_parts(call, head, head_size, tail, tail_size,
	                                             reply_wait),
	                reply);
}

int connection_round_trip_json(weft_client *client, const json_t *request, double reply_wait,
                               json_t **reply)
{
	weft_call *call = NULL;
	int rv = async_call_new(client, &round_trip_op, NULL, &call);
	if (rv != WEFT_OK)
		return rv;
	/* json_incref only counts a reference; it leaves the request as it is. */
	return wait_for(call,
	                async_call_set_request_json(call, json_incref((json_t *)request), reply_wait),
	                reply);
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
	pthread_mutex_init(&client->calls_lock, NULL);
	pthread_cond_init(&client->calls_done, NULL);
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
	async_client_close(client);
	nng_close(client->socket);
fail_url:
	allocator_free(client->url);
fail_client:
	pthread_cond_destroy(&client->calls_done);
	pthread_mutex_destroy(&client->calls_lock);
	allocator_free(client);
	return rv;
}

void weft_close(weft_client *client)
{
	if (client == NULL)
		return;
	async_client_close(client);
	nng_close(client->socket);
	pthread_cond_destroy(&client->calls_done);
	pthread_mutex_destroy(&client->calls_lock);
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

/*
 * http.get / http.request; see http.h.
 *
 * Design. Everything here runs on one worker's thread: the worker's pools
 * (struct http_loop, one per owner, listed in a thread-local list, made on
 * the owner's first transfer and freed after HTTP_IDLE_SECONDS without one),
 * their events, and every transfer started on them. A transfer is the attempt's data; it ends in
 * exactly one of two places, both on that thread:
 *  - drain(): curl says it is done; the transfer leaves the multi handle and
 *    is freed, then the attempt is completed or failed;
 *  - http_stop(): the runner stopped the attempt (cancel, job timeout,
 *    shutdown); curl_multi_remove_handle aborts it on the wire (its
 *    connection is closed, not put back in the pool, since it is mid-transfer).
 * Neither runs inside a curl callback: drain() runs after
 * curl_multi_socket_action returned, and stop is a call posted to the worker.
 *
 * Memory: a response's headers are capped (HTTP_HEADERS_MAX) and its body by
 * max_size; the body's buffer is counted against its owner's share of
 * --max-bytes-per-user (quota.h) while the transfer runs.
 */
#include "daemon/executors/io/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <event2/event.h>
#include <nettle/base64.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/core/functions.h"
#include "daemon/core/jobs.h"
#include "daemon/core/principal.h"
#include "daemon/core/quota.h"
#include "daemon/sched/runner.h"
#include "daemon/sched/workers.h"
#include "weft/error.h"

#define HTTP_HEADERS_MAX (64u << 10) /* bytes of response headers kept */
#define HTTP_URL_MAX 8192
#define HTTP_HEADER_COUNT_MAX 64
#define HTTP_TIMEOUT_DEFAULT 30.0
#define HTTP_CONNECT_TIMEOUT_DEFAULT 10.0
#define HTTP_REDIRECTS_DEFAULT 5
#define HTTP_REDIRECTS_MAX 20
#define HTTP_SAVE_MAX ((json_int_t)1 << 32) /* max_size's ceiling with save_to: 4 GiB */
#define HTTP_PATH_MAX 4096

/* A worker's pool for one owner. Owned by the worker's thread (thread_loops). */
struct http_loop {
	struct event_base *base;
	uid_t owner;          /* whose jobs' connections these are */
	struct http_loop *next;
	CURLM *multi;
	struct event *timer;  /* curl's timeout */
	struct event *idle;   /* frees the pool after HTTP_IDLE_SECONDS without transfers */
	unsigned transfers;   /* running now */
	struct http_socket *sockets; /* every socket curl asked us to watch */
};

/* A socket curl watches; curl_multi_assign links it to curl's socket. */
struct http_socket {
	struct http_loop *loop;
	curl_socket_t fd;
	struct event *event;
	struct http_socket *prev, *next;
};

/* One transfer: the attempt's data. Owned by the worker's thread. */
struct http_transfer {
	struct job_attempt *attempt;
	struct http_loop *loop;
	CURL *easy;
	struct curl_slist *request_headers; /* owned */
	uid_t owner;
	char *body;            /* owned; length bytes received */
	size_t length, capacity;
	size_t limit;          /* max_size */
	uint64_t charged;      /* bytes of QUOTA_BYTES taken for body */
	bool too_big;
	bool over_quota;
	bool raise_for_status;
	json_t *headers;       /* owned: the last response's headers */
	size_t header_bytes;
	char error[CURL_ERROR_SIZE];
	char quota_message[256];
	/* save_to: the body goes to this file, created with the owner's rights
	 * (principal_create_regular), instead of into body. */
	struct principal *principal; /* a reference, for removing the file */
	const char *save_to;   /* borrowed from the job's args; NULL: keep the body */
	int fd;                /* the file, or -1 */
	int write_error;       /* errno of a failed write, or 0 */
};

/* The worker's pools, one per owner with transfers lately. */
static _Thread_local struct http_loop *thread_loops;

/* Set by http_init: whether this libcurl resolves names without blocking. */
static bool async_dns;

int http_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return WEFT_EINTERNAL;
	const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
	async_dns = (info->features & CURL_VERSION_ASYNCHDNS) != 0;
	return WEFT_OK;
}

void http_fini(void)
{
	curl_global_cleanup();
}

/* ---- the pool's events ---- */

static void drain(struct http_loop *loop);

static void on_socket_event(evutil_socket_t fd, short events, void *argument)
{
	struct http_loop *loop = argument;
	int action = ((events & EV_READ) ? CURL_CSELECT_IN : 0) |
	             ((events & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running;
	curl_multi_socket_action(loop->multi, fd, action, &running);
	drain(loop);
}

static void on_timer(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct http_loop *loop = argument;
	int running;
	curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	drain(loop);
}

static void socket_free(struct http_socket *socket)
{
	struct http_loop *loop = socket->loop;
	if (socket->prev != NULL)
		socket->prev->next = socket->next;
	else
		loop->sockets = socket->next;
	if (socket->next != NULL)
		socket->next->prev = socket->prev;
	event_free(socket->event);
	free(socket);
}

/* curl's CURLMOPT_SOCKETFUNCTION, inside a curl call on the worker's thread. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *user, void *assigned)
{
	(void)easy;
	struct http_loop *loop = user;
	struct http_socket *socket = assigned;
	if (what == CURL_POLL_REMOVE) {
		if (socket != NULL) {
			curl_multi_assign(loop->multi, fd, NULL);
			socket_free(socket);
		}
		return 0;
	}
	short kinds = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	              ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (socket == NULL) {
		socket = memory_zalloc(sizeof(*socket));
		socket->loop = loop;
		socket->fd = fd;
		socket->event = event_new(loop->base, fd, kinds, on_socket_event, loop);
		if (socket->event == NULL) {
			free(socket);
			return -1;
		}
		socket->next = loop->sockets;
		if (loop->sockets != NULL)
			loop->sockets->prev = socket;
		loop->sockets = socket;
		curl_multi_assign(loop->multi, fd, socket);
	} else {
		event_del(socket->event);
		event_assign(socket->event, loop->base, fd, kinds, on_socket_event, loop);
	}
	event_add(socket->event, NULL);
	return 0;
}

/* curl's CURLMOPT_TIMERFUNCTION: arm or disarm our one timer (never calls
 * back into curl from here, as curl requires). */
static int on_timer_change(CURLM *multi, long timeout_ms, void *user)
{
	(void)multi;
	struct http_loop *loop = user;
	if (timeout_ms < 0) {
		evtimer_del(loop->timer);
		return 0;
	}
	struct timeval delay = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	evtimer_add(loop->timer, &delay);
	return 0;
}

static void loop_free(struct http_loop *loop)
{
	/* The multi handle closes its pooled connections; curl may tell
	 * on_socket to forget some of their sockets on the way. */
	curl_multi_cleanup(loop->multi);
	while (loop->sockets != NULL)
		socket_free(loop->sockets);
	event_free(loop->timer);
	event_free(loop->idle);
	free(loop);
}

static void on_idle(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	struct http_loop *loop = argument;
	if (loop->transfers != 0)
		return;
	for (struct http_loop **link = &thread_loops; *link != NULL; link = &(*link)->next)
		if (*link == loop) {
			*link = loop->next;
			break;
		}
	loop_free(loop);
}

/* The worker's pool for owner, made on first use. NULL when out of memory. */
static struct http_loop *loop_get(struct event_base *base, uid_t owner)
{
	for (struct http_loop *loop = thread_loops; loop != NULL; loop = loop->next)
		if (loop->owner == owner)
			return loop;
	struct http_loop *loop = memory_zalloc(sizeof(*loop));
	loop->base = base;
	loop->owner = owner;
	loop->multi = curl_multi_init();
	loop->timer = evtimer_new(base, on_timer, loop);
	loop->idle = evtimer_new(base, on_idle, loop);
	if (loop->multi == NULL || loop->timer == NULL || loop->idle == NULL) {
		if (loop->multi != NULL)
			curl_multi_cleanup(loop->multi);
		if (loop->timer != NULL)
			event_free(loop->timer);
		if (loop->idle != NULL)
			event_free(loop->idle);
		free(loop);
		return NULL;
	}
	curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop);
	curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, on_timer_change);
	curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop);
	loop->next = thread_loops;
	thread_loops = loop;
	return loop;
}

void http_worker_exit(struct event_base *base)
{
	while (thread_loops != NULL && thread_loops->base == base) {
		struct http_loop *loop = thread_loops;
		thread_loops = loop->next;
		loop_free(loop);
	}
}

/* ---- arguments ---- */

static const struct function_argument get_arguments[] = {
	{"url", "string (required): an http:// or https:// URL"},
	{"headers", "object of strings (optional): request headers"},
	{"timeout", "number > 0 (optional): seconds for the whole transfer; 30 by default"},
	{"connect_timeout", "number > 0 (optional): seconds to connect; 10 by default"},
	{"follow_redirects", "boolean (optional): follow 3xx Location (http/https only); true by default"},
	{"max_redirects", "integer 0-20 (optional): 5 by default"},
	{"max_size", "integer >= 0 (optional): largest body accepted, bytes; 1 MiB by default, 16 MiB at most"},
	{"raise_for_status", "boolean (optional): a status >= 400 fails the job (HTTPStatusError)"},
	{"ca_pem", "string (optional): PEM certificates trusted instead of the system's"},
	{"save_to", "string (optional): absolute path of a new file the body is written to, with the "
	            "submitter's rights; result {saved_to, bytes} instead of body; max_size up to 4 GiB"},
	{NULL, NULL},
};

static const struct function_argument request_arguments[] = {
	{"method", "string (optional): GET, POST, PUT, DELETE, HEAD, PATCH...; GET by default"},
	{"url", "string (required): an http:// or https:// URL"},
	{"headers", "object of strings (optional): request headers"},
	{"body", "string (optional): the request body"},
	{"timeout", "number > 0 (optional): seconds for the whole transfer; 30 by default"},
	{"connect_timeout", "number > 0 (optional): seconds to connect; 10 by default"},
	{"follow_redirects", "boolean (optional): follow 3xx Location (http/https only); true by default"},
	{"max_redirects", "integer 0-20 (optional): 5 by default"},
	{"max_size", "integer >= 0 (optional): largest body accepted, bytes; 1 MiB by default, 16 MiB at most"},
	{"raise_for_status", "boolean (optional): a status >= 400 fails the job (HTTPStatusError)"},
	{"ca_pem", "string (optional): PEM certificates trusted instead of the system's"},
	{"save_to", "string (optional): absolute path of a new file the body is written to, with the "
	            "submitter's rights; result {saved_to, bytes} instead of body; max_size up to 4 GiB"},
	{NULL, NULL},
};

static bool is_token_char(unsigned char c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_numeric_host(const char *host)
{
	unsigned char buffer[16];
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (host[0] == '[') {
		char copy[64];
		size_t n = strlen(host);
		if (n < 3 || n - 2 >= sizeof(copy) || host[n - 1] != ']')
			return false;
		memcpy(copy, host + 1, n - 2);
		copy[n - 2] = '\0';
		return evutil_inet_pton(AF_INET6, copy, buffer) == 1;
	}
	return evutil_inet_pton(AF_INET, host, buffer) == 1;
}

static int check_url(const struct function *function, const json_t *url, struct problem *problem)
{
	const char *text = json_string_value(url);
	if (text == NULL)
		return problem_set(problem, WEFT_EBADARGS, "args.url",
		                   "%s needs 'url', an http:// or https:// URL", function->name);
	if (json_string_length(url) > HTTP_URL_MAX || strlen(text) != json_string_length(url))
		return problem_set(problem, WEFT_EBADARGS, "args.url",
		                   "'url' must be at most %d bytes, without NUL", HTTP_URL_MAX);
	CURLU *parsed = curl_url();
	if (parsed == NULL)
		return problem_set(problem, WEFT_EINTERNAL, "args.url", "out of memory");
	char *scheme = NULL, *host = NULL;
	int rv = WEFT_OK;
	if (curl_url_set(parsed, CURLUPART_URL, text, 0) != CURLUE_OK ||
	    curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(parsed, CURLUPART_HOST, &host, 0) != CURLUE_OK)
		rv = problem_set(problem, WEFT_EBADARGS, "args.url",
		                 "'%s' is not a URL with a scheme and a host", text);
	else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
		rv = problem_set(problem, WEFT_EBADARGS, "args.url",
		                 "%s fetches http:// and https:// URLs only, not %s://",
		                 function->name, scheme);
	else if (!async_dns && !is_numeric_host(host))
		rv = problem_set(problem, WEFT_EBADARGS, "args.url",
		                 "this weftd's libcurl cannot resolve '%s' without blocking its loop: "
		                 "use a numeric address or localhost",
		                 host);
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(parsed);
	return rv;
}

static int check_number(const json_t *args, const char *name, double max, struct problem *problem)
{
	const json_t *value = json_object_get(args, name);
	if (value == NULL)
		return WEFT_OK;
	if (!json_is_number(value) || json_number_value(value) <= 0 || json_number_value(value) > max) {
		char field[64];
		snprintf(field, sizeof(field), "args.%s", name);
		return problem_set(problem, WEFT_EBADARGS, field,
		                   "'%s' must be a number of seconds in (0, %g]", name, max);
	}
	return WEFT_OK;
}

static int http_check(const struct function *function, const json_t *args, struct problem *problem)
{
	int rv = functions_check_known_arguments(function, args, problem);
	if (rv != WEFT_OK)
		return rv;
	if ((rv = check_url(function, json_object_get(args, "url"), problem)) != WEFT_OK)
		return rv;
	const json_t *method = json_object_get(args, "method");
	if (method != NULL) {
		const char *text = json_string_value(method);
		bool ok = text != NULL && text[0] != '\0' && strlen(text) <= 16;
		for (const char *c = text; ok && *c != '\0'; c++)
			ok = isupper((unsigned char)*c) || *c == '-' || *c == '_';
		if (!ok)
			return problem_set(problem, WEFT_EBADARGS, "args.method",
			                   "'method' must be an upper-case HTTP method of at most 16 letters (GET, POST...)");
	}
	const json_t *headers = json_object_get(args, "headers");
	if (headers != NULL) {
		if (!json_is_object(headers) || json_object_size(headers) > HTTP_HEADER_COUNT_MAX)
			return problem_set(problem, WEFT_EBADARGS, "args.headers",
			                   "'headers' must be an object of at most %d strings",
			                   HTTP_HEADER_COUNT_MAX);
		const char *name;
		const json_t *value;
		json_object_foreach((json_t *)headers, name, value) {
			bool ok = name[0] != '\0' && strlen(name) <= 256;
			for (const char *c = name; ok && *c != '\0'; c++)
				ok = is_token_char((unsigned char)*c);
			const char *text = json_string_value(value);
			ok = ok && text != NULL && json_string_length(value) <= 8192;
			for (const char *c = text; ok && *c != '\0'; c++)
				ok = *c != '\r' && *c != '\n';
			if (ok && strlen(text) != json_string_length(value))
				ok = false;
			if (!ok)
				return problem_set(problem, WEFT_EBADARGS, "args.headers",
				                   "header '%.64s': the name must be an HTTP token and the value "
				                   "a string of at most 8192 bytes without CR, LF or NUL",
				                   name);
		}
	}
	const json_t *body = json_object_get(args, "body");
	if (body != NULL && !json_is_string(body))
		return problem_set(problem, WEFT_EBADARGS, "args.body", "'body' must be a string");
	if ((rv = check_number(args, "timeout", 86400, problem)) != WEFT_OK ||
	    (rv = check_number(args, "connect_timeout", 3600, problem)) != WEFT_OK)
		return rv;
	const char *flags[] = {"follow_redirects", "raise_for_status"};
	for (size_t i = 0; i < 2; i++) {
		const json_t *flag = json_object_get(args, flags[i]);
		if (flag != NULL && !json_is_boolean(flag))
			return problem_set(problem, WEFT_EBADARGS, NULL, "'%s' must be true or false",
			                   flags[i]);
	}
	const json_t *redirects = json_object_get(args, "max_redirects");
	if (redirects != NULL && (!json_is_integer(redirects) || json_integer_value(redirects) < 0 ||
	                          json_integer_value(redirects) > HTTP_REDIRECTS_MAX))
		return problem_set(problem, WEFT_EBADARGS, "args.max_redirects",
		                   "'max_redirects' must be an integer from 0 to %d", HTTP_REDIRECTS_MAX);
	const json_t *save_to = json_object_get(args, "save_to");
	if (save_to != NULL) {
		const char *path = json_string_value(save_to);
		if (path == NULL || path[0] != '/' || json_string_length(save_to) > HTTP_PATH_MAX ||
		    strlen(path) != json_string_length(save_to) || path[strlen(path) - 1] == '/')
			return problem_set(problem, WEFT_EBADARGS, "args.save_to",
			                   "'save_to' must be an absolute path of a file (not ending in '/'), "
			                   "at most %d bytes, without NUL",
			                   HTTP_PATH_MAX);
	}
	json_int_t size_max = save_to != NULL ? HTTP_SAVE_MAX : (json_int_t)HTTP_BODY_MAX;
	const json_t *size = json_object_get(args, "max_size");
	if (size != NULL && (!json_is_integer(size) || json_integer_value(size) < 0 ||
	                     json_integer_value(size) > size_max))
		return problem_set(problem, WEFT_EBADARGS, "args.max_size",
		                   "'max_size' must be an integer from 0 to %" JSON_INTEGER_FORMAT
		                   " bytes (%u without save_to)",
		                   size_max, HTTP_BODY_MAX);
	const json_t *ca = json_object_get(args, "ca_pem");
	if (ca != NULL && (!json_is_string(ca) || json_string_length(ca) > (1u << 20)))
		return problem_set(problem, WEFT_EBADARGS, "args.ca_pem",
		                   "'ca_pem' must be PEM text of at most 1 MiB");
	return WEFT_OK;
}

/* ---- a transfer ---- */

/* curl's CURLOPT_WRITEFUNCTION: keeps the body within max_size and quota. */
static size_t on_body(char *data, size_t size, size_t count, void *argument)
{
	struct http_transfer *transfer = argument;
	size_t n = size * count;
	if (n > transfer->limit - transfer->length) {
		transfer->too_big = true;
		return 0;
	}
	if (transfer->fd >= 0) {
		/* A regular file: curl hands at most CURL_MAX_WRITE_SIZE (16 KiB) at
		 * a time, which the page cache takes without a wait worth a thread. */
		for (size_t done = 0; done < n;) {
			ssize_t written = write(transfer->fd, data + done, n - done);
			if (written < 0 && errno == EINTR)
				continue;
			if (written <= 0) {
				transfer->write_error = written < 0 ? errno : ENOSPC;
				return 0;
			}
			done += (size_t)written;
		}
		transfer->length += n;
		return n;
	}
	if (transfer->length + n > transfer->capacity) {
		size_t capacity = transfer->capacity == 0 ? 16384 : transfer->capacity;
		while (capacity < transfer->length + n)
			capacity *= 2;
		if (capacity > transfer->limit)
			capacity = transfer->limit;
		struct problem problem;
		problem_init(&problem);
		if (quota_take(QUOTA_BYTES, transfer->owner, capacity - transfer->capacity, &problem) !=
		    WEFT_OK) {
			snprintf(transfer->quota_message, sizeof(transfer->quota_message), "%s",
			         problem.message);
			transfer->over_quota = true;
			return 0;
		}
		transfer->charged += capacity - transfer->capacity;
		transfer->body = memory_realloc(transfer->body, capacity);
		transfer->capacity = capacity;
	}
	memcpy(transfer->body + transfer->length, data, n);
	transfer->length += n;
	return n;
}

/* curl's CURLOPT_HEADERFUNCTION: one header line at a time; a status line
 * starts a new response (after a redirect, or a 100 Continue). */
static size_t on_header(char *data, size_t size, size_t count, void *argument)
{
	struct http_transfer *transfer = argument;
	size_t n = size * count;
	if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		json_object_clear(transfer->headers);
		transfer->header_bytes = 0;
		return n;
	}
	transfer->header_bytes += n;
	if (transfer->header_bytes > HTTP_HEADERS_MAX) {
		transfer->too_big = true;
		return 0;
	}
	const char *colon = memchr(data, ':', n);
	if (colon == NULL || colon == data)
		return n; /* the blank line at the end, or a malformed line */
	char name[256];
	size_t name_length = (size_t)(colon - data);
	if (name_length >= sizeof(name))
		return n;
	for (size_t i = 0; i < name_length; i++)
		name[i] = (char)tolower((unsigned char)data[i]);
	name[name_length] = '\0';
	const char *value = colon + 1, *end = data + n;
	while (value < end && (*value == ' ' || *value == '\t'))
		value++;
	while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	json_t *text = json_stringn(value, (size_t)(end - value));
	if (text == NULL)
		return n; /* not UTF-8: dropped rather than mangled */
	const char *old = json_string_value(json_object_get(transfer->headers, name));
	if (old != NULL) {
		/* Repeated fields join with ", " (RFC 9110, 5.3). */
		char *joined = memory_alloc(strlen(old) + 2 + json_string_length(text) + 1);
		sprintf(joined, "%s, %s", old, json_string_value(text));
		json_decref(text);
		text = json_string(joined);
		free(joined);
	}
	json_object_set_new(transfer->headers, name, text);
	return n;
}

/* Closes the save_to file; a job that did not complete removes it, so a
 * failed, cancelled or timed-out download leaves no partial file (and a retry
 * can create it again). */
static void close_saved(struct http_transfer *transfer, bool keep)
{
	if (transfer->fd < 0)
		return;
	close(transfer->fd);
	transfer->fd = -1;
	int error;
	if (!keep)
		principal_unlink(transfer->principal, transfer->save_to, &error);
}

static void transfer_free(struct http_transfer *transfer)
{
	struct http_loop *loop = transfer->loop;
	close_saved(transfer, false);
	principal_unref(transfer->principal);
	curl_multi_remove_handle(loop->multi, transfer->easy);
	curl_easy_cleanup(transfer->easy);
	curl_slist_free_all(transfer->request_headers);
	if (transfer->charged > 0)
		quota_give(QUOTA_BYTES, transfer->owner, transfer->charged);
	free(transfer->body);
	json_decref(transfer->headers);
	free(transfer);
	if (--loop->transfers == 0) {
		struct timeval idle = {.tv_sec = HTTP_IDLE_SECONDS};
		evtimer_add(loop->idle, &idle);
	}
}

static json_t *body_to_json(const struct http_transfer *transfer, bool *base64)
{
	json_t *text = json_stringn(transfer->body != NULL ? transfer->body : "", transfer->length);
	*base64 = text == NULL;
	if (text != NULL)
		return text;
	char *encoded = memory_alloc(BASE64_ENCODE_RAW_LENGTH(transfer->length) + 1);
	base64_encode_raw((char *)encoded, transfer->length, (const uint8_t *)transfer->body);
	encoded[BASE64_ENCODE_RAW_LENGTH(transfer->length)] = '\0';
	json_t *value = json_string(encoded);
	free(encoded);
	return value;
}

/* The transfer is done: it is freed, then its attempt ends. */
static void finish(struct http_transfer *transfer, CURLcode code)
{
	struct job_attempt *attempt = transfer->attempt;
	const char *name = attempt->job->function->name;
	attempt->data = NULL;
	if (transfer->over_quota) {
		char message[256];
		snprintf(message, sizeof(message), "%s", transfer->quota_message);
		transfer_free(transfer);
		runner_fail(attempt, "QuotaExceeded", NULL, "%s: %s", name, message);
		return;
	}
	if (transfer->too_big || code == CURLE_FILESIZE_EXCEEDED) {
		size_t limit = transfer->limit;
		transfer_free(transfer);
		runner_fail(attempt, "ResponseTooLarge", NULL,
		            "%s: the response is larger than max_size (%zu bytes) or its headers than "
		            "%u bytes; raise max_size (at most %u)",
		            name, limit, HTTP_HEADERS_MAX, HTTP_BODY_MAX);
		return;
	}
	if (transfer->write_error != 0) {
		int error = transfer->write_error;
		transfer_free(transfer);
		runner_fail(attempt, "OSError", NULL, "%s: cannot write save_to: %s", name,
		            strerror(error));
		return;
	}
	if (code != CURLE_OK) {
		const char *type;
		switch (code) {
		case CURLE_OPERATION_TIMEDOUT:
			type = proto_job_error(PROTO_JOB_ERROR_TIMEOUT);
			break;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
			type = "ConnectionError";
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CACERT_BADFILE:
			type = "TLSError";
			break;
		case CURLE_TOO_MANY_REDIRECTS:
			type = "TooManyRedirects";
			break;
		default:
			type = "HTTPError";
			break;
		}
		char message[CURL_ERROR_SIZE + 128];
		snprintf(message, sizeof(message), "%s", transfer->error[0] != '\0' ? transfer->error
		                                                                    : curl_easy_strerror(code));
		transfer_free(transfer);
		runner_fail(attempt, type, NULL, "%s: %s", name, message);
		return;
	}
	long status = 0, redirects = 0;
	char *effective = NULL;
	curl_easy_getinfo(transfer->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(transfer->easy, CURLINFO_REDIRECT_COUNT, &redirects);
	curl_easy_getinfo(transfer->easy, CURLINFO_EFFECTIVE_URL, &effective);
	bool base64;
	json_t *result = json_object();
	json_object_set_new(result, "status", json_integer(status));
	json_object_set_new(result, "url", json_string(effective != NULL ? effective : ""));
	json_object_set_new(result, "redirects", json_integer(redirects));
	json_object_set(result, "headers", transfer->headers);
	bool raise = transfer->raise_for_status && status >= 400;
	if (transfer->save_to != NULL) {
		json_object_set_new(result, "saved_to", json_string(transfer->save_to));
		json_object_set_new(result, "bytes", json_integer((json_int_t)transfer->length));
		close_saved(transfer, !raise);
	} else {
		json_object_set_new(result, "body", body_to_json(transfer, &base64));
		if (base64)
			json_object_set_new(result, "encoding", json_string("base64"));
	}
	transfer_free(transfer);
	if (raise)
		runner_fail(attempt, "HTTPStatusError", result, "%s: the server answered %ld", name,
		            status);
	else
		runner_complete(attempt, result);
}

static void drain(struct http_loop *loop)
{
	CURLMsg *message;
	int left;
	while ((message = curl_multi_info_read(loop->multi, &left)) != NULL) {
		if (message->msg != CURLMSG_DONE)
			continue;
		CURLcode code = message->data.result;
		struct http_transfer *transfer = NULL;
		curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **)&transfer);
		finish(transfer, code);
	}
}

static double seconds_arg(const json_t *args, const char *name, double fallback)
{
	const json_t *value = json_object_get(args, name);
	return value != NULL ? json_number_value(value) : fallback;
}

static void http_start(struct job_attempt *attempt)
{
	const json_t *args = attempt->job->args;
	const char *name = attempt->job->function->name;
	struct http_loop *loop = loop_get(workers_base(attempt->worker), attempt->job->owner->uid);
	if (loop == NULL) {
		runner_fail(attempt, "OSError", NULL, "%s: cannot set up the worker's HTTP pool", name);
		return;
	}
	/* save_to is created before anything else, with the submitter's rights,
	 * so a name the submitter may not create fails the job at once. */
	const char *save_to = json_string_value(json_object_get(args, "save_to"));
	int fd = -1;
	if (save_to != NULL) {
		int error;
		int rv = principal_create_regular(attempt->job->owner, save_to, 0644, &fd, &error);
		if (rv != WEFT_OK) {
			runner_fail(attempt,
			            rv == WEFT_EPERM  ? "PermissionError"
			            : error == EEXIST ? "FileExistsError"
			            : error == ENOENT ? "FileNotFoundError"
			                              : "OSError",
			            NULL, "%s: cannot create save_to '%s' as its submitter: %s%s", name, save_to,
			            strerror(error),
			            error == EEXIST ? " (save_to must name a new file: remove it or pick another)"
			                            : "");
			return;
		}
	}
	struct http_transfer *transfer = memory_zalloc(sizeof(*transfer));
	transfer->attempt = attempt;
	transfer->loop = loop;
	transfer->owner = attempt->job->owner->uid;
	transfer->headers = json_object();
	transfer->save_to = save_to;
	transfer->fd = fd;
	if (save_to != NULL)
		transfer->principal = principal_ref(attempt->job->owner);
	const json_t *size = json_object_get(args, "max_size");
	transfer->limit = size != NULL ? (size_t)json_integer_value(size) : HTTP_BODY_DEFAULT;
	transfer->raise_for_status = json_is_true(json_object_get(args, "raise_for_status"));
	transfer->easy = curl_easy_init();
	if (transfer->easy == NULL) {
		close_saved(transfer, false);
		principal_unref(transfer->principal);
		json_decref(transfer->headers);
		free(transfer);
		runner_fail(attempt, "OSError", NULL, "%s: out of memory", name);
		return;
	}
	loop->transfers++;
	evtimer_del(loop->idle);
	CURL *easy = transfer->easy;
	curl_easy_setopt(easy, CURLOPT_PRIVATE, transfer);
	curl_easy_setopt(easy, CURLOPT_URL, json_string_value(json_object_get(args, "url")));
	/* What a job may reach: http and https alone, redirects included (never
	 * file://, which would read the daemon's files). */
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(easy, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "weft");
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, transfer->error);
	curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, (long)HTTP_IDLE_SECONDS);
	const json_t *follow = json_object_get(args, "follow_redirects");
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, follow == NULL || json_is_true(follow) ? 1L : 0L);
	const json_t *redirects = json_object_get(args, "max_redirects");
	curl_easy_setopt(easy, CURLOPT_MAXREDIRS,
	                 redirects != NULL ? (long)json_integer_value(redirects)
	                                   : (long)HTTP_REDIRECTS_DEFAULT);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
	                 (long)(seconds_arg(args, "timeout", HTTP_TIMEOUT_DEFAULT) * 1000));
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)(seconds_arg(args, "connect_timeout", HTTP_CONNECT_TIMEOUT_DEFAULT) * 1000));
	curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)transfer->limit);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, transfer);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, transfer);
	const char *method = json_string_value(json_object_get(args, "method"));
	const json_t *body = json_object_get(args, "body");
	if (body != NULL) {
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)json_string_length(body));
		curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, json_string_value(body));
	}
	if (method != NULL && strcmp(method, "HEAD") == 0)
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	else if (method != NULL && !(strcmp(method, "GET") == 0 && body == NULL) &&
	         !(strcmp(method, "POST") == 0 && body != NULL))
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	const json_t *headers = json_object_get(args, "headers");
	const char *key;
	const json_t *value;
	json_object_foreach((json_t *)headers, key, value) {
		const char *text = json_string_value(value);
		char *line = memory_alloc(strlen(key) + strlen(text) + 3);
		/* "Name;" sends a header with an empty value; "Name:" would remove it. */
		if (text[0] == '\0')
			sprintf(line, "%s;", key);
		else
			sprintf(line, "%s: %s", key, text);
		struct curl_slist *list = curl_slist_append(transfer->request_headers, line);
		free(line);
		if (list != NULL)
			transfer->request_headers = list;
	}
	if (transfer->request_headers != NULL)
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, transfer->request_headers);
	const json_t *ca = json_object_get(args, "ca_pem");
	if (ca != NULL) {
		struct curl_blob blob = {.data = (void *)json_string_value(ca),
		                         .len = json_string_length(ca),
		                         .flags = CURL_BLOB_COPY};
		curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &blob);
	}
	attempt->data = transfer;
	CURLMcode code = curl_multi_add_handle(loop->multi, easy);
	if (code != CURLM_OK) {
		attempt->data = NULL;
		transfer_free(transfer);
		runner_fail(attempt, "OSError", NULL, "%s: %s", name, curl_multi_strerror(code));
	}
}

/* The attempt's worker: cancelled or timed out; the transfer is aborted and
 * its connection closed. */
static void http_stop(struct job_attempt *attempt)
{
	struct http_transfer *transfer = attempt->data;
	if (transfer == NULL)
		return;
	attempt->data = NULL;
	transfer_free(transfer);
}

const struct function http_get_function = {
	.name = "http.get",
	.executor = FUNCTION_LOOP,
	.summary = "fetches an http(s) URL on a worker loop; result {status, url, redirects, headers, "
	           "body[, encoding]}, or with save_to {..., saved_to, bytes}",
	.arguments = get_arguments,
	.check = http_check,
	.start = http_start,
	.stop = http_stop,
};

const struct function http_request_function = {
	.name = "http.request",
	.executor = FUNCTION_LOOP,
	.summary = "an HTTP request of any method, with headers and a body, on a worker loop; result as "
	           "http.get",
	.arguments = request_arguments,
	.check = http_check,
	.start = http_start,
	.stop = http_stop,
};

/*
 * Asynchronous host name lookups for the IO built-ins; see resolve.h.
 *
 * Design. One evdns_base per worker thread (thread-local, made on first
 * use on that worker's event_base, so only that thread ever touches it:
 * DESIGN-NOTES, libevent). EVDNS_BASE_DISABLE_WHEN_INACTIVE keeps its socket
 * out of the loop while nothing is asked, so an idle daemon stays idle.
 *
 * evdns may answer inside evdns_getaddrinfo (a numeric address, a name in
 * /etc/hosts) and, once cancelled, still calls back later with
 * EVUTIL_EAI_CANCEL. So a request (struct resolve) is freed only by the
 * evdns callback or by the deferred delivery, never by resolve_cancel while
 * evdns still holds it: cancel just forgets the caller (done = NULL).
 *
 * The resolv.conf path is set once by the main thread before any worker
 * runs (resolve_set_conf) and only read after, so it needs no lock.
 */
#include "daemon/executors/io/resolve.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "daemon/base/memory.h"
#include "weft/error.h"

struct resolve {
	struct evdns_getaddrinfo_request *request; /* evdns holds us while non-NULL */
	bool in_evdns;     /* evdns will still call on_answer */
	bool starting;     /* inside resolve_start */
	struct event *deliver; /* hands an early answer over after resolve_start */
	resolve_done *done;    /* NULL once cancelled */
	void *argument;
	struct resolve_addresses addresses; /* count 0 until found */
	char message[160];
};

/* Written by the main thread before the workers start, read-only after. */
static char conf_path[4096] = RESOLVE_CONF_DEFAULT;

/* Owned by the worker's thread. */
static _Thread_local struct evdns_base *thread_dns;
static _Thread_local struct event_base *thread_dns_loop;

bool resolve_is_numeric(const char *host)
{
	unsigned char buffer[16];
	return evutil_inet_pton(AF_INET, host, buffer) == 1 || evutil_inet_pton(AF_INET6, host, buffer) == 1;
}

bool resolve_name_valid(const char *host)
{
	size_t length = strlen(host);
	if (length == 0 || length > RESOLVE_NAME_MAX || host[0] == '-' || host[0] == '.')
		return false;
	for (size_t i = 0; i < length; i++) {
		char c = host[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '_'))
			return false;
	}
	return true;
}

int resolve_set_conf(const char *path)
{
	if (path[0] == '\0' || strlen(path) >= sizeof(conf_path)) {
		errno = path[0] == '\0' ? ENOENT : ENAMETOOLONG;
		return WEFT_EBADARGS;
	}
	/* Checked now so that a typo stops weftd at start, not a job later;
	 * made absolute, since weftd leaves its starting directory. */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return WEFT_EBADARGS;
	close(fd);
	char *absolute = realpath(path, NULL);
	if (absolute == NULL)
		return WEFT_EBADARGS;
	if (strlen(absolute) >= sizeof(conf_path)) {
		free(absolute);
		errno = ENAMETOOLONG;
		return WEFT_EBADARGS;
	}
	snprintf(conf_path, sizeof(conf_path), "%s", absolute);
	free(absolute);
	return WEFT_OK;
}

static struct evdns_base *dns_get(struct event_base *base)
{
	if (thread_dns != NULL && thread_dns_loop == base)
		return thread_dns;
	struct evdns_base *dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (dns == NULL)
		return NULL;
	/* What EVDNS_BASE_INITIALIZE_NAMESERVERS does, from conf_path. It
	 * loads /etc/hosts first; a file that cannot be read or names no
	 * server leaves libevent's default server (127.0.0.1), so names in
	 * /etc/hosts still resolve and the others fail as unanswered. */
	evdns_base_resolv_conf_parse(dns, DNS_OPTIONS_ALL, conf_path);
	char number[16];
	snprintf(number, sizeof(number), "%d", RESOLVE_TRY_SECONDS);
	evdns_base_set_option(dns, "timeout:", number);
	snprintf(number, sizeof(number), "%d", RESOLVE_TRIES);
	evdns_base_set_option(dns, "attempts:", number);
	snprintf(number, sizeof(number), "%d", RESOLVE_INFLIGHT);
	evdns_base_set_option(dns, "max-inflight:", number);
	thread_dns = dns;
	thread_dns_loop = base;
	return dns;
}

static void request_free(struct resolve *request)
{
	if (request->deliver != NULL)
		event_free(request->deliver);
	free(request);
}

static void deliver(struct resolve *request)
{
	resolve_done *done = request->done;
	void *argument = request->argument;
	/* Copied out: the request goes before done runs, which may start
	 * another. */
	struct resolve_addresses addresses = request->addresses;
	char message[sizeof(request->message)];
	snprintf(message, sizeof(message), "%s", request->message);
	request_free(request);
	if (done != NULL)
		done(argument, addresses.count > 0 ? &addresses : NULL, message);
}

static void on_deliver(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	deliver(argument);
}

/* Keeps the first RESOLVE_ADDRESSES_MAX IPv4 and IPv6 addresses of answer,
 * in its order, each once (a name can be listed twice, in /etc/hosts and by
 * a server). */
static void take_addresses(struct resolve_addresses *addresses, const struct evutil_addrinfo *answer)
{
	addresses->count = 0;
	for (const struct evutil_addrinfo *at = answer; at != NULL; at = at->ai_next) {
		if (addresses->count == (size_t)RESOLVE_ADDRESSES_MAX)
			break;
		const void *raw;
		if (at->ai_family == AF_INET6)
			raw = &((const struct sockaddr_in6 *)(const void *)at->ai_addr)->sin6_addr;
		else if (at->ai_family == AF_INET)
			raw = &((const struct sockaddr_in *)(const void *)at->ai_addr)->sin_addr;
		else
			continue;
		char *text = addresses->address[addresses->count];
		if (evutil_inet_ntop(at->ai_family, raw, text, RESOLVE_ADDRESS_SIZE) == NULL)
			continue;
		bool seen = false;
		for (size_t i = 0; i < addresses->count && !seen; i++)
			seen = strcmp(addresses->address[i], text) == 0;
		if (!seen)
			addresses->count++;
	}
}

static void on_answer(int error, struct evutil_addrinfo *answer, void *argument)
{
	struct resolve *request = argument;
	request->in_evdns = false;
	request->request = NULL;
	if (error == 0 && answer != NULL) {
		take_addresses(&request->addresses, answer);
		if (request->addresses.count == 0)
			snprintf(request->message, sizeof(request->message), "no IPv4 or IPv6 address");
	} else if (error == EVUTIL_EAI_NONAME) {
		snprintf(request->message, sizeof(request->message),
		         "no such name (the name server says it does not exist)");
	} else if (error == EVUTIL_EAI_FAIL) {
		/* evdns folds timeouts, server failures and refusals into one code. */
		snprintf(request->message, sizeof(request->message),
		         "no address from the name servers (no answer in %d tries of %d s, a server "
		         "failure, or no address record)",
		         RESOLVE_TRIES, RESOLVE_TRY_SECONDS);
	} else {
		snprintf(request->message, sizeof(request->message), "%s",
		         error != 0 ? evutil_gai_strerror(error) : "no address");
	}
	if (answer != NULL)
		evutil_freeaddrinfo(answer);
	if (request->done == NULL) {
		request_free(request); /* cancelled */
		return;
	}
	if (request->starting) {
		/* Answered at once: the caller hears of it after resolve_start. */
		struct timeval now = {0, 0};
		event_add(request->deliver, &now);
		return;
	}
	deliver(request);
}

struct resolve *resolve_start(struct event_base *base, const char *host, resolve_done *done,
                              void *argument)
{
	struct evdns_base *dns = dns_get(base);
	if (dns == NULL)
		return NULL;
	struct resolve *request = memory_zalloc(sizeof(*request));
	request->deliver = evtimer_new(base, on_deliver, request);
	if (request->deliver == NULL) {
		free(request);
		return NULL;
	}
	request->done = done;
	request->argument = argument;
	request->starting = true;
	request->in_evdns = true;
	struct evutil_addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	struct evdns_getaddrinfo_request *pending = evdns_getaddrinfo(dns, host, NULL, &hints, on_answer,
	                                                              request);
	/* NULL: on_answer has already run. */
	if (pending != NULL && request->in_evdns)
		request->request = pending;
	request->starting = false;
	return request;
}

void resolve_cancel(struct resolve *request)
{
	request->done = NULL;
	if (request->in_evdns) {
		/* evdns calls on_answer later with EVUTIL_EAI_CANCEL, which frees it. */
		if (request->request != NULL)
			evdns_getaddrinfo_cancel(request->request);
		return;
	}
	request_free(request); /* its delivery was pending */
}

void resolve_worker_exit(struct event_base *base)
{
	if (thread_dns == NULL || thread_dns_loop != base)
		return;
	evdns_base_free(thread_dns, 1);
	thread_dns = NULL;
	thread_dns_loop = NULL;
}

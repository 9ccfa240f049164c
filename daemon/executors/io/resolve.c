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
 */
#include "daemon/executors/io/resolve.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "daemon/base/memory.h"

struct resolve {
	struct evdns_getaddrinfo_request *request; /* evdns holds us while non-NULL */
	bool in_evdns;     /* evdns will still call on_answer */
	bool starting;     /* inside resolve_start */
	struct event *deliver; /* hands an early answer over after resolve_start */
	resolve_done *done;    /* NULL once cancelled */
	void *argument;
	char address[64];
	char message[160];
	bool found;
};

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

static struct evdns_base *dns_get(struct event_base *base)
{
	if (thread_dns != NULL && thread_dns_loop == base)
		return thread_dns;
	struct evdns_base *dns =
		evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (dns == NULL) {
		/* No usable resolv.conf: /etc/hosts still answers. */
		dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
		if (dns == NULL)
			return NULL;
		evdns_base_load_hosts(dns, NULL);
	}
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
	char address[sizeof(request->address)], message[sizeof(request->message)];
	snprintf(address, sizeof(address), "%s", request->address);
	snprintf(message, sizeof(message), "%s", request->message);
	bool found = request->found;
	request_free(request);
	if (done != NULL)
		done(argument, found ? address : NULL, message);
}

static void on_deliver(evutil_socket_t fd, short events, void *argument)
{
	(void)fd;
	(void)events;
	deliver(argument);
}

static void on_answer(int error, struct evutil_addrinfo *answer, void *argument)
{
	struct resolve *request = argument;
	request->in_evdns = false;
	request->request = NULL;
	if (error == 0 && answer != NULL) {
		const void *raw = answer->ai_family == AF_INET6
		                          ? (const void *)&((struct sockaddr_in6 *)answer->ai_addr)->sin6_addr
		                          : (const void *)&((struct sockaddr_in *)answer->ai_addr)->sin_addr;
		request->found = evutil_inet_ntop(answer->ai_family, raw, request->address,
		                                  sizeof(request->address)) != NULL;
		if (!request->found)
			snprintf(request->message, sizeof(request->message), "an address it cannot print");
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

/*
 * The tests' DNS server; see dns_server.h.
 *
 * One query per datagram, one question per query, answered from the table
 * (RFC 1035 section 4: the header with QR and RA set and the query's id,
 * opcode and RD, the question copied byte for byte, since evdns randomizes
 * the case of the name it asks and checks the copy, then one answer per
 * record, its name a pointer to the question's). No EDNS, no truncation:
 * the answers stay far below 512 bytes.
 */
#include "tests/dns_server.h"

#include <arpa/inet.h>
#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define NAMES_MAX 16
#define RECORDS_MAX 12

struct record {
	int family; /* AF_INET or AF_INET6 */
	uint8_t raw[16];
};

struct name {
	char text[256];
	bool silent;
	struct record records[RECORDS_MAX];
	size_t count;
	int queries; /* under the server's lock */
};

struct dns_server {
	struct name names[NAMES_MAX];
	size_t count;
	int fd;
	int port;
	int stop[2]; /* the main thread writes stop[1] */
	pthread_t thread;
	bool running;
	pthread_mutex_t lock; /* the names' query counts */
};

struct dns_server *dns_server_new(void)
{
	struct dns_server *server = calloc(1, sizeof(*server));
	ck_assert_ptr_nonnull(server);
	server->fd = -1;
	server->stop[0] = server->stop[1] = -1;
	pthread_mutex_init(&server->lock, NULL);
	return server;
}

static struct name *name_find(struct dns_server *server, const char *text)
{
	for (size_t i = 0; i < server->count; i++)
		if (strcasecmp(server->names[i].text, text) == 0)
			return &server->names[i];
	return NULL;
}

static struct name *name_get(struct dns_server *server, const char *text)
{
	struct name *name = name_find(server, text);
	if (name != NULL)
		return name;
	ck_assert_uint_lt(server->count, NAMES_MAX);
	ck_assert_uint_lt(strlen(text), sizeof(name->text));
	name = &server->names[server->count++];
	snprintf(name->text, sizeof(name->text), "%s", text);
	return name;
}

void dns_server_add(struct dns_server *server, const char *text, const char *address)
{
	struct name *name = name_get(server, text);
	ck_assert_uint_lt(name->count, RECORDS_MAX);
	struct record *record = &name->records[name->count];
	if (inet_pton(AF_INET, address, record->raw) == 1)
		record->family = AF_INET;
	else if (inet_pton(AF_INET6, address, record->raw) == 1)
		record->family = AF_INET6;
	else
		ck_abort_msg("'%s' is no numeric address", address);
	name->count++;
}

void dns_server_silence(struct dns_server *server, const char *text)
{
	name_get(server, text)->silent = true;
}

static void put16(uint8_t *at, unsigned value)
{
	at[0] = (uint8_t)(value >> 8);
	at[1] = (uint8_t)value;
}

/* Answers one query (or drops it: malformed, or its name is silent). */
static void serve(struct dns_server *server, const uint8_t *query, size_t length,
                  const struct sockaddr *from, socklen_t from_length)
{
	if (length < 12 || (query[2] & 0x80) != 0 || query[4] != 0 || query[5] != 1)
		return;
	char text[256];
	size_t used = 0, at = 12;
	while (at < length && query[at] != 0) {
		size_t label = query[at];
		if (label > 63 || at + 1 + label >= length || used + label + 1 >= sizeof(text))
			return;
		if (used > 0)
			text[used++] = '.';
		for (size_t i = 0; i < label; i++)
			text[used++] = (char)tolower(query[at + 1 + i]);
		at += 1 + label;
	}
	text[used] = '\0';
	if (at + 5 > length)
		return;
	unsigned type = (unsigned)query[at + 1] << 8 | query[at + 2];
	size_t question_end = at + 5;
	struct name *name = name_find(server, text);
	if (name != NULL) {
		pthread_mutex_lock(&server->lock);
		name->queries++;
		pthread_mutex_unlock(&server->lock);
		if (name->silent)
			return;
	}
	uint8_t reply[512];
	memcpy(reply, query, 2);                               /* id */
	reply[2] = (uint8_t)(0x80 | (query[2] & 0x79));        /* QR, opcode, RD */
	reply[3] = (uint8_t)(0x80 | (name == NULL ? 3 : 0));   /* RA, NXDOMAIN or NOERROR */
	put16(reply + 4, 1);
	put16(reply + 8, 0);
	put16(reply + 10, 0);
	memcpy(reply + 12, query + 12, question_end - 12);
	size_t out = question_end;
	unsigned answers = 0;
	for (size_t i = 0; name != NULL && i < name->count; i++) {
		const struct record *record = &name->records[i];
		bool a = record->family == AF_INET;
		if (type != (a ? 1u : 28u))
			continue;
		size_t size = a ? 4 : 16;
		reply[out] = 0xc0; /* the name: a pointer to the question's */
		reply[out + 1] = 12;
		put16(reply + out + 2, type);
		put16(reply + out + 4, 1); /* IN */
		put16(reply + out + 6, 0);
		put16(reply + out + 8, 60); /* TTL */
		put16(reply + out + 10, (unsigned)size);
		memcpy(reply + out + 12, record->raw, size);
		out += 12 + size;
		answers++;
	}
	put16(reply + 6, answers);
	(void)sendto(server->fd, reply, out, 0, from, from_length);
}

static void *server_main(void *argument)
{
	struct dns_server *server = argument;
	for (;;) {
		struct pollfd fds[2] = {{.fd = server->fd, .events = POLLIN}, {.fd = server->stop[0], .events = POLLIN}};
		if (poll(fds, 2, -1) < 0)
			continue;
		if (fds[1].revents != 0)
			return NULL;
		if (fds[0].revents == 0)
			continue;
		uint8_t query[1500];
		struct sockaddr_storage from;
		socklen_t from_length = sizeof(from);
		ssize_t got = recvfrom(server->fd, query, sizeof(query), 0, (struct sockaddr *)&from,
		                       &from_length);
		if (got > 0)
			serve(server, query, (size_t)got, (struct sockaddr *)&from, from_length);
	}
}

void dns_server_start(struct dns_server *server)
{
	server->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(server->fd, 0);
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = 0};
	address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(server->fd, (struct sockaddr *)&address, sizeof(address)), 0);
	socklen_t size = sizeof(address);
	ck_assert_int_eq(getsockname(server->fd, (struct sockaddr *)&address, &size), 0);
	server->port = ntohs(address.sin_port);
	ck_assert_int_eq(pipe2(server->stop, O_CLOEXEC), 0);
	ck_assert_int_eq(pthread_create(&server->thread, NULL, server_main, server), 0);
	server->running = true;
}

int dns_server_port(const struct dns_server *server)
{
	return server->port;
}

void dns_server_write_conf(const struct dns_server *server, const char *directory, char *path,
                           size_t size)
{
	snprintf(path, size, "%s/resolv.conf", directory);
	FILE *file = fopen(path, "w");
	ck_assert_msg(file != NULL, "cannot write %s", path);
	fprintf(file, "# the test's DNS server\nnameserver 127.0.0.1:%d\n", server->port);
	ck_assert_int_eq(fclose(file), 0);
}

int dns_server_queries(struct dns_server *server, const char *text)
{
	struct name *name = name_find(server, text);
	if (name == NULL)
		return 0;
	pthread_mutex_lock(&server->lock);
	int queries = name->queries;
	pthread_mutex_unlock(&server->lock);
	return queries;
}

void dns_server_free(struct dns_server *server)
{
	if (server->running) {
		ck_assert_int_eq(write(server->stop[1], "x", 1), 1);
		pthread_join(server->thread, NULL);
	}
	if (server->fd >= 0)
		close(server->fd);
	if (server->stop[0] >= 0) {
		close(server->stop[0]);
		close(server->stop[1]);
	}
	pthread_mutex_destroy(&server->lock);
	free(server);
}

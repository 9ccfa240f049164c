/*
 * A tiny DNS server for the tests of name resolution (check_pool,
 * check_redis): UDP on 127.0.0.1, an ephemeral port, served by a thread of
 * the test process. It knows a few names, each with its A and AAAA records
 * (answered in the order they were added) or marked silent (its queries are
 * read and never answered); every other name is NXDOMAIN. It counts the
 * queries it gets for each name. Point a resolver at it with the resolv.conf
 * that dns_server_write_conf writes ("nameserver 127.0.0.1:PORT").
 *
 * Threads: dns_server_add and dns_server_silence before dns_server_start;
 * dns_server_queries from any thread while it runs (a lock guards the
 * counts); start and stop from the test's main thread.
 */
#ifndef TESTS_DNS_SERVER_H
#define TESTS_DNS_SERVER_H

#include <stddef.h>

struct dns_server;

/* A server with no names yet (not serving). Fails the test without memory. */
struct dns_server *dns_server_new(void);

/* name (case-insensitive, without the final dot) gets another record:
 * address, a numeric IPv4 (an A record) or IPv6 (AAAA) address. */
void dns_server_add(struct dns_server *server, const char *name, const char *address);

/* Queries for name are never answered. */
void dns_server_silence(struct dns_server *server, const char *name);

/* Binds 127.0.0.1:0 and serves on a thread of its own. Fails the test when
 * it cannot. */
void dns_server_start(struct dns_server *server);

/* The UDP port it listens on (after dns_server_start). */
int dns_server_port(const struct dns_server *server);

/* Writes "<directory>/resolv.conf" naming this server alone, and its path
 * into path[size]. Fails the test when it cannot. */
void dns_server_write_conf(const struct dns_server *server, const char *directory, char *path,
                           size_t size);

/* How many queries (any type) it has read for name so far. */
int dns_server_queries(struct dns_server *server, const char *name);

/* Stops the thread and frees the server. */
void dns_server_free(struct dns_server *server);

#endif

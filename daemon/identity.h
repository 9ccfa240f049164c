/*
 * The identities exec jobs run as: the uid, gid and supplementary groups of
 * the client that submitted them (ipc peer credentials), looked up once per
 * uid and kept for the daemon's life (user database entries are stable, and
 * a lookup can block on a remote directory).
 *
 * Threads: identity_get may block on the first lookup of a uid; weftd calls
 * it at submit time on nng's threads, so worker loops only ever hit the cache.
 */
#ifndef IDENTITY_H
#define IDENTITY_H

#include <stdint.h>

struct proc_identity;

/* The identity for uid/gid: borrowed, valid until identity_fini. switch_to is
 * set when weftd runs as root and uid is not root. NULL when memory ran out.
 * Any thread. */
const struct proc_identity *identity_get(int64_t uid, int64_t gid);

/* Frees every cached identity. Main thread, at exit. */
void identity_fini(void);

#endif

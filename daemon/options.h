/* weftd's command line. Main thread. */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stddef.h>

#include "daemon/log.h"

#define OPTIONS_MAX_LISTEN 16

struct options {
	char listen[OPTIONS_MAX_LISTEN][512];
	size_t listen_count; /* 0 until parsed: then the default URL */
	int workers;
	double grace;
	double retain;
	size_t retain_max;
	size_t max_message;
	size_t max_waiters;
	size_t max_pending;   /* unfinished jobs at most; submits beyond get `busy` */
	char queues[OPTIONS_MAX_LISTEN][80]; /* NAME=MAX, made at start-up */
	size_t queue_count;
	unsigned procs;       /* exec jobs running at once */
	size_t output_max;    /* bytes of stdout and of stderr kept per exec job */
	unsigned threads;     /* thread pool size */
	enum log_level log_level;
	char admin_group[64];       /* --admin-group: members act on every job; "" for none */
	char socket_group[64];      /* --socket-group: who may reach the ipc sockets; "" for all */
	char insecure_tcp_user[64]; /* --insecure-tcp-user: what tcp peers act as; "" refuses tcp */
	char tls_user[64];          /* --tls-user: what verified tls+tcp peers act as */
	char tls_cert[512];         /* --tls-cert, --tls-key, --tls-ca: PEM files; "" for none */
	char tls_key[512];
	char tls_ca[512];
	char state_dir[512];        /* --state-dir: where the journal lives; "" with "none" */
	int sync;                   /* --sync: an enum journal_sync (journal.h) */
};

enum options_outcome { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_EXIT_USAGE };

/* Parses argv into options (defaults first). On OPTIONS_EXIT_USAGE the message
 * says what is wrong; on OPTIONS_EXIT_OK (--help, --version) it has been printed. */
enum options_outcome options_parse(int argc, char **argv, struct options *options, char *message,
                                   size_t size);

#endif

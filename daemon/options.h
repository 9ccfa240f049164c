/* weftd's command line. Main thread. */
#ifndef OPTIONS_H
#define OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/base/log.h"

#define OPTIONS_MAX_LISTEN 16
/* Per-user defaults of a root daemon (a quarter of the daemon-wide defaults). */
#define OPTIONS_DEFAULT_PENDING_PER_USER 250000
#define OPTIONS_DEFAULT_WAITERS_PER_USER 25000
#define OPTIONS_DEFAULT_EVENTS_PER_USER 25000
#define OPTIONS_DEFAULT_EVENT_BYTES_PER_USER (4 * 1024 * 1024)
/* Byte budget of the jobs held: daemon-wide, and a root daemon's per-user share. */
#define OPTIONS_DEFAULT_MAX_BYTES (2ULL * 1024 * 1024 * 1024)
#define OPTIONS_DEFAULT_BYTES_PER_USER (512ULL * 1024 * 1024)

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
	/* Per-user shares of the limits above and of connections (quota.h). */
	size_t max_pending_per_user;
	size_t max_waiters_per_user;
	size_t max_connections_per_user;
	/* Generators' items (items.h) and the event feed (events.h). */
	size_t max_item_bytes;          /* one item */
	size_t max_item_bytes_per_job;  /* unread, before the producer pauses */
	size_t max_item_bytes_per_user; /* unread, beyond which a yield fails */
	size_t events_max;              /* events the ring holds */
	size_t events_max_bytes;
	size_t events_max_per_user;     /* one user's share of the two above */
	size_t events_max_bytes_per_user;
	/* Bytes of args, labels, results and errors held by jobs (jobs.h), in
	 * all and per user; beyond them submits get `busy`. */
	uint64_t max_bytes;
	uint64_t max_bytes_per_user;
	double idle_timeout;  /* --idle-timeout: seconds; 0: connections never idle out */
	char queues[OPTIONS_MAX_LISTEN][80]; /* NAME=MAX, made at start-up */
	size_t queue_count;
	unsigned procs;       /* exec jobs running at once */
	size_t output_window; /* bytes of recent output kept per exec job for readers; 0: default */
	size_t output_budget; /* bytes of output windows per user; 0: default */
	double output_idle;   /* seconds a backpressured job waits for a reader; 0: default */
	size_t output_spool;  /* bytes of spooled output per user (spool.h); 0: no spool */
	bool output_spool_all; /* every exec job spools, not only those that ask */
	double io_idle;       /* --io-idle: seconds a pooled IO connection stays unused; 0: default */
	char resolv_conf[512]; /* --resolv-conf: what the IO built-ins' resolver reads */
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
	/* --cgroup: "auto" (a cgroup per exec job when weftd can make them), "off"
	 * (process groups only), or an absolute directory of a cgroup2 tree to
	 * keep the jobs' cgroups in. */
	char cgroup[512];
	/* --job-oom-score-adjust: what an exec job's oom_score_adj becomes.
	 * Unset ("auto"): 0 when weftd's own is negative, else weftd's own.
	 * Else job_oom_score itself, or (job_oom_relative) that much above
	 * weftd's own. */
	bool job_oom_set;
	bool job_oom_relative;
	int job_oom_score;
	bool test_hooks;            /* --test-hooks: weft's own tests only (debug.stall) */
	char state_dir[512];        /* --state-dir: where the journal lives; "" with "none" */
	int sync;                   /* --sync: an enum journal_sync (journal.h) */
	char plugins[OPTIONS_MAX_LISTEN][512]; /* --plugin: shared objects to load, in order */
	size_t plugin_count;
	char plugin_dir[512];                  /* --plugin-dir: every *.so in it, by name; "" for none */
};

enum options_outcome { OPTIONS_RUN, OPTIONS_EXIT_OK, OPTIONS_EXIT_USAGE };

/* Parses argv into options (defaults first). On OPTIONS_EXIT_USAGE the message
 * says what is wrong; on OPTIONS_EXIT_OK (--help, --version) it has been printed. */
enum options_outcome options_parse(int argc, char **argv, struct options *options, char *message,
                                   size_t size);

#endif

/* See options.h. */
#include "daemon/options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/journal.h"
#include "proto/proto.h"
#include "proto/url.h"

static const char usage[] =
	"usage: weftd [options]\n"
	"\n"
	"weft's task scheduler daemon: runs jobs for clients that speak the weft protocol\n"
	"(JSON over nng REQ/REP; see proto/PROTOCOL.md).\n"
	"\n"
	"  --listen URL         listen on URL (repeatable); default %s\n"
	"  --workers N          worker threads, each with its own event loop (default: online CPUs)\n"
	"  --grace SECONDS      on SIGTERM/SIGINT, let running jobs finish this long before\n"
	"                       cancelling them (default 10)\n"
	"  --retain SECONDS     keep finished jobs this long (default 3600)\n"
	"  --retain-max N       keep at most N finished jobs, oldest dropped first (default 100000)\n"
	"  --max-message BYTES  largest request accepted (default 1048576)\n"
	"  --max-waiters N      most requests waiting for jobs at once (default 100000)\n"
	"  --max-pending N      most unfinished jobs; submits beyond are refused with 'busy'\n"
	"                       (default 1000000)\n"
	"  --max-pending-per-user N, --max-waiters-per-user N\n"
	"                       one user's share of --max-pending and --max-waiters; beyond\n"
	"                       it that user's requests get 'busy' and nobody else's do\n"
	"                       (defaults when weftd runs as root: 250000 and 25000, or the\n"
	"                       daemon-wide limit if lower; otherwise the daemon-wide limit)\n"
	"  --max-connections-per-user N\n"
	"                       connections one user may hold open; more are closed at once\n"
	"                       (default 1024)\n"
	"  --max-item-bytes BYTES, --max-item-bytes-per-job BYTES, --max-item-bytes-per-user BYTES\n"
	"                       a generator's items: the largest one item (default 1048576),\n"
	"                       the unread bytes of one job before it is paused (default\n"
	"                       4194304), of one user's jobs before a yield fails (default\n"
	"                       67108864)\n"
	"  --events-max N, --events-max-bytes BYTES\n"
	"                       events the event feed holds, at most (default 100000 and\n"
	"                       16777216); older ones are dropped (readers get cursor_expired)\n"
	"  --events-max-per-user N, --events-max-bytes-per-user BYTES\n"
	"                       one user's share of them: past it that user's own oldest\n"
	"                       events are dropped, nobody else's (defaults when weftd runs\n"
	"                       as root: 25000 and 4194304, or the feed's bound if lower;\n"
	"                       otherwise the feed's bounds)\n"
	"  --max-bytes BYTES, --max-bytes-per-user BYTES\n"
	"                       bytes of job arguments, results and output held (as compact\n"
	"                       JSON), in all and per user (a user's waits count too); finished\n"
	"                       jobs are dropped oldest first to stay within --max-bytes, and\n"
	"                       submits past either get 'busy' (defaults 2147483648 and, when\n"
	"                       weftd runs as root, 536870912; otherwise the daemon-wide limit)\n"
	"  --idle-timeout SECONDS\n"
	"                       close a connection that has no request in flight and sent no\n"
	"                       whole message for this long, so a message sent in part cannot\n"
	"                       hold memory for ever; clients redial (default 60; 0: never)\n"
	"  --procs N            exec jobs running at once; others wait queued (default: online CPUs)\n"
	"  --queue NAME=MAX     a named queue running at most MAX of its jobs at once (repeatable)\n"
	"  --output-max BYTES   stdout and stderr kept per exec job, each (default 1048576,\n"
	"                       at most 4194304)\n"
	"  --output-window BYTES the most recent output of each exec job kept for readers (the\n"
	"                       output op, weft logs), both streams (default 4194304)\n"
	"  --output-budget BYTES all output windows of one user together (default 67108864)\n"
	"  --output-idle S      a job with output_wait (weft run) waits at most S seconds for a\n"
	"                       reader that reads nothing before its window drops bytes (default 10)\n"
	"  --output-spool BYTES output that leaves a window goes to a spool file in the state dir,\n"
	"                       at most BYTES per user, for jobs that ask (output_spool); default 0:\n"
	"                       no spool\n"
	"  --output-spool-all   every exec job spools (with --output-spool)\n"
	"  --io-idle S          a pooled redis/sql connection closes after S seconds unused\n"
	"                       (default 30)\n"
	"  --resolv-conf FILE   the resolv.conf(5) that redis.command and sql.query read for\n"
	"                       name servers (nameserver lines may give IP:PORT), instead of\n"
	"                       /etc/resolv.conf; /etc/hosts is still read first\n"
	"  --threads N          threads of the pool for blocking calls (default: 2 x workers)\n"
	"  --log-level LEVEL    error, warn, info or debug (default info)\n"
	"  --admin-group GROUP  members of GROUP may see, cancel and set every user's jobs and\n"
	"                       change named queues, as root may (default: root alone)\n"
	"  --socket-group GROUP only GROUP (and root) may reach the ipc sockets: their\n"
	"                       directory is made root:GROUP 0750 (default: every local user)\n"
	"  --insecure-tcp-user NAME\n"
	"                       allow tcp:// listeners, whose peers all act as local user NAME\n"
	"                       (never root); without it tcp:// is refused\n"
	"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE, --tls-user NAME\n"
	"                       for tls+tcp://HOST:PORT listeners: weftd's certificate and key,\n"
	"                       the CA every client certificate must be signed by, and the\n"
	"                       local user (never root) those clients act as\n"
	"  --cgroup auto|off|DIR\n"
	"                       each exec job in a cgroup of its own, so killing the job kills\n"
	"                       every process it made (auto: when weftd can make cgroups, in a\n"
	"                       directory under its own cgroup; DIR: a cgroup2 directory to use;\n"
	"                       off: process groups, which a job that calls setsid escapes)\n"
	"  --job-oom-score-adjust auto|N|+N\n"
	"                       exec jobs' oom_score_adj: N (-1000..1000), or N above weftd's\n"
	"                       own (auto: 0 when weftd's own is negative, else weftd's own)\n"
	"  --test-hooks         enable the debug.* functions that weft's own tests use\n"
	"  --state-dir DIR      keep accepted jobs in DIR/weft.db, so they survive a restart or\n"
	"                       a crash (default /var/lib/weft for root, else\n"
	"                       $XDG_STATE_HOME/weft or ~/.local/state/weft); none: in memory only\n"
	"  --sync full|normal   full (default): a commit reaches the disk before a submit is\n"
	"                       answered (survives power loss); normal: survives weftd's death,\n"
	"                       not the OS's, and is faster\n"
	"  --plugin PATH.so     load a plugin's functions (include/weft/plugin.h; repeatable);\n"
	"                       a root weftd loads only files owned and writable by root alone\n"
	"  --plugin-dir DIR     load every *.so in DIR, in name order, after the --plugin ones\n"
	"                       (a root weftd: DIR too must be root's and writable by root alone)\n"
	"  --version            print the version and exit\n"
	"  --help               print this help and exit\n";

/* The issue-12 default: the system's state directory for root, the user's
 * XDG state directory otherwise. */
static int default_state_dir(char *out, size_t size)
{
	if (geteuid() == 0) {
		snprintf(out, size, "/var/lib/weft");
		return 0;
	}
	const char *state = getenv("XDG_STATE_HOME");
	if (state != NULL && state[0] == '/') {
		snprintf(out, size, "%s/weft", state);
		return 0;
	}
	const char *home = getenv("HOME");
	if (home == NULL || home[0] != '/')
		return -1;
	snprintf(out, size, "%s/.local/state/weft", home);
	return 0;
}

static int parse_number(const char *text, double minimum, double maximum, double *out)
{
	char *end;
	errno = 0;
	double value = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !isfinite(value) || value < minimum ||
	    value > maximum)
		return -1;
	*out = value;
	return 0;
}

enum options_outcome options_parse(int argc, char **argv, struct options *options, char *message,
                                   size_t size)
{
	memset(options, 0, sizeof(*options));
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	options->workers = cpus > 0 ? (int)cpus : 1;
	options->grace = 10;
	options->retain = 3600;
	options->retain_max = 100000;
	options->max_message = PROTO_DEFAULT_MAX_MESSAGE;
	options->max_waiters = 100000;
	options->max_pending = 1000000;
	options->max_connections_per_user = 1024;
	options->max_item_bytes = 1024 * 1024;
	options->max_item_bytes_per_job = 4 * 1024 * 1024;
	options->max_item_bytes_per_user = 64 * 1024 * 1024;
	options->events_max = 100000;
	options->events_max_bytes = 16 * 1024 * 1024;
	options->max_bytes = OPTIONS_DEFAULT_MAX_BYTES;
	options->idle_timeout = 60;
	options->procs = cpus > 0 ? (unsigned)cpus : 1;
	options->output_max = 1024 * 1024;
	options->threads = 0; /* 2 x workers, decided after parsing */
	options->log_level = LOG_LEVEL_INFO;
	strcpy(options->cgroup, "auto");
	strcpy(options->resolv_conf, "/etc/resolv.conf");

	enum { OPT_LISTEN = 256, OPT_WORKERS, OPT_GRACE, OPT_RETAIN, OPT_RETAIN_MAX,
	       OPT_MAX_MESSAGE, OPT_MAX_WAITERS, OPT_MAX_PENDING, OPT_MAX_PENDING_PER_USER,
	       OPT_MAX_WAITERS_PER_USER, OPT_MAX_CONNECTIONS_PER_USER, OPT_MAX_BYTES, OPT_MAX_BYTES_PER_USER, OPT_IDLE_TIMEOUT, OPT_QUEUE, OPT_PROCS, OPT_OUTPUT_MAX, OPT_OUTPUT_WINDOW, OPT_OUTPUT_BUDGET, OPT_OUTPUT_IDLE, OPT_OUTPUT_SPOOL, OPT_OUTPUT_SPOOL_ALL, OPT_IO_IDLE, OPT_RESOLV_CONF, OPT_THREADS, OPT_LOG_LEVEL,
	       OPT_ADMIN_GROUP, OPT_SOCKET_GROUP, OPT_INSECURE_TCP_USER, OPT_TLS_USER, OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CA,
	       OPT_CGROUP, OPT_JOB_OOM, OPT_ITEM_BYTES, OPT_ITEM_BYTES_JOB, OPT_ITEM_BYTES_USER, OPT_EVENTS_MAX,
	       OPT_EVENTS_MAX_BYTES, OPT_EVENTS_PER_USER, OPT_EVENTS_BYTES_PER_USER, OPT_TEST_HOOKS, OPT_STATE_DIR, OPT_SYNC, OPT_PLUGIN, OPT_PLUGIN_DIR, OPT_VERSION, OPT_HELP };
	static const struct option long_options[] = {
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"workers", required_argument, NULL, OPT_WORKERS},
		{"grace", required_argument, NULL, OPT_GRACE},
		{"retain", required_argument, NULL, OPT_RETAIN},
		{"retain-max", required_argument, NULL, OPT_RETAIN_MAX},
		{"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
		{"max-waiters", required_argument, NULL, OPT_MAX_WAITERS},
		{"max-pending", required_argument, NULL, OPT_MAX_PENDING},
		{"max-pending-per-user", required_argument, NULL, OPT_MAX_PENDING_PER_USER},
		{"max-waiters-per-user", required_argument, NULL, OPT_MAX_WAITERS_PER_USER},
		{"max-connections-per-user", required_argument, NULL, OPT_MAX_CONNECTIONS_PER_USER},
		{"max-bytes", required_argument, NULL, OPT_MAX_BYTES},
		{"max-bytes-per-user", required_argument, NULL, OPT_MAX_BYTES_PER_USER},
		{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
		{"queue", required_argument, NULL, OPT_QUEUE},
		{"procs", required_argument, NULL, OPT_PROCS},
		{"output-max", required_argument, NULL, OPT_OUTPUT_MAX},
		{"output-window", required_argument, NULL, OPT_OUTPUT_WINDOW},
		{"output-budget", required_argument, NULL, OPT_OUTPUT_BUDGET},
		{"output-idle", required_argument, NULL, OPT_OUTPUT_IDLE},
		{"output-spool", required_argument, NULL, OPT_OUTPUT_SPOOL},
		{"output-spool-all", no_argument, NULL, OPT_OUTPUT_SPOOL_ALL},
		{"io-idle", required_argument, NULL, OPT_IO_IDLE},
		{"resolv-conf", required_argument, NULL, OPT_RESOLV_CONF},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"admin-group", required_argument, NULL, OPT_ADMIN_GROUP},
		{"socket-group", required_argument, NULL, OPT_SOCKET_GROUP},
		{"insecure-tcp-user", required_argument, NULL, OPT_INSECURE_TCP_USER},
		{"tls-user", required_argument, NULL, OPT_TLS_USER},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"tls-ca", required_argument, NULL, OPT_TLS_CA},
		{"cgroup", required_argument, NULL, OPT_CGROUP},
		{"job-oom-score-adjust", required_argument, NULL, OPT_JOB_OOM},
		{"max-item-bytes", required_argument, NULL, OPT_ITEM_BYTES},
		{"max-item-bytes-per-job", required_argument, NULL, OPT_ITEM_BYTES_JOB},
		{"max-item-bytes-per-user", required_argument, NULL, OPT_ITEM_BYTES_USER},
		{"events-max", required_argument, NULL, OPT_EVENTS_MAX},
		{"events-max-bytes", required_argument, NULL, OPT_EVENTS_MAX_BYTES},
		{"events-max-per-user", required_argument, NULL, OPT_EVENTS_PER_USER},
		{"events-max-bytes-per-user", required_argument, NULL, OPT_EVENTS_BYTES_PER_USER},
		{"test-hooks", no_argument, NULL, OPT_TEST_HOOKS},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"plugin", required_argument, NULL, OPT_PLUGIN},
		{"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
		{"sync", required_argument, NULL, OPT_SYNC},
		{"version", no_argument, NULL, OPT_VERSION},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	char default_url[512];
	if (proto_default_daemon_url(default_url, sizeof(default_url)) != 0)
		snprintf(default_url, sizeof(default_url), "%s", PROTO_ROOT_URL);

	bool state_dir_given = false;
	options->sync = JOURNAL_SYNC_FULL;
	optind = 1;
	opterr = 0;
	int option;
	int which = 0;
	double value;
	while ((option = getopt_long(argc, argv, "", long_options, &which)) != -1) {
		switch (option) {
		case OPT_LISTEN:
			if (options->listen_count == OPTIONS_MAX_LISTEN) {
				snprintf(message, size, "at most %d --listen URLs", OPTIONS_MAX_LISTEN);
				return OPTIONS_EXIT_USAGE;
			}
			if (strstr(optarg, "://") == NULL ||
			    strlen(optarg) >= sizeof(options->listen[0])) {
				snprintf(message, size,
				         "--listen needs a URL like ipc:///tmp/weft.sock or "
				         "tcp://127.0.0.1:7070, not '%s'",
				         optarg);
				return OPTIONS_EXIT_USAGE;
			}
			strcpy(options->listen[options->listen_count++], optarg);
			break;
		case OPT_WORKERS:
			if (parse_number(optarg, 1, 1024, &value) != 0 || value != floor(value))
				goto bad_value;
			options->workers = (int)value;
			break;
		case OPT_GRACE:
			if (parse_number(optarg, 0, 86400, &value) != 0)
				goto bad_value;
			options->grace = value;
			break;
		case OPT_RETAIN:
			if (parse_number(optarg, 0, 10.0 * 365 * 86400, &value) != 0)
				goto bad_value;
			options->retain = value;
			break;
		case OPT_RETAIN_MAX:
			if (parse_number(optarg, 0, 1e9, &value) != 0 || value != floor(value))
				goto bad_value;
			options->retain_max = (size_t)value;
			break;
		case OPT_MAX_MESSAGE:
			if (parse_number(optarg, 1024, 256.0 * 1024 * 1024, &value) != 0 ||
			    value != floor(value))
				goto bad_value;
			options->max_message = (size_t)value;
			break;
		case OPT_MAX_WAITERS:
			if (parse_number(optarg, 1, 1e8, &value) != 0 || value != floor(value))
				goto bad_value;
			options->max_waiters = (size_t)value;
			break;
		case OPT_MAX_PENDING:
			if (parse_number(optarg, 1, 1e9, &value) != 0 || value != floor(value))
				goto bad_value;
			options->max_pending = (size_t)value;
			break;
		case OPT_MAX_PENDING_PER_USER:
		case OPT_MAX_WAITERS_PER_USER:
		case OPT_MAX_CONNECTIONS_PER_USER:
			if (parse_number(optarg, 1, 1e9, &value) != 0 || value != floor(value))
				goto bad_value;
			*(option == OPT_MAX_PENDING_PER_USER   ? &options->max_pending_per_user
			  : option == OPT_MAX_WAITERS_PER_USER ? &options->max_waiters_per_user
			                                       : &options->max_connections_per_user) =
				(size_t)value;
			break;
		case OPT_ITEM_BYTES:
		case OPT_ITEM_BYTES_JOB:
		case OPT_ITEM_BYTES_USER:
		case OPT_EVENTS_MAX:
		case OPT_EVENTS_MAX_BYTES:
		case OPT_EVENTS_PER_USER:
		case OPT_EVENTS_BYTES_PER_USER:
			if (parse_number(optarg,
			                 option == OPT_EVENTS_MAX || option == OPT_EVENTS_PER_USER ? 1 : 256,
			                 1e12, &value) != 0 ||
			    value != floor(value))
				goto bad_value;
			*(option == OPT_ITEM_BYTES        ? &options->max_item_bytes
			  : option == OPT_ITEM_BYTES_JOB  ? &options->max_item_bytes_per_job
			  : option == OPT_ITEM_BYTES_USER ? &options->max_item_bytes_per_user
			  : option == OPT_EVENTS_MAX      ? &options->events_max
			  : option == OPT_EVENTS_PER_USER ? &options->events_max_per_user
			  : option == OPT_EVENTS_BYTES_PER_USER ? &options->events_max_bytes_per_user
			                                  : &options->events_max_bytes) = (size_t)value;
			break;
		case OPT_MAX_BYTES:
		case OPT_MAX_BYTES_PER_USER:
			/* At least what one largest request can carry. */
			if (parse_number(optarg, 65536, 1024.0 * 1024 * 1024 * 1024, &value) != 0 ||
			    value != floor(value))
				goto bad_value;
			*(option == OPT_MAX_BYTES ? &options->max_bytes : &options->max_bytes_per_user) =
				(uint64_t)value;
			break;
		case OPT_IDLE_TIMEOUT:
			if (parse_number(optarg, 0, 86400, &value) != 0)
				goto bad_value;
			options->idle_timeout = value;
			break;
		case OPT_QUEUE: {
			const char *equals = strchr(optarg, '=');
			if (options->queue_count == OPTIONS_MAX_LISTEN || equals == NULL ||
			    equals == optarg || equals - optarg > 64 ||
			    parse_number(equals + 1, 1, 1000000, &value) != 0 || value != floor(value)) {
				snprintf(message, size,
				         "--queue needs NAME=MAX, like builds=2 (at most %d queues here; "
				         "more with the queue.set op), not '%s'",
				         OPTIONS_MAX_LISTEN, optarg);
				return OPTIONS_EXIT_USAGE;
			}
			snprintf(options->queues[options->queue_count++], sizeof(options->queues[0]), "%s",
			         optarg);
			break;
		}
		case OPT_PROCS:
			if (parse_number(optarg, 1, 65536, &value) != 0 || value != floor(value))
				goto bad_value;
			options->procs = (unsigned)value;
			break;
		case OPT_OUTPUT_MAX:
			/* A reply carries both streams, and JSON escaping can make a byte
			 * six: 4 MiB each stays within what clients read (64 MiB). */
			if (parse_number(optarg, 0, 4.0 * 1024 * 1024, &value) != 0 ||
			    value != floor(value))
				goto bad_value;
			options->output_max = (size_t)value;
			break;
		case OPT_OUTPUT_WINDOW:
		case OPT_OUTPUT_BUDGET:
			if (parse_number(optarg, 256.0 * 1024, 64.0 * 1024 * 1024 * 1024, &value) != 0 ||
			    value != floor(value))
				goto bad_value;
			*(option == OPT_OUTPUT_WINDOW ? &options->output_window : &options->output_budget) =
				(size_t)value;
			break;
		case OPT_OUTPUT_SPOOL:
			if (parse_number(optarg, 0, 1024.0 * 1024 * 1024 * 1024, &value) != 0 ||
			    value != floor(value))
				goto bad_value;
			options->output_spool = (size_t)value;
			break;
		case OPT_OUTPUT_SPOOL_ALL:
			options->output_spool_all = true;
			break;
		case OPT_OUTPUT_IDLE:
			if (parse_number(optarg, 0.1, 3600, &value) != 0)
				goto bad_value;
			options->output_idle = value;
			break;
		case OPT_IO_IDLE:
			if (parse_number(optarg, 0.01, 86400, &value) != 0)
				goto bad_value;
			options->io_idle = value;
			break;
		case OPT_RESOLV_CONF:
			if (optarg[0] == '\0' || strlen(optarg) >= sizeof(options->resolv_conf)) {
				snprintf(message, size, "--resolv-conf needs a file of at most %zu bytes",
				         sizeof(options->resolv_conf) - 1);
				return OPTIONS_EXIT_USAGE;
			}
			strcpy(options->resolv_conf, optarg);
			break;
		case OPT_THREADS:
			if (parse_number(optarg, 1, 1024, &value) != 0 || value != floor(value))
				goto bad_value;
			options->threads = (unsigned)value;
			break;
		case OPT_LOG_LEVEL:
			if (log_level_parse(optarg, &options->log_level) != 0) {
				snprintf(message, size,
				         "--log-level must be error, warn, info or debug, not '%s'", optarg);
				return OPTIONS_EXIT_USAGE;
			}
			break;
		case OPT_ADMIN_GROUP:
		case OPT_SOCKET_GROUP:
		case OPT_INSECURE_TCP_USER:
		case OPT_TLS_USER:
		case OPT_TLS_CERT:
		case OPT_TLS_KEY:
		case OPT_TLS_CA: {
			char *to = option == OPT_ADMIN_GROUP         ? options->admin_group
			           : option == OPT_SOCKET_GROUP      ? options->socket_group
			           : option == OPT_INSECURE_TCP_USER ? options->insecure_tcp_user
			           : option == OPT_TLS_USER          ? options->tls_user
			           : option == OPT_TLS_CERT          ? options->tls_cert
			           : option == OPT_TLS_KEY           ? options->tls_key
			                                             : options->tls_ca;
			size_t room = option >= OPT_TLS_CERT ? sizeof(options->tls_cert)
			                                     : sizeof(options->admin_group);
			if (optarg[0] == '\0' || strlen(optarg) >= room) {
				snprintf(message, size, "--%s needs a %s of 1 to %zu bytes",
				         long_options[which].name, option >= OPT_TLS_CERT ? "path" : "name",
				         room - 1);
				return OPTIONS_EXIT_USAGE;
			}
			strcpy(to, optarg);
			break;
		}
		case OPT_CGROUP:
			if ((strcmp(optarg, "auto") != 0 && strcmp(optarg, "off") != 0 &&
			     optarg[0] != '/') ||
			    strlen(optarg) >= sizeof(options->cgroup) - 64) {
				snprintf(message, size,
				         "--cgroup must be auto, off or an absolute directory in a cgroup2 "
				         "tree (shorter than %zu bytes), not '%s'",
				         sizeof(options->cgroup) - 64, optarg);
				return OPTIONS_EXIT_USAGE;
			}
			strcpy(options->cgroup, optarg);
			break;
		case OPT_JOB_OOM: {
			bool relative = optarg[0] == '+';
			char *end;
			errno = 0;
			long score = strtol(optarg + relative, &end, 10);
			if (strcmp(optarg, "auto") == 0) {
				options->job_oom_set = false;
				break;
			}
			if (errno != 0 || end == optarg + relative || *end != '\0' ||
			    !(optarg[relative] == '-' || (optarg[relative] >= '0' && optarg[relative] <= '9')) ||
			    score < (relative ? 0 : -1000) || score > 1000) {
				snprintf(message, size,
				         "--job-oom-score-adjust must be auto, a number from -1000 to 1000, "
				         "or +N (0 to 1000 above weftd's own), not '%s'",
				         optarg);
				return OPTIONS_EXIT_USAGE;
			}
			options->job_oom_set = true;
			options->job_oom_relative = relative;
			options->job_oom_score = (int)score;
			break;
		}
		case OPT_TEST_HOOKS:
			options->test_hooks = true;
			break;
		case OPT_PLUGIN:
			if (options->plugin_count == OPTIONS_MAX_LISTEN || optarg[0] == '\0' ||
			    strlen(optarg) >= sizeof(options->plugins[0])) {
				snprintf(message, size,
				         "--plugin needs the path of a shared object (at most %d plugins, "
				         "paths of at most %zu bytes)",
				         OPTIONS_MAX_LISTEN, sizeof(options->plugins[0]) - 1);
				return OPTIONS_EXIT_USAGE;
			}
			strcpy(options->plugins[options->plugin_count++], optarg);
			break;
		case OPT_PLUGIN_DIR:
			if (optarg[0] == '\0' || strlen(optarg) >= sizeof(options->plugin_dir)) {
				snprintf(message, size, "--plugin-dir needs a directory of at most %zu bytes",
				         sizeof(options->plugin_dir) - 1);
				return OPTIONS_EXIT_USAGE;
			}
			strcpy(options->plugin_dir, optarg);
			break;
		case OPT_STATE_DIR:
			if (optarg[0] == '\0' || strlen(optarg) >= sizeof(options->state_dir)) {
				snprintf(message, size, "--state-dir needs a directory (or none), of at "
				         "most %zu bytes", sizeof(options->state_dir) - 1);
				return OPTIONS_EXIT_USAGE;
			}
			state_dir_given = true;
			if (strcmp(optarg, "none") == 0)
				options->state_dir[0] = '\0';
			else
				strcpy(options->state_dir, optarg);
			break;
		case OPT_SYNC:
			if (strcmp(optarg, "full") == 0) {
				options->sync = JOURNAL_SYNC_FULL;
			} else if (strcmp(optarg, "normal") == 0) {
				options->sync = JOURNAL_SYNC_NORMAL;
			} else {
				snprintf(message, size, "--sync must be full or normal, not '%s'", optarg);
				return OPTIONS_EXIT_USAGE;
			}
			break;
		case OPT_VERSION:
			printf("weftd %s (protocol %d)\n", PROTO_SOFTWARE_VERSION, PROTO_VERSION);
			return OPTIONS_EXIT_OK;
		case OPT_HELP:
			printf(usage, default_url);
			return OPTIONS_EXIT_OK;
		default:
			snprintf(message, size, "unknown option or missing value: '%s'; see weftd --help",
			         argv[optind - 1]);
			return OPTIONS_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		snprintf(message, size, "unexpected argument '%s'; see weftd --help", argv[optind]);
		return OPTIONS_EXIT_USAGE;
	}
	if (options->threads == 0)
		options->threads = (unsigned)(2 * options->workers);
	/* A root daemon serves every local user: by default no one of them may
	 * take more than a quarter of the default shared limits. A user's own
	 * daemon serves that user alone, who may have it all. */
	bool shared = geteuid() == 0;
	if (options->max_pending_per_user == 0)
		options->max_pending_per_user =
			shared && options->max_pending > OPTIONS_DEFAULT_PENDING_PER_USER
				? OPTIONS_DEFAULT_PENDING_PER_USER
				: options->max_pending;
	if (options->max_waiters_per_user == 0)
		options->max_waiters_per_user =
			shared && options->max_waiters > OPTIONS_DEFAULT_WAITERS_PER_USER
				? OPTIONS_DEFAULT_WAITERS_PER_USER
				: options->max_waiters;
	if (options->max_bytes_per_user == 0)
		options->max_bytes_per_user =
			shared && options->max_bytes > OPTIONS_DEFAULT_BYTES_PER_USER
				? OPTIONS_DEFAULT_BYTES_PER_USER
				: options->max_bytes;
	if (options->events_max_per_user == 0)
		options->events_max_per_user =
			shared && options->events_max > OPTIONS_DEFAULT_EVENTS_PER_USER
				? OPTIONS_DEFAULT_EVENTS_PER_USER
				: options->events_max;
	if (options->events_max_bytes_per_user == 0)
		options->events_max_bytes_per_user =
			shared && options->events_max_bytes > OPTIONS_DEFAULT_EVENT_BYTES_PER_USER
				? OPTIONS_DEFAULT_EVENT_BYTES_PER_USER
				: options->events_max_bytes;
	if (!state_dir_given && default_state_dir(options->state_dir, sizeof(options->state_dir)) != 0) {
		snprintf(message, size, "no default --state-dir: HOME and XDG_STATE_HOME are unset; "
		         "pass --state-dir DIR (or none)");
		return OPTIONS_EXIT_USAGE;
	}
	if (options->listen_count == 0) {
		strcpy(options->listen[0], default_url);
		options->listen_count = 1;
	}
	return OPTIONS_RUN;

bad_value:
	snprintf(message, size, "--%s: '%s' is out of range or not a number; see weftd --help",
	         long_options[which].name, optarg);
	return OPTIONS_EXIT_USAGE;
}

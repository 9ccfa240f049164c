/*
 * execargs: the arguments of the `exec` function, checked and turned into a
 * plain C value that proc can start a process from.
 *
 * Every argument is checked before the job is accepted, so a job that starts
 * can only fail at run time (a missing command, a refused rlimit), never
 * because of a malformed argument. A refusal names the field with its path
 * (`args.argv[2]`, `args.env.HOME`, `args.limits.nofile`) and says what to
 * change.
 *
 * The arguments (every one optional except argv/shell):
 *   argv       array of strings, at least one; argv[0] is searched in the
 *              job's PATH when it has no '/'           (exactly one of argv
 *   shell      string, run as /bin/sh -c STRING         and shell is given)
 *   env        object of strings, merged over the default environment
 *   env_clear  bool (false): start from an empty environment instead
 *   cwd        string: the directory the command runs in
 *   umask      integer 0 to 0777 (511): the mode bits files it makes lose; default 022
 *              (clients send their own, as a shell would pass it on)
 *   stdin      string: written to the command's standard input, then closed
 *              (without it the command reads /dev/null)
 *   capture    bool (true): keep stdout and stderr; false sends them to
 *              /dev/null
 *   output_spool bool (false): output that leaves the window is kept in a
 *               spool file (spool.h); refused when weftd keeps no spool
 *   output_wait bool (false): backpressure from the job's output readers:
 *              while the retained window (outlog.h) is full of output no
 *              reader has read, the command's pipes are not read (it blocks
 *              on write), until a reader reads or none has for 10 s. `weft
 *              run` sets it, so what it shows is complete at any size.
 *   stdin_stream bool (false): the command's stdin is a pipe fed by the
 *              `input` op while it runs (inbuf.h), closed when the client
 *              says eof; not with `stdin`
 *   items      "lines": each line of stdout becomes one of the job's items
 *              (lines.h); needs capture
 *   kill_after number >= 0 (5): seconds between SIGTERM and SIGKILL when the
 *              job is stopped
 *   limits     object: resource name -> whole number >= 0 or "unlimited",
 *              applied as both the soft and the hard rlimit (see
 *              EXECARGS_LIMIT_MAP for the names and units); besides,
 *              "memory" (bytes, >= 1 MiB) and "tasks" (>= 1) limit the
 *              job's whole cgroup (memory.max, pids.max)
 *
 * Strings may not contain NUL bytes (JSON allows "\u0000"; execve does not).
 * env keys may not be empty, contain '=', or be NOTIFY_SOCKET or WATCHDOG_*:
 * those belong to the service manager and never reach jobs. Each argv or env
 * string is at most EXECARGS_MAX_STRING bytes and all of them, counted as the
 * kernel counts them (a pointer each), at most EXECARGS_MAX_ARG_BYTES.
 */
#ifndef EXECARGS_H
#define EXECARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <jansson.h>

/* XX(name on the wire, RLIMIT_ resource, unit for people) */
#define EXECARGS_LIMIT_MAP(XX)                                                             \
	XX("as", RLIMIT_AS, "bytes of address space")                                      \
	XX("core", RLIMIT_CORE, "bytes of core file")                                      \
	XX("cpu", RLIMIT_CPU, "seconds of CPU time")                                       \
	XX("data", RLIMIT_DATA, "bytes of data segment")                                   \
	XX("fsize", RLIMIT_FSIZE, "bytes per written file")                                \
	XX("locks", RLIMIT_LOCKS, "file locks")                                            \
	XX("memlock", RLIMIT_MEMLOCK, "bytes of locked memory")                            \
	XX("msgqueue", RLIMIT_MSGQUEUE, "bytes in POSIX message queues")                   \
	XX("nice", RLIMIT_NICE, "nice ceiling (20 - nice)")                                \
	XX("nofile", RLIMIT_NOFILE, "open files")                                          \
	XX("nproc", RLIMIT_NPROC, "processes of the user")                                 \
	XX("rss", RLIMIT_RSS, "bytes of resident memory (ignored by Linux)")               \
	XX("rtprio", RLIMIT_RTPRIO, "real-time priority")                                  \
	XX("rttime", RLIMIT_RTTIME, "microseconds of real-time CPU")                       \
	XX("sigpending", RLIMIT_SIGPENDING, "queued signals")                              \
	XX("stack", RLIMIT_STACK, "bytes of stack")

#define EXECARGS_DEFAULT_KILL_AFTER 5.0
/* kill_after above this is refused: a day is longer than any sane grace. */
#define EXECARGS_MAX_KILL_AFTER 86400.0
/* Linux's execve limits with the default 8 MiB stack: MAX_ARG_STRLEN per
 * string, and a quarter of the stack for argv and env with their pointers. */
#define EXECARGS_MAX_STRING 131072
#define EXECARGS_MAX_ARG_BYTES (2 * 1024 * 1024)
/* Room for every entry of EXECARGS_LIMIT_MAP. */
#define EXECARGS_MAX_LIMITS 16

/* One rlimit to apply in the child: soft = hard = value. */
struct execargs_limit {
	const char *name; /* static, the wire name ("nofile") */
	int resource;     /* RLIMIT_* */
	rlim_t value;     /* RLIM_INFINITY for "unlimited" */
};

/*
 * Checked exec arguments. Made by execargs_parse, freed by execargs_free:
 * every pointer in it is owned by the struct. Plain data: once made it is
 * only read, so any thread may read it.
 */
struct execargs {
	char **argv;       /* NULL-terminated, argc entries; for `shell`: /bin/sh -c STRING */
	size_t argc;       /* >= 1 */
	bool shell;        /* true when the job gave `shell` */
	char **env;        /* NULL-terminated "KEY=VALUE" entries from `env`, in key order */
	size_t env_count;
	bool env_clear;
	char *cwd;         /* NULL: the daemon's own working directory */
	unsigned umask;    /* the submitter's umask (its client sends it); default 022 */
	char *stdin_data;  /* NULL: stdin is /dev/null; may contain no NUL (JSON strings) */
	size_t stdin_length;
	bool capture;
	bool output_wait;  /* backpressure from the output's readers (outlog.h) */
	bool output_spool; /* what leaves the output's window goes to a spool file (spool.h) */
	bool stdin_stream; /* stdin comes from the input op (inbuf.h) */
	bool item_lines;   /* items: "lines" (lines.h) */
	double kill_after; /* seconds, 0 ... EXECARGS_MAX_KILL_AFTER */
	struct execargs_limit limits[EXECARGS_MAX_LIMITS];
	size_t limit_count;
	/* limits.memory (bytes) and limits.tasks (processes and threads): set on
	 * the job's cgroup, not as rlimits (cgroup.h); 0: none. */
	uint64_t memory_max;
	uint64_t tasks_max;
};

/* Why execargs_parse refused its input. `field` is the path of the offending
 * field ("args.argv[2]"); `message` says what to change. */
struct execargs_error {
	int code;           /* WEFT_EBADARGS or WEFT_ENOMEM */
	char field[128];    /* "" when the problem is not one field */
	char message[256];
};

/*
 * Checks the `args` object of an exec job. Any thread; pure (no I/O).
 * args: borrowed; NULL is taken as {} (and refused: argv or shell is needed).
 * On success returns WEFT_OK and sets *out to a new struct the caller frees
 * with execargs_free. On failure returns WEFT_EBADARGS (or WEFT_ENOMEM),
 * fills *error (when not NULL) and leaves *out alone.
 */
int execargs_parse(const json_t *args, struct execargs **out, struct execargs_error *error);

/* Frees what execargs_parse made. NULL is fine. Any thread. */
void execargs_free(struct execargs *args);

/* Looks up a rlimit by its wire name ("nofile"); NULL when unknown. The
 * result is static. Any thread. */
const struct execargs_limit *execargs_limit_find(const char *name);

#endif

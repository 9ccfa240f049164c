/*
 * weft run and weft submit: a command as an `exec` job.
 *
 * `weft run` makes the job look like the command ran here: it submits, copies
 * the job's stdout and stderr to its own byte for byte as they come (long
 * polls of the `output` op; stream.h), then takes the outcome with one long
 * poll (`result` without a timeout: the job's own --timeout is the only
 * clock), and exits with the command's status. Its own outcomes use the codes
 * of timeout(1) and the shell, so that a script can tell them apart from the
 * command's:
 *   N        the command exited with N
 *   128+N    the command was killed by signal N
 *   124      the job's --timeout expired (the partial output is copied first)
 *   127      the command could not be started (SpawnError)
 *   130      the job was cancelled (`weft cancel`, Ctrl-C here, weftd shutting down)
 *   2        usage error, or weftd refused the options (bad_arguments, ...):
 *            nothing ran
 *   122      the command ended but output was lost: weft fell behind the window
 *   125      weft itself failed: cannot connect, the connection dropped,
 *            weftd is shutting down, ...
 * A command's own 2 or 125 looks the same: weft's failures also print a
 * "weft: " line on stderr.
 *
 * The full result and error of a job (its stdout, stderr, exit code, ...)
 * come only with the raw `result` reply (error.details): weft_outcome carries
 * the type and message alone, so the wait goes through weft_request.
 *
 * Ctrl-C: SIGINT, SIGTERM and SIGHUP are blocked before libweft starts its
 * threads, so that they all inherit the mask; one thread takes them with
 * sigwait and cancels the job, and the long poll then returns it cancelled
 * (see canceller).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/schedule.h"
#include "cli/stream.h"
#include "proto/base64.h"
#include "proto/proto.h"

/* Exit codes of `weft run` (see above and `weft run --help`). */
enum {
	RUN_EXIT_WEFT_FAILED = 125,
	RUN_EXIT_TIMEOUT = 124,
	RUN_EXIT_SPAWN = 127,
	RUN_EXIT_CANCELLED = 130,
	RUN_EXIT_SIGNAL_BASE = 128,
	RUN_EXIT_OUTPUT_LOST = 122,
};

/* What the options ask for. Every json_t is an own reference (NULL: not given). */
typedef struct run_options {
	double timeout;   /* 0: none */
	json_t *env;      /* object of strings */
	bool env_clear;
	const char *cwd;  /* borrowed from argv; NULL: the current directory */
	bool shell;
	bool read_stdin;
	bool lines;       /* weft submit --lines: one shell command per line of stdin */
	double kill_after; /* < 0: the daemon's default */
	json_t *limits;   /* object */
	json_t *labels;   /* object of strings */
	char **words;     /* borrowed from argv: the command and its arguments */
	int word_count;
	cli_schedule schedule;
} run_options;

static void run_options_free(run_options *options)
{
	json_decref(options->labels);
	json_decref(options->limits);
	json_decref(options->env);
}

static int out_of_memory(void)
{
	fprintf(stderr, "weft: out of memory\n");
	return RUN_EXIT_WEFT_FAILED;
}

/* ------------------------------------------------------------ the options */

/* "NAME=VALUE" for --limit: VALUE is a whole number or "unlimited". */
static bool parse_limit(char *text, json_t *limits)
{
	char *name, *value;
	if (!cli_parse_label(text, &name, &value))
		return false;
	json_t *number;
	if (strcmp(value, "unlimited") == 0) {
		number = json_string(value);
	} else {
		char *end = NULL;
		errno = 0;
		long long whole = strtoll(value, &end, 10);
		if (end == value || *end != '\0' || errno != 0 || whole < 0)
			return false;
		number = json_integer(whole);
	}
	return json_object_set_new(limits, name, number) == 0;
}

/* parse_options printed --help: leave with exit code 0. */
#define PARSE_HELP_SHOWN (-1)

/* Parses argv into *options; returns 0, PARSE_HELP_SHOWN, or the exit code to
 * leave with. */
static int parse_options(const cli_command *command, cli_globals *globals, int argc, char **argv,
                         run_options *options)
{
	static const struct option table[] = {
		{"timeout", required_argument, NULL, 't'},
		{"env", required_argument, NULL, 'e'},
		{"env-clear", no_argument, NULL, 'E'},
		{"cwd", required_argument, NULL, 'C'},
		{"shell", no_argument, NULL, 's'},
		{"stdin", no_argument, NULL, 'i'},
		{"lines", no_argument, NULL, 'n'},
		{"kill-after", required_argument, NULL, 'k'},
		{"limit", required_argument, NULL, 'L'},
		{"label", required_argument, NULL, 'l'},
		CLI_SCHEDULE_OPTIONS,
		CLI_GLOBAL_OPTIONS,
	};
	options->kill_after = -1;
	cli_schedule_init(&options->schedule);
	options->env = json_object();
	options->limits = json_object();
	options->labels = json_object();
	if (options->env == NULL || options->limits == NULL || options->labels == NULL)
		return out_of_memory();
	int option;
	/* '+': the command's own options (ls -l) are words of the command. */
	while ((option = getopt_long(argc, argv, "+:", table, NULL)) != -1) {
		char *key, *value;
		int schedule_exit = 0;
		if (cli_schedule_option(command, &options->schedule, option, optarg, &schedule_exit)) {
			if (schedule_exit != 0)
				return schedule_exit;
			continue;
		}
		switch (option) {
		case 't':
			if (!cli_parse_seconds(optarg, &options->timeout) || options->timeout <= 0)
				return cli_usage_error(command, "--timeout takes seconds > 0, such as 2.5");
			break;
		case 'e':
			if (!cli_parse_label(optarg, &key, &value))
				return cli_usage_error(command,
				                       "--env takes NAME=VALUE, such as LANG=C.UTF-8");
			if (json_object_set_new(options->env, key, json_string(value)) != 0)
				return cli_usage_error(command, "--env %s: the value must be UTF-8 text",
				                       key);
			break;
		case 'E':
			options->env_clear = true;
			break;
		case 'C':
			if (optarg[0] == '\0')
				return cli_usage_error(command, "--cwd takes a directory");
			options->cwd = optarg;
			break;
		case 's':
			options->shell = true;
			break;
		case 'i':
			options->read_stdin = true;
			break;
		case 'n':
			if (strcmp(command->name, "submit") != 0)
				return cli_usage_error(command, "--lines is for 'weft submit'");
			options->lines = true;
			break;
		case 'k':
			if (!cli_parse_seconds(optarg, &options->kill_after))
				return cli_usage_error(command,
				                       "--kill-after takes seconds >= 0, such as 10");
			break;
		case 'L':
			if (!parse_limit(optarg, options->limits))
				return cli_usage_error(command,
				                       "--limit takes NAME=VALUE with a whole number or "
				                       "'unlimited', such as nofile=256 or cpu=10");
			break;
		case 'l':
			if (cli_add_label(command, optarg, "team=ci", options->labels) != 0)
				return CLI_EXIT_USAGE;
			break;
		default: {
			int exit_code = cli_common_option(command, globals, option, argc, argv);
			if (exit_code == CLI_EXIT_OK)
				return PARSE_HELP_SHOWN;
			if (exit_code != CLI_OPTION_HANDLED)
				return exit_code;
		}
		}
	}
	int schedule_exit = cli_schedule_check(command, &options->schedule);
	if (schedule_exit != 0)
		return schedule_exit;
	/* "--" ends weft's options; getopt has stepped over it when it was there. */
	options->words = argv + optind;
	options->word_count = argc - optind;
	if (options->lines) {
		if (options->word_count > 0 || options->read_stdin)
			return cli_usage_error(command, "--lines reads the commands from stdin: give "
			                                "no command words and no --stdin");
		return 0;
	}
	if (options->word_count == 0)
		return cli_usage_error(command,
		                       "no command: put it after '--', such as 'weft %s -- make -j4'",
		                       command->name);
	return 0;
}

/* ------------------------------------------------------------ the job */

/* The most stdin read: the largest --max-message weftd takes. The real
 * limit is checked once connected; stdin is read before that so that Ctrl-C
 * still ends weft while it waits for the end of a terminal's input. */
#define RUN_STDIN_MAX ((size_t)256 * 1024 * 1024)

static int stdin_too_large(const cli_command *command, size_t limit)
{
	return cli_usage_error(command,
	                       "--stdin: the input is larger than weftd's limit of %zu bytes per "
	                       "request (--max-message); write it to a file the command can read",
	                       limit);
}

/* The caller's stdin, read to EOF, as a JSON string; *out: new reference,
 * *size: its length in bytes. Refuses more than RUN_STDIN_MAX bytes, and bytes
 * that JSON text cannot carry. */
static int read_stdin(const cli_command *command, json_t **out, size_t *size)
{
	size_t used = 0, capacity = 64 * 1024;
	char *text = malloc(capacity);
	if (text == NULL)
		return out_of_memory();
	for (;;) {
		if (used == capacity) {
			capacity *= 2;
			char *bigger = realloc(text, capacity);
			if (bigger == NULL) {
				free(text);
				return out_of_memory();
			}
			text = bigger;
		}
		size_t got = fread(text + used, 1, capacity - used, stdin);
		used += got;
		if (used > RUN_STDIN_MAX) {
			free(text);
			return stdin_too_large(command, RUN_STDIN_MAX);
		}
		if (got == 0)
			break;
	}
	if (ferror(stdin)) {
		free(text);
		fprintf(stderr, "weft %s: cannot read stdin: %s\n", command->name, strerror(errno));
		return RUN_EXIT_WEFT_FAILED;
	}
	json_t *string = memchr(text, '\0', used) == NULL ? json_stringn(text, used) : NULL;
	free(text);
	if (string == NULL)
		return cli_usage_error(command, "--stdin: the input must be UTF-8 text without NUL "
		                                "bytes (exec passes stdin as text)");
	*out = string;
	*size = used;
	return 0;
}

/* Without --stdin the command reads /dev/null. When this stdin is not a
 * terminal and has bytes waiting (a pipe or a file), say so: piping into
 * `weft run` without --stdin is most likely a mistake. Nothing is read. */
static void warn_unread_stdin(const cli_command *command)
{
	int waiting = 0;
	if (isatty(STDIN_FILENO) || ioctl(STDIN_FILENO, FIONREAD, &waiting) != 0 || waiting <= 0)
		return;
	fprintf(stderr, "weft %s: warning: stdin is not forwarded to the command (it reads "
	                "/dev/null); give --stdin to send it\n", command->name);
}

/* The directory the job runs in, as weftd must be told it: the caller's
 * current directory, or --cwd (relative to the current directory when it is
 * relative: weftd's own directory means nothing to the caller). *out: new
 * reference. */
static int job_directory(const cli_command *command, const char *option, json_t **out)
{
	char *path = NULL;
	if (option != NULL && option[0] == '/') {
		path = strdup(option);
	} else {
		char *here = getcwd(NULL, 0);
		if (here == NULL) {
			fprintf(stderr, "weft %s: cannot tell the current directory (%s); give --cwd "
			                "with an absolute path\n", command->name, strerror(errno));
			return CLI_EXIT_USAGE;
		}
		if (option == NULL)
			path = here;
		else if (asprintf(&path, "%s/%s", strcmp(here, "/") == 0 ? "" : here, option) < 0)
			path = NULL;
		if (path != here)
			free(here);
	}
	if (path == NULL)
		return out_of_memory();
	json_t *string = json_string(path);
	free(path);
	if (string == NULL)
		return cli_usage_error(command, "the directory's path is not UTF-8 text; give --cwd "
		                                "with one that is");
	*out = string;
	return 0;
}

/* The exec arguments for the options; *out: new reference. */
static int build_args(const cli_command *command, const run_options *options, json_t **out)
{
	json_t *args = json_object();
	if (args == NULL)
		return out_of_memory();
	if (options->shell) {
		/* Each word and a space (or the final NUL) after it. */
		size_t length = 1;
		for (int i = 0; i < options->word_count; i++)
			length += strlen(options->words[i]) + 1;
		char *line = malloc(length);
		if (line == NULL)
			goto no_memory;
		size_t used = 0;
		for (int i = 0; i < options->word_count; i++) {
			size_t word_length = strlen(options->words[i]);
			if (i > 0)
				line[used++] = ' ';
			memcpy(line + used, options->words[i], word_length);
			used += word_length;
		}
		line[used] = '\0';
		json_t *string = json_string(line);
		free(line);
		if (string == NULL) {
			json_decref(args);
			return cli_usage_error(command, "the command line must be UTF-8 text");
		}
		json_object_set_new(args, "shell", string);
	} else {
		json_t *argv = json_array();
		if (argv == NULL || json_object_set_new(args, "argv", argv) != 0)
			goto no_memory;
		for (int i = 0; i < options->word_count; i++) {
			json_t *word = json_string(options->words[i]);
			if (word == NULL) {
				json_decref(args);
				return cli_usage_error(command, "word %d of the command ('%s') is not "
				                                "UTF-8 text", i + 1, options->words[i]);
			}
			json_array_append_new(argv, word);
		}
	}
	if (json_object_size(options->env) > 0)
		json_object_set(args, "env", options->env);
	if (options->env_clear)
		json_object_set_new(args, "env_clear", json_true());
	if (options->kill_after >= 0)
		json_object_set_new(args, "kill_after", json_real(options->kill_after));
	if (json_object_size(options->limits) > 0)
		json_object_set(args, "limits", options->limits);
	json_t *cwd = NULL;
	int rv = job_directory(command, options->cwd, &cwd);
	if (rv != 0) {
		json_decref(args);
		return rv;
	}
	json_object_set_new(args, "cwd", cwd);
	/* The command makes files as this shell would: with its umask. Read by
	 * setting it back, before `weft run` starts its signal thread. */
	mode_t mask = umask(022);
	umask(mask);
	json_object_set_new(args, "umask", json_integer((json_int_t)mask));
	*out = args;
	return 0;
no_memory:
	json_decref(args);
	return out_of_memory();
}

static int build_spec(const run_options *options, json_t *args, weft_job_spec **out)
{
	weft_job_spec *spec = NULL;
	if (weft_job_spec_new("exec", &spec) != 0)
		return weft_last_error()->code;
	int rv = weft_job_spec_set_args(spec, args);
	if (rv == 0 && options->timeout > 0)
		rv = weft_job_spec_set_timeout(spec, options->timeout);
	const char *key;
	json_t *value;
	json_object_foreach(options->labels, key, value)
	{
		if (rv == 0)
			rv = weft_job_spec_set_label(spec, key, json_string_value(value));
	}
	if (rv == 0)
		rv = cli_schedule_apply(&options->schedule, spec);
	if (rv != 0) {
		weft_job_spec_free(spec);
		return rv;
	}
	*out = spec;
	return WEFT_OK;
}

/* Reports the last libweft error as weft run's own failure: 2 when weftd
 * refused what the options asked for (an unknown --limit, a --timeout above
 * its maximum, a request over --max-message), else 125. */
static int weft_failed(const cli_globals *globals)
{
	int error = weft_last_error()->code;
	cli_report_error(globals);
	switch (error) {
	case WEFT_EBADARGS:
	case WEFT_EBADFIELD:
	case WEFT_ETOOLARGE:
	case WEFT_EINVAL:
		return CLI_EXIT_USAGE;
	default:
		return RUN_EXIT_WEFT_FAILED;
	}
}

/* ------------------------------------------------------ Ctrl-C cancels */

/*
 * The signal thread. Before the job is submitted a signal ends weft at once
 * (exit 130); while the submit is on its way it is remembered and the job
 * cancelled as soon as its id is known; afterwards it cancels the job.
 */
typedef struct canceller {
	pthread_t thread;
	sigset_t signals;       /* those that cancel, plus SIGUSR2: "stop" */
	bool active;            /* main thread only: signals blocked, lock made */
	bool thread_running;    /* main thread only */
	pthread_mutex_t lock;   /* guards the three below: both threads use them */
	weft_client *client;    /* borrowed; set with id */
	uint64_t id;            /* 0 until the submit returned */
	bool submitting;        /* the submit request may be on its way */
	bool interrupted;       /* a signal came while submitting */
} canceller;

static void *canceller_main(void *argument)
{
	canceller *self = argument;
	for (;;) {
		int signal_number = 0;
		if (sigwait(&self->signals, &signal_number) != 0 || signal_number == SIGUSR2)
			return NULL;
		pthread_mutex_lock(&self->lock);
		weft_client *client = self->client;
		uint64_t id = self->id;
		bool before_submit = id == 0 && !self->submitting;
		if (id == 0)
			self->interrupted = true;
		pthread_mutex_unlock(&self->lock);
		if (before_submit) {
			/* Nothing was sent: no job to leave behind. */
			static const char message[] = "weft: interrupted before the job was submitted\n";
			ssize_t written = write(STDERR_FILENO, message, sizeof(message) - 1);
			(void)written;
			_exit(RUN_EXIT_CANCELLED);
		}
		/* The main thread's long poll then returns the job cancelled. */
		if (id != 0)
			weft_cancel(client, id, NULL, NULL);
	}
}

/* Blocks the signals in this thread and every thread started from now on
 * (libweft's included), and starts the thread that takes them. */
static void canceller_start(canceller *self)
{
	sigemptyset(&self->signals);
	sigaddset(&self->signals, SIGINT);
	sigaddset(&self->signals, SIGTERM);
	sigaddset(&self->signals, SIGHUP);
	sigaddset(&self->signals, SIGUSR2);
	pthread_mutex_init(&self->lock, NULL);
	pthread_sigmask(SIG_BLOCK, &self->signals, NULL);
	self->active = true;
	/* Without the thread Ctrl-C just stays blocked; the job still runs to its end. */
	self->thread_running = pthread_create(&self->thread, NULL, canceller_main, self) == 0;
}

static void canceller_submitting(canceller *self)
{
	pthread_mutex_lock(&self->lock);
	self->submitting = true;
	pthread_mutex_unlock(&self->lock);
}

/* The submit returned: id is the job (0 when the submit failed). Cancels it
 * when a signal came meanwhile. */
static void canceller_submitted(canceller *self, weft_client *client, uint64_t id)
{
	pthread_mutex_lock(&self->lock);
	self->client = client;
	self->id = id;
	self->submitting = false;
	bool cancel_now = self->interrupted && id != 0;
	pthread_mutex_unlock(&self->lock);
	if (cancel_now)
		weft_cancel(client, id, NULL, NULL);
}

/* Ends the thread; the signals stay blocked (weft is about to exit). Fine
 * on a canceller never started. */
static void canceller_stop(canceller *self)
{
	if (!self->active)
		return;
	if (self->thread_running) {
		pthread_kill(self->thread, SIGUSR2);
		pthread_join(self->thread, NULL);
		self->thread_running = false;
	}
	pthread_mutex_destroy(&self->lock);
	self->active = false;
}

/* ------------------------------------------------------ stdin, streamed */

/*
 * weft run --stdin: a thread copies this stdin to the job's (the `input`
 * op) as it comes, any size and any bytes, while the main thread copies the
 * output back. weftd takes what fits in the job's buffer; the rest is sent
 * again after a pause that grows from 1 to 20 ms (flow control without a
 * long poll). It stops at the end of stdin (sending eof), when the command
 * closes its stdin, or when told to (the job is over).
 */
typedef struct feeder {
	pthread_t thread;
	bool running;           /* main thread only */
	weft_client *client;    /* borrowed */
	uint64_t id;
	size_t chunk;           /* bytes per request: within --max-message in base64 */
	atomic_bool stop;       /* main thread asks; the feeder looks between steps */
	atomic_int failure;     /* a libweft error the feeder met, 0: none */
} feeder;

static void pause_ms(long ms)
{
	struct timespec interval = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&interval, NULL);
}

/* Sends data[0..length) (and eof when asked) until all is taken. Returns
 * false when the feeding is over (closed, stopped, failed). */
static bool feed_all(feeder *self, const unsigned char *data, size_t length, bool eof)
{
	size_t sent = 0;
	long backoff = 1;
	for (;;) {
		size_t accepted = 0;
		bool started = false, closed = false;
		int rv = weft_input_write(self->client, self->id, data + sent, length - sent, eof,
		                          &accepted, &started, &closed);
		if (rv != WEFT_OK) {
			atomic_store(&self->failure, rv);
			return false;
		}
		if (closed)
			return false;
		sent += accepted;
		if (started && sent == length)
			return true;
		if (accepted > 0)
			backoff = 1;
		if (atomic_load(&self->stop))
			return false;
		pause_ms(backoff);
		backoff = backoff < 20 ? backoff * 2 : 20;
	}
}

static void *feeder_main(void *argument)
{
	feeder *self = argument;
	unsigned char *buffer = malloc(self->chunk);
	if (buffer == NULL)
		return NULL;
	for (;;) {
		struct pollfd ready = {.fd = STDIN_FILENO, .events = POLLIN};
		/* Bounded, so that a stop is seen while a terminal gives nothing. */
		int events = poll(&ready, 1, 100);
		if (atomic_load(&self->stop))
			break;
		if (events == 0 || (events < 0 && errno == EINTR))
			continue;
		ssize_t got = read(STDIN_FILENO, buffer, self->chunk);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		bool end = got <= 0;
		size_t length = end ? 0 : (size_t)got;
		/* What is there already goes in the same request: a pipe gives one
		 * read at most its capacity, and each request is a round trip. */
		while (!end && length < self->chunk) {
			struct pollfd more = {.fd = STDIN_FILENO, .events = POLLIN};
			if (poll(&more, 1, 0) != 1)
				break;
			got = read(STDIN_FILENO, buffer + length, self->chunk - length);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				break; /* the end (or an error) is read again next round */
			length += (size_t)got;
		}
		if (!feed_all(self, buffer, length, end) || end)
			break;
	}
	free(buffer);
	return NULL;
}

static void feeder_start(feeder *self, weft_client *client, uint64_t id)
{
	self->client = client;
	self->id = id;
	/* The bytes go as they are after the request's JSON (weft_input_write),
	 * or in base64 to an older weftd, which makes 3 bytes 4: within
	 * --max-message either way, with room for the rest of the request. */
	size_t limit = weft_client_max_message(client);
	self->chunk = limit > 8192 ? (limit - 4096) / 4 * 3 : 2048;
	if (self->chunk > 512 * 1024)
		self->chunk = 512 * 1024;
	/* A pipe of the default 64 KiB gives that much per read and makes its
	 * writer wait for every round trip; best effort (up to the system's
	 * pipe-max-size). */
	struct stat input;
	if (fstat(STDIN_FILENO, &input) == 0 && S_ISFIFO(input.st_mode))
		(void)fcntl(STDIN_FILENO, F_SETPIPE_SZ, (int)(1024 * 1024));
	atomic_init(&self->stop, false);
	atomic_init(&self->failure, 0);
	self->running = pthread_create(&self->thread, NULL, feeder_main, self) == 0;
	if (!self->running)
		fprintf(stderr, "weft: cannot start the thread that sends stdin; the command gets "
		                "none\n");
}

/* Before weft_close: the thread may be using the client. */
static void feeder_stop(feeder *self)
{
	if (!self->running)
		return;
	atomic_store(&self->stop, true);
	pthread_join(self->thread, NULL);
	self->running = false;
	int failure = atomic_load(&self->failure);
	if (failure != 0)
		fprintf(stderr, "weft: sending stdin failed: %s\n", weft_strerror(failure));
}

/* ------------------------------------------------------------ the outcome */

/* Writes a result's stdout or stderr (borrowed): text, or base64 when the
 * result says "encoding": "base64". */
static void copy_stream(const json_t *text, bool base64, FILE *stream)
{
	if (!json_is_string(text))
		return;
	size_t length = json_string_length(text), size = length;
	const char *bytes = json_string_value(text);
	char *decoded = NULL;
	if (base64) {
		decoded = malloc(base64_decoded_max(length) + 1);
		if (decoded == NULL || !base64_decode(bytes, length, decoded, &size)) {
			free(decoded);
			fprintf(stderr, "weft: the job's output is not valid base64\n");
			return;
		}
		bytes = decoded;
	}
	fwrite(bytes, 1, size, stream);
	fflush(stream);
	free(decoded);
}

/* Prints what a finished job's reply (borrowed) holds and returns the exit
 * code. streamed: its output was copied here already as it came. */
static int report_outcome(const cli_globals *globals, const json_t *reply, bool streamed)
{
	const char *state = json_string_value(json_object_get(reply, "state"));
	const json_t *error = json_object_get(reply, "error");
	const char *type = json_string_value(json_object_get(error, "type"));
	const char *message = json_string_value(json_object_get(error, "message"));
	const json_t *output = json_object_get(reply, "result");
	if (output == NULL)
		output = json_object_get(error, "details");
	json_int_t id = json_integer_value(json_object_get(reply, "id"));
	if (state == NULL)
		state = "?";
	if (type == NULL)
		type = "?";
	if (message == NULL)
		message = "";

	if (globals->json) {
		json_t *document = json_deep_copy(reply);
		if (document == NULL)
			return out_of_memory();
		json_object_del(document, "ok");
		cli_print_json(document);
		json_decref(document);
	} else if (!streamed) {
		const char *encoding = json_string_value(json_object_get(output, "encoding"));
		bool base64 = encoding != NULL && strcmp(encoding, "base64") == 0;
		copy_stream(json_object_get(output, "stdout"), base64, stdout);
		copy_stream(json_object_get(output, "stderr"), base64, stderr);
		if (json_is_true(json_object_get(output, "truncated")))
			fprintf(stderr, "weft: warning: job %lld's output was cut at weftd's "
			                "--output-max (bytes kept per stream)\n", (long long)id);
	}

	if (strcmp(state, "done") == 0)
		return CLI_EXIT_OK;
	if (strcmp(state, "cancelled") == 0) {
		fprintf(stderr, "weft: job %lld cancelled: %s\n", (long long)id, message);
		return RUN_EXIT_CANCELLED;
	}
	if (strcmp(type, proto_job_error(PROTO_JOB_ERROR_TIMEOUT)) == 0) {
		fprintf(stderr, "weft: job %lld: %s\n", (long long)id, message);
		return RUN_EXIT_TIMEOUT;
	}
	if (strcmp(type, proto_job_error(PROTO_JOB_ERROR_SPAWN)) == 0) {
		fprintf(stderr, "weft: job %lld: %s\n", (long long)id, message);
		return RUN_EXIT_SPAWN;
	}
	/* As a shell reports an OOM kill, also when the command itself went on
	 * to exit 0 after losing a child: a script must not see success. */
	if (strcmp(type, proto_job_error(PROTO_JOB_ERROR_OUT_OF_MEMORY)) == 0) {
		fprintf(stderr, "weft: job %lld: %s\n", (long long)id, message);
		return RUN_EXIT_SIGNAL_BASE + SIGKILL;
	}
	const json_t *exit_code = json_object_get(output, "exit_code");
	const json_t *signal_number = json_object_get(output, "signal");
	if (json_is_integer(exit_code))
		return (int)(json_integer_value(exit_code) & 0xff);
	if (json_is_integer(signal_number))
		return RUN_EXIT_SIGNAL_BASE + (int)json_integer_value(signal_number);
	fprintf(stderr, "weft: job %lld %s: %s: %s\n", (long long)id, state, type, message);
	return RUN_EXIT_WEFT_FAILED;
}

/* Waits for the job with one long poll and reports it. */
static int wait_and_report(const cli_globals *globals, weft_client *client, uint64_t id,
                           bool streamed)
{
	/* Streamed, the output is here already: the result need not carry it
	 * again (up to --output-max of each stream, in base64 when it is not
	 * text), unless --json prints the whole reply. */
	bool brief = streamed && !globals->json;
	json_t *request = json_pack("{s:s, s:I}", "op", "result", "id", (json_int_t)id);
	if (request == NULL || (brief && json_object_set_new(request, "output", json_false()) != 0))
		return out_of_memory();
	json_t *reply = NULL;
	int rv = weft_request(client, request, -1, &reply);
	/* A weftd from before "output" refuses the field: the whole result then. */
	if (rv == 0 && brief && !json_is_true(json_object_get(reply, "ok")) &&
	    json_is_string(json_object_get(json_object_get(reply, "error"), "field")) &&
	    strcmp(json_string_value(json_object_get(json_object_get(reply, "error"), "field")),
	           "output") == 0) {
		json_decref(reply);
		reply = NULL;
		json_object_del(request, "output");
		rv = weft_request(client, request, -1, &reply);
	}
	json_decref(request);
	if (rv != 0)
		return weft_failed(globals);
	int exit_code;
	if (!json_is_true(json_object_get(reply, "ok"))) {
		const char *message =
			json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
		fprintf(stderr, "weft: waiting for job %llu: %s\n", (unsigned long long)id,
		        message != NULL ? message : "weftd refused the request");
		if (globals->json)
			cli_print_json(reply);
		exit_code = RUN_EXIT_WEFT_FAILED;
	} else {
		exit_code = report_outcome(globals, reply, streamed);
	}
	json_decref(reply);
	return exit_code;
}

/*
 * Copies the job's output here as it is made (the `output` op, both streams
 * in the order written) until it ends, then reports the outcome. The job was
 * submitted with output_wait, so weftd holds the command back rather than
 * drop bytes this reader has not taken yet; if bytes were lost all the same
 * (this reader stalled for more than 10 s), the exit code is
 * RUN_EXIT_OUTPUT_LOST and stderr says so. A weftd without the op gets the
 * old way: the output from the result, at the end.
 */
static int stream_and_report(const cli_globals *globals, weft_client *client, uint64_t id)
{
	cli_stream_state state;
	int rv = cli_stream_copy(client, id, WEFT_STREAM_BOTH, 0, true, 0, &state);
	if (rv == WEFT_EUNKNOWNOP)
		return wait_and_report(globals, client, id, false);
	if (rv == CLI_STREAM_WRITE_FAILED)
		return RUN_EXIT_WEFT_FAILED;
	if (rv != WEFT_OK)
		return weft_failed(globals);
	int exit_code = wait_and_report(globals, client, id, true);
	if (state.lost == 0)
		return exit_code;
	fprintf(stderr,
	        "weft: %llu bytes of job %llu's output were lost (weft fell behind what weftd "
	        "keeps); the command's own exit code was %d\n",
	        (unsigned long long)state.lost, (unsigned long long)id, exit_code);
	return RUN_EXIT_OUTPUT_LOST;
}

/* ------------------------------------------------------- submit --lines */

/* Lines go out in batches of this many jobs: a few hundred KiB per request,
 * far below any --max-message weftd takes. A batch weftd still finds too
 * large is halved until it fits. */
#define LINES_BATCH 1000

/* One line's job: the options' args with "shell" set to the line. */
static int line_spec(const run_options *options, const json_t *base, const char *line,
                     weft_job_spec **out)
{
	json_t *args = json_deep_copy(base);
	json_t *shell = json_string(line);
	if (args == NULL || shell == NULL || json_object_set_new(args, "shell", shell) != 0) {
		json_decref(args);
		return shell == NULL ? WEFT_EINVAL : WEFT_ENOMEM;
	}
	int rv = build_spec(options, args, out);
	json_decref(args);
	return rv;
}

/* Submits specs[0..count) in batches, halving one that is too large; prints
 * each id as it is accepted. Returns 0, or the libweft error with *done set
 * to how many were submitted. */
static int submit_in_batches(const cli_globals *globals, weft_client *client,
                             weft_job_spec **specs, size_t count, uint64_t *ids, size_t *done)
{
	size_t step = LINES_BATCH;
	*done = 0;
	while (*done < count) {
		size_t size = count - *done < step ? count - *done : step;
		int rv = weft_submit_batch(client, (const weft_job_spec *const *)specs + *done, size,
		                           ids + *done);
		if (rv == WEFT_ETOOLARGE && size > 1) {
			step = size / 2;
			continue;
		}
		if (rv != 0)
			return rv;
		if (!globals->json)
			for (size_t i = 0; i < size; i++)
				printf("%llu\n", (unsigned long long)ids[*done + i]);
		*done += size;
	}
	return 0;
}

/* weft submit --lines: every non-empty line of stdin is a command for
 * /bin/sh -c, with the options' settings, submitted in batches. */
static int submit_lines(const cli_command *command, cli_globals *globals, run_options *options)
{
	json_t *base = NULL;
	weft_job_spec **specs = NULL;
	uint64_t *ids = NULL;
	size_t count = 0, capacity = 0, done = 0;
	weft_client *client = NULL;
	char *line = NULL;
	size_t line_size = 0;
	ssize_t length;
	long number = 0;
	int exit_code = build_args(command, options, &base);
	if (exit_code != 0)
		return exit_code;
	json_object_del(base, "argv");
	while ((length = getline(&line, &line_size, stdin)) >= 0) {
		number++;
		if (length > 0 && line[length - 1] == '\n')
			line[--length] = '\0';
		if (length == 0)
			continue;
		if (count == capacity) {
			size_t bigger = capacity == 0 ? 1024 : 2 * capacity;
			weft_job_spec **grown = realloc(specs, bigger * sizeof(*specs));
			if (grown == NULL) {
				exit_code = out_of_memory();
				goto done;
			}
			specs = grown;
			capacity = bigger;
		}
		int rv = line_spec(options, base, line, &specs[count]);
		if (rv == WEFT_EINVAL) {
			exit_code = cli_usage_error(command, "line %ld of stdin is not UTF-8 text; "
			                                     "nothing was submitted", number);
			goto done;
		}
		if (rv != 0) {
			exit_code = rv == WEFT_ENOMEM ? out_of_memory() : cli_report_error(globals);
			goto done;
		}
		count++;
	}
	if (count == 0) {
		exit_code = cli_usage_error(command, "--lines found no command on stdin");
		goto done;
	}
	if ((ids = calloc(count, sizeof(*ids))) == NULL) {
		exit_code = out_of_memory();
		goto done;
	}
	if (cli_connect(globals, &client) != 0) {
		exit_code = CLI_EXIT_CONNECT;
		goto done;
	}
	if (submit_in_batches(globals, client, specs, count, ids, &done) != 0) {
		exit_code = cli_report_error(globals);
		fprintf(stderr, "weft submit: %zu of %zu commands were submitted (their ids are "
		                "above)\n", done, count);
	}
	if (globals->json) {
		json_t *list = json_array();
		for (size_t i = 0; list != NULL && i < done; i++)
			json_array_append_new(list, json_integer((json_int_t)ids[i]));
		json_t *document = json_pack("{s:o}", "ids", list);
		cli_print_json(document);
		json_decref(document);
	}
done:
	weft_close(client);
	for (size_t i = 0; i < count; i++)
		weft_job_spec_free(specs[i]);
	free(specs);
	free(ids);
	free(line);
	json_decref(base);
	return exit_code;
}

/* ------------------------------------------------------------ the commands */

static int run_or_submit(const cli_command *command, cli_globals *globals, int argc, char **argv,
                         bool wait)
{
	run_options options = {0};
	json_t *args = NULL;
	weft_job_spec *spec = NULL;
	weft_client *client = NULL;
	canceller cancel = {0};
	feeder feed = {0};
	int exit_code = parse_options(command, globals, argc, argv, &options);
	if (exit_code != 0) {
		exit_code = exit_code == PARSE_HELP_SHOWN ? CLI_EXIT_OK : exit_code;
		goto done;
	}
	if (options.lines) {
		exit_code = submit_lines(command, globals, &options);
		goto done;
	}
	if ((exit_code = build_args(command, &options, &args)) != 0)
		goto done;
	size_t stdin_size = 0;
	bool stream_stdin = wait && options.read_stdin;
	if (stream_stdin) {
		json_object_set_new(args, "stdin_stream", json_true());
	} else if (options.read_stdin) {
		json_t *text = NULL;
		if ((exit_code = read_stdin(command, &text, &stdin_size)) != 0)
			goto done;
		json_object_set_new(args, "stdin", text);
	}
	if (wait && !globals->json)
		json_object_set_new(args, "output_wait", json_true());
	if (!options.read_stdin)
		warn_unread_stdin(command);
	if (wait)
		canceller_start(&cancel);
	if (cli_connect(globals, &client) != 0) {
		exit_code = wait ? RUN_EXIT_WEFT_FAILED : CLI_EXIT_CONNECT;
		goto done;
	}
	/* Said here, in the caller's words; a request that JSON escaping makes
	 * just too large still gets weftd's too_large (exit 2). */
	if (stdin_size > weft_client_max_message(client)) {
		exit_code = stdin_too_large(command, weft_client_max_message(client));
		goto done;
	}
	if (build_spec(&options, args, &spec) != 0) {
		exit_code = wait ? weft_failed(globals) : cli_report_error(globals);
		goto done;
	}
	uint64_t id = 0;
	if (wait)
		canceller_submitting(&cancel);
	int rv = weft_submit(client, spec, &id);
	if (wait)
		canceller_submitted(&cancel, client, rv == 0 ? id : 0);
	if (rv != 0) {
		exit_code = wait ? weft_failed(globals) : cli_report_error(globals);
		goto done;
	}
	if (stream_stdin)
		feeder_start(&feed, client, id);
	if (wait && !globals->json) {
		exit_code = stream_and_report(globals, client, id);
	} else if (wait) {
		exit_code = wait_and_report(globals, client, id, false);
	} else if (globals->json) {
		json_t *document = json_pack("{s:I}", "id", (json_int_t)id);
		cli_print_json(document);
		json_decref(document);
	} else {
		printf("%llu\n", (unsigned long long)id);
	}
done:
	/* Before weft_close: the threads may be using the client. */
	feeder_stop(&feed);
	canceller_stop(&cancel);
	weft_close(client);
	weft_job_spec_free(spec);
	json_decref(args);
	run_options_free(&options);
	return exit_code;
}

static int run_run(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	return run_or_submit(command, globals, argc, argv, true);
}

static int run_submit(const cli_command *command, cli_globals *globals, int argc, char **argv)
{
	return run_or_submit(command, globals, argc, argv, false);
}

#define RUN_OPTIONS_HELP                                                                    \
	"  --timeout S       stop the command after S seconds of running (SIGTERM to its\n"    \
	"                    process group, SIGKILL after --kill-after)\n"                     \
	"  --env K=V         set a variable (repeatable). Jobs get a clean environment\n"      \
	"                    (PATH, LANG, HOME, USER, ...), not yours: pass what you need\n"   \
	"  --env-clear       start from an empty environment (only the --env ones)\n"          \
	"  --cwd DIR         directory to run in (default: the current directory, as if\n"   \
	"                    the command ran here; a relative DIR starts from there too)\n"   \
	"  --shell           join the words into one command line for /bin/sh -c\n"           \
	"                    (weft run --shell -- 'make 2>&1 | tail')\n"                      \
	"  --stdin           send this stdin to the command: weft run streams it as it\n"     \
	"                    comes (any size, any bytes); weft submit reads it to its end\n"  \
	"                    first (UTF-8 text within --max-message). Without --stdin the\n"  \
	"                    command reads /dev/null\n"                                       \
	"  --kill-after S    grace between SIGTERM and SIGKILL (default 5)\n"                 \
	"  --limit NAME=V    a resource limit (repeatable): cpu, as, nofile, nproc, fsize,\n" \
	"                    ... with a whole number or 'unlimited'\n"                        \
	"  --label K=V       attach a label (repeatable); 'weft ls --label' filters on it\n"  \
	"\n" CLI_SCHEDULE_HELP                                                                  \
	"\nweft's options, --json and --url included, come first: everything from the\n"     \
	"command's first word on (or after '--') belongs to the command.\n"

const cli_command cli_command_run = {
	.name = "run",
	.usage = "[OPTIONS] -- CMD [ARGS]...",
	.summary = "run a command as an exec job, wait, and exit with its status",
	.help = "Submits an exec job and copies its stdout and stderr here byte for byte as the\n"
	        "command writes them (any size, any bytes), then exits with the command's exit\n"
	        "code, so scripts can use it as if the command had run locally. The job asks\n"
	        "weftd to hold the command back rather than drop output weft has not read.\n"
	        "Without --stdin the command reads /dev/null, and weft warns when its own\n"
	        "stdin has bytes waiting that are not forwarded.\n"
	        "Ctrl-C (SIGINT, SIGTERM, SIGHUP) cancels the job.\n\n" RUN_OPTIONS_HELP
	        "\nexit codes:\n"
	        "  N        the command exited with N\n"
	        "  128+N    the command was killed by signal N\n"
	        "  124      --timeout expired (the output so far is printed, then weftd's message)\n"
	        "  127      the command could not be started (not found, not executable)\n"
	        "  130      the job was cancelled (the output up to then is printed)\n"
	        "  122      some output was lost (weft fell behind weftd's --output-window)\n"
	        "  2        usage error, or weftd refused the options: nothing ran\n"
	        "  125      weft failed: cannot connect, lost the connection, weftd shutting\n"
	        "           down (weft's own failures print a 'weft: ' line on stderr)\n"
	        "\nWith --json prints the whole outcome as one JSON document instead of the\n"
	        "output: {\"id\", \"state\", \"result\"} or {\"id\", \"state\", \"error\": {\"type\",\n"
	        "\"message\", \"details\"}}; the exit code is the same.\n",
	.run = run_run,
};

const cli_command cli_command_submit = {
	.name = "submit",
	.usage = "[OPTIONS] -- CMD [ARGS]... | [OPTIONS] --lines < COMMANDS",
	.summary = "submit a command as an exec job; print its id",
	.help = "Takes the options of 'weft run' and returns at once with the new job's id\n"
	        "(--json: {\"id\": N}). 'weft result ID' waits for it and prints the result\n"
	        "(exit_code, signal, stdout, stderr, truncated, duration, pid). Exit codes are\n"
	        "those of 'weft --help' (0 submitted, 2 usage, 3 cannot connect, 5 refused).\n\n"
	        "  --lines           read commands from stdin, one per line, each run by\n"
	        "                    /bin/sh -c with the options below, and submit them in\n"
	        "                    batches (as xargs or parallel users do); prints one id\n"
	        "                    per line (--json: {\"ids\": [...]}). Empty lines are\n"
	        "                    skipped; a line that is not UTF-8 submits nothing\n"
	        RUN_OPTIONS_HELP,
	.run = run_submit,
};

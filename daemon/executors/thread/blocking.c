/*
 * blocking: the built-ins that run on the thread pool.
 *
 * Checks are pure functions over the request's JSON: they run where the
 * request arrives, before a job exists, so a bad argument is answered with
 * bad_arguments and never reaches a pool thread. Bodies keep their memory
 * bounded whatever the input: file.sha256 hashes through one fixed buffer, so
 * a file larger than memory costs BLOCKING_SHA256_CHUNK bytes.
 *
 * SHA-256 comes from nettle, which picks the CPU's SHA instructions at run
 * time where they exist; we do not carry a hash of our own.
 */
#include "daemon/executors/thread/blocking.h"

#include "daemon/core/generator.h"
#include "weft/jobs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "daemon/executors/thread/threadpool.h"
#include "weft/error.h"

/* Longest host name dns.resolve takes (NI_MAXHOST less its NUL). */
#define BLOCKING_HOST_MAX 1024
/* Longest path file.sha256 takes (PATH_MAX less its NUL). */
#define BLOCKING_PATH_MAX 4095
/* How much of a path or host an error message quotes before cutting it short. */
#define BLOCKING_QUOTE_MAX 300
/* The arguments for "'%.*s%s'" that quote a path or host (see blocking_quote_length). */
#define BLOCKING_QUOTE(text)                                   \
	blocking_quote_length(text, BLOCKING_QUOTE_MAX), text, \
		blocking_ellipsis(text, BLOCKING_QUOTE_MAX)

/* ---- shared helpers ---------------------------------------------------- */

/* What a check needs to know of its function: its name, for messages, and
 * the arguments it takes. The table below is built from the same pieces. */
struct blocking_signature {
	const char *name;
	const struct blocking_argument *arguments;
};

static int blocking_quote_length(const char *text, size_t max);
static const char *blocking_ellipsis(const char *text, size_t max);
static void blocking_trim_utf8(char *text);

/* Writes a bad-arguments message and returns WEFT_EBADARGS, so checks can
 * `return blocking_bad(...)`. */
static int blocking_bad(char *message, size_t size, const char **field, const char *field_name,
			const char *format, ...) __attribute__((format(printf, 5, 6)));

static int blocking_bad(char *message, size_t size, const char **field, const char *field_name,
			const char *format, ...)
{
	va_list arguments;

	if (size > 0) {
		va_start(arguments, format);
		if (vsnprintf(message, size, format, arguments) >= (int)size)
			blocking_trim_utf8(message);
		va_end(arguments);
	}
	*field = field_name;
	return WEFT_EBADARGS;
}

/*
 * The common part of every check: args is absent or an object, and names no
 * argument the function does not take. On success returns WEFT_OK and args is
 * an object or NULL.
 */
static int blocking_check_names(const struct blocking_signature *function, const json_t *args,
				char *message, size_t size, const char **field)
{
	const char *key;
	json_t *value;

	*field = NULL;
	if (args == NULL)
		return WEFT_OK;
	if (!json_is_object(args))
		return blocking_bad(message, size, field, NULL,
				    "%s: arguments must be a JSON object", function->name);
	/* json_object_foreach wants a non-const object; it does not modify it. */
	json_object_foreach((json_t *)args, key, value) {
		const struct blocking_argument *argument = function->arguments;
		while (argument->name != NULL && strcmp(argument->name, key) != 0)
			argument++;
		if (argument->name == NULL) {
			char names[128] = "";
			for (argument = function->arguments; argument->name != NULL; argument++) {
				size_t used = strlen(names);
				snprintf(names + used, sizeof(names) - used, "%s'%s'",
					 used > 0 ? ", " : "", argument->name);
			}
			return blocking_bad(message, size, field, key,
					    "%s: unknown argument '%.*s%s'; it takes %s",
					    function->name, blocking_quote_length(key, 64), key,
					    blocking_ellipsis(key, 64), names);
		}
	}
	return WEFT_OK;
}

/* A string argument that must be present, non-empty, at most `max` bytes and
 * free of NUL bytes (which C APIs would cut it at). Returns it borrowed, or
 * NULL after writing the message. */
static const char *blocking_check_string(const struct blocking_signature *function,
					 const json_t *args, const char *name, size_t max,
					 const char *what, char *message, size_t size,
					 const char **field, int *rv)
{
	json_t *value = args != NULL ? json_object_get(args, name) : NULL;
	const char *text;
	size_t length;

	if (value == NULL) {
		*rv = blocking_bad(message, size, field, name, "%s: missing argument '%s' (%s)",
				   function->name, name, what);
		return NULL;
	}
	if (!json_is_string(value)) {
		*rv = blocking_bad(message, size, field, name, "%s: '%s' must be %s",
				   function->name, name, what);
		return NULL;
	}
	text = json_string_value(value);
	length = json_string_length(value);
	if (length == 0 || length > max || strlen(text) != length) {
		*rv = blocking_bad(message, size, field, name,
				   "%s: '%s' must be %s of 1 to %zu bytes without NUL characters",
				   function->name, name, what, max);
		return NULL;
	}
	*rv = WEFT_OK;
	return text;
}

/* Fills a failure outcome and returns `rv`. */
static int blocking_fail(struct blocking_outcome *outcome, int rv, const char *type,
			 const char *format, ...) __attribute__((format(printf, 4, 5)));

static int blocking_fail(struct blocking_outcome *outcome, int rv, const char *type,
			 const char *format, ...)
{
	va_list arguments;

	outcome->result = NULL;
	snprintf(outcome->error_type, sizeof(outcome->error_type), "%s", type);
	va_start(arguments, format);
	if (vsnprintf(outcome->error_message, sizeof(outcome->error_message), format, arguments) >=
	    (int)sizeof(outcome->error_message))
		blocking_trim_utf8(outcome->error_message);
	va_end(arguments);
	return rv;
}

static int blocking_succeed(struct blocking_outcome *outcome, json_t *result)
{
	if (result == NULL)
		return blocking_fail(outcome, WEFT_ENOMEM, "MemoryError", "out of memory");
	outcome->result = result;
	outcome->error_type[0] = '\0';
	outcome->error_message[0] = '\0';
	return WEFT_OK;
}

/*
 * Quoting user text in messages: at most `max` bytes of it, cut on a character
 * boundary, because the message goes into JSON and jansson refuses a string
 * that ends in half a UTF-8 sequence. The text itself came from JSON, so it
 * is valid UTF-8. Use as "%.*s%s", blocking_quote_length(t, m), t,
 * blocking_ellipsis(t, m).
 */
static int blocking_quote_length(const char *text, size_t max)
{
	size_t length = strlen(text);

	if (length <= max)
		return (int)length;
	/* text[length] is the first byte left out; while it continues a
	 * character, that character straddles the cut: leave it out whole. */
	length = max;
	while (length > 0 && ((unsigned char)text[length] & 0xC0) == 0x80)
		length--;
	return (int)length;
}

static const char *blocking_ellipsis(const char *text, size_t max)
{
	return strlen(text) > max ? "..." : "";
}

/* After vsnprintf cut `text` short, drops a last character left incomplete. */
static void blocking_trim_utf8(char *text)
{
	size_t length = strlen(text), start = length;
	unsigned char lead;
	size_t needed;

	while (start > 0 && ((unsigned char)text[start - 1] & 0xC0) == 0x80)
		start--;
	if (start == 0)
		return;
	lead = (unsigned char)text[start - 1];
	needed = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
	if (length - (start - 1) < needed)
		text[start - 1] = '\0';
}

/* ---- sleep.blocking ---------------------------------------------------- */

static const struct blocking_argument blocking_sleep_arguments[] = {
	{"seconds", "number >= 0 (required): how long the pool thread blocks"},
	{NULL, NULL},
};

static const struct blocking_signature blocking_sleep_signature = {"sleep.blocking",
								   blocking_sleep_arguments};

int blocking_sleep_check(const json_t *args, char *message, size_t size, const char **field)
{
	const struct blocking_signature *function = &blocking_sleep_signature;
	json_t *seconds;
	int rv;

	if ((rv = blocking_check_names(function, args, message, size, field)) != WEFT_OK)
		return rv;
	seconds = args != NULL ? json_object_get(args, "seconds") : NULL;
	if (seconds == NULL)
		return blocking_bad(message, size, field, "seconds",
				    "%s: missing argument 'seconds' (a number >= 0)",
				    function->name);
	if (!json_is_number(seconds) || !(json_number_value(seconds) >= 0.0) ||
	    json_number_value(seconds) > BLOCKING_SLEEP_MAX_SECONDS)
		return blocking_bad(message, size, field, "seconds",
				    "%s: 'seconds' must be a number from 0 to %.0f", function->name,
				    BLOCKING_SLEEP_MAX_SECONDS);
	return WEFT_OK;
}

int blocking_sleep_run(const json_t *args, const struct blocking_owner *owner,
		       const struct threadpool_work *work, struct blocking_outcome *outcome)
{
	double seconds = json_number_value(json_object_get(args, "seconds"));
	struct timespec deadline;

	/* Like time.sleep in an executor, this occupies its thread for the whole
	 * duration -- unless the job is cancelled: then the thread is given back
	 * at once (threadpool_work_sleep_until), so cancelled sleeps cannot hold
	 * the pool. */
	(void)owner;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	double whole = floor(seconds);
	deadline.tv_sec += (time_t)whole;
	deadline.tv_nsec += (long)((seconds - whole) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	if (work != NULL) {
		if (threadpool_work_sleep_until(work, &deadline) == WEFT_ECANCELED)
			return blocking_fail(outcome, WEFT_EINVAL, "Cancelled",
			                     "sleep.blocking was cancelled");
		return blocking_succeed(outcome, json_null());
	}
	/* An absolute deadline makes a wake-up by a signal harmless: sleep again
	 * to the same instant. */
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
		;
	return blocking_succeed(outcome, json_null());
}

/* ---- count.blocking ---------------------------------------------------- */

static const struct blocking_argument blocking_count_arguments[] = {
	{"to", "integer from 0 to 1000000000 (required): yields 1, 2, ... to from a pool thread"},
	{NULL, NULL},
};

static const struct blocking_signature blocking_count_signature = {"count.blocking",
								   blocking_count_arguments};

int blocking_count_check(const json_t *args, char *message, size_t size, const char **field)
{
	const struct blocking_signature *function = &blocking_count_signature;
	int rv;

	if ((rv = blocking_check_names(function, args, message, size, field)) != WEFT_OK)
		return rv;
	json_t *to = args != NULL ? json_object_get(args, "to") : NULL;
	if (!json_is_integer(to) || json_integer_value(to) < 0 ||
	    json_integer_value(to) > 1000000000)
		return blocking_bad(message, size, field, "to",
				    "%s: 'to' must be an integer from 0 to 1000000000",
				    function->name);
	return WEFT_OK;
}

int blocking_count_run(const json_t *args, const struct blocking_owner *owner,
		       const struct threadpool_work *work, struct blocking_outcome *outcome)
{
	(void)owner;
	(void)work;
	json_int_t to = json_integer_value(json_object_get(args, "to"));
	/* A full stream blocks this pool thread in weft_yield_item until the
	 * reader takes items or the job ends (then the yield fails). */
	for (json_int_t i = 1; i <= to; i++) {
		int rv = weft_yield_item(json_integer(i));
		if (rv != WEFT_OK)
			return blocking_fail(outcome, rv, rv == WEFT_ECANCELED ? "Cancelled" : "ItemError",
			                     "count.blocking could not yield item %lld: %s",
			                     (long long)i, weft_strerror(rv));
	}
	return blocking_succeed(outcome, json_integer(to));
}

/* ---- file.sha256 ------------------------------------------------------- */

static const struct blocking_argument blocking_file_sha256_arguments[] = {
	{"path", "string (required): the file to hash, read in chunks (any size)"},
	{NULL, NULL},
};

static const struct blocking_signature blocking_file_sha256_signature = {
	"file.sha256", blocking_file_sha256_arguments};

int blocking_file_sha256_check(const json_t *args, char *message, size_t size, const char **field)
{
	const struct blocking_signature *function = &blocking_file_sha256_signature;
	int rv;

	if ((rv = blocking_check_names(function, args, message, size, field)) != WEFT_OK)
		return rv;
	blocking_check_string(function, args, "path", BLOCKING_PATH_MAX, "a file path", message,
			      size, field, &rv);
	return rv;
}

static int blocking_file_error(struct blocking_outcome *outcome, const char *action,
			       const char *path, int error)
{
	char reason[128];

	return blocking_fail(outcome, WEFT_EINVAL, "OSError", "cannot %s '%.*s%s': %s", action,
			     BLOCKING_QUOTE(path), strerror_r(error, reason, sizeof(reason)));
}

int blocking_file_sha256_run(const json_t *args, const struct blocking_owner *owner,
			     const struct threadpool_work *work, struct blocking_outcome *outcome)
{
	const char *path = json_string_value(json_object_get(args, "path"));
	static const char hex_digits[] = "0123456789abcdef";
	unsigned char buffer[BLOCKING_SHA256_CHUNK];
	uint8_t digest[SHA256_DIGEST_SIZE];
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	struct sha256_ctx context;
	unsigned long long total = 0;
	ssize_t got;
	int fd, error;

	/* With the owner's rights, and only a regular file: a pipe, socket or
	 * device may never end (/dev/zero), and opening a device can act on it. */
	int rv = owner != NULL ? owner->open_regular(owner->owner, path, &fd, &error) : WEFT_EPERM;
	if (owner == NULL)
		error = EPERM;
	if (rv == WEFT_EPERM) {
		char reason[128];
		return blocking_fail(outcome, WEFT_EINVAL, "PermissionError",
				     "cannot open '%.*s%s': %s (the job runs with its owner's rights)",
				     BLOCKING_QUOTE(path), strerror_r(error, reason, sizeof(reason)));
	}
	if (rv != WEFT_OK && error == ENODEV)
		return blocking_fail(outcome, WEFT_EINVAL, "OSError",
				     "cannot hash '%.*s%s': not a regular file", BLOCKING_QUOTE(path));
	if (rv != WEFT_OK)
		return blocking_file_error(outcome, error == EISDIR ? "read" : "open", path, error);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

	sha256_init(&context);
	for (;;) {
		got = read(fd, buffer, sizeof(buffer));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			error = errno;
			close(fd);
			return blocking_file_error(outcome, "read", path, error);
		}
		if (got == 0)
			break;
		sha256_update(&context, (size_t)got, buffer);
		total += (unsigned long long)got;
		if (work != NULL && threadpool_work_stop_requested(work)) {
			close(fd);
			return blocking_fail(outcome, WEFT_EINVAL, "Cancelled",
					     "hashing '%.*s%s' was cancelled after %llu bytes",
					     BLOCKING_QUOTE(path), total);
		}
	}
	close(fd);
	sha256_digest(&context, SHA256_DIGEST_SIZE, digest);
	for (size_t i = 0; i < SHA256_DIGEST_SIZE; i++) {
		hex[2 * i] = hex_digits[digest[i] >> 4];
		hex[2 * i + 1] = hex_digits[digest[i] & 0x0f];
	}
	hex[2 * SHA256_DIGEST_SIZE] = '\0';
	return blocking_succeed(outcome,
				json_pack("{s:s, s:I}", "sha256", hex, "size", (json_int_t)total));
}

/* ---- dns.resolve ------------------------------------------------------- */

static const struct blocking_argument blocking_dns_resolve_arguments[] = {
	{"host", "string (required): a host name or a numeric address"},
	{"family", "\"inet\", \"inet6\" or \"any\" (optional, default \"any\")"},
	{NULL, NULL},
};

static const struct blocking_signature blocking_dns_resolve_signature = {
	"dns.resolve", blocking_dns_resolve_arguments};

/* The address family for a `family` argument (absent means "any"), or -1. */
static int blocking_family(const json_t *family)
{
	const char *text;

	if (family == NULL)
		return AF_UNSPEC;
	if (!json_is_string(family))
		return -1;
	text = json_string_value(family);
	if (strcmp(text, "any") == 0)
		return AF_UNSPEC;
	if (strcmp(text, "inet") == 0)
		return AF_INET;
	if (strcmp(text, "inet6") == 0)
		return AF_INET6;
	return -1;
}

int blocking_dns_resolve_check(const json_t *args, char *message, size_t size, const char **field)
{
	const struct blocking_signature *function = &blocking_dns_resolve_signature;
	int rv;

	if ((rv = blocking_check_names(function, args, message, size, field)) != WEFT_OK)
		return rv;
	if (blocking_check_string(function, args, "host", BLOCKING_HOST_MAX, "a host name", message,
				  size, field, &rv) == NULL)
		return rv;
	if (blocking_family(json_object_get(args, "family")) < 0)
		return blocking_bad(message, size, field, "family",
				    "%s: 'family' must be \"inet\", \"inet6\" or \"any\"",
				    function->name);
	return WEFT_OK;
}

int blocking_dns_resolve_run(const json_t *args, const struct blocking_owner *owner,
			     const struct threadpool_work *work, struct blocking_outcome *outcome)
{
	(void)owner; /* resolving opens nothing of the owner's */
	const char *host = json_string_value(json_object_get(args, "host"));
	struct addrinfo hints, *found = NULL;
	json_t *addresses = NULL, *result;
	char text[INET6_ADDRSTRLEN];
	int rv, error;

	(void)work; /* getaddrinfo cannot be interrupted */
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = blocking_family(json_object_get(args, "family"));
	/* One socket type, or every address comes back once per type. */
	hints.ai_socktype = SOCK_STREAM;
	rv = getaddrinfo(host, NULL, &hints, &found);
	if (rv != 0) {
		error = errno;
		if (rv == EAI_MEMORY)
			return blocking_fail(outcome, WEFT_ENOMEM, "MemoryError", "out of memory");
		if (rv == EAI_SYSTEM) {
			char reason[128];
			return blocking_fail(outcome, WEFT_EINVAL, "DNSError",
					     "cannot resolve '%.*s%s': %s", BLOCKING_QUOTE(host),
					     strerror_r(error, reason, sizeof(reason)));
		}
		return blocking_fail(outcome, WEFT_EINVAL, "DNSError",
				     "cannot resolve '%.*s%s': %s", BLOCKING_QUOTE(host),
				     gai_strerror(rv));
	}
	if ((addresses = json_array()) == NULL)
		goto fail_memory;
	for (struct addrinfo *entry = found; entry != NULL; entry = entry->ai_next) {
		const void *address;
		if (entry->ai_family == AF_INET) {
			const struct sockaddr_in *inet = (const void *)entry->ai_addr;
			address = &inet->sin_addr;
		} else if (entry->ai_family == AF_INET6) {
			const struct sockaddr_in6 *inet6 = (const void *)entry->ai_addr;
			address = &inet6->sin6_addr;
		} else {
			continue;
		}
		if (inet_ntop(entry->ai_family, address, text, sizeof(text)) == NULL)
			continue;
		/* /etc/hosts may list an address twice; keep the first, in order. */
		bool seen = false;
		size_t index;
		json_t *previous;
		json_array_foreach(addresses, index, previous) {
			if (strcmp(json_string_value(previous), text) == 0) {
				seen = true;
				break;
			}
		}
		if (!seen && json_array_append_new(addresses, json_string(text)) != 0)
			goto fail_memory;
	}
	freeaddrinfo(found);
	if ((result = json_object()) == NULL) {
		json_decref(addresses);
		return blocking_succeed(outcome, NULL);
	}
	/* json_object_set_new steals addresses, also when it fails. */
	if (json_object_set_new(result, "addresses", addresses) != 0) {
		json_decref(result);
		return blocking_succeed(outcome, NULL);
	}
	return blocking_succeed(outcome, result);

fail_memory:
	json_decref(addresses);
	freeaddrinfo(found);
	return blocking_succeed(outcome, NULL);
}

/* ---- the table --------------------------------------------------------- */

/* The names here and in the signatures above must agree: the tests check that
 * every refusal starts with the name the table lists. */
const struct blocking_function blocking_functions[] = {
	{"sleep.blocking",
	 "blocks a pool thread for a number of seconds (time.sleep in an executor)",
	 blocking_sleep_arguments, blocking_sleep_check, blocking_sleep_run},
	{"count.blocking", "a generator on a pool thread: yields 1, 2, ... 'to' (read them with next)",
	 blocking_count_arguments, blocking_count_check, blocking_count_run},
	{"file.sha256", "SHA-256 digest and size of a file, read in chunks on a pool thread",
	 blocking_file_sha256_arguments, blocking_file_sha256_check, blocking_file_sha256_run},
	{"dns.resolve", "resolves a host name to addresses with getaddrinfo on a pool thread",
	 blocking_dns_resolve_arguments, blocking_dns_resolve_check, blocking_dns_resolve_run},
};
const size_t blocking_function_count = sizeof(blocking_functions) / sizeof(blocking_functions[0]);

const struct blocking_function *blocking_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < blocking_function_count; i++)
		if (strcmp(blocking_functions[i].name, name) == 0)
			return &blocking_functions[i];
	return NULL;
}

json_t *blocking_describe(const struct blocking_function *function)
{
	json_t *description, *arguments;

	if ((arguments = json_object()) == NULL)
		return NULL;
	for (const struct blocking_argument *argument = function->arguments; argument->name != NULL;
	     argument++) {
		if (json_object_set_new(arguments, argument->name,
					json_string(argument->description)) != 0) {
			json_decref(arguments);
			return NULL;
		}
	}
	/* "o" steals arguments even when json_pack fails. */
	description = json_pack("{s:s, s:s, s:s, s:o}", "name", function->name, "executor",
				"thread", "summary", function->summary, "args", arguments);
	return description;
}

/* ---- calls on the pool ------------------------------------------------- */

static void blocking_call_run(struct threadpool_work *work)
{
	struct blocking_call *call = blocking_call_from_work(work);

	generator_enter(call->owner != NULL ? call->owner->job : NULL);
	call->rv = call->function->run(call->args, call->owner, work, &call->outcome);
	generator_enter(NULL);
}

void blocking_call_init(struct blocking_call *call, const struct blocking_function *function,
			const json_t *args, const struct blocking_owner *owner,
			void (*done)(struct threadpool_work *work))
{
	threadpool_work_init(&call->work, blocking_call_run, done);
	call->function = function;
	call->args = args;
	call->owner = owner;
	call->rv = WEFT_EINTERNAL;
	call->outcome.result = NULL;
	call->outcome.error_type[0] = '\0';
	call->outcome.error_message[0] = '\0';
}

struct blocking_call *blocking_call_from_work(struct threadpool_work *work)
{
	return (struct blocking_call *)(void *)((char *)work -
						offsetof(struct blocking_call, work));
}

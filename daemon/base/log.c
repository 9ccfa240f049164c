/* See log.h. */
#include "daemon/base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Written once at start-up, read by every thread: relaxed is enough because
 * nothing else is published through it. */
static atomic_int threshold = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
/* sd-daemon priorities (syslog's) of the levels. */
static const char *const level_prefixes[] = {"<3>", "<4>", "<6>", "<7>"};
/* Written once by log_detect_journal before threads start; relaxed, as threshold. */
static atomic_bool journal_format;

bool log_stream_is(const char *journal_stream, unsigned long long device,
                   unsigned long long inode)
{
	unsigned long long stream_device, stream_inode;
	char rest;
	if (journal_stream == NULL ||
	    sscanf(journal_stream, "%llu:%llu%c", &stream_device, &stream_inode, &rest) != 2)
		return false;
	return stream_device == device && stream_inode == inode;
}

bool log_detect_journal(void)
{
	struct stat status;
	bool journal = fstat(STDERR_FILENO, &status) == 0 &&
	               log_stream_is(getenv("JOURNAL_STREAM"), (unsigned long long)status.st_dev,
	                             (unsigned long long)status.st_ino);
	atomic_store_explicit(&journal_format, journal, memory_order_relaxed);
	return journal;
}

void log_set_level(enum log_level level)
{
	atomic_store_explicit(&threshold, (int)level, memory_order_relaxed);
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int level = LOG_LEVEL_ERROR; level <= LOG_LEVEL_DEBUG; level++) {
		if (strcmp(name, level_names[level]) == 0) {
			*out = (enum log_level)level;
			return 0;
		}
	}
	return -1;
}

bool log_enabled(enum log_level level)
{
	return (int)level <= atomic_load_explicit(&threshold, memory_order_relaxed);
}

void log_message(enum log_level level, const char *format, ...)
{
	if (!log_enabled(level))
		return;
	char line[1024];
	int used;
	if (atomic_load_explicit(&journal_format, memory_order_relaxed)) {
		used = snprintf(line, sizeof(line), "%s%s: ", level_prefixes[level],
		                level_names[level]);
	} else {
		struct timespec now;
		struct tm parts;
		clock_gettime(CLOCK_REALTIME, &now);
		gmtime_r(&now.tv_sec, &parts);
		used = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &parts);
		used += snprintf(line + used, sizeof(line) - (size_t)used, ".%03ldZ weftd[%d] %s: ",
		                 now.tv_nsec / 1000000, (int)getpid(), level_names[level]);
	}
	va_list args;
	va_start(args, format);
	int wanted = vsnprintf(line + used, sizeof(line) - (size_t)used, format, args);
	va_end(args);
	size_t length = (size_t)used + (wanted < 0 ? 0 : (size_t)wanted);
	if (length > sizeof(line) - 2) {
		/* Long messages are cut, marked, and still end the line. */
		length = sizeof(line) - 2;
		memcpy(line + length - 3, "...", 3);
	}
	line[length++] = '\n';
	ssize_t ignored = write(STDERR_FILENO, line, length);
	(void)ignored;
}

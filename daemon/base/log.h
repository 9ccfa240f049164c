/*
 * weftd's log: one line per event on stderr, with a level. Any thread: a line
 * is formatted into a local buffer and written with one write(2), so lines
 * from different threads never interleave.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Sets the most verbose level written. Call before starting threads. */
void log_set_level(enum log_level level);

/*
 * When stderr is the systemd journal ($JOURNAL_STREAM names stderr's device
 * and inode, as systemd sets it for a unit's stdio), lines carry sd-daemon's
 * "<N>" priority prefix (3 error, 4 warn, 6 info, 7 debug) and no timestamp
 * or pid of their own (journald records both); elsewhere, the usual format.
 * Returns whether the journal format is now used. Call before threads start.
 */
bool log_detect_journal(void);

/* Whether stderr was found to be the journal (pure: for tests). Parses
 * $JOURNAL_STREAM's "DEVICE:INODE" against stderr's. */
bool log_stream_is(const char *journal_stream, unsigned long long device,
                   unsigned long long inode);

/* Parses "error", "warn", "info" or "debug". Returns 0, or -1 for other names. */
int log_level_parse(const char *name, enum log_level *out);

/* True when a message of this level would be written (to skip costly formatting). */
bool log_enabled(enum log_level level);

void log_message(enum log_level level, const char *format, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_message(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_message(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_message(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                     \
	do {                                                                               \
		if (log_enabled(LOG_LEVEL_DEBUG))                                          \
			log_message(LOG_LEVEL_DEBUG, __VA_ARGS__);                         \
	} while (0)

#endif

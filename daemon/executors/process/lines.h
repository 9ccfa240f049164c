/*
 * lines: the items of an exec job that asked for `"items": "lines"`: each
 * complete line of its stdout (without the '\n'; a last line without one at
 * the end) becomes one item of the job (items.h), a JSON string when it is
 * valid UTF-8, else {"base64": "..."}. A line longer than a piece -- three
 * quarters of the per-item budget (--max-item-bytes) less 12 bytes, so that
 * even its base64 form fits -- is cut into pieces of that many bytes (at a
 * character boundary when it is text), each one item.
 *
 * Backpressure: when the job's items are full, lines_feed says so and proc
 * stops reading stdout (the command blocks on its next write) until the
 * wake descriptor becomes readable and lines_resume says it takes more. So
 * what waits here is bounded: at most one read of stdout, one partial line
 * and one item.
 *
 * Threads: made, fed, resumed and ended on the job's worker thread (the
 * loop that runs its proc). Only the items' space notification runs
 * elsewhere (the reader's thread): it writes the eventfd and drops its
 * reference, nothing more.
 */
#ifndef LINES_H
#define LINES_H

#include <stdbool.h>
#include <stddef.h>

struct items;
struct job;
struct problem;

struct lines;

/* A splitter feeding job's items (borrowed; lines holds a job reference so
 * they stay). Returns WEFT_OK and *out, or WEFT_ENOMEM/WEFT_EINTERNAL (no
 * eventfd). Worker thread. */
int lines_new(struct job *job, struct lines **out);
/* Drops the caller's reference; a space notification still pending holds
 * its own. Worker thread. */
void lines_free(struct lines *lines);

/* Takes length bytes of stdout (all of them). Returns true when it takes
 * more now, false when the items are full (wait for lines_wake_fd). */
bool lines_feed(struct lines *lines, const char *data, size_t length);
/* stdout ended: the last line without '\n' becomes an item. Returns true
 * when everything is pushed, false when it waits for room (call again after
 * lines_resume said true). */
bool lines_finish(struct lines *lines);
/* The wake descriptor became readable: pushes what waits. Returns true when
 * it takes more now. */
bool lines_resume(struct lines *lines);
/* The eventfd to watch while lines_feed/lines_finish said false. */
int lines_wake_fd(const struct lines *lines);

/* Whether an item could not be yielded for another reason than the job's
 * end (the owner's item share, --max-item-bytes-per-user, is used up): the
 * lines after it were dropped. Fills problem with why. */
bool lines_failed(const struct lines *lines, struct problem *problem);

#endif

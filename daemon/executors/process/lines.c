/*
 * lines: stdout lines as items; see lines.h.
 *
 * `buffer` holds the bytes fed and not yet made into items: from `start`,
 * `length` of them. Items are made as soon as a '\n' or a piece's bytes
 * are there; an item that items_push could not take (the stream is full)
 * waits in `waiting` and goes first on resume. While something waits, no
 * item is made, and proc feeds nothing (lines_feed said false), so the
 * buffer holds at most one read more than one piece.
 *
 * Waking: a pause registers a heap `space_wait` with the items; its notify
 * (the reader's thread, or the thread that finished the job) writes the
 * eventfd and drops the wait's reference to the lines. Whoever gets to the
 * wait last -- the notification, or lines_free after items_forget_space
 * removed it -- frees it.
 */
#include "daemon/executors/process/lines.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "daemon/base/memory.h"
#include "daemon/base/problem.h"
#include "daemon/base/watch.h"
#include "daemon/core/items.h"
#include "daemon/core/jobs.h"
#include "daemon/sched/runner.h"
#include "proto/base64.h"

/* {"base64":""} and its slack: a piece this much under the budget, in
 * three quarters (base64's growth), always fits as base64. */
#define BASE64_FRAME 16

struct lines;

struct space_wait {
	struct watch watch;  /* first: the watch is the struct */
	struct lines *lines; /* a reference */
};

struct lines {
	/* acq_rel: the last holder, on any thread, sees every write before it
	 * frees. Held by the maker and by a pending space_wait. */
	atomic_int references;
	int wake_fd;          /* eventfd, closed by the last reference */
	/* Everything below: the worker thread only. */
	struct job *job;      /* a reference: keeps the items */
	struct items *items;  /* borrowed from the job */
	size_t piece;         /* longest piece of a line, in bytes */
	char *buffer;         /* owned */
	size_t start, length, capacity;
	json_t *waiting;      /* owned: the item items_push gave back, or NULL */
	struct space_wait *wait; /* registered now, or NULL */
	bool dropping;        /* the job ended, or an item failed: lines go nowhere */
	bool failed;
	struct problem problem;
};

static void lines_unref(struct lines *lines)
{
	if (atomic_fetch_sub_explicit(&lines->references, 1, memory_order_acq_rel) != 1)
		return;
	close(lines->wake_fd);
	json_decref(lines->waiting);
	free(lines->buffer);
	job_unref(lines->job);
	free(lines);
}

/* Any thread: the items have room (or closed). */
static void on_space(struct watch *watch)
{
	struct space_wait *wait = (struct space_wait *)watch;
	uint64_t one = 1;
	/* EAGAIN: the counter is full, so a wake-up is pending anyway. */
	ssize_t wrote = write(wait->lines->wake_fd, &one, sizeof(one));
	(void)wrote;
	lines_unref(wait->lines);
	free(wait);
}

int lines_new(struct job *job, struct lines **out)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0)
		return WEFT_EINTERNAL;
	struct lines *lines = memory_zalloc(sizeof(*lines));
	atomic_init(&lines->references, 1);
	lines->wake_fd = fd;
	job_ref(job);
	lines->job = job;
	lines->items = jobs_items(runner_jobs(), job);
	size_t limit = items_item_limit();
	lines->piece = limit > 2 * BASE64_FRAME ? (limit - BASE64_FRAME) / 4 * 3 : 3;
	problem_init(&lines->problem);
	*out = lines;
	return WEFT_OK;
}

void lines_free(struct lines *lines)
{
	if (lines == NULL)
		return;
	struct space_wait *wait = lines->wait;
	lines->wait = NULL;
	if (wait != NULL && items_forget_space(lines->items, &wait->watch)) {
		lines_unref(wait->lines);
		free(wait);
	}
	/* Otherwise the notification runs or ran: it drops the wait's reference. */
	lines_unref(lines);
}

int lines_wake_fd(const struct lines *lines)
{
	return lines->wake_fd;
}

bool lines_failed(const struct lines *lines, struct problem *problem)
{
	if (lines->failed)
		*problem = lines->problem;
	return lines->failed;
}

/* The item for bytes of a line: new reference. Text whose JSON (escapes
 * counted) would not fit the item budget goes as base64, which always fits
 * a piece (lines->piece). */
static json_t *item_of(const char *data, size_t length)
{
	if (base64_is_utf8(data, length)) {
		json_t *text = length == 0 ? json_string("") : json_stringn_nocheck(data, length);
		if (json_dumpb(text, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) <= items_item_limit())
			return text;
		json_decref(text);
	}
	size_t size = base64_encoded_size(length);
	char *encoded = memory_alloc(size + 1);
	base64_encode(data, length, encoded);
	json_t *item = json_pack("{s:s%}", "base64", encoded, size);
	free(encoded);
	return item;
}

/* Pushes item (stolen). Returns false when it waits for room. */
static bool push(struct lines *lines, json_t *item)
{
	if (lines->dropping) {
		json_decref(item);
		return true;
	}
	struct space_wait *wait = memory_zalloc(sizeof(*wait));
	wait->watch.notify = on_space;
	atomic_fetch_add_explicit(&lines->references, 1, memory_order_relaxed);
	wait->lines = lines;
	bool paused;
	json_t *back = NULL;
	struct problem problem;
	problem_init(&problem);
	int rv = items_push(lines->items, item, &wait->watch, &paused, &back, &problem);
	if (rv == WEFT_OK && paused) {
		lines->wait = wait;
		lines->waiting = back;
		return false;
	}
	lines_unref(lines);
	free(wait);
	if (rv != WEFT_OK) {
		/* ECANCELED: the job finished, nobody reads what follows. Else
		 * (the owner's item share is used up) the job hears of it at its
		 * end (lines_failed). */
		lines->dropping = true;
		if (rv != WEFT_ECANCELED) {
			lines->failed = true;
			lines->problem = problem;
		}
	}
	return true;
}

/* Where to cut a piece of at most lines->piece bytes from data (length >
 * piece): at a character boundary when the bytes before look like UTF-8. */
static size_t cut_at(const struct lines *lines, const char *data)
{
	size_t cut = lines->piece;
	for (int back = 0; back < 3 && cut > 1 && ((unsigned char)data[cut] & 0xC0) == 0x80; back++)
		cut--;
	return ((unsigned char)data[cut] & 0xC0) == 0x80 ? lines->piece : cut;
}

/* Makes items of what the buffer holds while the items take them; at eof
 * the rest too. Returns false when one waits for room. */
static bool drain(struct lines *lines, bool eof)
{
	while (lines->length > 0) {
		const char *data = lines->buffer + lines->start;
		const char *newline = memchr(data, '\n', lines->length);
		size_t take, skip;
		if (newline != NULL && (size_t)(newline - data) <= lines->piece) {
			take = (size_t)(newline - data);
			skip = take + 1;
		} else if (lines->length > lines->piece) {
			take = skip = cut_at(lines, data);
		} else if (eof) {
			take = skip = lines->length;
		} else {
			break;
		}
		json_t *item = item_of(data, take);
		lines->start += skip;
		lines->length -= skip;
		if (!push(lines, item))
			return false;
	}
	if (lines->length == 0)
		lines->start = 0;
	return true;
}

bool lines_feed(struct lines *lines, const char *data, size_t length)
{
	if (lines->dropping)
		return true;
	if (lines->start > 0) {
		memmove(lines->buffer, lines->buffer + lines->start, lines->length);
		lines->start = 0;
	}
	if (lines->length + length > lines->capacity) {
		size_t capacity = lines->capacity == 0 ? 4096 : lines->capacity;
		while (capacity < lines->length + length)
			capacity *= 2;
		lines->buffer = memory_realloc(lines->buffer, capacity);
		lines->capacity = capacity;
	}
	memcpy(lines->buffer + lines->length, data, length);
	lines->length += length;
	return lines->waiting == NULL ? drain(lines, false) : false;
}

static void empty_wake_fd(struct lines *lines)
{
	uint64_t count;
	ssize_t got = read(lines->wake_fd, &count, sizeof(count));
	(void)got; /* EAGAIN: nothing pending */
}

bool lines_resume(struct lines *lines)
{
	empty_wake_fd(lines);
	if (lines->wait != NULL) {
		/* Our notification came (or comes now): the wait is its to free. */
		lines->wait = NULL;
	}
	if (lines->waiting != NULL) {
		json_t *item = lines->waiting;
		lines->waiting = NULL;
		if (!push(lines, item))
			return false;
	}
	return drain(lines, false);
}

bool lines_finish(struct lines *lines)
{
	if (lines->waiting != NULL)
		return false;
	return drain(lines, true);
}

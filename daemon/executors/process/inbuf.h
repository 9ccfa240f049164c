/*
 * inbuf: the standard input of exec jobs that stream it (`stdin_stream`),
 * fed by the `input` op while the command runs.
 *
 * One buffer per running job, in one table by job id: at most INBUF_MAX
 * bytes wait to be written to the command's pipe (flow control: the `input`
 * op takes only what fits and says how much; the client sends the rest
 * later). A writer thread appends and writes the buffer's eventfd; the
 * worker loop that runs the job watches that eventfd and writes the bytes to
 * the pipe without blocking. So memory per user is bounded by its running
 * exec jobs (--procs) × INBUF_MAX.
 *
 * Threads: any thread, except where said. Each buffer has its own lock; the
 * table has one (order: table, then buffer).
 */
#ifndef INBUF_H
#define INBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INBUF_MAX ((size_t)1024 * 1024)

struct inbuf;

/* Makes the buffer of job id (a new reference; the table holds another until
 * inbuf_end). NULL when no eventfd can be made. Worker thread, at start. */
struct inbuf *inbuf_open(uint64_t id);
/* The job's buffer (a new reference), or NULL: not started yet, or ended. */
struct inbuf *inbuf_find(uint64_t id);
struct inbuf *inbuf_ref(struct inbuf *buffer);
void inbuf_unref(struct inbuf *buffer);

/* The command's side is gone (it exited, or closed its stdin): removes the
 * buffer from the table and drops what waits. Worker thread. */
void inbuf_end(struct inbuf *buffer);

/* The writer's side (the `input` op). Appends up to length bytes, as many as
 * fit; *accepted says how many. eof: no more will come (only honoured when
 * every byte was accepted). Returns false, taking nothing, when the command's
 * side is gone or eof was given before. */
bool inbuf_append(struct inbuf *buffer, const void *data, size_t length, bool eof,
                  size_t *accepted);
/* Bytes waiting now. */
size_t inbuf_pending(struct inbuf *buffer);

/* The worker's side. The descriptor to watch for readable (the eventfd). */
int inbuf_wake_fd(const struct inbuf *buffer);
/* Empties the eventfd after it became readable. */
void inbuf_woken(struct inbuf *buffer);
/* Writes what waits to fd (non-blocking) as far as it takes it. Returns 1:
 * everything written and more may come; 0: fd is full (wait for writable);
 * 2: everything written and eof was given (close fd now); -1: fd is broken
 * (the command closed its stdin: the rest is dropped). */
int inbuf_drain(struct inbuf *buffer, int fd);

#endif

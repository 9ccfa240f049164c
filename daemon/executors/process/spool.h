/*
 * spool: the output of a job that left its window in memory (outlog.h),
 * kept in a file of the state dir so that a reader who comes late or falls
 * behind still gets every byte.
 *
 * A spool is one job's: an unnamed file (O_TMPFILE) in the spool directory,
 * so nothing is left behind when weftd dies, and what it holds is appended
 * in the order the window lets it go: whole chunks of one stream, numbered
 * like the window (stdout, stderr and both merged). Each user's spools
 * together hold at most `--output-spool` bytes; an append beyond that, or
 * one the disk refuses, fails, and the caller then drops the spool (the
 * bytes count as lost, as without one).
 *
 * Which jobs spool: those that ask (`output_spool: true`), or every exec job
 * with `--output-spool-all`; none while the budget is 0 (the default).
 *
 * Threads: spool_configure on the main thread before any job runs; the rest
 * on any thread, each spool used under its log's lock (outlog.c), the users'
 * budgets under this module's own lock.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The numberings of outlog.h: 0 stdout, 1 stderr, 2 both merged. */
enum spool_numbering { SPOOL_STDOUT, SPOOL_STDERR, SPOOL_BOTH };

struct spool;

/* Spools go to directory (made 0700 when missing), at most budget bytes
 * per user; all: every exec job spools. budget 0: none does. Returns 0, or
 * an errno value with message filled. Main thread, at start. */
int spool_configure(const char *directory, size_t budget, bool all, char *message,
                    size_t message_size);
/* Whether a job that asked (or not) spools. */
bool spool_wanted(bool asked);
/* Whether a job that asks may: a budget was given. */
bool spool_allowed(void);
/* A new empty spool for owner, or NULL (no budget, or the file cannot be
 * made: logged once). Owned by the caller (its log). */
struct spool *spool_open(uid_t owner);
/* Appends `length` bytes of stream (0 stdout, 1 stderr). Returns false when
 * the budget or the disk refused them (the spool is then of no more use). */
bool spool_append(struct spool *spool, int stream, const char *data, size_t length);
/* Bytes of `numbering` the spool holds (they start at 0). */
uint64_t spool_total(const struct spool *spool, enum spool_numbering numbering);
/*
 * Copies up to max bytes of `numbering` from offset (below spool_total) to
 * `to`, all of one stream: *stream says which (0 stdout, 1 stderr). Returns
 * how many, or 0 when the file could not be read; to NULL: only says how
 * many it would copy.
 */
size_t spool_read(const struct spool *spool, enum spool_numbering numbering, uint64_t offset,
                  size_t max, char *to, int *stream);
/* Bytes held by all spools of uid (stats, tests). */
size_t spool_held(uid_t uid);
/* Closes and frees the spool (NULL: nothing), giving its bytes back. */
void spool_close(struct spool *spool);

#endif

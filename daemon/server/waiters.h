/*
 * Long polls: requests that wait for jobs to finish (`result`, `wait`,
 * `submit` with "wait") hold an nng context, not a thread. A waiter watches
 * its jobs, has an optional timer (an nng sleep aio), and is answered by
 * whichever comes first: the condition holding (on the thread that finished
 * the job), the timeout (on an nng thread), the client going away, or
 * shutdown.
 */
#ifndef WAITERS_H
#define WAITERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/server/request.h"

struct job;
struct jobs;
struct problem;
struct server_request;
struct waiters;

enum waiter_kind {
	WAITER_RESULT,  /* one job; a timeout answers with the `timeout` error */
	WAITER_RESULT_WITHOUT_OUTPUT, /* the same, the result without stdout and stderr */
	WAITER_SUBMIT,  /* one job; a timeout answers {"ok":true,"id","state"} */
	WAITER_RESULTS, /* many jobs, all of them; a timeout answers with the outcomes so far */
	WAITER_WAIT,    /* many jobs, per return_when; answers done/pending */
	WAITER_AS_COMPLETED, /* many jobs, the first finished; done in the order they finished */
	WAITER_SOURCE,  /* no job: a source of its own (waiters_start_source) */
};

struct watch;

/*
 * Something else a long poll can wait for (a job's next item, the next
 * event): the waiter registers its watch (base/watch.h) with the source and
 * builds its reply from it. Every callback runs with no waiters lock held,
 * on any thread.
 */
struct waiter_source {
	/* Registers watch; false (not registered) when the reply is ready now. */
	bool (*watch)(void *context, struct watch *watch);
	/* true when the watch was removed before it was notified. */
	bool (*unwatch)(void *context, struct watch *watch);
	/* The reply (a new reference); timed_out: the wait ended without the
	 * watch firing (its timeout, or shutdown). */
	json_t *(*reply)(void *context, bool timed_out);
	/* The waiter is done with context. */
	void (*release)(void *context);
};

/* At most max waiters at once (beyond: WEFT_EBUSY). Main thread. */
struct waiters *waiters_new(struct jobs *jobs, size_t max);
/* Main thread, when no waiter is left (after waiters_shutdown and the replies). */
void waiters_free(struct waiters *waiters);

/*
 * Starts waiting. list holds count job references; timeout < 0 waits without
 * limit. uid is the caller's: the waiter counts against its
 * --max-waiters-per-user (quota.h) until it ends. On WEFT_OK the waiter takes
 * the references and the request (it answers it, possibly before this
 * returns). On an error (WEFT_EBUSY: --max-waiters or the caller's quota)
 * nothing is taken and the problem is filled. Any thread.
 */
int waiters_start(struct waiters *waiters, struct server_request *request, uid_t uid,
                  enum waiter_kind kind,
                  struct job *const *list, size_t count, enum request_return_when when,
                  double timeout, struct problem *problem);

/*
 * Starts a long poll on a source: like waiters_start, counted the same way.
 * On WEFT_OK the waiter takes context (source->release frees it) and the
 * request. On an error nothing is taken. source: static. Any thread.
 */
int waiters_start_source(struct waiters *waiters, struct server_request *request, uid_t uid,
                         const struct waiter_source *source, void *context, double timeout,
                         struct problem *problem);

/* The client on this connection is gone: its waiters end without a reply.
 * Any thread but nng's pipe-notify callbacks (it re-arms nng contexts). */
void waiters_pipe_closed(struct waiters *waiters, uint32_t pipe);

/* Answers every waiter now (shutdown). Any thread. */
void waiters_shutdown(struct waiters *waiters);

/* Waiters open now. Any thread. */
size_t waiters_count(struct waiters *waiters);

#endif

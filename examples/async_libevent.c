/*
 * libweft's completion queue in a libevent loop: submits 1,000 echo jobs
 * without blocking (each a submit with wait: one round trip), collects every
 * result in the loop's own thread as the queue's fd turns readable, checks
 * them, and exits 0 when all 1,000 have come back.
 *
 *   cc async_libevent.c $(pkg-config --cflags --libs weft libevent)
 *   ./a.out [url]          (default: $WEFT_URL, else the user's daemon)
 */
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#define JOBS 1000

struct app {
	weft_completion_queue *queue;
	struct event_base *base;
	int collected;
	int failed;
	char seen[JOBS];
};

/* The loop's thread: the queue's fd is readable, so calls have completed. */
static void on_ready(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct app *app = arg;
	weft_call *call;
	while (weft_completion_queue_next(app->queue, &call) == WEFT_OK && call != NULL) {
		intptr_t value = (intptr_t)weft_call_user_data(call);
		const weft_outcome *outcome = weft_call_outcome(call);
		if (weft_call_error(call) != WEFT_OK) {
			fprintf(stderr, "job %ld: %s\n", (long)value,
			        weft_call_error_info(call)->message);
			app->failed++;
		} else if (outcome->state != WEFT_STATE_DONE ||
		           json_integer_value(outcome->result) != value || app->seen[value]) {
			fprintf(stderr, "job %ld: wrong outcome\n", (long)value);
			app->failed++;
		}
		app->seen[value] = 1;
		weft_call_free(call); /* the call owned its reply and outcome */
		app->collected++;
	}
	if (app->collected == JOBS)
		event_base_loopbreak(app->base);
}

int main(int argc, char **argv)
{
	struct app app = {0};
	weft_client *client = NULL;
	if (weft_connect(argc > 1 ? argv[1] : NULL, &client) != WEFT_OK ||
	    weft_completion_queue_new(&app.queue) != WEFT_OK) {
		fprintf(stderr, "%s\n", weft_last_error()->message);
		return 1;
	}
	app.base = event_base_new();
	struct event *ready = event_new(app.base, weft_completion_queue_fd(app.queue),
	                                EV_READ | EV_PERSIST, on_ready, &app);
	event_add(ready, NULL);

	weft_job_spec *spec = NULL;
	for (intptr_t i = 0; i < JOBS; i++) {
		json_t *args = json_pack("{s:I}", "value", (json_int_t)i);
		weft_notify notify = {.queue = app.queue, .user_data = (void *)i};
		if (weft_job_spec_new("echo", &spec) != WEFT_OK ||
		    weft_job_spec_set_args(spec, args) != WEFT_OK ||
		    weft_submit_wait_async(client, spec, 60, &notify, NULL) != WEFT_OK) {
			fprintf(stderr, "submit %ld: %s\n", (long)i, weft_last_error()->message);
			return 1;
		}
		json_decref(args);
		weft_job_spec_free(spec);
	}
	event_base_dispatch(app.base);

	event_free(ready);
	event_base_free(app.base);
	weft_close(client);
	weft_completion_queue_free(app.queue);
	printf("collected %d results, %d wrong\n", app.collected, app.failed);
	return app.collected == JOBS && app.failed == 0 ? 0 : 1;
}

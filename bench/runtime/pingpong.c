/* pingpong: two tasks pass a token back and forth N times. Round trips per second.
 * Usage: pingpong [N] (default 1,000,000) */
#include "bench/runtime/bench_common.h"

static long rounds;
static weft_notify *to_pong, *to_ping;

static int pong(void *argument)
{
	(void)argument;
	for (long i = 0; i < rounds; i++) {
		if (weft_notify_wait(to_pong, WEFT_FOREVER) != WEFT_OK)
			return WEFT_EINTERNAL;
		weft_notify_signal(to_ping);
	}
	return WEFT_OK;
}

static int root(void *argument)
{
	(void)argument;
	weft_task *partner;
	int error = weft_spawn(pong, NULL, NULL, &partner);
	if (error != WEFT_OK)
		return error;
	for (long i = 0; i < rounds; i++) {
		weft_notify_signal(to_pong);
		if (weft_notify_wait(to_ping, WEFT_FOREVER) != WEFT_OK)
			return WEFT_EINTERNAL;
	}
	error = weft_await(partner, WEFT_FOREVER);
	weft_task_release(partner);
	return error;
}

int main(int argc, char **argv)
{
	rounds = bench_argument(argc, argv, 1, 1000000);
	runtime_config config = {.workers = bench_workers()};
	runtime *rt;
	if (runtime_new(&config, &rt) != WEFT_OK || weft_notify_new(&to_pong) != WEFT_OK ||
	    weft_notify_new(&to_ping) != WEFT_OK)
		return 1;
	double start = bench_now();
	bench_run_root(rt, root, NULL);
	double seconds = bench_now() - start;
	bench_result("pingpong", "weft", rounds, seconds, (double)rounds);
	bench_print_stats(rt);
	runtime_free(rt, 1);
	weft_notify_free(to_pong);
	weft_notify_free(to_ping);
	return 0;
}

# Benchmarks: `make bench` (every suite) or `make bench BENCH=ipc` (one).
# Fragments add their benchmark programs to BENCH_PROGS with +=; `make bench`
# builds them with `all`, installs the peers (scripts/deps.sh bench) and runs
# bench/run, which prints the table and keeps it under $(BUILD)/bench/.

BENCH ?=
BENCH_RUNS ?= 3

# The shared client machinery: latency samples, the RESULT line, the REQ driver.
BENCH_COMMON_OBJS := $(BUILD)/bench/ipc/measure.o $(BUILD)/bench/ipc/driver.o

BENCH_PROGS += $(BUILD)/bench/ipc/weft_ipc_bench \
	$(BUILD)/bench/peers/nng_echo/nng_echo_server \
	$(BUILD)/bench/peers/nng_echo/nng_echo_client \
	$(BUILD)/bench/peers/beanstalk/beanstalk_bench

# weft's side talks to weftd through libweft (and, to compare with the floor on
# equal terms, through a bare nng socket).
$(BUILD)/bench/ipc/weft_ipc_bench: $(BUILD)/bench/ipc/ipc_bench.o $(BENCH_COMMON_OBJS) \
		$(BUILD)/libweft.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) -lm

$(BUILD)/bench/peers/nng_echo/nng_echo_server: $(BUILD)/bench/peers/nng_echo/server.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS)

$(BUILD)/bench/peers/nng_echo/nng_echo_client: $(BUILD)/bench/peers/nng_echo/client.o \
		$(BENCH_COMMON_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS)

$(BUILD)/bench/peers/beanstalk/beanstalk_bench: $(BUILD)/bench/peers/beanstalk/client.o \
		$(BUILD)/bench/ipc/measure.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^

# BENCH_PROGS is read in the recipe, after every fragment has added to it.
bench:
	$(MAKE) --no-print-directory all $(BENCH_PROGS)
	scripts/deps.sh bench
	BENCH_RUNS=$(BENCH_RUNS) WEFT_BUILD=$(abspath $(BUILD)) WEFT_SOURCE=$(abspath .) \
		bench/run $(BENCH)

# libweft's asynchronous API through the public API alone (bench/async).
BENCH_PROGS += $(BUILD)/bench/async/async_bench
$(BUILD)/bench/async/async_bench: $(BUILD)/bench/async/async_bench.o $(BUILD)/libweft.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) -lm -lpthread

# weftd and its unit tests.

# The daemon's modules by layer (README, "Layout"); each layer uses only those
# below it, which scripts/check-layers.sh enforces in `make check`.
DAEMON_BASE_SRCS := $(addprefix daemon/base/,log.c memory.c now.c problem.c writer.c fields.c)
DAEMON_MODEL_SRCS := $(addprefix daemon/core/,jobs.c jobspec.c functions.c outcome.c slots.c \
	fairq.c queues.c quota.c principal.c account.c items.c events.c)
# The part of the job model that waits on the runtime (weft_yield_item): not
# in the job model's unit tests, which link no runtime.
DAEMON_MODEL_RT_SRCS := daemon/core/generator.c
DAEMON_SCHED_SRCS := $(addprefix daemon/sched/,workers.c runner.c schedule.c)
DAEMON_EXECUTOR_SRCS := daemon/executors/inline/echo.c \
	$(addprefix daemon/executors/process/,exec.c proc.c proc_child.c execargs.c cgroup.c \
		subreaper.c outlog.c spool.c inbuf.c lines.c) \
	$(addprefix daemon/executors/thread/,threaded.c threadpool.c blocking.c run_in_thread.c) \
	$(addprefix daemon/executors/task/,coroutines.c await_job.c) \
	daemon/executors/group/gather.c \
	$(addprefix daemon/executors/io/,http.c pool.c resolve.c redis.c sql.c sql_mysql.c) \
	daemon/executors/plugin/plugin.c
DAEMON_SERVER_SRCS := $(addprefix daemon/server/,server.c probe.c request.c waiters.c)
DAEMON_APP_SRCS := $(addprefix daemon/,daemon.c weftd.c ops.c output.c options.c journal.c notify.c testhooks.c)
DAEMON_CORE_SRCS := $(DAEMON_BASE_SRCS) $(DAEMON_MODEL_SRCS) $(DAEMON_MODEL_RT_SRCS) $(DAEMON_SCHED_SRCS) \
	$(DAEMON_EXECUTOR_SRCS) $(DAEMON_SERVER_SRCS) $(DAEMON_APP_SRCS) $(PROTO_SRCS)
# The IO built-ins (daemon/executors/io/): libcurl for http.*, hiredis for
# redis.*, libpq and MariaDB Connector/C for sql.query.
IO_LIBS := $(shell pkg-config --libs libcurl hiredis libpq libmariadb 2>/dev/null)
$(BUILD)/daemon/executors/io/sql_mysql.o: ALL_CFLAGS += $(shell pkg-config --cflags libmariadb 2>/dev/null)
$(BUILD)/daemon/executors/io/sql.o: ALL_CFLAGS += $(shell pkg-config --cflags libpq 2>/dev/null)
DAEMON_CORE_OBJS := $(DAEMON_CORE_SRCS:%.c=$(BUILD)/%.o)
DAEMON_LIBS := $(EVENT_LIBS) $(JANSSON_LIBS) $(NNG_LIBS) $(shell pkg-config --libs nettle 2>/dev/null) \
	$(shell pkg-config --libs sqlite3 2>/dev/null) $(IO_LIBS) -lm
# weftd allocates and frees many small objects on several threads (JSON trees,
# jobs); jemalloc does that 1.6-1.8x faster than glibc's malloc on the batch
# benchmark. Sanitizer builds keep the sanitizer's allocator.
ifeq ($(SANITIZER),)
WEFTD_ALLOCATOR_LIBS := $(shell pkg-config --libs jemalloc 2>/dev/null)
endif
# With jemalloc, calloc is malloc and memset (daemon/base/calloc.c says why).
ifneq ($(strip $(WEFTD_ALLOCATOR_LIBS)),)
WEFTD_ALLOCATOR_OBJS := $(BUILD)/daemon/base/calloc.o
endif
$(BUILD)/daemon/base/calloc.o: ALL_CFLAGS += -fno-builtin

# Plugins (include/weft/plugin.h) call the task API inside weftd: its weft_*
# symbols are exported to them, and nothing else is.
WEFTD_EXPORTS := -Wl,--export-dynamic-symbol=weft_* -ldl

# The daemon's modules as one archive, so unit tests link exactly what they use.
$(BUILD)/libweftd.a: $(DAEMON_CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

# The runtime's archive comes after the daemon's, which uses it.
# Renamed into place like weft (mk/client.mk): a running weftd keeps its file.
$(BUILD)/weftd: $(BUILD)/daemon/main.o $(WEFTD_ALLOCATOR_OBJS) $(BUILD)/libweftd.a $(BUILD)/libweftrt.a
	$(CC) $(ALL_LDFLAGS) $(WEFTD_EXPORTS) -o $@.new $^ $(DAEMON_LIBS) $(WEFTD_ALLOCATOR_LIBS)
	mv -f $@.new $@

ALL_TARGETS += $(BUILD)/weftd

# The job model's tests link the base and the job model alone (stand-in
# functions instead of the executors), and the request decoder's the server's
# decoder besides: what they test, nothing above it.
DAEMON_MODEL_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(DAEMON_BASE_SRCS) $(DAEMON_MODEL_SRCS) proto/error.c proto/base64.c)
$(BUILD)/tests/check_jobs $(BUILD)/tests/check_quota $(BUILD)/tests/check_items: $(BUILD)/tests/%: $(BUILD)/tests/%.o \
		$(BUILD)/tests/stand_ins.o $(DAEMON_MODEL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS) -lpthread -lm
$(BUILD)/tests/check_request: $(BUILD)/tests/check_request.o $(BUILD)/tests/stand_ins.o \
		$(BUILD)/daemon/server/request.o $(DAEMON_MODEL_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS) -lpthread -lm
CHECK_PROGS += $(BUILD)/tests/check_request $(BUILD)/tests/check_jobs $(BUILD)/tests/check_quota \
	$(BUILD)/tests/check_items
# The listener guard's raw probe, against sockets the test holds.
$(BUILD)/tests/check_probe: $(BUILD)/tests/check_probe.o $(BUILD)/daemon/server/probe.o \
		$(BUILD)/proto/url.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) -lpthread
CHECK_PROGS += $(BUILD)/tests/check_probe

$(BUILD)/tests/%.o: ALL_CFLAGS += $(CHECK_CFLAGS)

run: all
	$(BUILD)/weftd $(WEFTD_ARGS)

# End-to-end tests of weftd through raw nng sockets.
$(BUILD)/tests/check_daemon: $(BUILD)/tests/check_daemon.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_daemon

# The dependency rule of daemon/: no upward include, no circle (README, "Layout").
CHECK_SCRIPTS += scripts/check-layers.sh

# The README's C example, compiled and run against a real weftd.
CHECK_SCRIPTS += tests/readme_example.sh

# The request decoder under libFuzzer (clang): `make fuzz FUZZ_SECONDS=60`.
# Its own folder, since it needs clang and -fsanitize=fuzzer,address,undefined.
FUZZ_SECONDS ?= 30
FUZZ_BUILD := build/fuzz
FUZZ_SRCS = tests/fuzz/fuzz_request.c tests/stand_ins.c daemon/server/request.c $(DAEMON_BASE_SRCS) \
	$(DAEMON_MODEL_SRCS) proto/error.c proto/base64.c
.PHONY: fuzz
fuzz:
	@mkdir -p $(FUZZ_BUILD)/corpus
	clang -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -I. $(EVENT_CFLAGS) $(JANSSON_CFLAGS) \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $(FUZZ_BUILD)/fuzz_request $(FUZZ_SRCS) $(DAEMON_LIBS)
	$(FUZZ_BUILD)/fuzz_request -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(FUZZ_BUILD)/corpus tests/fuzz/corpus

# The thread functions end to end.
$(BUILD)/tests/check_threaded: $(BUILD)/tests/check_threaded.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_threaded

# Coroutine jobs (runtime tasks) end to end.
$(BUILD)/tests/check_tasks: $(BUILD)/tests/check_tasks.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_tasks

# weftd itself under ThreadSanitizer: the daemon-level tests drive a TSan weftd
# (a race report makes it exit non-zero at shutdown, which the fixture checks).
TSAN_DAEMON_TESTS := check_client_async check_daemon check_threaded check_tasks check_offload \
	check_futures check_schedule check_gather check_mainloop check_service check_containment \
	check_journal check_items_events check_events_restart
.PHONY: check-tsan-daemon
check-tsan-daemon:
	$(MAKE) SANITIZER=thread build/san-thread/weftd build/san-thread/weft \
		$(TSAN_DAEMON_TESTS:%=build/san-thread/tests/%)
	@failed=0; for test in $(TSAN_DAEMON_TESTS); do \
		echo "== build/san-thread/tests/$$test"; \
		WEFTD=$(abspath build/san-thread/weftd) WEFT_SOURCE=$(abspath .) \
			WEFT_CLI=$(abspath build/san-thread/weft) \
			TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp)" \
			./build/san-thread/tests/$$test || failed=$$((failed + 1)); \
	done; \
	test $$failed -eq 0
check-tsan: check-tsan-daemon

# Bare futures end to end.
$(BUILD)/tests/check_futures: $(BUILD)/tests/check_futures.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_futures

# Scheduling fields end to end.
$(BUILD)/tests/check_schedule: $(BUILD)/tests/check_schedule.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_schedule

# Issue 5's benchmarks (bench/suites/futures.sh).
$(BUILD)/bench/futures/futures_bench: $(BUILD)/bench/futures/futures_bench.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS)
BENCH_PROGS += $(BUILD)/bench/futures/futures_bench

# gather and race end to end.
$(BUILD)/tests/check_gather: $(BUILD)/tests/check_gather.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_gather

# Trust between local users (issue 8): throwaway users drive a root weftd
# through wire_send, a one-request nng client they can run.
$(BUILD)/tests/helpers/wire_send: $(BUILD)/tests/helpers/wire_send.o $(BUILD)/proto/tls.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NNG_LIBS)
$(BUILD)/tests/check_trust: $(BUILD)/tests/check_trust.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o | $(BUILD)/tests/helpers/wire_send
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_trust

# The main loop survives clients that die with requests in flight (issue 17).
$(BUILD)/tests/check_mainloop: $(BUILD)/tests/check_mainloop.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_mainloop

# weftd as a systemd service (issue 11): sd_notify, the watchdog, the units.
$(BUILD)/tests/check_service: $(BUILD)/tests/check_service.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o $(BUILD)/libweftd.a $(BUILD)/libweftrt.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_service
CHECK_SCRIPTS += tests/units.sh

# A job is all of its processes: a cgroup per exec job (issue 11).
$(BUILD)/tests/check_containment: $(BUILD)/tests/check_containment.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_containment

# Fair share between users (issue 10): throwaway users flood and wait.
$(BUILD)/tests/check_fairshare: $(BUILD)/tests/check_fairshare.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o | $(BUILD)/tests/helpers/wire_send
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_fairshare

# The listener guard drops no established connection (issue 10).
$(BUILD)/tests/check_guard: $(BUILD)/tests/check_guard.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o | $(BUILD)/tests/helpers/wire_send $(BUILD)/weft
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_guard

# The journal (issue 12): restarts on a store, and kill -9 under load.
$(BUILD)/tests/check_journal: $(BUILD)/tests/check_journal.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS) -lsqlite3 -lpthread
CHECK_PROGS += $(BUILD)/tests/check_journal

# The principal module's rules, called directly (issue 8).
$(BUILD)/tests/check_principal: $(BUILD)/tests/check_principal.o $(BUILD)/tests/as_user.o \
		$(BUILD)/libweftd.a $(BUILD)/libweftrt.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_principal

# Items (next, count) and the event feed end to end (issue 13).
$(BUILD)/tests/check_items_events: $(BUILD)/tests/check_items_events.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o | $(BUILD)/tests/helpers/wire_send
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_items_events

# The event feed's durability contract, called directly (issue 13).
$(BUILD)/tests/check_events: $(BUILD)/tests/check_events.o $(BUILD)/libweftd.a $(BUILD)/libweftrt.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_events

# The event feed across restarts: cursors kept by the journal (issue 13).
$(BUILD)/tests/check_events_restart: $(BUILD)/tests/check_events_restart.o \
		$(BUILD)/tests/fixture.o $(BUILD)/tests/wire.o $(BUILD)/tests/as_user.o \
		| $(BUILD)/tests/helpers/wire_send
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_events_restart

# Exec jobs whose stdout lines are items (issue 13).
$(BUILD)/tests/check_exec_lines: $(BUILD)/tests/check_exec_lines.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS)
CHECK_PROGS += $(BUILD)/tests/check_exec_lines

# Issue 13's benchmarks (bench/suites/stream.sh).
$(BUILD)/bench/stream/stream_bench: $(BUILD)/bench/stream/stream_bench.o $(BUILD)/libweft.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) -lpthread -lm
BENCH_PROGS += $(BUILD)/bench/stream/stream_bench

# Processes for the exec function (issue 4): argument checking (execargs),
# one job's process (proc, proc_child) and the --procs gate (slots).
# weftd needs these sources in its core (mk/daemon.mk's DAEMON_CORE_SRCS);
# the tests below need no daemon.

PROC_SRCS := daemon/base/now.c daemon/core/account.c daemon/executors/process/execargs.c daemon/executors/process/proc.c daemon/executors/process/proc_child.c daemon/core/slots.c daemon/executors/process/cgroup.c \
	daemon/core/fairq.c daemon/executors/process/subreaper.c daemon/executors/process/outlog.c daemon/executors/process/spool.c \
	daemon/executors/process/inbuf.c proto/base64.c daemon/base/log.c daemon/base/memory.c
PROC_OBJS = $(PROC_SRCS:%.c=$(BUILD)/%.o)

PROC_CHECKS = $(BUILD)/tests/check_execargs $(BUILD)/tests/check_proc $(BUILD)/tests/check_slots \
	$(BUILD)/tests/check_cgroup
CHECK_PROGS += $(PROC_CHECKS)

$(PROC_CHECKS:%=%.o): ALL_CFLAGS += $(CHECK_CFLAGS)

$(BUILD)/tests/check_execargs: $(BUILD)/tests/check_execargs.o $(BUILD)/daemon/executors/process/execargs.o \
		$(BUILD)/proto/error.o $(BUILD)/proto/job_error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(CHECK_LIBS) -lm

# check_proc runs the helpers from its own directory.
$(BUILD)/tests/check_proc: $(BUILD)/tests/check_proc.o $(PROC_OBJS) $(BUILD)/proto/error.o $(BUILD)/proto/job_error.o \
		$(BUILD)/tests/as_user.o \
		| $(BUILD)/tests/helpers/outburst
	$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(EVENT_LIBS) $(JANSSON_LIBS) $(CHECK_LIBS) -lpthread -lm

# cgroup's parsing on fake group directories (no cgroup2 mount needed).
$(BUILD)/tests/check_cgroup: $(BUILD)/tests/check_cgroup.o $(BUILD)/daemon/executors/process/cgroup.o \
		$(BUILD)/proto/error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(CHECK_LIBS) -lm

$(BUILD)/tests/check_slots: $(BUILD)/tests/check_slots.o $(BUILD)/daemon/core/slots.o $(BUILD)/daemon/core/fairq.o \
		$(BUILD)/proto/error.o $(BUILD)/proto/job_error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) -lpthread -lm

$(BUILD)/tests/helpers/outburst: $(BUILD)/tests/helpers/outburst.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(BUILD)/tests/helpers/spawn_loop: $(BUILD)/tests/helpers/spawn_loop.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^

$(BUILD)/tests/helpers/proc_bench: $(BUILD)/tests/helpers/proc_bench.o $(PROC_OBJS) \
		$(BUILD)/proto/error.o $(BUILD)/proto/job_error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(EVENT_LIBS) $(JANSSON_LIBS) -lm

# 2,000 /bin/true with 2 in flight: through proc on one event_base (captured
# output on posix_spawn; and the fork path), against a bare posix_spawn loop.
# Prints RESULT lines (bench=proc_exec_true), interleaved PROC_BENCH_RUNS times.
PROC_BENCH_RUNS ?= 3
.PHONY: bench-proc
bench-proc: $(BUILD)/tests/helpers/spawn_loop $(BUILD)/tests/helpers/proc_bench
	for run in $$(seq $(PROC_BENCH_RUNS)); do \
		$(BUILD)/tests/helpers/spawn_loop 2000 2 && \
		$(BUILD)/tests/helpers/proc_bench 2000 2 capture && \
		$(BUILD)/tests/helpers/proc_bench 2000 2 fork || exit 1; \
	done
BENCH_PROGS += $(BUILD)/tests/helpers/spawn_loop

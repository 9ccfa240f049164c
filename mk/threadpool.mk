# The thread pool (daemon/executors/thread/threadpool.c) and the blocking built-ins that run on
# it (daemon/executors/thread/blocking.c). weftd links THREADPOOL_OBJS and THREADPOOL_LIBS.
#
# SHA-256 comes from nettle (Debian: nettle-dev).
NETTLE_CFLAGS := $(shell pkg-config --cflags nettle 2>/dev/null)
NETTLE_LIBS := $(shell pkg-config --libs nettle 2>/dev/null)

THREADPOOL_OBJS := $(BUILD)/daemon/executors/thread/threadpool.o $(BUILD)/daemon/core/fairq.o $(BUILD)/daemon/executors/thread/blocking.o
THREADPOOL_LIBS := $(NETTLE_LIBS) $(JANSSON_LIBS) -lm -lpthread

$(BUILD)/daemon/executors/thread/blocking.o: ALL_CFLAGS += $(NETTLE_CFLAGS)

$(BUILD)/tests/check_threadpool: $(BUILD)/tests/check_threadpool.o $(BUILD)/daemon/executors/thread/threadpool.o $(BUILD)/daemon/core/fairq.o \
		$(BUILD)/proto/error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) -lpthread

# The file built-in opens with a principal's rights (daemon/core/principal.c), which
# the daemon's archive brings with what it needs.
$(BUILD)/tests/check_blocking: $(BUILD)/tests/check_blocking.o $(THREADPOOL_OBJS) \
		$(BUILD)/libweftd.a $(BUILD)/libweftrt.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(DAEMON_LIBS) $(CHECK_LIBS)

$(BUILD)/tests/check_threadpool.o $(BUILD)/tests/check_blocking.o: ALL_CFLAGS += $(CHECK_CFLAGS)

$(BUILD)/bench/threadpool/bench_threadpool: $(BUILD)/bench/threadpool/bench_threadpool.o \
		$(BUILD)/daemon/executors/thread/threadpool.o $(BUILD)/daemon/core/fairq.o $(BUILD)/proto/error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ -lpthread

CHECK_PROGS += $(BUILD)/tests/check_threadpool $(BUILD)/tests/check_blocking
BENCH_PROGS += $(BUILD)/bench/threadpool/bench_threadpool

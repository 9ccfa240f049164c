# weft_run_in_thread (daemon/executors/thread/run_in_thread.c): task code hands blocking calls to the thread pool.
# weftd links offload.o through mk/daemon.mk; the test links the runtime and the pool directly.

$(BUILD)/tests/check_offload: $(BUILD)/tests/check_offload.o $(BUILD)/daemon/executors/thread/run_in_thread.o \
		$(BUILD)/daemon/executors/thread/threadpool.o $(BUILD)/daemon/core/fairq.o $(BUILD)/libweftrt.a $(BUILD)/proto/error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(EVENT_LIBS) $(JANSSON_LIBS) $(CHECK_LIBS) -lpthread -lm
$(BUILD)/tests/check_offload.o: ALL_CFLAGS += $(CHECK_CFLAGS)
CHECK_PROGS += $(BUILD)/tests/check_offload

$(BUILD)/bench/offload/run_in_thread: $(BUILD)/bench/offload/run_in_thread.o \
		$(BUILD)/daemon/executors/thread/run_in_thread.o $(BUILD)/daemon/executors/thread/threadpool.o $(BUILD)/daemon/core/fairq.o $(BUILD)/libweftrt.a \
		$(BUILD)/proto/error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(EVENT_LIBS) $(JANSSON_LIBS) -lpthread -lm
BENCH_PROGS += $(BUILD)/bench/offload/run_in_thread

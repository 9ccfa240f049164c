# libweft (shared and static), its pkg-config file, the weft CLI and their tests.

LIBWEFT_SRCS := client/allocator.c client/last_error.c client/connection.c client/async.c client/ops.c \
	client/job_spec.c client/jobs.c client/results.c client/futures.c client/queues.c client/stream.c \
	client/json_check.c client/output.c $(PROTO_SRCS)
LIBWEFT_OBJS := $(LIBWEFT_SRCS:%.c=$(BUILD)/%.o)
LIBWEFT_PIC_OBJS := $(LIBWEFT_SRCS:%.c=$(BUILD)/pic/%.o)
LIBWEFT_SONAME := libweft.so.0
LIBWEFT_VERSION := $(shell sed -n 's/^\#define WEFT_VERSION_STRING "\(.*\)"/\1/p' include/weft/version.h)
LIBWEFT_LIBS := $(JANSSON_LIBS) $(NNG_LIBS) -lm

CLI_SRCS := cli/main.c cli/output.c cli/parse.c cli/command_jobs.c cli/command_wait.c \
	cli/command_info.c cli/command_run.c cli/command_future.c cli/command_queue.c cli/command_stream.c \
	cli/schedule.c cli/stream.c cli/command_logs.c proto/job_error.c proto/base64.c
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/%.o)

ALL_TARGETS += $(BUILD)/libweft.so $(BUILD)/libweft.a $(BUILD)/weft.pc $(BUILD)/weft

$(BUILD)/libweft.so: $(LIBWEFT_PIC_OBJS) client/libweft.map
	$(CC) -shared -Wl,-soname,$(LIBWEFT_SONAME) -Wl,--version-script=client/libweft.map \
		-Wl,--no-undefined $(ALL_LDFLAGS) -o $@.new $(LIBWEFT_PIC_OBJS) $(LIBWEFT_LIBS)
	mv -f $@.new $@
	ln -sf libweft.so $(BUILD)/$(LIBWEFT_SONAME)

# One relocatable object in which only weft_* stays global, so that a program
# linking libweft.a meets none of its internal names (connection_op, ...).
OBJCOPY ?= objcopy
$(BUILD)/libweft.a: $(LIBWEFT_OBJS)
	@rm -f $@ $(BUILD)/libweft-all.o
	$(LD) -r -o $(BUILD)/libweft-all.o $^
	$(OBJCOPY) --wildcard --keep-global-symbol='weft_*' $(BUILD)/libweft-all.o
	$(AR) rcs $@ $(BUILD)/libweft-all.o

# weft.pc holds the install paths: rebuild it whenever PREFIX, LIBDIR or
# INCLUDEDIR change (`make install PREFIX=/usr` after a plain `make`).
WEFT_PC_VARS := $(PREFIX)|$(LIBDIR)|$(INCLUDEDIR)|$(LIBWEFT_VERSION)
.PHONY: weft-pc-vars-force
$(BUILD)/weft.pc.vars: weft-pc-vars-force
	@mkdir -p $(@D)
	@echo '$(WEFT_PC_VARS)' | cmp -s - $@ || echo '$(WEFT_PC_VARS)' > $@

$(BUILD)/weft.pc: client/weft.pc.in include/weft/version.h $(BUILD)/weft.pc.vars
	@mkdir -p $(@D)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(LIBWEFT_VERSION)|' $< > $@

# The CLI carries its own copy of libweft, so it runs from the build tree and
# needs no library path once installed.
# Linked under another name and renamed into place, so that rebuilding while
# the old binary runs (make check beside make run) never meets "Text file busy".
$(BUILD)/weft: $(CLI_OBJS) $(BUILD)/libweft.a
	$(CC) $(ALL_LDFLAGS) -o $@.new $(CLI_OBJS) $(BUILD)/libweft.a $(LIBWEFT_LIBS)
	mv -f $@.new $@

# The shared library must export the public API alone.
.PHONY: check-client-exports
check-client-exports: $(BUILD)/libweft.so
	@exported=$$(nm -D --defined-only $< | awk '{ print $$NF }' | sed 's/@.*//'); \
	stray=$$(echo "$$exported" | grep -v '^weft_' || true); \
	if [ -n "$$stray" ]; then \
		echo "libweft.so exports symbols outside weft_*:"; echo "$$stray"; exit 1; \
	fi; \
	echo "libweft.so exports $$(echo "$$exported" | wc -l) symbols, all weft_*"; \
	stray=$$(nm --defined-only -g $(BUILD)/libweft.a | awk 'NF == 3 { print $$3 }' | \
		grep -v '^weft_' || true); \
	if [ -n "$$stray" ]; then \
		echo "libweft.a defines global symbols outside weft_*:"; echo "$$stray"; exit 1; \
	fi
check-client-exports: $(BUILD)/libweft.a
check: check-client-exports

# Tests: unit tests link the static library (they reach internal modules);
# integration tests link the shared one, as applications do.
CLIENT_TEST_LIBS := $(CHECK_LIBS) $(LIBWEFT_LIBS)
TEST_FIXTURE_OBJS := $(BUILD)/tests/fixture.o $(BUILD)/tests/as_user.o

$(BUILD)/tests/check_client: $(BUILD)/tests/check_client.o $(LIBWEFT_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLIENT_TEST_LIBS)

$(BUILD)/tests/check_client_daemon: $(BUILD)/tests/check_client_daemon.o $(TEST_FIXTURE_OBJS) \
		$(BUILD)/libweft.so
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/tests/check_client_daemon.o $(TEST_FIXTURE_OBJS) \
		$(BUILD)/libweft.so -Wl,-rpath,'$$ORIGIN/..' $(CLIENT_TEST_LIBS)

$(BUILD)/tests/check_client_futures: $(BUILD)/tests/check_client_futures.o \
		$(TEST_FIXTURE_OBJS) $(BUILD)/libweft.so
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/tests/check_client_futures.o $(TEST_FIXTURE_OBJS) \
		$(BUILD)/libweft.so -Wl,-rpath,'$$ORIGIN/..' $(CLIENT_TEST_LIBS) -lpthread

$(BUILD)/tests/check_client_async: $(BUILD)/tests/check_client_async.o \
		$(TEST_FIXTURE_OBJS) $(BUILD)/libweft.so
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/tests/check_client_async.o $(TEST_FIXTURE_OBJS) \
		$(BUILD)/libweft.so -Wl,-rpath,'$$ORIGIN/..' $(CLIENT_TEST_LIBS) -lpthread

$(BUILD)/tests/check_cli: $(BUILD)/tests/check_cli.o $(TEST_FIXTURE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(JANSSON_LIBS) $(NNG_LIBS)

$(BUILD)/tests/check_client.o $(BUILD)/tests/check_client_daemon.o $(BUILD)/tests/check_cli.o \
$(BUILD)/tests/check_client_futures.o $(BUILD)/tests/check_client_async.o \
$(BUILD)/tests/fixture.o: ALL_CFLAGS += $(CHECK_CFLAGS)

CHECK_PROGS += $(BUILD)/tests/check_client $(BUILD)/tests/check_client_daemon \
	$(BUILD)/tests/check_cli $(BUILD)/tests/check_client_futures $(BUILD)/tests/check_client_async

# The exec function from both sides (issue 4): weft run/submit through the CLI
# binary, and the daemon's exec jobs through libweft.
$(BUILD)/tests/check_cli_exec: $(BUILD)/tests/check_cli_exec.o $(TEST_FIXTURE_OBJS)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(JANSSON_LIBS) $(NNG_LIBS)

$(BUILD)/tests/check_exec: $(BUILD)/tests/check_exec.o $(TEST_FIXTURE_OBJS) $(BUILD)/libweft.so
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/tests/check_exec.o $(TEST_FIXTURE_OBJS) \
		$(BUILD)/libweft.so -Wl,-rpath,'$$ORIGIN/..' $(CLIENT_TEST_LIBS)

$(BUILD)/tests/check_cli_exec.o $(BUILD)/tests/check_exec.o: ALL_CFLAGS += $(CHECK_CFLAGS)

CHECK_PROGS += $(BUILD)/tests/check_cli_exec $(BUILD)/tests/check_exec

# examples/async_libevent.c built and run against a real weftd.
CHECK_SCRIPTS += tests/async_example.sh

# Exec output as a stream of bytes (issue 13): the output op through libweft,
# weft run and weft logs through the CLI binary, against a real weftd.
$(BUILD)/tests/check_stream: $(BUILD)/tests/check_stream.o $(TEST_FIXTURE_OBJS) $(BUILD)/tests/wire.o \
		$(BUILD)/libweft.so
	$(CC) $(ALL_LDFLAGS) -o $@ $(BUILD)/tests/check_stream.o $(TEST_FIXTURE_OBJS) $(BUILD)/tests/wire.o \
		$(BUILD)/libweft.so -Wl,-rpath,'$$ORIGIN/..' $(CLIENT_TEST_LIBS)

$(BUILD)/tests/check_stream.o: ALL_CFLAGS += $(CHECK_CFLAGS)

CHECK_PROGS += $(BUILD)/tests/check_stream

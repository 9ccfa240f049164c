# The runtime: per-core workers, work-stealing run queues, stackful coroutines (daemon/runtime/).
# Built as $(BUILD)/libweftrt.a, linked by weftd, the runtime tests and the benchmarks.
#
# Context switching: hand-written assembly on x86-64 and AArch64; elsewhere, or with
# WEFT_CONTEXT=ucontext, the portable ucontext fallback.

RUNTIME_ARCH := $(shell $(CC) -dumpmachine 2>/dev/null | cut -d- -f1)
WEFT_CONTEXT ?= $(if $(filter x86_64 aarch64,$(RUNTIME_ARCH)),asm,ucontext)

RUNTIME_SRCS := daemon/runtime/context.c daemon/runtime/stack.c daemon/runtime/runqueue.c \
	daemon/runtime/runtime.c daemon/runtime/scheduler.c daemon/runtime/task.c
ifeq ($(WEFT_CONTEXT),asm)
ifeq ($(RUNTIME_ARCH),aarch64)
RUNTIME_ASM := daemon/runtime/context_aarch64.S
else
RUNTIME_ASM := daemon/runtime/context_x86_64.S
endif
else
RUNTIME_ASM :=
ALL_CFLAGS += -DWEFT_CONTEXT_UCONTEXT
endif
RUNTIME_OBJS := $(RUNTIME_SRCS:%.c=$(BUILD)/%.o) $(RUNTIME_ASM:%.S=$(BUILD)/%.o)
RUNTIME_LIB := $(BUILD)/libweftrt.a
# What a program linking the runtime needs after libweftrt.a.
RUNTIME_LIBS := $(EVENT_LIBS) $(JANSSON_LIBS) -lm -lpthread

$(RUNTIME_LIB): $(RUNTIME_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

ALL_TARGETS += $(RUNTIME_LIB)

# Tests: one program per area, each a Check suite.
RUNTIME_TESTS := check_runtime_queue check_runtime_coroutine check_runtime_sched \
	check_runtime_lifecycle
RUNTIME_TEST_PROGS := $(RUNTIME_TESTS:%=$(BUILD)/tests/%)
CHECK_PROGS += $(RUNTIME_TEST_PROGS)

$(BUILD)/tests/check_runtime_%: $(BUILD)/tests/check_runtime_%.o $(RUNTIME_LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(RUNTIME_LIB) $(BUILD)/proto/error.o $(RUNTIME_LIBS) \
		$(CHECK_LIBS)
$(RUNTIME_TEST_PROGS): $(BUILD)/proto/error.o

$(BUILD)/tests/check_runtime_%.o: ALL_CFLAGS += $(CHECK_CFLAGS)

# Benchmarks (bench/runtime/*.c): one program each, run by bench/suites/*.sh.
RUNTIME_BENCHES := spawn fib sleep pingpong
RUNTIME_BENCH_PROGS := $(RUNTIME_BENCHES:%=$(BUILD)/bench/runtime/%)
BENCH_PROGS += $(RUNTIME_BENCH_PROGS)

$(BUILD)/bench/runtime/%: $(BUILD)/bench/runtime/%.o $(RUNTIME_LIB) $(BUILD)/proto/error.o
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(RUNTIME_LIB) $(BUILD)/proto/error.o $(RUNTIME_LIBS)

# The runtime's tests under ThreadSanitizer (weftd's other parts do not need it).
check-tsan:
	$(MAKE) SANITIZER=thread $(RUNTIME_TESTS:%=build/san-thread/tests/%)
	@failed=0; for test in $(RUNTIME_TESTS); do \
		echo "== build/san-thread/tests/$$test"; \
		$(TEST_ENV) ./build/san-thread/tests/$$test || failed=$$((failed + 1)); \
	done; \
	if [ $$failed -ne 0 ]; then echo "weft: $$failed TSan test program(s) failed"; exit 1; fi

.PHONY: check-runtime
check-runtime: $(RUNTIME_TEST_PROGS)
	@failed=0; for test in $^; do echo "== $$test"; ./$$test || failed=$$((failed + 1)); done; \
	test $$failed -eq 0

# make chaos: the randomized concurrency test of issue 18 (tests/chaos/chaos.c)
# against a real weftd of this build:
#   make chaos [CHAOS_SECONDS=30] [CHAOS_JOBS=20000] [CHAOS_SEED=N] [CHAOS_THREADS=6]
#              [CHAOS_SLACK=30] [SANITIZER=address,undefined | SANITIZER=thread]
# It prints its seed first; CHAOS_SEED=N replays the same random choices.
CHAOS_SECONDS ?= 30
CHAOS_JOBS ?= 20000
CHAOS_SEED ?=
CHAOS_THREADS ?= 6
CHAOS_SLACK ?= 30

$(BUILD)/tests/chaos/chaos: $(BUILD)/tests/chaos/chaos.o $(BUILD)/tests/fixture.o \
		$(BUILD)/tests/wire.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS) -lm

.PHONY: chaos
chaos: $(BUILD)/weftd $(BUILD)/tests/chaos/chaos
	$(TEST_ENV) CHAOS_SECONDS="$(CHAOS_SECONDS)" CHAOS_JOBS="$(CHAOS_JOBS)" \
		CHAOS_SEED="$(CHAOS_SEED)" CHAOS_THREADS="$(CHAOS_THREADS)" CHAOS_SLACK="$(CHAOS_SLACK)" \
		TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp)" \
		LSAN_OPTIONS="suppressions=$(abspath tests/lsan-nng-1713.supp):print_suppressions=0" \
		./$(BUILD)/tests/chaos/chaos

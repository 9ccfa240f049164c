# make soak: a bounded long run of mixed load against a real weftd of this
# build (issue 10; tests/soak/soak.c), not part of make check:
#   make soak [SOAK_SECONDS=180] [SOAK_JOBS=20000000] [SOAK_THREADS=4]
#             [SOAK_RSS_TOLERANCE=10] [SOAK_RSS_SLACK_KB=16384] [SOAK_FD_SLACK=16]
#             [SOAK_WARMUP=10] [SOAK_REPLY_LIMIT=10] [SOAK_P99_RATIO=0] [SOAK_TRIGGER=0]
#             [SANITIZER=address,undefined]
SOAK_SECONDS ?= 180
SOAK_JOBS ?= 20000000
SOAK_THREADS ?= 4
SOAK_RSS_TOLERANCE ?= 10
SOAK_RSS_SLACK_KB ?= 16384
SOAK_FD_SLACK ?= 16
SOAK_WARMUP ?= 10
SOAK_REPLY_LIMIT ?= 10
SOAK_P99_RATIO ?= 0
SOAK_TRIGGER ?= 0

$(BUILD)/tests/soak/soak: $(BUILD)/tests/soak/soak.o $(BUILD)/tests/fixture.o $(BUILD)/tests/wire.o \
		$(BUILD)/tests/as_user.o
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(JANSSON_LIBS) $(NNG_LIBS) $(CHECK_LIBS) -lm

.PHONY: soak
soak: $(BUILD)/weftd $(BUILD)/tests/soak/soak
	$(TEST_ENV) SOAK_SECONDS="$(SOAK_SECONDS)" SOAK_JOBS="$(SOAK_JOBS)" \
		SOAK_THREADS="$(SOAK_THREADS)" SOAK_RSS_TOLERANCE="$(SOAK_RSS_TOLERANCE)" \
		SOAK_RSS_SLACK_KB="$(SOAK_RSS_SLACK_KB)" SOAK_FD_SLACK="$(SOAK_FD_SLACK)" \
		SOAK_WARMUP="$(SOAK_WARMUP)" SOAK_REPLY_LIMIT="$(SOAK_REPLY_LIMIT)" \
		SOAK_P99_RATIO="$(SOAK_P99_RATIO)" SOAK_TRIGGER="$(SOAK_TRIGGER)" \
		LSAN_OPTIONS="suppressions=$(abspath tests/lsan-nng-1713.supp):print_suppressions=0" \
		./$(BUILD)/tests/soak/soak

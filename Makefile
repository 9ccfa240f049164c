# weft: GNU Make with pkg-config. `make help` lists the targets.
#
# Each part of the tree adds itself through a fragment in mk/ (mk/daemon.mk,
# mk/client.mk, ...). A fragment appends to:
#   ALL_TARGETS   what `make` builds
#   CHECK_PROGS   Check test programs that `make check` runs (each exits non-zero on failure)
#   CHECK_SCRIPTS shell tests that `make check` runs after them
# and defines its own rules. Objects go to $(BUILD)/ mirroring the source tree.

.DEFAULT_GOAL := all
SHELL := /bin/bash
comma := ,

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
UNITDIR ?= $(PREFIX)/lib/systemd/system
USERUNITDIR ?= $(PREFIX)/lib/systemd/user
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
DOCDIR ?= $(PREFIX)/share/doc/weft

# SANITIZER=address,undefined or SANITIZER=thread builds everything into its own folder.
SANITIZER ?=
ifeq ($(SANITIZER),)
BUILD ?= build
OPTIMIZE ?= -O2
else
BUILD ?= build/san-$(subst $(comma),-,$(SANITIZER))
OPTIMIZE ?= -O1
endif

PKGS := libevent libevent_pthreads jansson check nettle jemalloc sqlite3 libcurl hiredis libpq libmariadb

# What is missing is installed (scripts/deps.sh, apt-get) before anything asks
# pkg-config, but only by the goals the README promises do so: `make deps`,
# `make run` and the test goals. A plain `make` (or `make install`) says what
# to run instead and stops.
INSTALLING_GOALS := run check check-asan check-tsan check-repeat chaos soak bench
ifeq ($(filter clean deps help format uninstall,$(MAKECMDGOALS)),)
ifneq ($(shell pkg-config --exists $(PKGS) 2>/dev/null && test -f /usr/include/nng/nng.h && command -v openssl >/dev/null && test -x /usr/sbin/useradd && echo ok),ok)
ifneq ($(filter $(INSTALLING_GOALS),$(MAKECMDGOALS)),)
$(info weft: some build dependencies are missing; running scripts/deps.sh (apt-get))
DEPS_STATUS := $(shell scripts/deps.sh build >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error scripts/deps.sh failed (exit $(DEPS_STATUS)); see the messages above)
endif
else
$(error some build dependencies are missing: run `make deps` (it installs them with apt-get), or `make run` / `make check`, which do it first)
endif
endif
endif

EVENT_CFLAGS := $(shell pkg-config --cflags libevent libevent_pthreads 2>/dev/null)
EVENT_LIBS := $(shell pkg-config --libs libevent libevent_pthreads 2>/dev/null)
JANSSON_CFLAGS := $(shell pkg-config --cflags jansson 2>/dev/null)
JANSSON_LIBS := $(shell pkg-config --libs jansson 2>/dev/null)
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)
# Debian's nng 1.5 ships no pkg-config file.
NNG_LIBS := -lnng -lpthread

WARNINGS := -Wall -Wextra -Werror -Wstrict-prototypes -Wmissing-prototypes -Wshadow \
	-Wwrite-strings -Wvla -Wno-missing-field-initializers -Wno-format-truncation
CFLAGS ?= $(OPTIMIZE) -g
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARNINGS) $(CFLAGS) -Iinclude -I. \
	$(EVENT_CFLAGS) $(JANSSON_CFLAGS)
ALL_LDFLAGS := $(LDFLAGS)
ifneq ($(SANITIZER),)
ALL_CFLAGS += -fsanitize=$(SANITIZER) -fno-sanitize-recover=all -fno-omit-frame-pointer
ALL_LDFLAGS += -fsanitize=$(SANITIZER)
endif

ALL_TARGETS :=
BENCH_PROGS :=
CHECK_PROGS :=
CHECK_SCRIPTS :=

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/%.o: %.S
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

# Position-independent objects for libweft.so.
$(BUILD)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -MMD -MP -c -o $@ $<

# Code shared by weftd and libweft: the error table.
PROTO_SRCS := proto/error.c proto/job_error.c proto/url.c proto/tls.c proto/base64.c

include $(sort $(wildcard mk/*.mk))

.PHONY: all deps run check check-asan check-tsan check-repeat bench install uninstall clean help format
all: $(ALL_TARGETS)

deps:
	scripts/deps.sh build

# Tests run with the fresh binaries; integration tests find them through these.
TEST_ENV := WEFTD=$(abspath $(BUILD)/weftd) WEFT_CLI=$(abspath $(BUILD)/weft) \
	WEFT_BUILD=$(abspath $(BUILD)) WEFT_SOURCE=$(abspath .) \
	SANITIZER_FLAGS="$(if $(SANITIZER),-fsanitize=$(SANITIZER))"

# A test that cannot run here prints "SKIP: N what: why" (tests/as_user.h);
# the closing line counts them, so a skip is never mistaken for a pass.
check: all $(CHECK_PROGS)
	@passed=0; failed=0; skipped=0; log=$$(mktemp); \
	for test in $(CHECK_PROGS) $(CHECK_SCRIPTS); do \
		echo "== $$test"; \
		case $$test in *.sh) runner=bash ;; *) runner= ;; esac; \
		$(TEST_ENV) $$runner ./$$test | tee $$log; \
		if [ $${PIPESTATUS[0]} -eq 0 ]; then passed=$$((passed + 1)); \
		else failed=$$((failed + 1)); fi; \
		skipped=$$((skipped + $$(awk '/^SKIP: [0-9]+ /{n += $$2} END {print n + 0}' $$log))); \
	done; \
	rm -f $$log; \
	echo "test programs: $$passed passed, $$failed failed; tests skipped: $$skipped"; \
	[ $$failed -eq 0 ]

check-asan:
	$(MAKE) check SANITIZER=address,undefined

# Install into a staging directory, build a program against it, uninstall.
.PHONY: check-install
check-install: all
	bash tests/install.sh $(abspath .) $(BUILD)
ifeq ($(SANITIZER),)
check: check-install
endif

# Every test program N times in one build, reporting any that failed even once:
#   make check-repeat N=20 [SANITIZER=address,undefined | SANITIZER=thread]
# Under TSan it runs what check-tsan runs. Failed runs' output stays in $(BUILD)/repeat/.
N ?= 20
ifeq ($(SANITIZER),thread)
REPEAT_PROGS = $(RUNTIME_TEST_PROGS) $(TSAN_DAEMON_TESTS:%=$(BUILD)/tests/%)
REPEAT_SCRIPTS :=
REPEAT_NEEDS = $(BUILD)/weftd $(BUILD)/weft
else
REPEAT_PROGS = $(CHECK_PROGS)
REPEAT_SCRIPTS = $(CHECK_SCRIPTS)
REPEAT_NEEDS = all
endif
.PHONY: check-repeat
check-repeat: $(REPEAT_NEEDS) $(REPEAT_PROGS)
	$(TEST_ENV) TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp)" \
		scripts/check-repeat.sh $(N) $(BUILD)/repeat $(REPEAT_PROGS) -- $(REPEAT_SCRIPTS)

VERSION := $(shell sed -n 's/^\#define WEFT_VERSION_STRING "\(.*\)"/\1/p' include/weft/version.h)

# The client's public headers only: task.h, executor.h and jobs.h are the
# daemon's own task API (built-ins), not for programs that link libweft.
PUBLIC_HEADERS := include/weft/weft.h include/weft/version.h include/weft/error.h \
	include/weft/client.h include/weft/async.h include/weft/stream.h
INSTALLED := $(BINDIR)/weftd $(BINDIR)/weft $(LIBDIR)/libweft.a $(LIBDIR)/libweft.so.$(VERSION) \
	$(LIBDIR)/libweft.so.0 $(LIBDIR)/libweft.so $(LIBDIR)/pkgconfig/weft.pc \
	$(PUBLIC_HEADERS:include/weft/%=$(INCLUDEDIR)/weft/%) $(UNITDIR)/weftd.service \
	$(USERUNITDIR)/weftd.service $(SYSUSERSDIR)/weft.conf $(TMPFILESDIR)/weft.conf \
	$(DOCDIR)/README.md $(DOCDIR)/hardening.conf
# The units name weftd and its README by their default paths; install rewrites them.
UNIT_PATHS := sed -e 's|/usr/local/bin/weftd|$(BINDIR)/weftd|g' \
	-e 's|/usr/local/share/doc/weft|$(DOCDIR)|g'

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/weft \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(USERUNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/weftd $(BUILD)/weft $(DESTDIR)$(BINDIR)/
	install -m 0644 $(BUILD)/libweft.a $(DESTDIR)$(LIBDIR)/
	install -m 0755 $(BUILD)/libweft.so $(DESTDIR)$(LIBDIR)/libweft.so.$(VERSION)
	ln -sf libweft.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libweft.so.0
	ln -sf libweft.so.0 $(DESTDIR)$(LIBDIR)/libweft.so
	install -m 0644 $(BUILD)/weft.pc $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 0644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/weft/
	$(UNIT_PATHS) systemd/weftd.service > $(DESTDIR)$(UNITDIR)/weftd.service
	$(UNIT_PATHS) systemd/weftd-user.service > $(DESTDIR)$(USERUNITDIR)/weftd.service
	@# Readable by every user's manager, whatever the installer's umask.
	chmod 0644 $(DESTDIR)$(UNITDIR)/weftd.service $(DESTDIR)$(USERUNITDIR)/weftd.service
	install -m 0644 systemd/sysusers.d/weft.conf $(DESTDIR)$(SYSUSERSDIR)/weft.conf
	install -m 0644 systemd/tmpfiles.d/weft.conf $(DESTDIR)$(TMPFILESDIR)/weft.conf
	install -m 0644 README.md systemd/hardening.conf $(DESTDIR)$(DOCDIR)/
	@# The dynamic linker's cache, when installing into this system (not a staging DESTDIR).
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then ldconfig; fi

# Removes exactly what install put there (and the include directory once empty).
uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)
	-rmdir $(DESTDIR)$(INCLUDEDIR)/weft $(DESTDIR)$(DOCDIR) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then ldconfig; fi

help:
	@echo "make            build weftd, libweft (.so, .a, weft.pc) and the weft CLI"
	@echo "make run        build and start weftd in the foreground (WEFTD_ARGS='--workers 4 ...')"
	@echo "make check      build and run the whole test suite"
	@echo "make check-asan the suite under -fsanitize=address,undefined"
	@echo "make soak       a few minutes of mixed load: RSS, fds and latency stay flat (SOAK_SECONDS=180)"
	@echo "make check-repeat N=20 [SANITIZER=...]  every test program N times; reports flakes"
	@echo "make bench      benchmarks with their peers (BENCH=name for one)"
	@echo "make install    PREFIX=/usr/local DESTDIR= (runs ldconfig when DESTDIR is empty)"
	@echo "make uninstall  removes what make install put there"
	@echo "make deps       install missing Debian packages"

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

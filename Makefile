# presenced - one short Makefile (see README.md for the two commands).
#   make            build build/presenced
#   make run        install packages, build, seed demo data, serve
#   make test       install packages, build, the layering check, unit +
#                   integration tests, then the integration tests on
#                   PostgreSQL (alongside the browser, bench and fuzz smoke
#                   tests), then unit + integration again under ASan +
#                   UBSan, and the integration tests with four loops under
#                   TSan
#   make asan       build build-asan/presenced with sanitizers
#   make tsan       build build-tsan/presenced with ThreadSanitizer

B        ?= build
SAN      ?=
PY       := /usr/bin/python3
PKGS     := libuv libsodium jansson sqlite3 libcrypto libpq hiredis \
            icu-uc icu-i18n
CC       ?= cc
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
            -Isrc -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lwslay -lhttp_parser -lpthread -lm
ifeq ($(SAN),thread)
CFLAGS   += -O1 -fno-omit-frame-pointer -fsanitize=thread
LDFLAGS  += -fsanitize=thread
else ifneq ($(SAN),)
CFLAGS   += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

SRC      := $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c))
OBJ      := $(SRC:%.c=$(B)/obj/%.o) $(B)/obj/gen/assets.o $(B)/obj/gen/cluster_lua.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
WEB      := $(shell find web -type f 2>/dev/null)

.PHONY: all run test unit unit-pg integration integration-pg test-side \
        browser fuzz fuzz-smoke bench bench-big bench-smoke soak asan tsan deps \
        test-deps clean layers
all: $(B)/presenced

deps:
	@sh scripts/install-deps.sh
test-deps:
	@sh scripts/install-deps.sh --test

$(B)/gen/assets.c: tools/embed.sh $(WEB)
	@mkdir -p $(dir $@)
	sh tools/embed.sh web > $@.tmp && mv $@.tmp $@

$(B)/gen/cluster_lua.c: tools/embed_lua.sh src/cluster/cluster.lua
	@mkdir -p $(dir $@)
	sh tools/embed_lua.sh src/cluster/cluster.lua > $@.tmp && mv $@.tmp $@

$(B)/obj/gen/cluster_lua.o: $(B)/gen/cluster_lua.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/obj/gen/assets.o: $(B)/gen/assets.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(B)/libpresenced.a: $(OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/presenced: $(B)/obj/src/main.o $(B)/libpresenced.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/tests/%: tests/unit/%.c $(B)/libpresenced.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libpresenced.a $(LDLIBS) -lcmocka

# No two modules of src/ may use each other (tools/layers.py), and the
# check must catch one that does (--self-test).
layers: $(B)/presenced
	$(PY) tools/layers.py --obj $(B)/obj/src
	$(PY) tools/layers.py --self-test

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do $$t || fail=1; done; exit $$fail

# The store's tests again on PostgreSQL, in a throwaway cluster of their
# own (tests/pgcluster.py: initdb in a temp dir, removed afterwards).
unit-pg: $(B)/tests/test_store
	$(PY) tests/pgcluster.py run -- env PRESENCED_TEST_DB_ONLY_PG=1 \
	    $(B)/tests/test_store

# Three at a time (pytest-xdist): each test has its own server, port range,
# temp directory and database, and most of a test's time is spent waiting
# on the server's timers, so this halves the time on two cores.
PYTEST_JOBS ?= 3
integration: $(B)/presenced
	PRESENCED_BIN=$(abspath $(B)/presenced) $(PY) -m pytest -q -p no:cacheprovider \
	    -n $(PYTEST_JOBS) tests/integration

# The same tests on PostgreSQL: each pytest worker starts a throwaway
# cluster of its own (tests/pgcluster.py: initdb in a temp directory, a
# free loopback port, run as the postgres user), every server gets a fresh
# database in it, and the cluster is removed at the end. Tests of SQLite
# itself (its file, lock, WAL) are skipped there.
integration-pg: $(B)/presenced
	PRESENCED_TEST_BACKEND=postgresql PRESENCED_BIN=$(abspath $(B)/presenced) \
	    $(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_JOBS) tests/integration

# integration-pg in the background while the browser, bench and fuzz smoke
# tests run in the foreground (both spend most of their time waiting on
# timers, and the fuzz runs take a fixed time), so that the second backend
# adds little to make test. Its output goes to a log, printed whole if it
# fails (its summary line if it passes); either failing fails the target.
PG_LOG := $(B)/logs/integration-pg.log
test-side: $(B)/presenced
	@mkdir -p $(dir $(PG_LOG)); \
	echo "integration-pg: in the background, log $(PG_LOG)"; \
	$(MAKE) --no-print-directory integration-pg >$(PG_LOG) 2>&1 & pg=$$!; \
	$(MAKE) browser bench-smoke fuzz-smoke; rest=$$?; \
	wait $$pg; pgrc=$$?; \
	if [ $$pgrc -ne 0 ]; then \
	    echo "==== integration-pg FAILED (exit $$pgrc), its log $(PG_LOG):"; \
	    cat $(PG_LOG); \
	    echo "==== integration-pg FAILED (exit $$pgrc), log above"; \
	else \
	    echo "integration-pg: $$(tail -n 1 $(PG_LOG))"; \
	fi; \
	[ $$rest -eq 0 ] || echo "==== browser / bench-smoke / fuzz-smoke FAILED (exit $$rest)"; \
	[ $$rest -eq 0 ] && [ $$pgrc -eq 0 ]

# End-to-end tests in Debian's headless Chromium, driven by playwright-core.
browser: $(B)/presenced
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && \
	PRESENCED_BIN=$(abspath $(B)/presenced) node --test --test-concurrency=1 ./*.test.mjs

# libFuzzer targets for every parser of outside input (clang, ASan, UBSan).
FUZZ_SECONDS ?= 600
fuzz:
	$(MAKE) -C tests/fuzz fuzz SECONDS=$(FUZZ_SECONDS)
fuzz-smoke:
	$(MAKE) -C tests/fuzz run SECONDS=10

# The load generator and the floor (bench/); figures go to bench/results.md.
bench: all
	$(MAKE) -C bench bench
bench-big: all
	$(MAKE) -C bench bench-big
bench-smoke: all
	$(MAKE) -C bench smoke

# Churns 10,000 connections for SOAK_SECONDS and checks RSS stays flat.
SOAK_SECONDS ?= 300
soak: all
	$(PY) tests/soak/soak.py --bin $(B)/presenced --seconds $(SOAK_SECONDS)

asan:
	$(MAKE) B=build-asan SAN=1 all
tsan:
	$(MAKE) B=build-tsan SAN=thread all

run: deps
	$(MAKE) all
	$(B)/presenced demo --if-empty
	$(B)/presenced serve --demo

test: test-deps
	$(MAKE) all
	$(MAKE) layers unit unit-pg integration
	$(MAKE) test-side
	$(MAKE) B=build-asan SAN=1 unit unit-pg integration
	TEST_LOOPS=4 $(MAKE) B=build-tsan SAN=thread integration

clean:
	rm -rf build build-asan build-tsan tests/fuzz/build
	$(MAKE) -C bench clean

-include $(OBJ:.o=.d) $(B)/obj/src/main.d

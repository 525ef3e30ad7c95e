# dbkv: `make quickstart` builds the library and runs the C quick start;
# `make test` runs every test suite (Rust, C, Go, Node, server, real
# Redis clients, Celery). See README.md.

RELEASE := target/release
CC ?= cc
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR := $(firstword $(subst ., ,$(VERSION)))

.PHONY: all lib quickstart test test-rust test-c test-go test-node test-clients test-celery test-outside header bench install uninstall node-package clean

all: lib

# The library, its soname link, a pkg-config file pointing at this tree,
# and the `dbkv` binary (`dbkv serve`).
lib:
	cargo build --release --workspace
	ln -sf libdbkv.so $(RELEASE)/libdbkv.so.$(MAJOR)
	@printf 'prefix=%s\nlibdir=$${prefix}/target/release\nincludedir=$${prefix}/include\n\nName: dbkv\nDescription: Embedded durable key-value engine\nVersion: %s\nLibs: -L$${libdir} -Wl,-rpath,$${libdir} -ldbkv\nCflags: -I$${includedir}\n' "$(CURDIR)" "$(VERSION)" > $(RELEASE)/dbkv.pc

quickstart: lib
	$(CC) -std=c99 -Wall -Wextra -Werror -pedantic -Iinclude examples/c/quickstart.c -L$(RELEASE) -Wl,-rpath,$(CURDIR)/$(RELEASE) -ldbkv -o $(RELEASE)/quickstart
	$(RELEASE)/quickstart

test: lib test-rust test-go test-node test-outside test-clients test-celery
	@echo "all suites passed"

# Rust unit, property, crash, C-suite (driven from cargo test) and server
# integration tests.
test-rust:
	@command -v $${VALGRIND:-valgrind} >/dev/null || echo "WARNING: valgrind not found: the C memory test fails unless DBKV_NO_VALGRIND=1 (then it is SKIPPED); install valgrind (Debian: apt install valgrind)" >&2
	cargo test --release --workspace

test-go: lib
	cd bindings/go && PKG_CONFIG_PATH=$(CURDIR)/$(RELEASE) go vet ./... && PKG_CONFIG_PATH=$(CURDIR)/$(RELEASE) go test -race -count=1 ./...
	cd examples/go && PKG_CONFIG_PATH=$(CURDIR)/$(RELEASE) go run . $(CURDIR)/target/go-quickstart-data

test-node: lib
	cd bindings/node && npm ci --no-audit --no-fund && npm test
	node examples/node/quickstart.js $(CURDIR)/target/node-quickstart-data

# The outside user (tests/outside/run.sh): make install into a temp prefix
# and build against it from C (shared, rpath, static), from a new Go
# module, and from a new npm project that installed `make node-package`'s
# tarball (require, import, TypeScript), with no DBKV_LIB or LD_LIBRARY_PATH.
test-outside: lib
	bash tests/outside/run.sh

# Real Redis clients (redis-cli, redis-py, go-redis, ioredis) against
# `dbkv serve`; DBKV_CLIENTS_TARGET=redis runs them against redis-server.
test-clients: lib
	bash cli/tests/clients/run.sh

# Celery's redis:// result backend on `dbkv serve`, with real prefork
# workers, including kill -9 of a worker and of the server mid-chord.
# DBKV_CELERY_TARGET=redis runs it against redis-server; DBKV_SKIP_CELERY=1
# skips it. Benchmark (not run here): README.md, "Using dbkv as a Celery result backend".
test-celery: lib
	bash cli/tests/celery/run.sh

header:
	DBKV_BLESS=1 cargo test --release --test header

bench: lib
	cargo bench --bench engine

# Installs the stripped shared library (no debug info is installed), its
# soname and development links, the static library, the header and
# dbkv.pc (Libs.private lists what a static link of Rust's std needs).
# `make uninstall PREFIX=...` removes exactly these files.
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
INSTALLED := lib/libdbkv.so.$(VERSION) lib/libdbkv.so.$(MAJOR) lib/libdbkv.so lib/libdbkv.a include/dbkv.h lib/pkgconfig/dbkv.pc

install: lib
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0755 $(RELEASE)/libdbkv.so $(DESTDIR)$(PREFIX)/lib/libdbkv.so.$(VERSION)
	strip --strip-unneeded $(DESTDIR)$(PREFIX)/lib/libdbkv.so.$(VERSION)
	ln -sf libdbkv.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libdbkv.so.$(MAJOR)
	ln -sf libdbkv.so.$(MAJOR) $(DESTDIR)$(PREFIX)/lib/libdbkv.so
	install -m 0644 $(RELEASE)/libdbkv.a $(DESTDIR)$(PREFIX)/lib/libdbkv.a
	strip --strip-debug $(DESTDIR)$(PREFIX)/lib/libdbkv.a
	install -m 0644 include/dbkv.h $(DESTDIR)$(PREFIX)/include/dbkv.h
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: dbkv\nDescription: Embedded durable key-value engine\nVersion: %s\nLibs: -L$${libdir} -ldbkv\nLibs.private: %s\nCflags: -I$${includedir}\n' "$(PREFIX)" "$(VERSION)" "$(STATIC_LIBS)" > $(DESTDIR)$(PREFIX)/lib/pkgconfig/dbkv.pc

# The Node package as an npm tarball, dbkv-$(VERSION).tgz in
# $(NODE_PACK_DIR), with this platform's library in
# prebuilds/<platform>-<arch>/ (bindings/node/scripts/prebuild.js), so
# `npm install /path/to/dbkv-$(VERSION).tgz` works with no DBKV_LIB. The
# tarball's path is the last line printed.
NODE_PACK_DIR ?= target/node

node-package: lib
	cd bindings/node && npm run --silent pack -- $(abspath $(NODE_PACK_DIR))

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALLED))

clean:
	cargo clean

# Thin wrappers around the bun scripts, so the commands in the docs work as written.
# The work happens in scripts/build.ts and scripts/bundle.ts; see `bun scripts/build.ts --help`.

BUN ?= bun
DIST ?= dist
PREFIX ?= /usr/local
DESTDIR ?=
# Where the native builds are also linked, as bin/mcp-server and bin/containarium (not in git).
LINKS ?= bin

.PHONY: build build-all bundle test bench clean \
	build-mcp build-mcp-linux build-mcp-all install-mcp \
	build-containarium build-containarium-linux build-containarium-all install-containarium

# The locked dependencies: installed when missing or older than package.json or bun.lock, so
# `make build-mcp` works right after a clone.
node_modules: package.json bun.lock
	$(BUN) install --frozen-lockfile
	@touch node_modules

# Both binaries for this machine: dist/mcp-server and dist/containarium, linked from bin/.
build: node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --link $(LINKS)

# Both binaries for every release target, packed, with dist/SHA256SUMS.
build-all: node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --target all --archive

# dist/containarium.mcpb for Claude Desktop, and dist/server.json for the MCP registry.
bundle: node_modules
	$(BUN) scripts/bundle.ts --dist $(DIST)

test:
	$(BUN) test

bench:
	$(BUN) run bench

clean:
	rm -rf $(DIST)
	rm -f $(LINKS)/mcp-server $(LINKS)/containarium

# ---- mcp-server ----------------------------------------------------------------------------------

# dist/mcp-server, and bin/mcp-server leading to it.
build-mcp: node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --bin mcp-server --link $(LINKS)

build-mcp-linux: node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --bin mcp-server --target linux-x64,linux-arm64

build-mcp-all: node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --bin mcp-server --target all --archive

# Builds only if there is no binary yet, so `sudo make install-mcp` after `make build-mcp` needs no bun.
$(DIST)/mcp-server: | node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --bin mcp-server

install-mcp: $(DIST)/mcp-server
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(DIST)/mcp-server $(DESTDIR)$(PREFIX)/bin/mcp-server

# ---- containarium --------------------------------------------------------------------------------

# dist/containarium, and bin/containarium leading to it.
build-containarium: node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --bin containarium --link $(LINKS)

build-containarium-linux: node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --bin containarium --target linux-x64,linux-arm64

build-containarium-all: node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --bin containarium --target all --archive

$(DIST)/containarium: | node_modules
	$(BUN) scripts/build.ts --dist $(DIST) --bin containarium

install-containarium: $(DIST)/containarium
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(DIST)/containarium $(DESTDIR)$(PREFIX)/bin/containarium

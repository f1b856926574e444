# Makefile: build Velo's QEMU 7.2 (with the velo driver and export built in),
# the project's tools and unit tests, and run the tests.
#
#   make            build everything
#   make check      run every test; ends with "N passed, N failed, N skipped"
#   make unit       build and run only the GLib unit tests
#   make clean      remove our build products (keeps the fetched QEMU source)

-include config.mk

empty :=
space := $(empty) $(empty)

SRCDIR     := $(CURDIR)
BUILD      := $(SRCDIR)/build
TREE       := $(BUILD)/qemu-src
QBUILD     := $(TREE)/build
QEMU_CC    ?= cc
JOBS       ?= $(shell nproc)

FIRMWARE_DIRS := /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu
QEMU_BINS  := qemu-system-x86_64 qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon
QEMU_CONFIGURE_FLAGS := \
	--target-list=x86_64-softmmu --without-default-features --enable-tools \
	--disable-docs --disable-user --disable-werror --enable-kvm --enable-tcg \
	--enable-zstd --enable-linux-aio --enable-linux-io-uring \
	--enable-fdt=system --enable-slirp \
	--enable-gnutls --enable-vhost-user --enable-vhost-user-blk-server \
	--enable-attr --enable-malloc-trim \
	--firmwarepath=$(subst $(space),:,$(FIRMWARE_DIRS))

.PHONY: all qemu tools unit check clean distclean deps-check

all: qemu tools

config.mk:
	@echo "Run ./configure first (it checks dependencies and picks the QEMU source)." >&2
	@exit 1

deps-check:
	@$(SRCDIR)/scripts/install-deps.sh --check || \
	  { echo "make: run 'scripts/install-deps.sh' as root to install the missing packages" >&2; exit 1; }

# 1. Obtain the pristine QEMU tree.
$(TREE)/VERSION: | config.mk
	@mkdir -p $(BUILD)
	@if [ -z "$(QEMU_SRC_ORIGIN)" ]; then \
	  $(SRCDIR)/scripts/fetch-qemu.sh $(BUILD); \
	elif [ -d "$(QEMU_SRC_ORIGIN)" ]; then \
	  rm -rf $(TREE).tmp && cp -a "$(QEMU_SRC_ORIGIN)" $(TREE).tmp && rm -rf $(TREE).tmp/build && mv $(TREE).tmp $(TREE); \
	else \
	  rm -rf $(TREE).tmp && mkdir -p $(TREE).tmp && \
	  tar xf "$(QEMU_SRC_ORIGIN)" -C $(TREE).tmp --strip-components=1 && mv $(TREE).tmp $(TREE); \
	fi

# 2. Link our sources in and apply the hook-line patches.
$(TREE)/.velo-prepared: $(TREE)/VERSION $(wildcard patches/*.patch) scripts/prepare-tree.sh
	$(SRCDIR)/scripts/prepare-tree.sh $(TREE)
	@touch $@

# 3. Configure QEMU once.
$(QBUILD)/build.ninja: $(TREE)/.velo-prepared config.mk Makefile
	@$(MAKE) -s deps-check
	mkdir -p $(QBUILD)
	cd $(QBUILD) && ../configure --cc="$(QEMU_CC)" $(if $(EXTRA_CFLAGS),--extra-cflags="$(EXTRA_CFLAGS)") $(QEMU_CONFIGURE_FLAGS)

# 4. Build; ninja decides what is stale.
qemu: $(QBUILD)/build.ninja
	CCACHE_BASEDIR=$(BUILD) ninja -C $(QBUILD) -j$(JOBS) $(QEMU_BINS)
	@mkdir -p $(BUILD)/bin
	@for b in $(QEMU_BINS); do ln -sf $(QBUILD)/$$b $(BUILD)/bin/$$(basename $$b); done
	@# Run from the build tree, QEMU looks for firmware under qemu-bundle/:
	@# point the configured firmware directories there at Debian's packages.
	@for d in $(FIRMWARE_DIRS); do \
	  mkdir -p $(QBUILD)/qemu-bundle$$(dirname $$d) && \
	  ln -sfn $$d $(QBUILD)/qemu-bundle$$d; done

tools:
	@$(MAKE) -s -C tests/unit
	@$(MAKE) -s -C tools/velo-profile
	@$(MAKE) -s -C guestfix

unit:
	@$(MAKE) -s -C tests/unit run

check: all
	@$(SRCDIR)/tests/run-all.sh

clean:
	-[ -f $(QBUILD)/build.ninja ] && ninja -C $(QBUILD) -t clean >/dev/null
	-$(MAKE) -s -C tests/unit clean
	-$(MAKE) -s -C tests/objstore clean
	-$(MAKE) -s -C guestfix clean
	rm -rf $(BUILD)/bin

distclean: clean
	rm -rf $(BUILD) config.mk

# ctrwatch: `make run` sets up and runs the sensor, `make test` sets up and runs the tests.
# Quiet by default; `make V=1` prints every command.
ARCH := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/; s/ppc64le/powerpc/; s/mips.*/mips/')
OUT := bpf/.output
CLANG ?= clang
BPFTOOL ?= bpftool
# The kernel types come from a committed vmlinux.h (bpf/vmlinux/<arch>/), not
# from the build machine's kernel: one object, relocated by CO-RE at load, runs
# on every supported kernel. An arch without one dumps the build machine's BTF.
VMLINUX_DIR := $(if $(wildcard bpf/vmlinux/$(ARCH)/vmlinux.h),bpf/vmlinux/$(ARCH),$(OUT))
BPF_CFLAGS := -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH) -I$(VMLINUX_DIR) -Ibpf
BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_HDR := $(wildcard bpf/*.h)
NATIVE_SRC := $(wildcard native/*.cc native/*.c native/*.h) binding.gyp
TS_SRC := $(shell find src bench test/support -name '*.ts' 2>/dev/null) tsconfig.json bench/tsconfig.json
ARGS ?=

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all setup setup-test deps build run test test-unit lint format bench doctor clean vmlinux vmtest vmtest-systemd package test-package readme-proof

all: build

# Debian packages and npm modules; idempotent, quick when all is there already.
# `setup` is what building and running take; `setup-test` adds what the tests drive.
setup deps:
	$(Q)bash scripts/setup.sh run

setup-test:
	$(Q)bash scripts/setup.sh test

build: $(OUT)/ctrwatch.bpf.o $(OUT)/ctrwatch.skel.h build/Release/ctrwatch.node dist/.stamp

$(OUT)/vmlinux.h: | $(OUT)
	$(call msg,BTF,$@ (no committed vmlinux.h for $(ARCH): dumped from this kernel))
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# -g makes the BTF that CO-RE needs, and DWARF beside it that nothing loads. bpftool's linker
# keeps the programs, maps, .BTF and .BTF.ext, and leaves out the DWARF and the relocations
# meant for a linker: more than half of the object, which the addon carries. The linker writes
# its output before it fails, so it writes a temporary file.
$(OUT)/ctrwatch.bpf.o: $(BPF_SRC) $(BPF_HDR) $(VMLINUX_DIR)/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c bpf/ctrwatch.bpf.c -o $(@:.o=.tmp.o)
	$(Q)$(BPFTOOL) gen object $@.tmp $(@:.o=.tmp.o) && mv $@.tmp $@ && rm -f $(@:.o=.tmp.o)

$(OUT)/ctrwatch.skel.h: $(OUT)/ctrwatch.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name ctrwatch_bpf > $@.tmp && mv $@.tmp $@

build/Release/ctrwatch.node: $(OUT)/ctrwatch.skel.h $(NATIVE_SRC) node_modules/.stamp
	$(call msg,ADDON,$@)
	$(Q)npx --no-install node-gyp rebuild $$(sh scripts/nodedir.sh) $(if $(V),,--silent >/dev/null)

node_modules/.stamp: package.json package-lock.json
	$(call msg,NPM,node_modules)
	$(Q)npm ci --no-audit --no-fund --loglevel=error && touch $@

dist/.stamp: $(TS_SRC) node_modules/.stamp
	$(call msg,TSC,dist)
	$(Q)npx --no-install tsc -p tsconfig.json && npx --no-install tsc -p bench/tsconfig.json && touch $@

$(OUT):
	$(Q)mkdir -p $@

# Refresh the committed kernel types from a BTF file (default: this kernel's).
# Take the newest kernel you can: older layouts are reached through CO-RE flavours.
BTF ?= /sys/kernel/btf/vmlinux
vmlinux:
	$(Q)mkdir -p bpf/vmlinux/$(ARCH)
	$(Q)$(BPFTOOL) btf dump file $(BTF) format c > bpf/vmlinux/$(ARCH)/vmlinux.h.tmp && mv bpf/vmlinux/$(ARCH)/vmlinux.h.tmp bpf/vmlinux/$(ARCH)/vmlinux.h

run: setup build
	$(Q)./bin/ctrwatch run $(ARGS)

doctor: setup build
	$(Q)./bin/ctrwatch doctor

test: setup-test build lint
	$(Q)npx --no-install vitest run $(VITEST_ARGS)

# TypeScript: prettier (format) and eslint (eslint.config.mjs); C: clang-format (.clang-format).
TS_LINT := src test bench
TS_GLOBS := "src/**/*.ts" "test/**/*.ts" "bench/**/*.ts"
C_SRC := $(wildcard bpf/*.c bpf/*.h native/*.c native/*.cc native/*.h bench/*.c test/fixtures/bin/*.c)

lint: node_modules/.stamp
	$(call msg,LINT,prettier eslint clang-format)
	$(Q)npx --no-install prettier --check --log-level warn $(TS_GLOBS)
	$(Q)npx --no-install eslint $(TS_LINT)
	$(Q)clang-format --dry-run --Werror $(C_SRC)

# Rewrites the tree in the formatters' style.
format: node_modules/.stamp
	$(Q)npx --no-install prettier --write --log-level warn $(TS_GLOBS)
	$(Q)clang-format -i $(C_SRC)

# No root needed: the BPF object builds from the committed vmlinux.h, and the
# layout test reads its BTF.
test-unit: node_modules/.stamp $(OUT)/ctrwatch.bpf.o
	$(Q)npx --no-install vitest run test/unit

# Boot Debian's kernels under qemu and run doctor and the real-kernel tests in each
# (test/vm/run.sh); writes the table to docs/kernels.md. Its packages (qemu, …) are installed
# by test/vm/setup.sh, never by `make setup`/`make run`.
KERNELS ?= 5.10 6.1 6.12
vmtest: setup-test build
	$(Q)bash test/vm/setup.sh
	$(Q)VMTEST_DOC=$${VMTEST_DOC-docs/kernels.md} VMTEST_COMMAND='make vmtest KERNELS="$(KERNELS)"' bash test/vm/run.sh $(KERNELS)


# A systemd node in a VM (Debian 12 image from mmdebstrap, qemu): Docker, Podman and containerd on
# the systemd cgroup driver. Installs its own test-only host packages (qemu-system-x86, mmdebstrap).
vmtest-systemd: setup-test build
	$(Q)bash test/vm/systemd-vm.sh $(VMTEST_ARGS)

# Three artifacts in pkg/ (git-ignored; not in build/, which node-gyp rebuild empties) by scripts/package/: the single executable `ctrwatch` (Node's single
# executable application: Node, the bundled sensor, its addon with the BPF object), the .deb
# (that executable, a systemd unit, /etc/ctrwatch/policy.yaml) and the OCI image (a Debian 12
# root made by mmdebstrap with the .deb installed, as a `docker save` archive). As root: the
# image's root is made with mmdebstrap, which `scripts/package/debian-root.sh` installs if missing.
PKG := pkg
PKG_VERSION = $(shell node -p 'require("./package.json").version')
PKG_ARCH = $(shell dpkg --print-architecture)
package: build
	$(call msg,SEA,$(PKG)/ctrwatch)
	$(Q)node scripts/package/sea.mjs $(PKG)/ctrwatch $(if $(V),,2>/dev/null)
	$(call msg,DEB,$(PKG)/ctrwatch_$(PKG_VERSION)_$(PKG_ARCH).deb)
	$(Q)bash scripts/package/deb.sh $(PKG)/ctrwatch $(PKG) >/dev/null
	$(call msg,IMAGE,$(PKG)/ctrwatch-$(PKG_VERSION)-image.tar)
	$(Q)node scripts/package/image.mjs $(PKG)/ctrwatch_$(PKG_VERSION)_$(PKG_ARCH).deb $(PKG)/ctrwatch-$(PKG_VERSION)-image.tar $(if $(V),,2>/dev/null)

# Installs and runs each artifact (test/package/): the .deb and the executable in a clean Debian 12
# root, the image under containerd and dockerd with the DaemonSet's privileges. A few minutes.
test-package: setup-test package
	$(Q)CTRWATCH_TEST_PACKAGE=1 npx --no-install vitest run test/package $(VITEST_ARGS)

# The README's two commands in a clean Debian 12 root (scripts/package/readme-proof.sh).
readme-proof:
	$(Q)bash scripts/package/readme-proof.sh

bench: setup-test build
	$(Q)node dist/bench/run.js

clean:
	$(Q)rm -rf $(OUT) build dist pkg

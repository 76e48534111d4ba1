# ctrwatch: `make run` sets up and runs the sensor, `make test` sets up and runs the tests.
# Quiet by default; `make V=1` prints every command.
ARCH := $(shell uname -m | sed 's/x86_64/x86/; s/aarch64/arm64/; s/ppc64le/powerpc/; s/mips.*/mips/')
OUT := bpf/.output
CLANG ?= clang
BPFTOOL ?= bpftool
BPF_CFLAGS := -g -O2 -Wall -target bpf -D__TARGET_ARCH_$(ARCH) -I$(OUT) -Ibpf
BPF_SRC := $(wildcard bpf/*.bpf.c)
BPF_HDR := $(wildcard bpf/*.h)
NATIVE_SRC := $(wildcard native/*.cc native/*.c native/*.h) binding.gyp
TS_SRC := $(shell find src bench -name '*.ts' 2>/dev/null) tsconfig.json
ARGS ?=

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all setup deps build run test test-unit bench doctor clean vmtest-systemd

all: build

# Debian packages and npm modules; idempotent, quick when all is there already.
setup deps:
	$(Q)bash scripts/setup.sh

build: $(OUT)/ctrwatch.bpf.o $(OUT)/ctrwatch.skel.h build/Release/ctrwatch.node dist/.stamp

$(OUT)/vmlinux.h: | $(OUT)
	$(call msg,BTF,$@)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUT)/ctrwatch.bpf.o: $(BPF_SRC) $(BPF_HDR) $(OUT)/vmlinux.h | $(OUT)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c bpf/ctrwatch.bpf.c -o $@

$(OUT)/ctrwatch.skel.h: $(OUT)/ctrwatch.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name ctrwatch_bpf > $@.tmp && mv $@.tmp $@

build/Release/ctrwatch.node: $(OUT)/ctrwatch.skel.h $(NATIVE_SRC) node_modules/.stamp
	$(call msg,ADDON,$@)
	$(Q)npx --no-install node-gyp rebuild $(if $(V),,--silent >/dev/null)

node_modules/.stamp: package.json package-lock.json
	$(call msg,NPM,node_modules)
	$(Q)npm ci --no-audit --no-fund --loglevel=error && touch $@

dist/.stamp: $(TS_SRC) node_modules/.stamp
	$(call msg,TSC,dist)
	$(Q)npx --no-install tsc -p tsconfig.json && touch $@

$(OUT):
	$(Q)mkdir -p $@

run: setup build
	$(Q)./bin/ctrwatch run $(ARGS)

doctor: setup build
	$(Q)./bin/ctrwatch doctor

test: setup build
	$(Q)npx --no-install vitest run $(VITEST_ARGS)

test-unit: node_modules/.stamp
	$(Q)npx --no-install vitest run test/unit

# A systemd node in a VM (Debian 12 image from mmdebstrap, qemu): Docker, Podman and containerd on
# the systemd cgroup driver. Installs its own test-only host packages (qemu-system-x86, mmdebstrap).
vmtest-systemd: setup build
	$(Q)bash test/vm/systemd-vm.sh $(VMTEST_ARGS)

bench: setup build
	$(Q)node dist/bench/run.js

clean:
	$(Q)rm -rf $(OUT) build dist

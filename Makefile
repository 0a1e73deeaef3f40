# CSDformer on microcontrollers: the two commands are `make demo` and `make test`.
# Both install what they need (Debian packages, the Python virtualenv) idempotently.

SHELL := /bin/bash
.DEFAULT_GOAL := help

REQUIREMENTS := Toolchain/requirements.txt
REQUIREMENTS_NODEPS := Toolchain/requirements-nodeps.txt
VENV ?= $(HOME)/.cache/csdformer/venv-$(shell cat $(REQUIREMENTS) $(REQUIREMENTS_NODEPS) | sha1sum | cut -c1-12)
PYTHON := $(VENV)/bin/python
PY := OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} PYTHONPATH=$(CURDIR)/Toolchain $(PYTHON)

REFERENCE_MODEL := Toolchain/models/fmnist-tiny
MODEL ?= $(REFERENCE_MODEL)
CONFIG ?= Toolchain/configs/fmnist-tiny.json
OUT ?= runs/fmnist-tiny
LIMIT ?= 1000
# the test split verify and cross-check run: fashion-mnist or mnist (IDX files), in DATA_DIR
# (default: the data set's installed folder)
DATA ?= fashion-mnist
DATA_DIR ?=
DATA_ARGS = --data $(DATA) $(if $(DATA_DIR),--data-dir $(DATA_DIR))
DEMO_IMAGES ?= 100
# extra command-line options for the Python module a target runs (train, evaluate, report, cross-check,
# bench-host, bench-peers, bench-training), e.g. make train ARGS="--float-epochs 1 --qat-epochs 1"
ARGS ?=

BUILD := .build-embedded
CSDPACK := .build/debug/csdpack
CSDPACK_RELEASE := .build/release/csdpack
# Everything made from a model lives in a folder named after it (its C symbol: the export
# folder's name with '-' as '_'), so a MODEL=... run never changes what the default targets run.
MODEL_NAME := $(subst -,_,$(notdir $(abspath $(MODEL))))
MODEL_BUILD := $(BUILD)/models/$(MODEL_NAME)
PACKED := $(MODEL_BUILD)/$(MODEL_NAME).csd
# More `csdpack convert` options for $(PACKED), e.g. --low-ram; a change repacks (the stamp).
# run-microbit sets them for the reference model, in a folder of its own (MICROBIT_PACK_FLAGS,
# Firmware/firmware.mk).
PACK_FLAGS ?=
GOLDEN := $(MODEL_BUILD)/golden
EMBED_TARGETS := x86_64 armv7em-soft armv7em-hard armv6m riscv32
FLAGS_x86_64 := x86_64-unknown-linux-gnu
FLAGS_armv7em-soft := armv7em-none-none-eabi -Xcc -mfloat-abi=soft -Xcc -mcpu=cortex-m4
FLAGS_armv7em-hard := armv7em-none-none-eabi -Xcc -mfloat-abi=hard -Xcc -mfpu=fpv4-sp-d16 -Xcc -mcpu=cortex-m4
FLAGS_armv6m := armv6m-none-none-eabi -Xcc -mcpu=cortex-m0plus
FLAGS_riscv32 := riscv32-none-none-eabi
RUNTIME_SOURCES := $(wildcard Sources/CSDFormat/*.swift Sources/CSDRuntime/*.swift Sources/CSDRuntime/Kernels/*.swift Sources/CSDMachine/include/* Include/csd.h Include/module.modulemap)
SWIFT_SOURCES := $(shell find Sources Include -name '*.swift' -o -name '*.h' -o -name '*.modulemap') Package.swift
# before every swift build: a changed C header rebuilds every module that may inline it
SWIFTPM_FRESH := Toolchain/scripts/swiftpm-fresh.sh
# The SwiftPM builds (csdpack, the Swift tests) for this machine's CPU: with AVX2 where it has it, the
# x86-64 twin of the block dot multiplies 16 lanes per instruction (docs/KERNELS.md, "x86-64 twin");
# without these flags (a plain `swift build`) the twin uses SSE2, which every x86-64 has. The same
# flags on every swift build here, so no target rebuilds another's products. Where the machine also
# has a byte dot-product instruction (AVX-VNNI, or AVX-512 VNNI with 256-bit vectors), the twins'
# multiply-adds are one VPDPBUSD / VPDPWSSD each (SWIFT_VNNI_FLAGS; docs/KERNELS.md).
HOST_CPU_FLAGS := $(shell uname -m | grep -qx x86_64 && grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
SWIFT_AVX2_FLAGS := $(if $(filter avx2,$(HOST_CPU_FLAGS)),-Xswiftc -target-cpu -Xswiftc haswell -Xcc -mavx2)
SWIFT_VNNI_FLAGS := $(if $(SWIFT_AVX2_FLAGS),$(if $(filter avx_vnni,$(HOST_CPU_FLAGS)),-Xcc -mavxvnni,$(if $(and $(filter avx512_vnni,$(HOST_CPU_FLAGS)),$(filter avx512vl,$(HOST_CPU_FLAGS))),-Xcc -mavx512vnni -Xcc -mavx512vl)))
SWIFT_HOST_FLAGS ?= $(SWIFT_AVX2_FLAGS) $(SWIFT_VNNI_FLAGS)

.PHONY: help deps demo demo-host test-firmware test-firmware-case check-packer cmake-example test test-swift test-python test-c test-hardening train report evaluate embedded size cross-check verify testdata fuzz fuzz-smoke bench-host bench-peers bench-training check-budgets install test-install

help:
	@echo "make demo         the reference model in the Cortex-M4 firmware under QEMU (see README)"
	@echo "make demo-host    the same runtime on the host through the C API, both modes"
	@echo "make bench-host   LIMIT=N  host runtime vs NumPy reference vs PyTorch, timed in one run"
	@echo "make bench-firmware  instruction counts per inference, MAC and synaptic op; sizes; stack"
	@echo "make bench-peers  LIMIT=N  ours vs ONNX Runtime (fused) and a SpikingJelly simulation (spiking), batch 1 on one thread and best batch"
	@echo "make bench-training  EPOCHS_FLOAT=N EPOCHS_QAT=N  conversion vs direct training of the same model: time, RSS, accuracy"
	@echo "make test         every test suite (Swift, cmocka, Python)"
	@echo "make train        CONFIG=... OUT=... [ARGS=...]  train and export a model (resumes; ARGS: more options)"
	@echo "make report       MODEL=...            training curves and spike-count histograms (PNG)"
	@echo "make evaluate     MODEL=...            fake-quant accuracy of an export"
	@echo "make verify       LIMIT=N              packed model on the host runtime: accuracy, agreement, fused = spiking"
	@echo "make cross-check  LIMIT=N              Swift runtime vs the NumPy reference, logit by logit"
	@echo "make embedded     the Embedded Swift runtime for every target; make size: code size per target"
	@echo "make check-budgets  code size, heap/float symbols and arena bytes against Tests/Budgets/budgets.txt"
	@echo "make check-packer   every test-plan model packed by csdpack against an independent Python fold, byte for byte"
	@echo "make fuzz         FUZZ_SECONDS=N [FUZZ_SEED=N]  fuzz the image parser and runtime (ASan; half with its x86-64 twins, half with its portable loops); make fuzz-smoke: 60 s"
	@echo "make testdata     regenerate Tests/TestData from Tests/TestPlan/plan.json (NumPy reference)"
	@echo "make install      PREFIX=dir  csdpack, libcsd.a per target, csd.h and the CMake package (default $(PREFIX))"
	@echo "make deps         install Debian packages and the virtualenv ($(VENV))"

deps:
	@Toolchain/scripts/check-swift.sh
	@Toolchain/scripts/install-deps.sh $(VENV) $(REQUIREMENTS) $(REQUIREMENTS_NODEPS)

# ---- host builds -------------------------------------------------------------

$(CSDPACK): $(SWIFT_SOURCES)
	@$(SWIFTPM_FRESH)
	swift build $(SWIFT_HOST_FLAGS) --product csdpack
	@touch $@

$(CSDPACK_RELEASE): $(SWIFT_SOURCES)
	@$(SWIFTPM_FRESH)
	swift build $(SWIFT_HOST_FLAGS) -c release --product csdpack
	@touch $@

$(MODEL_BUILD)/pack-flags.stamp: FORCE
	@mkdir -p $(@D)
	@echo '$(PACK_FLAGS)' > $@.tmp; cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(PACKED): $(CSDPACK) $(MODEL)/model.safetensors $(MODEL)/model.json $(MODEL_BUILD)/pack-flags.stamp
	@mkdir -p $(dir $@)
	$(CSDPACK) convert $(MODEL)/model.safetensors --config $(MODEL)/model.json -o $@ \
	  --c-source $(MODEL_BUILD)/$(MODEL_NAME).c --c-header $(MODEL_BUILD)/$(MODEL_NAME).h --symbol $(MODEL_NAME) $(PACK_FLAGS)

$(GOLDEN)/logits_fused.i32: $(PACKED) Toolchain/csdformer/reference.py Toolchain/csdformer/golden.py
	$(PY) -m csdformer.golden $(PACKED) --count 32 --out $(GOLDEN)

# ---- Embedded Swift runtime, one static library per target --------------------

$(BUILD)/%/libcsd.a: $(RUNTIME_SOURCES) Toolchain/cross/build-runtime.sh
	@Toolchain/cross/build-runtime.sh $(word 1,$(FLAGS_$*)) $(BUILD)/$* $(wordlist 2,99,$(FLAGS_$*))

embedded: $(foreach t,$(EMBED_TARGETS),$(BUILD)/$(t)/libcsd.a)

size: embedded
	@set -o pipefail; Toolchain/cross/size-report.sh $(BUILD) $(EMBED_TARGETS) | tee $(BUILD)/size-report.txt

# Budgets as tests (Tests/Budgets/budgets.txt): runtime .text per target, no heap or float
# symbols, the reference model's arena bytes per mode. Fails when a measured value passes its line.
BUDGETS := Tests/Budgets/budgets.txt

# The packer against a second implementation of the fold and quantization (Python, from
# docs/MODEL_EXPORT.md, SEMANTICS.md and FORMAT.md alone), byte for byte, on every test-plan model.
check-packer: deps $(CSDPACK)
	$(PY) -m csdformer.packcheck --plan Tests/TestPlan/plan.json --csdpack $(CSDPACK)

check-budgets: size $(PACKED)
	@$(CSDPACK) inspect --json $(PACKED) > $(BUILD)/inspect.json
	@python3 Tests/Budgets/check.py $(BUDGETS) --size-report $(BUILD)/size-report.txt --inspect $(BUILD)/inspect.json

# ---- the two commands ----------------------------------------------------------

# The main job: the reference model in the Cortex-M4 firmware under QEMU (Firmware/firmware.mk).
demo: deps run-m4

# The same runtime on the host through the C API (x86_64 Embedded build), on DEMO_IMAGES images.
demo-host: deps $(BUILD)/x86_64/libcsd.a $(PACKED) $(GOLDEN)/logits_fused.i32
	@$(PY) -m csdformer.golden $(PACKED) --count $(DEMO_IMAGES) --out $(BUILD)/demo-data > /dev/null
	@cc -std=c99 -D_ISOC11_SOURCE -O2 -Wall -Wextra -Werror -IInclude Firmware/host-linux/demo.c $(BUILD)/x86_64/libcsd.a -o $(BUILD)/demo
	@$(BUILD)/demo $(PACKED) $(BUILD)/demo-data

test: deps test-swift test-c test-python check-packer test-hardening test-firmware check-budgets fuzz-smoke

# The firmware under QEMU on every core (Cortex-M4, RV32, the Cortex-M0+ build), each running
# fused, spiking at D = T (count path) and at D < T (event path): fails on any logit that
# differs from the NumPy reference; the Swift-main example (Firmware/swift-main) the same way on
# the Cortex-M4. The reference model on the BBC micro:bit (16 KB of RAM), fused plan only (fused
# and spiking at D = T on the count path), packed with MICROBIT_PACK_FLAGS (--low-ram: attention
# head by head, a fused arena of 12,240 B) into fmnist_tiny_lowram (Firmware/firmware.mk). Then
# all four on a model of another shape, and that model on the
# micro:bit in both plans. Then the CMake integration, in-tree and installed.
test-firmware: deps run-m4 run-riscv run-m0 run-swift-main run-microbit test-firmware-case cmake-example test-install

# A model with 16-bit trains (T = 12 > 8), a 3 x 3 max-pool and an odd token count: the test
# plan's synthetic case, exported from its seed, on random images. On the micro:bit its fused plan
# is the fused pass alone (T > 8: no count path, the spiking pass is skipped and the runner checks
# why), so it also runs there with all four passes (FIRMWARE_PLAN=all: its spiking arena fits).
FW_CASE := synthetic_wide_trains_pool3
FW_CASE_EXPORT := $(BUILD)/exports/$(FW_CASE)

$(FW_CASE_EXPORT)/model.safetensors: Tests/TestPlan/plan.json Toolchain/csdformer/testdata.py Toolchain/csdformer/model.py Toolchain/csdformer/export.py
	$(PY) -m csdformer.testdata --plan Tests/TestPlan/plan.json --export-case $(FW_CASE) --out $(FW_CASE_EXPORT)

test-firmware-case: deps $(FW_CASE_EXPORT)/model.safetensors
	@$(MAKE) --no-print-directory run-m4 run-riscv run-m0 run-swift-main run-microbit MODEL=$(FW_CASE_EXPORT) FIRMWARE_DATA=random
	@$(MAKE) --no-print-directory run-microbit MODEL=$(FW_CASE_EXPORT) FIRMWARE_DATA=random FIRMWARE_PLAN=all

# The CMake integration, in-tree (Toolchain/cross/cmake/CSDRuntimeConfig.cmake, which has make
# bring the runtime and csdpack up to date at every build; $(CSDPACK) here too for a build folder
# configured with -DCSDPACK): configure, build and run the example firmware; its logits must equal
# the NumPy reference's on the same input and packed model.
CMAKE_QEMU_M4 := timeout 60 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial stdio \
  -semihosting-config enable=on,target=native -kernel
cmake-example: deps $(CSDPACK)
	cmake -S Firmware/cmake-example -B $(BUILD)/cmake-example -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/Toolchain/cross/cmake/cortex-m4.cmake > /dev/null
	cmake --build $(BUILD)/cmake-example
	set -o pipefail; $(CMAKE_QEMU_M4) $(BUILD)/cmake-example/app.elf | tee $(BUILD)/cmake-example/uart.txt
	$(PY) Tests/Firmware/check_cmake_example.py $(BUILD)/cmake-example/csd-model/fmnist_tiny.csd $(BUILD)/cmake-example/uart.txt

# ---- install: make install PREFIX=dir (docs/INTEGRATION.md) ------------------------------------
# PREFIX/bin/csdpack (release build), PREFIX/lib/<target>/libcsd.a for every EMBED_TARGETS,
# PREFIX/include/csd.h, PREFIX/lib/cmake/CSDRuntime/ (the package, its version file and the
# Cortex-M4 toolchain file). Relocatable (the package finds everything relative to itself);
# install -C leaves files that are already the same untouched, so a second install changes nothing.
PREFIX ?= /usr/local
CMAKE_PACKAGE_FILES := Toolchain/cross/cmake/CSDRuntimeConfig.cmake Toolchain/cross/cmake/CSDRuntimeConfigVersion.cmake \
  Toolchain/cross/cmake/cortex-m4.cmake
install: $(CSDPACK_RELEASE) embedded
	install -d "$(PREFIX)/bin" "$(PREFIX)/include" "$(PREFIX)/lib/cmake/CSDRuntime" $(foreach t,$(EMBED_TARGETS),"$(PREFIX)/lib/$(t)")
	install -C -m 755 $(CSDPACK_RELEASE) "$(PREFIX)/bin/csdpack"
	install -C -m 644 Include/csd.h "$(PREFIX)/include/csd.h"
	$(foreach t,$(EMBED_TARGETS),install -C -m 644 $(BUILD)/$(t)/libcsd.a "$(PREFIX)/lib/$(t)/libcsd.a" && ) true
	install -C -m 644 $(CMAKE_PACKAGE_FILES) "$(PREFIX)/lib/cmake/CSDRuntime/"
	@echo "install: $(PREFIX) (find_package(CSDRuntime) with -DCMAKE_PREFIX_PATH=$(PREFIX))"

# The installed package from outside the repository: install into a scratch prefix (twice: the
# second changes nothing), move it (relocatable), then build the out-of-tree project Tests/Install
# against it for the host (run natively) and for the Cortex-M4 (the installed toolchain file; run
# under QEMU); both runs' logits must equal the NumPy reference's.
INSTALL_TEST := $(CURDIR)/$(BUILD)/test-install
INSTALL_PREFIX := $(INSTALL_TEST)/moved-prefix
INSTALL_ARGS := -DCMAKE_PREFIX_PATH=$(INSTALL_PREFIX) -DCSD_EXAMPLE_MODEL=$(CURDIR)/Toolchain/models/fmnist-tiny
test-install: deps
	rm -rf $(INSTALL_TEST)
	$(MAKE) --no-print-directory install PREFIX=$(INSTALL_TEST)/prefix > /dev/null
	find $(INSTALL_TEST)/prefix -type f -printf '%P %T@\n' | sort > $(INSTALL_TEST)/first.txt
	$(MAKE) --no-print-directory install PREFIX=$(INSTALL_TEST)/prefix > /dev/null
	find $(INSTALL_TEST)/prefix -type f -printf '%P %T@\n' | sort | diff $(INSTALL_TEST)/first.txt -
	mv $(INSTALL_TEST)/prefix $(INSTALL_PREFIX)
	cmake -S Tests/Install -B $(INSTALL_TEST)/host $(INSTALL_ARGS) > /dev/null
	cmake --build $(INSTALL_TEST)/host
	set -o pipefail; $(INSTALL_TEST)/host/app | tee $(INSTALL_TEST)/host/out.txt
	$(PY) Tests/Firmware/check_cmake_example.py $(INSTALL_TEST)/host/csd-model/csd_model.csd $(INSTALL_TEST)/host/out.txt \
	  --label test-install/host
	cmake -S Tests/Install -B $(INSTALL_TEST)/m4 $(INSTALL_ARGS) -DCSD_EXAMPLE_BOARD_PORT=$(CURDIR)/Firmware \
	  -DCMAKE_TOOLCHAIN_FILE=$(INSTALL_PREFIX)/lib/cmake/CSDRuntime/cortex-m4.cmake > /dev/null
	cmake --build $(INSTALL_TEST)/m4
	set -o pipefail; $(CMAKE_QEMU_M4) $(INSTALL_TEST)/m4/app | tee $(INSTALL_TEST)/m4/uart.txt
	$(PY) Tests/Firmware/check_cmake_example.py $(INSTALL_TEST)/m4/csd-model/csd_model.csd $(INSTALL_TEST)/m4/uart.txt \
	  --label test-install/cortex-m4

ASAN_BUILD := $(CURDIR)/.build-asan
ASAN_BUILD_PLAIN := $(CURDIR)/.build-asan-plain

# The reference model packed with attention units (csdpack convert --low-ram; docs/FORMAT.md).
LOWRAM_PACKED := $(BUILD)/hardening/$(MODEL_NAME)_lowram.csd
$(LOWRAM_PACKED): $(CSDPACK) $(MODEL)/model.safetensors $(MODEL)/model.json
	@mkdir -p $(dir $@)
	$(CSDPACK) convert $(MODEL)/model.safetensors --config $(MODEL)/model.json -o $@ --low-ram > /dev/null

# The corruption matrix on the synthetic images and the reference model's image (its header and
# op table): natively, under valgrind (the Embedded build) and under AddressSanitizer (ASan builds
# of the runtime with its x86-64 twins and with its portable loops), those with one bit per byte of
# the reference image's header and op table (each flip there checks a 157 KB CRC; the native run
# flips all eight). The same image with attention units natively and under ASan with the twins
# (valgrind adds about 4 minutes; run it by hand: valgrind ... $(LOWRAM_PACKED) --sampled).
test-hardening: deps $(BUILD)/x86_64/libcsd.a $(PACKED) $(LOWRAM_PACKED)
	cc -std=c99 -D_ISOC11_SOURCE -O2 -Wall -Wextra -Werror -pedantic -IInclude -ITests/TestData Tests/C/test_corruption.c \
	  $(BUILD)/x86_64/libcsd.a -lcmocka -o $(BUILD)/test_corruption
	$(BUILD)/test_corruption $(PACKED)
	$(BUILD)/test_corruption $(LOWRAM_PACKED)
	valgrind -q --error-exitcode=9 $(BUILD)/test_corruption $(PACKED) --sampled
	@Tests/Fuzz/build.sh $(ASAN_BUILD) asan
	$(ASAN_BUILD)/test_corruption_asan $(PACKED) --sampled
	$(ASAN_BUILD)/test_corruption_asan $(LOWRAM_PACKED) --sampled
	@Tests/Fuzz/build.sh $(ASAN_BUILD_PLAIN) asan plain
	$(ASAN_BUILD_PLAIN)/test_corruption_asan $(PACKED) --sampled

FUZZ_BUILD := $(CURDIR)/.build-fuzz
FUZZ_BUILD_PLAIN := $(CURDIR)/.build-fuzz-plain
FUZZ_SECONDS ?= 3600
FUZZ_SEED ?=

$(FUZZ_BUILD)/fuzz-image: $(RUNTIME_SOURCES) Tests/Fuzz/FuzzImage.swift Tests/Fuzz/build.sh
	@Tests/Fuzz/build.sh $(FUZZ_BUILD) fuzz

$(FUZZ_BUILD_PLAIN)/fuzz-image: $(RUNTIME_SOURCES) Tests/Fuzz/FuzzImage.swift Tests/Fuzz/build.sh
	@Tests/Fuzz/build.sh $(FUZZ_BUILD_PLAIN) fuzz plain

# About 60 s of fuzzing, part of make test; `make fuzz` runs FUZZ_SECONDS (default an hour). Half the
# time on the runtime with its x86-64 twins, half on its portable loops (docs/KERNELS.md).
# The corpus: the golden images and the reference model with attention units (FUZZ_EXTRA_SEEDS).
FUZZ_RUN := FUZZ_EXTRA_SEEDS=$(CURDIR)/$(LOWRAM_PACKED) Tests/Fuzz/run.sh
fuzz-smoke: $(FUZZ_BUILD)/fuzz-image $(FUZZ_BUILD_PLAIN)/fuzz-image $(LOWRAM_PACKED)
	@$(FUZZ_RUN) $(FUZZ_BUILD) 30 $(FUZZ_SEED)
	@$(FUZZ_RUN) $(FUZZ_BUILD_PLAIN) 30 $(FUZZ_SEED)

fuzz: $(FUZZ_BUILD)/fuzz-image $(FUZZ_BUILD_PLAIN)/fuzz-image $(LOWRAM_PACKED)
	@$(FUZZ_RUN) $(FUZZ_BUILD) $$(( $(FUZZ_SECONDS) / 2 )) $(FUZZ_SEED)
	@$(FUZZ_RUN) $(FUZZ_BUILD_PLAIN) $$(( $(FUZZ_SECONDS) - $(FUZZ_SECONDS) / 2 )) $(FUZZ_SEED)

# On a VNNI machine the kernel suites run a second time in the AVX2 form without VNNI (its own build
# folder), so both forms of the x86-64 twins are checked against the naive loops wherever tests run.
test-swift:
	@$(SWIFTPM_FRESH)
	swift build $(SWIFT_HOST_FLAGS) --build-tests
	swift test $(SWIFT_HOST_FLAGS) --skip-build
ifneq ($(strip $(SWIFT_VNNI_FLAGS)),)
	@$(SWIFTPM_FRESH) .build-avx2
	swift build $(SWIFT_AVX2_FLAGS) --build-tests --build-path .build-avx2
	swift test $(SWIFT_AVX2_FLAGS) --skip-build --build-path .build-avx2 --filter 'KernelTests|EquivalenceTests|GoldenTests'
endif

test-c: deps $(BUILD)/x86_64/libcsd.a $(GOLDEN)/logits_fused.i32
	@for cc in gcc clang; do $$cc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -x c Include/csd.h || exit 1; done
	cc -std=c99 -D_ISOC11_SOURCE -Wall -Wextra -Werror -pedantic -IInclude Tests/C/test_csd_api.c \
	  $(BUILD)/x86_64/libcsd.a -lcmocka -o $(BUILD)/test_csd_api
	$(BUILD)/test_csd_api $(PACKED) $(GOLDEN)
	cc -std=c99 -D_ISOC11_SOURCE -Wall -Wextra -Werror -pedantic -IInclude -ITests/TestData Tests/C/test_golden.c \
	  $(BUILD)/x86_64/libcsd.a -lcmocka -o $(BUILD)/test_golden
	$(BUILD)/test_golden

test-python: deps $(CSDPACK)
	CSDPACK=$(CURDIR)/$(CSDPACK) $(PY) -m pytest Tests/Python -q -p no:cacheprovider

# ---- longer runs (not part of make test) ------------------------------------------

verify: deps $(CSDPACK_RELEASE) $(PACKED)
	$(CSDPACK_RELEASE) verify $(PACKED) $(DATA_ARGS) --limit $(LIMIT) --mode both \
	  $(if $(filter fashion-mnist,$(DATA)),$(if $(wildcard $(MODEL)/test_pred.npy),--reference $(MODEL)/test_pred.npy))

cross-check: deps $(CSDPACK_RELEASE) $(PACKED)
	$(PY) -m csdformer.crosscheck $(PACKED) --csdpack $(CSDPACK_RELEASE) --limit $(LIMIT) $(DATA_ARGS) $(ARGS)

testdata: deps $(CSDPACK)
	$(PY) -m csdformer.testdata --plan Tests/TestPlan/plan.json --out Tests/TestData --csdpack $(CSDPACK)

bench-host: deps $(CSDPACK_RELEASE) $(PACKED)
	$(PY) -m csdformer.benchhost $(PACKED) --export $(MODEL) --csdpack $(CSDPACK_RELEASE) --limit $(LIMIT) $(ARGS)

# The runtime against peer engines on the same LIMIT images (csdformer.benchpeers): fused against ONNX Runtime
# on the fake-quant model's torch.onnx export, spiking at D = T against the packed network simulated step by
# step in SpikingJelly; each at batch 1 on one thread and at its best batch on all cores; checks every image.
bench-peers: deps $(CSDPACK_RELEASE) $(PACKED)
	$(PY) -m csdformer.benchpeers $(PACKED) --export $(MODEL) --csdpack $(CSDPACK_RELEASE) --limit $(LIMIT) $(ARGS)

train: deps
	@$(PY) -m csdformer.train --config $(CONFIG) --out $(OUT) $(ARGS)

# Training cost, conversion against direct training (csdformer.benchtrain): both routes trained from CONFIG
# with EPOCHS_FLOAT + EPOCHS_QAT epochs (the direct route: the sum, same schedule), one process each; the
# conversion route's accuracy is its packed image's (csdpack verify). A reduced budget by default: 1 + 1
# epochs (docs/TRAINING.md); writes $(BENCH_JSON) and BENCH_OUT/{conversion,direct}.
EPOCHS_FLOAT ?= 1
EPOCHS_QAT ?= 1
BENCH_OUT ?= runs/bench-training
BENCH_JSON ?= $(MODEL)/training_cost.json
bench-training: deps $(CSDPACK_RELEASE)
	$(PY) -m csdformer.benchtrain --config $(CONFIG) --float-epochs $(EPOCHS_FLOAT) --qat-epochs $(EPOCHS_QAT) \
	  --csdpack $(CSDPACK_RELEASE) --out $(BENCH_OUT) --json $(BENCH_JSON) \
	  --make-command "make bench-training EPOCHS_FLOAT=$(EPOCHS_FLOAT) EPOCHS_QAT=$(EPOCHS_QAT)$(if $(ARGS), ARGS='$(ARGS)')" $(ARGS)

report: deps
	@$(PY) -m csdformer.report --model $(MODEL) --out $(MODEL)/report $(ARGS)

evaluate: deps
	@$(PY) -m csdformer.evaluate --model $(MODEL) $(ARGS)

include Firmware/firmware.mk

# Bare-metal firmware: the packed reference model on QEMU boards, bit-exact
# against the NumPy reference, with exact guest instruction counts.
# Included from the top-level Makefile (run from the repository root); it uses
# BUILD, PACKED and PY from there and the prerequisite rules for
# $(BUILD)/<target>/libcsd.a and $(PACKED) (whose rule also writes the model's
# .c/.h).
#
#   make firmware-m4     Cortex-M4F ELF for QEMU mps2-an386 (+ .map, .dis)
#   make firmware-riscv  rv32imac ELF for QEMU virt (-bios none)
#   make firmware-m0     Cortex-M0+ (armv6-m) ELF, mps2-an385 layout; sizes and fit on a 16 KB micro:bit
#   make firmware-microbit  the micro:bit ELF (fused plan only) and its RAM table against 16 KB
#   make run-m4          build and run under QEMU with the instruction counter; fails on any logit mismatch
#   make run-riscv       the same on riscv32 virt
#   make run-m0          the armv6-m build on mps2-an385 (a Cortex-M3 executing the v6-M code)
#   make run-microbit    the armv6-m build on the BBC micro:bit (QEMU -M microbit: Cortex-M0, 16 KB RAM),
#                        fused plan only; the model must fit its RAM (the link says by how much it does
#                        not, and the RAM table after it what the build needs); the reference model is
#                        packed with MICROBIT_PACK_FLAGS (default --low-ram) into a folder of its own
#   make run-swift-main  the Swift-main example (Firmware/swift-main: main in Embedded Swift, through
#                        the runtime's Swift API) on mps2-an386, the same passes and checks as run-m4
#   make bench-firmware  run the three boards and print the benchmark table
#
# The firmware runs the model MODEL (default the reference model; built in its
# folder $(MODEL_BUILD)) in four passes: fused, spiking at FIRMWARE_DELAY (default
# T: the count path), spiking at FIRMWARE_EVENT_DELAY (default T // 2, below T:
# the per-spike event path) and spiking at FIRMWARE_DELAY on the event path
# (CSD_PATH_EVENT), each bit-checked against the NumPy reference.
# FIRMWARE_PLAN=fused builds the fused-plan-only variant (main.c FW_FUSED_PLAN_ONLY; always on the
# micro:bit): the static arena is the fused need and only the passes that run in it run, fused and
# spiking at FIRMWARE_DELAY on the count path (D = T with T <= 8); the event path needs the spiking
# arena and is not built in. Those runs also print the RAM table against a 16 KB micro:bit.
# FIRMWARE_IMAGES golden images are compiled into the firmware (default 8), the
# first test images of FIRMWARE_DATA (fashion-mnist, or random: seeded pixels in
# the model's input shape, for models of other shapes).

BUILD ?= .build-embedded
REFERENCE_MODEL ?= Toolchain/models/fmnist-tiny
MODEL ?= $(REFERENCE_MODEL)
MODEL_NAME ?= fmnist_tiny
MODEL_BUILD ?= $(BUILD)/models/$(MODEL_NAME)
PACKED ?= $(MODEL_BUILD)/$(MODEL_NAME).csd
FIRMWARE_IMAGES ?= 8
FIRMWARE_DELAY ?=
FIRMWARE_EVENT_DELAY ?=
FIRMWARE_DATA ?= fashion-mnist
FIRMWARE_TIMEOUT ?= 120
# empty (or all): the four passes; fused: the fused-plan-only variant (the micro:bit's default)
FIRMWARE_PLAN ?=
# the micro:bit's part for the RAM report (run.py --ram-report PART:FLASH:RAM)
FW_MICROBIT_PART := microbit:262144:16384
FW_PYTHON ?= python3
# extra counter-plugin arguments; exact=on counts per instruction (slower), a self-check
FIRMWARE_PLUGIN_ARGS ?=

FW_DIR := Firmware
FW_OUT := $(MODEL_BUILD)/firmware
FW_GOLDEN := $(FW_OUT)/golden
FW_MODEL_C := $(MODEL_BUILD)/$(MODEL_NAME).c
FW_MODEL_H := $(MODEL_BUILD)/$(MODEL_NAME).h
FW_PLUGIN := $(FW_OUT)/plugin/counter.so
FW_RUN := $(FW_PYTHON) $(FW_DIR)/common/run.py

FW_CFLAGS := -std=c99 -Os -g -ffreestanding -fno-builtin -fno-strict-aliasing -ffunction-sections -fdata-sections \
  -Wall -Wextra -Werror -IInclude -I$(FW_DIR)/common -I$(MODEL_BUILD) -I$(FW_GOLDEN) \
  -DFW_MODEL=$(MODEL_NAME) -DFW_MODEL_HEADER='"$(MODEL_NAME).h"'
FW_HEADERS := Include/csd.h $(FW_DIR)/common/board.h $(FW_DIR)/common/fmt.h $(FW_MODEL_H) $(FW_GOLDEN)/golden.h
FW_COMMON := $(FW_DIR)/common/main.c $(FW_DIR)/common/fmt.c $(FW_DIR)/common/libc.c $(FW_MODEL_C)
FW_HEAP_RE := ^(malloc|free|calloc|realloc|posix_memalign|aligned_alloc|memalign|swift_allocObject|swift_slowAlloc)$$

# ---- per target: compiler, flags, runtime library, board sources, tools ----
FW_ARM_CFLAGS := -fno-short-enums -fno-tree-loop-distribute-patterns
FW_ARM_LDFLAGS := -nostdlib -Wl,--gc-sections -Wl,--no-enum-size-warning -Wl,--no-warn-execstack

FW_m4_CC := arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16
FW_m4_CFLAGS := $(FW_ARM_CFLAGS)
FW_m4_LDFLAGS := $(FW_ARM_LDFLAGS)
FW_m4_LIBS := -lgcc
FW_m4_LIB := $(BUILD)/armv7em-hard/libcsd.a
# the assembly twins' check against the Swift kernels (Tests/Firmware/KernelCheck.swift), DSP cores only
FW_m4_EXTRA := $(BUILD)/armv7em-hard/KernelCheck.o
FW_m4_SRC := $(FW_DIR)/mps2-an386/startup.S $(FW_DIR)/mps2-an386/board.c $(FW_DIR)/common/arm_semihosting.c $(FW_COMMON)
FW_m4_LD := $(FW_DIR)/mps2-an386/link.ld
FW_m4_NM := arm-none-eabi-nm
FW_m4_SIZE := arm-none-eabi-size
FW_m4_OBJDUMP := arm-none-eabi-objdump
FW_m4_QEMU := qemu-system-arm -M mps2-an386 -nographic -monitor none -serial stdio \
  -semihosting-config enable=on,target=native

FW_m0_CC := arm-none-eabi-gcc -mcpu=cortex-m0plus -mthumb
FW_m0_CFLAGS := $(FW_ARM_CFLAGS) -DBOARD_NAME=\"mps2-an385\"
FW_m0_LDFLAGS := $(FW_ARM_LDFLAGS)
FW_m0_LIBS := -lgcc
FW_m0_LIB := $(BUILD)/armv6m/libcsd.a
FW_m0_SRC := $(FW_m4_SRC)
FW_m0_LD := $(FW_m4_LD)
FW_m0_NM := $(FW_m4_NM)
FW_m0_SIZE := $(FW_m4_SIZE)
FW_m0_OBJDUMP := $(FW_m4_OBJDUMP)
FW_m0_QEMU := qemu-system-arm -M mps2-an385 -nographic -monitor none -serial stdio \
  -semihosting-config enable=on,target=native

# The BBC micro:bit v1 (nRF51822: Cortex-M0, 256 KB flash, 16 KB RAM; QEMU -M microbit): the armv6-m
# runtime, the micro:bit's memory map and UART. Its RAM holds the whole firmware (the arena, the
# statistics, the stack), so it builds the fused-plan-only variant (FW_microbit_PLAN below): the
# spiking arena of the event path never fits 16 KB for the reference model (57 KB). A model that
# does not fit fails at the link, and then the RAM table of a link with room to spare says what
# the build needs (fw-unfit-microbit, FW_UNFIT_RULES).
FW_microbit_CC := arm-none-eabi-gcc -mcpu=cortex-m0 -mthumb
FW_microbit_CFLAGS := $(FW_ARM_CFLAGS)
FW_microbit_LDFLAGS := $(FW_ARM_LDFLAGS)
FW_microbit_LIBS := -lgcc
FW_microbit_LIB := $(BUILD)/armv6m/libcsd.a
FW_microbit_SRC := $(FW_DIR)/microbit/startup.S $(FW_DIR)/microbit/board.c $(FW_DIR)/common/arm_semihosting.c $(FW_COMMON)
FW_microbit_LD := $(FW_DIR)/microbit/link.ld
FW_microbit_NM := $(FW_m4_NM)
FW_microbit_SIZE := $(FW_m4_SIZE)
FW_microbit_OBJDUMP := $(FW_m4_OBJDUMP)
FW_microbit_QEMU := qemu-system-arm -M microbit -nographic -monitor none -serial stdio \
  -semihosting-config enable=on,target=native

FW_CLANG ?= clang
FW_riscv32_CC := $(FW_CLANG) --target=riscv32-none-elf -march=rv32imac -mabi=ilp32
FW_riscv32_CFLAGS :=
FW_riscv32_LDFLAGS := -fuse-ld=lld -nostdlib -Wl,--gc-sections
FW_riscv32_LIBS :=
FW_riscv32_LIB := $(BUILD)/riscv32/libcsd.a
FW_riscv32_SRC := $(FW_DIR)/riscv32-virt/startup.S $(FW_DIR)/riscv32-virt/board.c $(FW_COMMON)
FW_riscv32_LD := $(FW_DIR)/riscv32-virt/link.ld
FW_riscv32_NM := llvm-nm
FW_riscv32_SIZE := llvm-size
FW_riscv32_OBJDUMP := llvm-objdump
FW_riscv32_QEMU := qemu-system-riscv32 -M virt -bios none -nographic -monitor none -serial stdio

FW_TARGETS := m4 m0 riscv32 microbit

# Each target's plan: FIRMWARE_PLAN, by default all (the four passes); the micro:bit's default is
# fused. A fused-plan target compiles main.c with FW_FUSED_PLAN_ONLY and its runs and sizes print
# the RAM table against the micro:bit (FW_MICROBIT_PART). The Swift-main example has its own main
# (Main.swift, four passes) and ignores FIRMWARE_PLAN.
ifneq ($(filter-out all fused,$(FIRMWARE_PLAN)),)
$(error FIRMWARE_PLAN=$(FIRMWARE_PLAN): expected all or fused)
endif
$(foreach t,$(FW_TARGETS),$(eval FW_$(t)_PLAN := $(or $(FIRMWARE_PLAN),all)))
FW_microbit_PLAN := $(or $(FIRMWARE_PLAN),fused)
$(foreach t,$(FW_TARGETS),$(eval FW_$(t)_CFLAGS += $(if $(filter fused,$(FW_$(t)_PLAN)),-DFW_FUSED_PLAN_ONLY)))
FW_swift-main_PLAN := all
# Each target builds in a folder of its own per plan: $(FW_OUT)/<target> for its default plan,
# $(FW_OUT)/<target>-<plan> for the other (e.g. m0-fused, microbit-all), so a FIRMWARE_PLAN run never
# changes what the default targets run.
$(foreach t,$(FW_TARGETS),$(eval FW_$(t)_DIR := $(FW_OUT)/$(t)$(if $(filter $(FW_$(t)_PLAN),$(if $(filter microbit,$(t)),fused,all)),,-$(FW_$(t)_PLAN))))
FW_swift-main_DIR := $(FW_OUT)/swift-main
# $(1): target; the RAM table for a fused-plan target
FW_RAM_REPORT = $(if $(filter fused,$(FW_$(1)_PLAN)),--ram-report $(FW_MICROBIT_PART))

# The Swift-main example (Firmware/swift-main): the Cortex-M4 build with Main.swift (Embedded Swift,
# compiled by build-runtime.sh against the runtime's modules) as its main instead of common/main.c;
# C only for reset, board and libc, and data.c (model image, arena, golden data). Not in FW_TARGETS:
# bench-firmware compares the C firmware across cores.
FW_SWIFT_DIR := $(FW_DIR)/swift-main
FW_swift-main_CC := $(FW_m4_CC)
FW_swift-main_CFLAGS := $(FW_m4_CFLAGS) -I$(FW_SWIFT_DIR)/include
FW_swift-main_LDFLAGS := $(FW_m4_LDFLAGS)
FW_swift-main_LIBS := $(FW_m4_LIBS)
FW_swift-main_LIB := $(FW_m4_LIB)
FW_swift-main_EXTRA := $(BUILD)/armv7em-hard/SwiftMain.o
FW_swift-main_SRC := $(FW_DIR)/mps2-an386/startup.S $(FW_DIR)/mps2-an386/board.c $(FW_DIR)/common/arm_semihosting.c $(FW_DIR)/common/fmt.c \
  $(FW_DIR)/common/libc.c $(FW_SWIFT_DIR)/data.c $(FW_MODEL_C)
FW_swift-main_LD := $(FW_m4_LD)
FW_swift-main_NM := $(FW_m4_NM)
FW_swift-main_SIZE := $(FW_m4_SIZE)
FW_swift-main_OBJDUMP := $(FW_m4_OBJDUMP)
FW_swift-main_QEMU := $(FW_m4_QEMU)

# ---- golden data: FIRMWARE_IMAGES images from the NumPy reference ----
# The stamp changes only when one of the FIRMWARE_ settings does, so golden.h is remade then.
$(FW_OUT)/images.stamp: FORCE
	@mkdir -p $(@D)
	@echo $(FIRMWARE_IMAGES) $(FIRMWARE_DATA) $(FIRMWARE_DELAY) $(FIRMWARE_EVENT_DELAY) > $@.tmp; \
	  cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(FW_GOLDEN)/golden.h: $(PACKED) $(FW_OUT)/images.stamp Toolchain/csdformer/golden.py Toolchain/csdformer/reference.py
	$(PY) -m csdformer.golden $(PACKED) --count $(FIRMWARE_IMAGES) --data $(FIRMWARE_DATA) --out $(FW_GOLDEN) \
	  $(if $(FIRMWARE_DELAY),--delay $(FIRMWARE_DELAY)) $(if $(FIRMWARE_EVENT_DELAY),--event-delay $(FIRMWARE_EVENT_DELAY))

# The packer's rule for $(PACKED) writes the model's C source and header too.
$(FW_MODEL_C) $(FW_MODEL_H): $(PACKED) ;

# ---- the QEMU instruction-counting plugin ----
$(FW_PLUGIN): $(FW_DIR)/qemu-plugin/counter.c $(FW_DIR)/qemu-plugin/qemu-plugin-api.h
	@mkdir -p $(@D)
	cc -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden $< -o $@

# ---- firmware ELFs: objects, link (+ map), allocator check, disassembly ----
# $(1): target (m4, m0, riscv32, microbit, swift-main)
define FW_TARGET_RULES
FW_$(1)_OBJS := $$(foreach s,$$(FW_$(1)_SRC),$(FW_$(1)_DIR)/obj/$$(basename $$(notdir $$(s))).o)

$(FW_$(1)_DIR)/obj/%.o: $(FW_DIR)/common/%.c $$(FW_HEADERS) $(FW_DIR)/firmware.mk
	@mkdir -p $$(@D)
	$$(FW_$(1)_CC) $$(FW_CFLAGS) $$(FW_$(1)_CFLAGS) -c $$< -o $$@
$(FW_$(1)_DIR)/obj/%.o: $$(dir $$(FW_$(1)_LD))%.c $$(FW_HEADERS) $(FW_DIR)/firmware.mk
	@mkdir -p $$(@D)
	$$(FW_$(1)_CC) $$(FW_CFLAGS) $$(FW_$(1)_CFLAGS) -c $$< -o $$@
$(FW_$(1)_DIR)/obj/%.o: $$(dir $$(FW_$(1)_LD))%.S $(FW_DIR)/firmware.mk
	@mkdir -p $$(@D)
	$$(FW_$(1)_CC) $$(FW_CFLAGS) $$(FW_$(1)_CFLAGS) -c $$< -o $$@
$(FW_$(1)_DIR)/obj/$(MODEL_NAME).o: $(FW_MODEL_C) $(FW_MODEL_H) $(FW_DIR)/firmware.mk
	@mkdir -p $$(@D)
	$$(FW_$(1)_CC) $$(FW_CFLAGS) $$(FW_$(1)_CFLAGS) -c $$< -o $$@

$(FW_$(1)_DIR)/firmware.elf: $$(FW_$(1)_OBJS) $$(FW_$(1)_EXTRA) $$(FW_$(1)_LIB) $$(FW_$(1)_LD)
	$$(FW_$(1)_CC) $$(FW_$(1)_LDFLAGS) -T $$(FW_$(1)_LD) -Wl,-Map=$(FW_$(1)_DIR)/firmware.map \
	  $$(FW_$(1)_OBJS) $$(FW_$(1)_EXTRA) $$(FW_$(1)_LIB) $$(FW_$(1)_LIBS) -o $$@.tmp \
	  $$(if $$(call FW_RAM_REPORT,$(1)),|| { $$(FW_SUBMAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) fw-unfit-$(1); exit 1; })
	@heap=$$$$($$(FW_$(1)_NM) $$@.tmp | awk '{print $$$$NF}' | grep -E '$$(FW_HEAP_RE)' || true); \
	  if [ -n "$$$$heap" ]; then echo "firmware: error: $$@ links an allocator: $$$$heap" >&2; rm -f $$@.tmp; exit 1; fi
	@mv $$@.tmp $$@
	@$$(FW_$(1)_OBJDUMP) -d $$@ > $(FW_$(1)_DIR)/firmware.dis
	@echo "firmware: $$@ (no allocator linked; map and disassembly next to it)"
endef
$(foreach t,$(FW_TARGETS) swift-main,$(eval $(call FW_TARGET_RULES,$(t))))

# make, named without $(MAKE) so that make -n does not run the link recipe that calls it
FW_SUBMAKE := $(MAKE)
# $(1): target. Its link failed (on the micro:bit: "region `RAM' overflowed by N bytes"): link the
# same objects again with 4 MB of RAM and flash (unfit.elf, never run) and print the RAM table of
# what the build needs against the micro:bit, the stack as reserved. Called by the link's recipe.
define FW_UNFIT_RULES
.PHONY: fw-unfit-$(1)
fw-unfit-$(1):
	@echo "firmware: $(1): the link does not fit the part; what the build needs (linked again with 4 MB, never run):" >&2
	@$$(FW_$(1)_CC) $$(FW_$(1)_LDFLAGS) -Wl,--defsym=RAM_SIZE=0x400000 -Wl,--defsym=FLASH_SIZE=0x400000 \
	  -T $$(FW_$(1)_LD) -Wl,-Map=$(FW_$(1)_DIR)/unfit.map $$(FW_$(1)_OBJS) $$(FW_$(1)_EXTRA) $$(FW_$(1)_LIB) $$(FW_$(1)_LIBS) \
	  -o $(FW_$(1)_DIR)/unfit.elf
	@$(FW_RUN) size --name $(1)-unfit --model-symbol $(MODEL_NAME) --elf $(FW_$(1)_DIR)/unfit.elf --map $(FW_$(1)_DIR)/unfit.map \
	  --nm $$(FW_$(1)_NM) --size $$(FW_$(1)_SIZE) --out $(FW_$(1)_DIR)/unfit $$(call FW_RAM_REPORT,$(1))
endef
$(foreach t,$(FW_TARGETS),$(eval $(call FW_UNFIT_RULES,$(t))))

$(FW_swift-main_DIR)/obj/data.o: $(FW_SWIFT_DIR)/data.c $(FW_SWIFT_DIR)/include/firmware.h $(FW_HEADERS) $(FW_DIR)/firmware.mk
	@mkdir -p $(@D)
	$(FW_swift-main_CC) $(FW_CFLAGS) $(FW_swift-main_CFLAGS) -c $< -o $@

# Main.swift: Embedded Swift with the runtime's flags (-no-allocations), importing CSDRuntime and
# the C declarations of include/ (module SwiftMainSupport); model-independent.
$(BUILD)/armv7em-hard/SwiftMain.o: $(FW_SWIFT_DIR)/Main.swift $(FW_SWIFT_DIR)/include/firmware.h \
  $(FW_SWIFT_DIR)/include/module.modulemap $(FW_DIR)/common/board.h $(BUILD)/armv7em-hard/libcsd.a Toolchain/cross/build-runtime.sh
	@CSD_EXTRA_MODULE=SwiftMain:$< Toolchain/cross/build-runtime.sh \
	  $(word 1,$(FLAGS_armv7em-hard)) $(BUILD)/armv7em-hard $(wordlist 2,99,$(FLAGS_armv7em-hard)) -I $(FW_SWIFT_DIR)/include

$(BUILD)/armv7em-hard/KernelCheck.o: Tests/Firmware/KernelCheck.swift $(BUILD)/armv7em-hard/libcsd.a Toolchain/cross/build-runtime.sh
	@CSD_EXTRA_MODULE=KernelCheck:Tests/Firmware/KernelCheck.swift Toolchain/cross/build-runtime.sh \
	  $(word 1,$(FLAGS_armv7em-hard)) $(BUILD)/armv7em-hard $(wordlist 2,99,$(FLAGS_armv7em-hard))

# $(1): target, $(2): board name in the reports
FW_SIZE_ARGS = --name $(2) --model-symbol $(MODEL_NAME) --elf $(FW_$(1)_DIR)/firmware.elf --map $(FW_$(1)_DIR)/firmware.map \
  --nm $(FW_$(1)_NM) --size $(FW_$(1)_SIZE) --out $(FW_$(1)_DIR) $(call FW_RAM_REPORT,$(1))
# $(1): target; what the runner checks: the target's plan
FW_RUN_ARGS = --plan $(FW_$(1)_PLAN) --plugin $(FW_PLUGIN) --plugin-args '$(FIRMWARE_PLUGIN_ARGS)' --timeout $(FIRMWARE_TIMEOUT)

# ---- user targets ----
.PHONY: firmware-m4 firmware-riscv firmware-m0 firmware-microbit run-m4 run-riscv run-m0 run-microbit run-swift-main bench-firmware FORCE

firmware-m4: $(FW_m4_DIR)/firmware.elf
	@$(FW_RUN) size $(call FW_SIZE_ARGS,m4,mps2-an386)

firmware-riscv: $(FW_riscv32_DIR)/firmware.elf
	@$(FW_RUN) size $(call FW_SIZE_ARGS,riscv32,riscv32-virt)

# The armv6-m build on the mps2-an385 layout (4 MB of RAM), sized for a micro:bit v1 (nRF51822,
# Cortex-M0: 256 KB flash, 16 KB RAM): the fit line estimates a fused-plan-only build from this one
# (the arena cut to the fused need; with the stack cut to the high-water mark of the last run-m0).
firmware-m0: $(FW_m0_DIR)/firmware.elf
	@$(FW_RUN) size $(call FW_SIZE_ARGS,m0,mps2-an385-armv6m) --arena-fused \
	  $$(sed -n 's/.*_ARENA_BYTES_FUSED \([0-9]*\)u.*/\1/p' $(FW_MODEL_H)) --fit $(FW_MICROBIT_PART)

run-m4: $(FW_m4_DIR)/firmware.elf $(FW_PLUGIN)
	@$(FW_RUN) run $(call FW_SIZE_ARGS,m4,mps2-an386) $(call FW_RUN_ARGS,m4) \
	  -- $(FW_m4_QEMU) -kernel $(FW_m4_DIR)/firmware.elf

run-riscv: $(FW_riscv32_DIR)/firmware.elf $(FW_PLUGIN)
	@$(FW_RUN) run $(call FW_SIZE_ARGS,riscv32,riscv32-virt) $(call FW_RUN_ARGS,riscv32) \
	  -- $(FW_riscv32_QEMU) -kernel $(FW_riscv32_DIR)/firmware.elf

run-m0: $(FW_m0_DIR)/firmware.elf $(FW_PLUGIN)
	@$(FW_RUN) run $(call FW_SIZE_ARGS,m0,mps2-an385-armv6m) $(call FW_RUN_ARGS,m0) \
	  -- $(FW_m0_QEMU) -kernel $(FW_m0_DIR)/firmware.elf

# On the micro:bit itself (QEMU -M microbit, 16 KB of RAM for everything), fused plan only: fused and
# spiking at D = T on the count path, checked like the others, then the RAM table (static arena +
# stack high-water + other .data/.bss against 16,384) and the demo line. A build that does not fit
# fails at the link, which names the bytes missing, and prints the RAM table of what it needs.
# The reference model (MODEL's default) is packed with MICROBIT_PACK_FLAGS, default --low-ram
# (csdpack convert: attention head by head, a fused arena of 12,240 B instead of 16,304 B; the
# build needs it under 12,608 B with the 3 KB stack), into a folder of its own, MICROBIT_MODEL_NAME
# (fmnist_tiny_lowram), so the default image is never repacked; MICROBIT_PACK_FLAGS= packs it as
# every other target does (its link then fails, 3,696 bytes over). Other models (MODEL=dir, e.g.
# test-firmware-case) are packed as for every target.
MICROBIT_PACK_FLAGS ?= --low-ram
MICROBIT_MODEL_NAME ?= $(MODEL_NAME)_lowram
FW_MICROBIT_REDIRECT := $(and $(strip $(MICROBIT_PACK_FLAGS)),$(filter $(abspath $(REFERENCE_MODEL)),$(abspath $(MODEL))),$(filter $(subst -,_,$(notdir $(REFERENCE_MODEL))),$(MODEL_NAME)))
ifneq ($(FW_MICROBIT_REDIRECT),)
firmware-microbit run-microbit:
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) $@ MODEL_NAME=$(MICROBIT_MODEL_NAME) \
	  PACK_FLAGS='$(MICROBIT_PACK_FLAGS)'
else
firmware-microbit: $(FW_microbit_DIR)/firmware.elf
	@$(FW_RUN) size $(call FW_SIZE_ARGS,microbit,microbit)

run-microbit: $(FW_microbit_DIR)/firmware.elf $(FW_PLUGIN)
	@$(FW_RUN) run $(call FW_SIZE_ARGS,microbit,microbit) $(call FW_RUN_ARGS,microbit) \
	  -- $(FW_microbit_QEMU) -kernel $(FW_microbit_DIR)/firmware.elf
endif

# The Swift-main example: the same passes, golden data and counter as run-m4; no kernel-twin check.
run-swift-main: $(FW_swift-main_DIR)/firmware.elf $(FW_PLUGIN)
	@$(FW_RUN) run $(call FW_SIZE_ARGS,swift-main,mps2-an386-swift-main) --no-kernel-check --plugin $(FW_PLUGIN) \
	  --plugin-args '$(FIRMWARE_PLUGIN_ARGS)' --timeout $(FIRMWARE_TIMEOUT) -- $(FW_swift-main_QEMU) -kernel $(FW_swift-main_DIR)/firmware.elf

bench-firmware: $(foreach t,m4 riscv32 m0,$(FW_$(t)_DIR)/firmware.elf) $(FW_PLUGIN)
	@$(MAKE) -j1 --no-print-directory -f $(firstword $(MAKEFILE_LIST)) run-m4 run-riscv run-m0 > $(FW_OUT)/bench.log 2>&1 || \
	  { cat $(FW_OUT)/bench.log; echo "bench-firmware: a run failed (log: $(FW_OUT)/bench.log)" >&2; exit 1; }
	@grep '^demo: ' $(FW_OUT)/bench.log
	@$(FW_RUN) bench $(FW_m4_DIR)/summary.json $(FW_riscv32_DIR)/summary.json $(FW_m0_DIR)/summary.json
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) firmware-m0 | grep '^fit: '

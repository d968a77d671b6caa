# SPDX-License-Identifier: GPL-2.0
# Workbench for the PAGEMAP_SCAN / UFFD_FEATURE_WP_ASYNC Rust series.
#
#   make        install what is missing, fetch 7.3, apply patches/, build,
#               boot the guest and run the demonstration
#   make test   everything CI runs (.ci/run calls exactly this)
#   make test-long  make test, then the build matrix, the full sanitizer
#               run and a 30-minute no-lost-writes stress
#
#   make bench  C vs Rust PAGEMAP_SCAN benchmark, on a kernel without the
#               debugging options (config/bench.config)
#   make sanitize  the selftests on a KASAN/UBSAN/KFENCE/kmemleak kernel
#   make stress DURATION=1800   the no-lost-writes stress for that long
#   make profile SCENARIO=sparse-vmas   where one benchmark scenario's
#               instructions go, function by function, C and Rust
#
# Variables: CACHE (default ~/.cache/pagemap-rs: base tree, build dirs),
# SIGNOFF (for 'make series'), JOBS.

WB := workbench
SIGNOFF ?= Series Sender <sender@example.invalid>
export SIGNOFF
ifdef CACHE
export CACHE
endif

.PHONY: all deps base tree series build demo selftests bench kunit check check-files bisect \
	check-configs send-check wbtest test test-long clean-cache help profile sanitize stress

all: deps tree build demo

help:
	@sed -n '2,18p' Makefile

deps:
	@$(WB)/deps.sh

base: deps
	@$(WB)/base.sh

tree: base
	@$(WB)/tree.sh

series:
	@$(WB)/series.sh

build: tree
	@$(WB)/build.sh

demo: build
	@$(WB)/guest.sh demo raw:pagemap_scan_demo=./pagemap_scan_demo

# The upstream selftests, unmodified, from the tree under test.
selftests: build
	@$(WB)/selftests.sh

# C vs Rust PAGEMAP_SCAN benchmark, one guest boot (+ one -icount boot), on
# its own kernel: the guest's configuration without the debugging options.
BENCH_BUILD = $(or $(CACHE),$(HOME)/.cache/pagemap-rs)/build-bench
bench: tree
	@$(WB)/bench.sh

# The selftests on a KASAN, UBSAN, KFENCE and kmemleak kernel.
sanitize: tree
	@$(WB)/sanitize.sh

# The no-lost-writes stress (uffd_wp_stress), DURATION seconds, C and Rust.
stress: tree
	@$(WB)/stress.sh

# Per-function profile of one benchmark scenario (QEMU TCG plugin).
SCENARIO ?= sparse-vmas
profile: tree
	@BUILD=$(BENCH_BUILD) GUEST_EXTRA=config/bench.config $(WB)/build.sh
	@BUILD=$(BENCH_BUILD) $(WB)/profile.sh $(SCENARIO) $(or $(MIB),256) $(or $(ROUNDS),2)

kunit: tree
	@$(WB)/kunit.sh

check-files: tree
	@$(WB)/added-files.sh check

check: build
	@$(WB)/check.sh

# The series in every configuration of the build matrix (x86_64 options off,
# arm64), warning-free with clippy; `make test` builds the quick set.
check-configs: tree
	@$(WB)/check-configs.sh

# b4 prep, b4 prep --check and b4 send -o on the applied series, and a check of
# the mails: the series' cover letter, threading and recipients.
send-check: tree
	@$(WB)/send-check.sh

# Each patch of the series builds on its own (KUnit config, clippy).
bisect: kunit
	@$(WB)/bisect.sh

# Tests of the workbench itself.
wbtest: build
	@$(WB)/wbtest.sh

test: deps
	@$(WB)/test.sh

# What does not fit in make test's time: every configuration of the build
# matrix, every guest test on the sanitizer kernel, and the stress for
# DURATION seconds (default 1800).
test-long: test
	@$(WB)/check-configs.sh
	@$(WB)/sanitize.sh
	@DURATION=$(or $(DURATION),1800) $(WB)/stress.sh

clean-cache:
	rm -rf "$${CACHE:-$$HOME/.cache/pagemap-rs}"

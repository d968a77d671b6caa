// SPDX-License-Identifier: GPL-2.0
/*
 * tcg_profile: a QEMU TCG plugin that counts the guest instructions executed
 * in each translation block while the guest kernel serves one PAGEMAP_SCAN,
 * separately for the C and the Rust implementation.
 *
 * A vCPU starts counting for C when it enters the kernel function at "cmd="
 * (do_pagemap_cmd(), the ioctl), switches to Rust when it enters the one at
 * "rust=" (rust_pagemap_scan()), and stops when it executes user code again.
 * The first "skip=" calls (a benchmark's setup) are not counted.
 * At exit it writes "impl address instructions" lines, one for each block
 * address that ran, and "calls impl n", to the file "out=". make profile maps
 * the addresses to functions with System.map.
 *
 * QEMU's plugin API is declared here rather than included: Debian's QEMU
 * packages do not ship qemu-plugin.h. These are the declarations of API
 * version 1 (QEMU 7.x), which QEMU checks against qemu_plugin_version.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };

#define EXPORT __attribute__((visibility("default")))

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
	void (*cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb));
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
	void (*cb)(unsigned int vcpu, void *udata), enum qemu_plugin_cb_flags flags,
	void *udata);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
	void (*cb)(qemu_plugin_id_t id, void *udata), void *udata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);

EXPORT int qemu_plugin_version = 1;

#define MAX_VCPUS	64
#define KERNEL_START	0xffff800000000000ULL

enum mode { OFF, C_IMPL, RUST_IMPL, NR_MODES };

/* One translation block; blocks are never freed, as QEMU keeps udata. */
struct block {
	uint64_t vaddr;
	uint64_t insns;
	uint64_t count[NR_MODES];
	struct block *next;
};

static struct block *blocks;
static enum mode mode[MAX_VCPUS];
static uint64_t calls[NR_MODES];
static uint64_t cmd_addr, rust_addr, skip;
static const char *out_path;

static void exec(unsigned int vcpu, void *udata)
{
	struct block *b = udata;
	enum mode *m = &mode[vcpu % MAX_VCPUS];

	if (b->vaddr < KERNEL_START) {
		*m = OFF;
		return;
	}
	if (b->vaddr == cmd_addr && skip) {
		skip--;
		*m = OFF;
	} else if (b->vaddr == cmd_addr) {
		*m = C_IMPL;
		calls[C_IMPL]++;
	} else if (b->vaddr == rust_addr && *m != OFF) {
		*m = RUST_IMPL;
		calls[C_IMPL]--;
		calls[RUST_IMPL]++;
	}
	b->count[*m] += b->insns;
}

static void translate(qemu_plugin_id_t id __attribute__((unused)), struct qemu_plugin_tb *tb)
{
	struct block *b = calloc(1, sizeof(*b));

	if (!b)
		abort();
	b->vaddr = qemu_plugin_tb_vaddr(tb);
	b->insns = qemu_plugin_tb_n_insns(tb);
	b->next = blocks;
	blocks = b;
	qemu_plugin_register_vcpu_tb_exec_cb(tb, exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void finish(qemu_plugin_id_t id __attribute__((unused)),
		   void *udata __attribute__((unused)))
{
	static const char *const name[NR_MODES] = { "off", "c", "rust" };
	FILE *f = fopen(out_path, "w");

	if (!f)
		return;
	for (int m = C_IMPL; m < NR_MODES; m++)
		fprintf(f, "calls %s %" PRIu64 "\n", name[m], calls[m]);
	for (struct block *b = blocks; b; b = b->next)
		for (int m = C_IMPL; m < NR_MODES; m++)
			if (b->count[m])
				fprintf(f, "%s %" PRIx64 " %" PRIu64 "\n", name[m], b->vaddr,
					b->count[m]);
	fclose(f);
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
			       const qemu_info_t *info __attribute__((unused)),
			       int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "cmd=", 4))
			cmd_addr = strtoull(argv[i] + 4, NULL, 16);
		else if (!strncmp(argv[i], "rust=", 5))
			rust_addr = strtoull(argv[i] + 5, NULL, 16);
		else if (!strncmp(argv[i], "skip=", 5))
			skip = strtoull(argv[i] + 5, NULL, 10);
		else if (!strncmp(argv[i], "out=", 4))
			out_path = argv[i] + 4;
		else
			return -1;
	}
	if (!cmd_addr || !rust_addr || !out_path)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, translate);
	qemu_plugin_register_atexit_cb(id, finish, NULL);
	return 0;
}

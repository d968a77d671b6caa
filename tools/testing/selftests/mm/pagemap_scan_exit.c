// SPDX-License-Identifier: GPL-2.0
/*
 * PAGEMAP_SCAN against processes and mappings that go away under it:
 *
 * - a process SIGKILLed in the middle of a long scan, and of a long
 *   PM_SCAN_WP_MATCHING scan while its threads write the range: it dies of
 *   the signal, and the kernel (run with DEBUG_VM, lockdep and kmemleak) has
 *   nothing to say about it;
 * - a thread unmapping and mapping again parts of the range being scanned:
 *   each scan succeeds and reports regions in order, inside the range, none
 *   twice;
 * - the target of /proc/PID/pagemap exiting while another process scans it:
 *   every scan either succeeds or fails with ESRCH, and once the target is
 *   reaped every scan fails with ESRCH.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest.h"

#define AREA		(64UL << 20)
#define CHUNK		(64UL << 10)
#define KILLS		40
#define VEC_LEN		64

static long page_size;

/* Every other page of @p written, so that scans report many regions. */
static char *area(void)
{
	char *p = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	size_t i;

	if (p == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	madvise(p, AREA, MADV_NOHUGEPAGE);
	for (i = 0; i < AREA; i += 2 * page_size)
		p[i] = 1;
	return p;
}

static long scan(int fd, uintptr_t start, uintptr_t end, __u64 flags, __u64 mask,
		 struct page_region *vec, size_t vec_len, __u64 *walk_end)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = start,
		.end = end,
		.vec = (uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = mask,
		.return_mask = mask,
	};
	long n = ioctl(fd, PAGEMAP_SCAN, &arg);

	if (walk_end)
		*walk_end = arg.walk_end;
	return n < 0 ? -errno : n;
}

static void *write_loop(void *arg)
{
	char *p = arg;
	size_t i = 0;

	for (;;) {
		p[i] = 2;
		i = (i + 3 * page_size) % AREA;
	}
	return NULL;
}

/* The child: scans its whole area, again and again, until it is killed. */
static void scanner(bool wp, int ready)
{
	/* Room for a region per page: one scan walks the whole area. */
	static struct page_region all[AREA / 4096];
	int fd = open("/proc/self/pagemap", O_RDONLY);
	char *p = area();
	pthread_t t;
	long n;

	if (fd < 0)
		_exit(3);
	if (wp) {
		struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)p, .len = AREA },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};
		int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

		if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg))
			_exit(4);
		if (pthread_create(&t, NULL, write_loop, p) ||
		    pthread_create(&t, NULL, write_loop, p + page_size))
			_exit(5);
	}
	if (write(ready, "r", 1) != 1)
		_exit(6);
	for (;;) {
		n = scan(fd, (uintptr_t)p, (uintptr_t)p + AREA,
			 wp ? PM_SCAN_WP_MATCHING : 0, PAGE_IS_WRITTEN | PAGE_IS_PRESENT,
			 all, AREA / 4096, NULL);
		if (n < 0)
			_exit(7);
	}
}

static void test_kill(bool wp)
{
	const char *what = wp ? "SIGKILL during PM_SCAN_WP_MATCHING scans" :
				"SIGKILL during scans";
	int i, bad = 0;

	for (i = 0; i < KILLS; i++) {
		int pipefd[2], status;
		char c;
		pid_t pid;

		if (pipe(pipefd))
			ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
		pid = fork();
		if (pid < 0)
			ksft_exit_fail_msg("fork: %s\n", strerror(errno));
		if (!pid) {
			close(pipefd[0]);
			scanner(wp, pipefd[1]);
		}
		close(pipefd[1]);
		if (read(pipefd[0], &c, 1) != 1) {
			ksft_print_msg("the scanner did not start\n");
			bad++;
		}
		close(pipefd[0]);
		usleep(1000 + (i * 7919) % 50000);
		kill(pid, SIGKILL);
		if (waitpid(pid, &status, 0) != pid || !WIFSIGNALED(status) ||
		    WTERMSIG(status) != SIGKILL) {
			ksft_print_msg("scanner %d: status %#x\n", i, status);
			bad++;
		}
	}
	ksft_test_result(!bad, "%s: %d killed\n", what, KILLS);
}

static atomic_bool stop;
static char *remap_area;
static atomic_long remaps;

static void *remapper(void *arg)
{
	unsigned long seed = 1;

	(void)arg;
	while (!atomic_load(&stop)) {
		char *at = remap_area + (seed % (AREA / CHUNK)) * CHUNK;

		seed = seed * 6364136223846793005UL + 1442695040888963407UL;
		if (munmap(at, CHUNK) ||
		    mmap(at, CHUNK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at)
			ksft_exit_fail_msg("munmap/mmap: %s\n", strerror(errno));
		at[(seed >> 20) % CHUNK] = 1;
		atomic_fetch_add(&remaps, 1);
	}
	return NULL;
}

static void test_unmap(void)
{
	struct page_region vec[VEC_LEN];
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uintptr_t start, end;
	long scans = 0, regions = 0, n, i;
	int bad = 0;
	pthread_t t;
	__u64 walk_end;

	remap_area = area();
	start = (uintptr_t)remap_area;
	end = start + AREA;
	if (fd < 0 || pthread_create(&t, NULL, remapper, NULL))
		ksft_exit_fail_msg("set up: %s\n", strerror(errno));
	while ((scans < 400 || remaps < 50) && bad < 4) {
		uintptr_t s = start;

		while (s < end) {
			n = scan(fd, s, end, 0, PAGE_IS_PRESENT, vec, VEC_LEN, &walk_end);
			scans++;
			if (n < 0) {
				ksft_print_msg("scan: %s\n", strerror(-n));
				bad++;
				break;
			}
			for (i = 0; i < n; i++) {
				if (vec[i].start < s || vec[i].end > walk_end ||
				    vec[i].start >= vec[i].end ||
				    (i && vec[i].start < vec[i - 1].end)) {
					ksft_print_msg("bad region %#llx-%#llx in %#lx-%#llx\n",
						       vec[i].start, vec[i].end,
						       (unsigned long)s, walk_end);
					bad++;
				}
			}
			regions += n;
			if (walk_end <= s || walk_end > end) {
				ksft_print_msg("walk_end %#llx in a scan from %#lx\n", walk_end,
					       (unsigned long)s);
				bad++;
				break;
			}
			s = walk_end;
		}
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	munmap(remap_area, AREA);
	close(fd);
	ksft_print_msg("unmap under scans: %ld scans, %ld regions, %ld remaps\n", scans,
		       regions, remaps);
	ksft_test_result(!bad && remaps > 0, "regions in order and in range while unmapped\n");
}

static void test_target_exit(void)
{
	struct page_region vec[VEC_LEN];
	int i, bad = 0, esrch = 0, ok = 0;

	for (i = 0; i < 10; i++) {
		int ready[2], go[2], fd, status;
		char path[64], c;
		bool gone = false;
		pid_t pid;
		long n;

		if (pipe(ready) || pipe(go))
			ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
		pid = fork();
		if (pid < 0)
			ksft_exit_fail_msg("fork: %s\n", strerror(errno));
		if (!pid) {
			/* Exit a little after the scans have started. */
			area();
			if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
				_exit(1);
			usleep(2000 + i * 3000);
			_exit(0);
		}
		close(ready[1]);
		close(go[0]);
		if (read(ready[0], &c, 1) != 1)
			ksft_exit_fail_msg("the target did not start\n");
		close(ready[0]);
		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			ksft_exit_fail_msg("open %s: %s\n", path, strerror(errno));
		if (write(go[1], "g", 1) != 1)
			ksft_exit_fail_msg("the target is gone too early\n");
		close(go[1]);
		/* Scan the target's whole address space until it has gone. */
		while (!gone) {
			/* Reaped before this scan started: it must fail. */
			bool reaped = !pid;

			n = scan(fd, 0, 0x7ffffffff000UL, 0, PAGE_IS_PRESENT, vec, VEC_LEN, NULL);
			if (n == -ESRCH) {
				gone = true;
				esrch++;
				continue;
			}
			if (n < 0) {
				ksft_print_msg("scan of an exiting target: %s\n", strerror(-n));
				bad++;
				break;
			}
			if (reaped) {
				ksft_print_msg("scan of a reaped target: %ld\n", n);
				bad++;
				break;
			}
			ok++;
			if (pid && waitpid(pid, &status, WNOHANG) == pid)
				pid = 0;
		}
		if (pid && waitpid(pid, &status, 0) != pid)
			bad++;
		n = scan(fd, 0, 0x7ffffffff000UL, 0, PAGE_IS_PRESENT, vec, VEC_LEN, NULL);
		if (n != -ESRCH) {
			ksft_print_msg("scan of a reaped target: %ld\n", n);
			bad++;
		}
		close(fd);
	}
	ksft_print_msg("exiting target: %d scans succeeded, %d ended in ESRCH\n", ok, esrch);
	ksft_test_result(!bad && esrch == 10, "target exits during scans: ESRCH\n");
}

int main(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	ksft_print_header();
	ksft_set_plan(4);
	test_kill(false);
	test_kill(true);
	test_unmap();
	test_target_exit();
	ksft_finished();
}

// SPDX-License-Identifier: GPL-2.0
/*
 * PAGEMAP_SCAN cases that pagemap_ioctl does not cover.
 *
 * - A caller that resumes from walk_end, the way CRIU, Wine and Wasmtime
 *   drive the ioctl, must see every written page exactly once, however
 *   max_pages, vec_len and the range cut the scans, and walk_end must be the
 *   end of the range once it is done.
 * - Wasmtime's reset of plain anonymous memory, which needs PAGE_IS_WRITTEN
 *   outside uffd-wp VMAs.
 * - Each class of bad input gets its errno.
 * - The categories of swapped-out pages, guard regions, soft-dirty pages and
 *   pages accessed under userfaultfd read-write protection, and write
 *   protection that survives page migration, scanned while it happens.
 * - With CONFIG_PAGEMAP_SCAN_RUST_SWITCH, the C and Rust implementations give
 *   the same results for random layouts and arguments.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/mempolicy.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <pthread.h>
#include <unistd.h>

#include "../kselftest.h"

#define HPAGE_2M	(2UL << 20)
#define MAX_SCANS	64

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL	102
#endif

#define ALL_CATEGORIES	(PAGE_IS_WPALLOWED | PAGE_IS_WRITTEN | PAGE_IS_FILE | \
			 PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_PFNZERO | \
			 PAGE_IS_HUGE | PAGE_IS_SOFT_DIRTY | PAGE_IS_GUARD | \
			 PAGE_IS_ACCESSED)
#define SWITCH		"/sys/kernel/debug/pagemap/scan_rust"

static int pagemap_fd;
static long page_size;

/* The debugfs switch of CONFIG_PAGEMAP_SCAN_RUST_SWITCH: see the differential test. */
static int set_impl(bool rust);
static bool rust_impl(void);

/* Reads a byte in a way the compiler cannot drop. */
static char read_byte(const char *p)
{
	char c = *p;

	asm volatile("" : "+r" (c));
	return c;
}

static int uffd_wp_async(void *addr, size_t len)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
			    UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
	};
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0)
		return -errno;
	if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		int err = -errno;

		close(uffd);
		return err;
	}
	return uffd;
}

static long scan(void *start, void *end, struct page_region *vec, size_t vec_len,
		 unsigned long max_pages, unsigned long *walk_end)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (unsigned long)start,
		.end = (unsigned long)end,
		.vec = (unsigned long)vec,
		.vec_len = vec_len,
		.max_pages = max_pages,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long ret = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);

	*walk_end = arg.walk_end;
	return ret < 0 ? -errno : ret;
}

/* PAGEMAP_SCAN on @fd: the number of regions, or -errno. */
static long scan_arg(int fd, struct pm_scan_arg *arg)
{
	long ret = ioctl(fd, PAGEMAP_SCAN, arg);

	return ret < 0 ? -errno : ret;
}

/*
 * The categories of each page of [area, area + npages pages), as a scan that
 * reports every page with every category sees them, in cats[]. Returns 0, or
 * -1 if the scan fails or does not cover the range.
 */
static int categories_of(char *area, size_t npages, unsigned long *cats)
{
	struct page_region vec[64];
	char *start = area, *end = area + npages * page_size;

	memset(cats, 0, npages * sizeof(*cats));
	while (start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.start = (unsigned long)start,
			.end = (unsigned long)end,
			.vec = (unsigned long)vec,
			.vec_len = 64,
			.return_mask = ALL_CATEGORIES,
		};
		long n = scan_arg(pagemap_fd, &arg);

		if (n < 0 || arg.walk_end <= (unsigned long)start)
			return -1;
		for (long i = 0; i < n; i++)
			for (unsigned long a = vec[i].start; a < vec[i].end; a += page_size)
				cats[(a - (unsigned long)area) / page_size] = vec[i].categories;
		start = (char *)arg.walk_end;
	}
	return 0;
}

/*
 * Scan [area, area + len) for written pages with WP_MATCHING, resuming from
 * walk_end until the range is done, and count how often each page is
 * reported. Returns the number of scans, or -1 if a scan fails or makes no
 * progress.
 */
static int scan_all(char *area, size_t len, unsigned long max_pages,
		    unsigned char *seen)
{
	char *start = area, *end = area + len;
	struct page_region vec[16];
	int scans = 0;

	while (start < end) {
		unsigned long walk_end;
		long n = scan(start, end, vec, 16, max_pages, &walk_end);

		if (n < 0 || ++scans > MAX_SCANS) {
			ksft_print_msg("scan %d from %p: %ld\n", scans, start, n);
			return -1;
		}
		for (long i = 0; i < n; i++)
			for (unsigned long a = vec[i].start; a < vec[i].end; a += page_size)
				seen[(a - (unsigned long)area) / page_size]++;
		if ((char *)walk_end <= start && n == 0) {
			ksft_print_msg("no progress at %p\n", start);
			return -1;
		}
		start = (char *)walk_end;
	}
	return scans;
}

/*
 * A hugetlb page that a write-protecting scan cannot protect whole: the range
 * cuts it, or max_pages is smaller than it. Its part in the range is reported,
 * not protected, and walk_end moves on. 7.3 reported nothing and left walk_end
 * at the page's start (or the range's), so a caller resuming from walk_end
 * never got past it.
 */
static void test_hugetlb_cut(void)
{
	const size_t len = 2 * HPAGE_2M, npages = len / page_size;
	const size_t hpages = HPAGE_2M / page_size;
	unsigned char *seen = calloc(npages, 1);
	struct page_region vec[16];
	unsigned long walk_end;
	char *area, *start, *end;
	int uffd, scans;
	bool ok = true;
	long n;

	area = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (area == MAP_FAILED || !seen) {
		ksft_test_result_skip("hugetlb cut: no 2 free 2M hugetlb pages\n");
		free(seen);
		return;
	}
	uffd = uffd_wp_async(area, len);
	if (uffd < 0) {
		ksft_test_result_fail("hugetlb cut: uffd register: %s\n", strerror(-uffd));
		goto out;
	}
	memset(area, 1, len);
	if (scan(area, area + len, NULL, 0, 0, &walk_end) < 0) {
		ksft_test_result_fail("hugetlb cut: initial WP failed\n");
		goto out_uffd;
	}

	/* The range cuts both pages: from page 0 + 4K to page 1 + 8K. */
	area[0] = 2;
	area[HPAGE_2M] = 2;
	start = area + page_size;
	end = area + HPAGE_2M + 2 * page_size;
	n = scan(start, end, vec, 16, 0, &walk_end);
	if (n != 1 || vec[0].start != (unsigned long)start || vec[0].end != (unsigned long)end ||
	    walk_end != (unsigned long)end) {
		unsigned long long rs = n > 0 ? vec[0].start : 0, re = n > 0 ? vec[0].end : 0;

		ksft_print_msg("range cut: %ld regions, [%#llx, %#llx), walk_end %#lx\n",
			       n, rs, re, walk_end);
		ksft_print_msg("range cut: want 1 region, [%p, %p), walk_end %p\n",
			       start, end, end);
		ok = false;
	}
	/* Neither page was protected: a scan of both reports all of them, whole. */
	scans = scan_all(area, len, 0, seen);
	for (size_t i = 0; i < npages; i++)
		ok &= seen[i] == 1;
	if (scans < 0 || !ok) {
		ksft_print_msg("range cut: after it, page 0 seen %d, page 1 seen %d times\n",
			       seen[0], seen[hpages]);
		ok = false;
	}

	/*
	 * max_pages = 100, less than a huge page: a caller resuming from
	 * walk_end gets every 4K page of the written page once and gets to the
	 * end, and the page stays written.
	 */
	memset(seen, 0, npages);
	area[0] = 3;
	scans = scan_all(area, HPAGE_2M, 100, seen);
	for (size_t i = 0; i < hpages; i++)
		ok &= seen[i] == 1;
	if (scans < 0 || !ok) {
		ksft_print_msg("max_pages 100: %d scans, first page seen %d times\n", scans,
			       seen[0]);
		ok = false;
	}
	n = scan(area, area + HPAGE_2M, vec, 16, 0, &walk_end);
	if (n != 1 || vec[0].end - vec[0].start != HPAGE_2M) {
		ksft_print_msg("max_pages 100: page not written afterwards (%ld)\n", n);
		ok = false;
	}
	ksft_test_result(ok, "hugetlb cut: %s\n",
			 "reported unprotected where it cannot be protected whole, walk_end moves on");
out_uffd:
	close(uffd);
out:
	munmap(area, len);
	free(seen);
}

/*
 * A THP that a write-protecting scan reports only in part (max_pages ends in
 * it) is split, and its part is reported again as 4K pages. Where the part had
 * started a region of its own (with PAGE_IS_HUGE its categories differ from
 * the region's before it), that region is taken back whole, and the 4K pages
 * start a new one, though they could extend the region before: C does so
 * (pagemap_scan_backout_range()), and Rust must give the same regions. The
 * scan sees a written 4K page, then a written THP, with max_pages = 101.
 */
static long thp_cut_scan(struct page_region *vec, size_t vec_len, unsigned long *walk_end,
			 bool *no_thp)
{
	const size_t len = 2 * HPAGE_2M;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.vec = (unsigned long)vec,
		.vec_len = vec_len,
		.max_pages = 101,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN | PAGE_IS_HUGE,
	};
	unsigned long cats[2];
	char *base, *area;
	long n = -1;
	int uffd;

	base = mmap(NULL, len + HPAGE_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		ksft_print_msg("THP cut: mmap: %s\n", strerror(errno));
		return -1;
	}
	area = (char *)(((unsigned long)base + HPAGE_2M - 1) & ~(HPAGE_2M - 1));
	if (mmap(area, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) == MAP_FAILED) {
		ksft_print_msg("THP cut: mmap: %s\n", strerror(errno));
		goto out;
	}
	if (madvise(area, HPAGE_2M, MADV_NOHUGEPAGE) ||
	    madvise(area + HPAGE_2M, HPAGE_2M, MADV_HUGEPAGE)) {
		/* EINVAL: a kernel without THP. */
		*no_thp = errno == EINVAL;
		ksft_print_msg("THP cut: madvise: %s\n", strerror(errno));
		goto out;
	}
	uffd = uffd_wp_async(area, len);
	if (uffd < 0) {
		ksft_print_msg("THP cut: uffd register: %s\n", strerror(-uffd));
		goto out;
	}
	/*
	 * The 4K part protected, then one page written; the THP written, never
	 * protected (a write to a protected THP in async mode would split it).
	 */
	if (scan(area, area + HPAGE_2M, NULL, 0, 0, walk_end) < 0) {
		ksft_print_msg("THP cut: protecting the 4K part failed\n");
		goto out_uffd;
	}
	area[HPAGE_2M - page_size] = 1;
	memset(area + HPAGE_2M, 1, HPAGE_2M);
	if (categories_of(area + HPAGE_2M - page_size, 2, cats)) {
		ksft_print_msg("THP cut: the categories scan failed\n");
		goto out_uffd;
	}
	/* Without a huge page the case is not there; else both pages are written. */
	if (!(cats[1] & PAGE_IS_HUGE)) {
		*no_thp = true;
		goto out_uffd;
	}
	if ((cats[0] & (PAGE_IS_WRITTEN | PAGE_IS_HUGE)) != PAGE_IS_WRITTEN ||
	    !(cats[1] & PAGE_IS_WRITTEN)) {
		ksft_print_msg("THP cut: categories %#lx and %#lx before the scan\n", cats[0],
			       cats[1]);
		goto out_uffd;
	}
	arg.start = (unsigned long)area;
	arg.end = (unsigned long)area + len;
	n = scan_arg(pagemap_fd, &arg);
	*walk_end = arg.walk_end - (unsigned long)area;
	for (long i = 0; i < n; i++) {
		vec[i].start -= (unsigned long)area;
		vec[i].end -= (unsigned long)area;
	}
out_uffd:
	close(uffd);
out:
	munmap(base, len + HPAGE_2M);
	return n;
}

static void test_thp_cut(void)
{
	const unsigned long thp = HPAGE_2M, cut = HPAGE_2M + 100 * page_size;
	bool both = !access(SWITCH, W_OK), was_rust = rust_impl(), ok = true;

	for (int rust = 0; rust < (both ? 2 : 1); rust++) {
		const char *impl = both ? (rust ? "Rust" : "C") : "this kernel";
		struct page_region vec[16];
		unsigned long walk_end = 0;
		bool no_thp = false;
		long n;

		if (both && set_impl(rust)) {
			ksft_test_result_fail("THP cut: switch: %s\n", strerror(errno));
			set_impl(was_rust);
			return;
		}
		n = thp_cut_scan(vec, 16, &walk_end, &no_thp);
		if (both)
			set_impl(was_rust);
		if (no_thp && ok) {
			ksft_test_result_skip("THP cut: no THP for the written range\n");
			return;
		}
		if (n != 2 || vec[0].start != thp - page_size || vec[0].end != thp ||
		    vec[0].categories != PAGE_IS_WRITTEN || vec[1].start != thp ||
		    vec[1].end != cut || vec[1].categories != PAGE_IS_WRITTEN || walk_end != cut) {
			ksft_print_msg("THP cut, %s: %ld regions, walk_end +%#lx\n", impl, n,
				       walk_end);
			ksft_print_msg("THP cut: want [+%#lx, +%#lx), [+%#lx, +%#lx), end +%#lx\n",
				       thp - page_size, thp, thp, cut, cut);
			for (long i = 0; i < n && i < 16; i++)
				ksft_print_msg("  [+%#llx, +%#llx) %#llx\n",
					       (unsigned long long)vec[i].start,
					       (unsigned long long)vec[i].end,
					       (unsigned long long)vec[i].categories);
			ok = false;
		}
	}
	ksft_test_result(ok, "THP cut: the part reported starts a region of its own%s\n",
			 both ? ", with C and with Rust" : "");
}

/*
 * walk_end of a scan that reports more than 512 regions, the size of the
 * kernel's bounce buffer, so that it walks the range in more than one round.
 * 1024 present pages with a hole after each: a scan that completes returns
 * walk_end == end, one that fills the user's vector returns the first address
 * it did not report, and a caller resuming from walk_end sees each page once,
 * whatever vec_len. 7.3 returned walk_end where the first round stopped.
 */
#define W_PAGES		1024

static long present_scan(char *start, char *end, struct page_region *vec, size_t vec_len,
			 unsigned long *walk_end)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (unsigned long)start,
		.end = (unsigned long)end,
		.vec = (unsigned long)vec,
		.vec_len = vec_len,
		.category_mask = PAGE_IS_PRESENT,
		.return_mask = PAGE_IS_PRESENT,
	};
	long ret = scan_arg(pagemap_fd, &arg);

	*walk_end = arg.walk_end;
	return ret;
}

static void test_walk_end(void)
{
	static const size_t vec_lens[] = { 16, 512, 513, 600, 1024, 4096 };
	const size_t len = 2 * W_PAGES * page_size;
	struct page_region *vec = calloc(4096, sizeof(*vec));
	unsigned char *seen = calloc(2 * W_PAGES, 1);
	char *area, *end;
	unsigned long walk_end;
	bool ok = true;
	long n;

	area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED || !vec || !seen)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	/* No THP here: each even page present, each odd one a hole. */
	madvise(area, len, MADV_NOHUGEPAGE);
	end = area + len;
	for (size_t i = 0; i < W_PAGES; i++)
		area[2 * i * page_size] = 1;

	/* Complete: every region, walk_end == end. */
	n = present_scan(area, end, vec, 4096, &walk_end);
	if (n != W_PAGES || walk_end != (unsigned long)end) {
		ksft_print_msg("vec_len 4096: %ld regions, walk_end +%#lx; want %d, +%#zx\n",
			       n, walk_end - (unsigned long)area, W_PAGES, len);
		ok = false;
	}
	for (long i = 0; ok && i < n; i++) {
		if (vec[i].start != (unsigned long)area + 2 * i * page_size ||
		    vec[i].end != vec[i].start + page_size) {
			ksft_print_msg("vec_len 4096: region %ld wrong\n", i);
			ok = false;
		}
	}
	/* The user's vector is full: walk_end is the first page not reported. */
	n = present_scan(area, end, vec, 600, &walk_end);
	if (n != 600 || walk_end != (unsigned long)area + 2 * 600 * page_size) {
		ksft_print_msg("vec_len 600: %ld regions, walk_end +%#lx; want 600, +%#lx\n",
			       n, walk_end - (unsigned long)area, 2 * 600 * page_size);
		ok = false;
	}
	/* Resuming from walk_end: each page exactly once, for each vec_len. */
	for (size_t k = 0; k < ARRAY_SIZE(vec_lens); k++) {
		char *start = area;
		int scans = 0;

		memset(seen, 0, 2 * W_PAGES);
		while (start < end && scans++ < 200) {
			n = present_scan(start, end, vec, vec_lens[k], &walk_end);
			if (n < 0 || walk_end <= (unsigned long)start)
				break;
			for (long i = 0; i < n; i++)
				for (unsigned long a = vec[i].start; a < vec[i].end; a += page_size)
					seen[(a - (unsigned long)area) / page_size]++;
			start = (char *)walk_end;
		}
		for (size_t i = 0; i < 2 * W_PAGES; i++) {
			if (seen[i] != (i % 2 == 0)) {
				ksft_print_msg("vec_len %zu: page %zu seen %d times (%d scans)\n",
					       vec_lens[k], i, seen[i], scans);
				ok = false;
				break;
			}
		}
	}
	ksft_test_result(ok, "walk_end: end after a scan of more than 512 regions, resumable\n");
	munmap(area, len);
	free(vec);
	free(seen);
}

/*
 * Wasmtime's pooling allocator resets a linear memory between instances with
 * one scan of plain anonymous memory: it zeroes the written pages reported,
 * up to max_pages (its keep_resident), and decommits the rest of the range
 * from walk_end. Written, read (zero page) and untouched pages; afterwards
 * the memory must read all zero, and the pages reported must be the written
 * ones. 7.3 reported no page of a VMA without uffd-wp as written, so the
 * previous instance's data stayed.
 */
#define R_PAGES		64

static int wasmtime_reset(char *mem, size_t max_pages, unsigned char *reported)
{
	struct page_region vec[32];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (unsigned long)mem,
		.end = (unsigned long)mem + R_PAGES * page_size,
		.vec = (unsigned long)vec,
		.vec_len = 32,
		.max_pages = max_pages,
		.category_inverted = PAGE_IS_PFNZERO | PAGE_IS_FILE,
		.category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_PFNZERO |
				 PAGE_IS_FILE,
		.return_mask = 0,
	};
	long n = scan_arg(pagemap_fd, &arg);

	if (n < 0)
		return -1;
	for (long i = 0; i < n; i++) {
		memset((char *)(unsigned long)vec[i].start, 0, vec[i].end - vec[i].start);
		for (unsigned long a = vec[i].start; a < vec[i].end; a += page_size)
			reported[(a - (unsigned long)mem) / page_size]++;
	}
	return madvise((char *)(unsigned long)arg.walk_end, arg.end - arg.walk_end,
		       MADV_DONTNEED);
}

static void test_wasmtime_reset(void)
{
	static const size_t keep[] = { R_PAGES, 5 };
	char *mem = mmap(NULL, R_PAGES * page_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char reported[R_PAGES];
	bool ok = true;

	if (mem == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	madvise(mem, R_PAGES * page_size, MADV_NOHUGEPAGE);
	for (size_t k = 0; k < ARRAY_SIZE(keep); k++) {
		size_t written = 0;

		/* An instance ran: pages 0, 4, 8, ... written, 1, 5, ... read. */
		for (size_t i = 0; i < R_PAGES; i++) {
			if (i % 4 == 0)
				memset(mem + i * page_size, 0xa5, page_size);
			else if (i % 4 == 1)
				read_byte(mem + i * page_size);
		}
		memset(reported, 0, sizeof(reported));
		if (wasmtime_reset(mem, keep[k], reported)) {
			ksft_print_msg("keep %zu: reset failed: %s\n", keep[k], strerror(errno));
			ok = false;
			continue;
		}
		for (size_t i = 0; i < R_PAGES; i++) {
			/* The first keep[k] written pages are reported, nothing else. */
			bool want = i % 4 == 0 && written < keep[k];

			written += i % 4 == 0;
			if (reported[i] != want) {
				ksft_print_msg("keep %zu: page %zu reported %d times, want %d\n",
					       keep[k], i, reported[i], want);
				ok = false;
			}
			for (long b = 0; b < page_size; b++) {
				if (mem[i * page_size + b]) {
					ksft_print_msg("keep %zu: page %zu not zero\n", keep[k], i);
					ok = false;
					break;
				}
			}
		}
	}
	ksft_test_result(ok, "wasmtime reset: written pages of plain memory reported and zeroed\n");
	munmap(mem, R_PAGES * page_size);
}

/*
 * Three written 2M hugetlb pages, max_pages = 600: each scan can protect one
 * whole huge page (512 pages) but not a second one, which it must leave for
 * the next scan. 7.3 returned the first page with walk_end at the third, so
 * the second page was never reported and stayed writable without a trace.
 */
static void test_hugetlb_max_pages_resume(void)
{
	const size_t len = 3 * HPAGE_2M, npages = len / page_size;
	unsigned char *seen = calloc(npages, 1);
	unsigned long walk_end;
	char *area;
	int uffd, scans;
	bool ok = true;

	area = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (area == MAP_FAILED || !seen) {
		ksft_test_result_skip("hugetlb max_pages resume: no 3 free 2M hugetlb pages\n");
		free(seen);
		return;
	}
	uffd = uffd_wp_async(area, len);
	if (uffd < 0) {
		ksft_test_result_fail("hugetlb max_pages resume: uffd register: %s\n",
				      strerror(-uffd));
		goto out;
	}
	memset(area, 1, len);
	/* Protect everything, then write to each huge page once. */
	if (scan(area, area + len, NULL, 0, 0, &walk_end) < 0) {
		ksft_test_result_fail("hugetlb max_pages resume: initial WP failed\n");
		goto out_uffd;
	}
	for (size_t i = 0; i < 3; i++)
		area[i * HPAGE_2M] = 2;

	scans = scan_all(area, len, 600, seen);
	for (size_t i = 0; i < npages; i++)
		ok &= seen[i] == 1;
	if (scans < 0 || !ok) {
		for (size_t i = 0; i < 3; i++)
			ksft_print_msg("huge page %zu reported %d times\n", i,
				       seen[i * HPAGE_2M / page_size]);
		ok = false;
	}
	/* All protected again: a new scan finds nothing. */
	memset(seen, 0, npages);
	if (ok && (scan_all(area, len, 600, seen) < 0 || memchr(seen, 1, npages))) {
		ksft_print_msg("pages still written after the resumed scans\n");
		ok = false;
	}
	ksft_test_result(ok, "hugetlb max_pages resume: %s (%d scans)\n",
			 "each written huge page reported once", scans);
out_uffd:
	close(uffd);
out:
	munmap(area, len);
	free(seen);
}

/* Errno of each class of bad input; arguments are checked before anything else. */
static void test_errors(void)
{
	const size_t len = 4 * page_size;
	const unsigned long kaddr = 1UL << 63;
	char *buf = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *ro = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct page_region vec[4];
	struct {
		const char *name;
		struct pm_scan_arg arg;
		int err;
		bool writes_walk_end;
	} cases[] = {
#define ARG(...) { .size = sizeof(struct pm_scan_arg), .start = (unsigned long)buf, \
		   .end = (unsigned long)buf + len, .vec = (unsigned long)vec, .vec_len = 4, \
		   .return_mask = PAGE_IS_PRESENT, .walk_end = 0x1234, __VA_ARGS__ }
		{ "size too small", ARG(.size = sizeof(struct pm_scan_arg) - 8), EINVAL },
		{ "size too large", ARG(.size = sizeof(struct pm_scan_arg) + 8), EINVAL },
		{ "unknown flag", ARG(.flags = PM_SCAN_CHECK_WPASYNC << 1), EINVAL },
		{ "unknown category in category_mask", ARG(.category_mask = 1UL << 10), EINVAL },
		{ "unknown category in category_inverted",
		  ARG(.category_inverted = 1UL << 10), EINVAL },
		{ "unknown category in category_anyof_mask",
		  ARG(.category_anyof_mask = 1UL << 63), EINVAL },
		{ "unknown category in return_mask", ARG(.return_mask = 1UL << 11), EINVAL },
		{ "unaligned start", ARG(.start = (unsigned long)buf + 1), EINVAL },
		{ "end before start", ARG(.start = (unsigned long)buf + page_size,
					  .end = (unsigned long)buf), EFAULT },
		{ "range in kernel space", ARG(.start = kaddr, .end = kaddr + page_size), EFAULT },
		{ "vec NULL with vec_len", ARG(.vec = 0, .vec_len = 1), EINVAL },
		{ "vec in kernel space", ARG(.vec = kaddr), EFAULT },
		{ "vec_len overflows", ARG(.vec_len = ~0UL / 2), EFAULT },
		{ "vec read-only", ARG(.vec = (unsigned long)ro), EFAULT, true },
		{ "CHECK_WPASYNC without uffd", ARG(.flags = PM_SCAN_CHECK_WPASYNC), EPERM, true },
		{ "WP_MATCHING without uffd skips the VMA",
		  ARG(.flags = PM_SCAN_WP_MATCHING), 0, true },
#undef ARG
	};
	int pipefd[2], status;
	bool ok = true;
	pid_t pid;

	if (buf == MAP_FAILED || ro == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(buf, 1, len);

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		long ret = scan_arg(pagemap_fd, &cases[i].arg);
		/* C writes walk_end back only once the arguments are valid. */
		unsigned long want_end = 0x1234;

		if (cases[i].writes_walk_end)
			want_end = (unsigned long)buf + len;

		if (ret != -cases[i].err && !(cases[i].err == 0 && ret == 0)) {
			ksft_print_msg("%s: got %ld, want %d\n", cases[i].name, ret, -cases[i].err);
			ok = false;
		} else if (cases[i].arg.walk_end != want_end) {
			ksft_print_msg("%s: walk_end %#llx, want %#lx\n", cases[i].name,
				       (unsigned long long)cases[i].arg.walk_end, want_end);
			ok = false;
		}
	}

	if (ioctl(pagemap_fd, PAGEMAP_SCAN, NULL) != -1 || errno != EFAULT) {
		ksft_print_msg("unreadable argument: want EFAULT\n");
		ok = false;
	}

	/* The mm of a process that has exited: ESRCH. */
	if (pipe(pipefd))
		ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
	pid = fork();
	if (pid == 0) {
		char c;

		close(pipefd[1]);
		read(pipefd[0], &c, 1);
		_exit(0);
	} else if (pid > 0) {
		char path[64];
		int fd;

		snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
		fd = open(path, O_RDONLY);
		close(pipefd[1]);
		waitpid(pid, &status, 0);
		if (fd < 0) {
			ksft_print_msg("open %s: %s\n", path, strerror(errno));
			ok = false;
		} else {
			struct pm_scan_arg arg = { .size = sizeof(arg), .start = (unsigned long)buf,
						   .end = (unsigned long)buf + len };
			long ret = scan_arg(fd, &arg);

			if (ret != -ESRCH) {
				ksft_print_msg("exited process: got %ld, want %d\n", ret, -ESRCH);
				ok = false;
			}
			close(fd);
		}
	} else {
		ksft_exit_fail_msg("fork: %s\n", strerror(errno));
	}
	close(pipefd[0]);

	ksft_test_result(ok, "bad input gets its errno (%zu cases)\n",
			 ARRAY_SIZE(cases) + 2);
	munmap(buf, len);
	munmap(ro, page_size);
}

/*
 * Write-protected pages keep their protection in swap: they are SWAPPED and
 * not WRITTEN, until a write swaps one in and makes it WRITTEN.
 */
static void test_swapped(void)
{
	const size_t n = 16;
	unsigned long cats[16], walk_end;
	char *area = mmap(NULL, n * page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int uffd, swapped = 0;
	bool ok = true;

	if (area == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(area, 1, n * page_size);
	uffd = uffd_wp_async(area, n * page_size);
	if (uffd < 0) {
		ksft_test_result_fail("swapped: uffd register: %s\n", strerror(-uffd));
		goto out;
	}
	if (scan(area, area + n * page_size, NULL, 0, 0, &walk_end) < 0 ||
	    madvise(area, n * page_size, MADV_PAGEOUT) ||
	    categories_of(area, n, cats)) {
		ksft_test_result_fail("swapped: protect, page out or scan failed: %s\n",
				      strerror(errno));
		goto out_uffd;
	}
	for (size_t i = 0; i < n; i++)
		swapped += (cats[i] & (PAGE_IS_SWAPPED | PAGE_IS_PRESENT)) == PAGE_IS_SWAPPED;
	if (!swapped) {
		ksft_test_result_skip("swapped: MADV_PAGEOUT swapped nothing out (no swap?)\n");
		goto out_uffd;
	}
	/* Soft-dirty or not depends on the VMA (VM_SOFTDIRTY); it is not checked here. */
	for (size_t i = 0; i < n; i++)
		cats[i] &= ~PAGE_IS_SOFT_DIRTY;
	for (size_t i = 0; i < n; i++) {
		if (cats[i] != (PAGE_IS_SWAPPED | PAGE_IS_WPALLOWED)) {
			ksft_print_msg("page %zu after page-out: %#lx\n", i, cats[i]);
			ok = false;
		}
	}
	area[3 * page_size] = 2;
	if (categories_of(area, n, cats))
		ok = false;
	for (size_t i = 0; ok && i < n; i++) {
		unsigned long want = i == 3 ? PAGE_IS_PRESENT | PAGE_IS_WRITTEN : PAGE_IS_SWAPPED;

		if ((cats[i] & ~PAGE_IS_SOFT_DIRTY) != (want | PAGE_IS_WPALLOWED)) {
			ksft_print_msg("page %zu after writing page 3: %#lx\n", i, cats[i]);
			ok = false;
		}
	}
	ksft_test_result(ok, "swapped: protection survives swap, a write swaps in as WRITTEN\n");
out_uffd:
	close(uffd);
out:
	munmap(area, n * page_size);
}

/* Guard regions are GUARD (and SWAPPED: non-present entries), other pages not. */
static void test_guard(void)
{
	const size_t n = 8;
	unsigned long cats[8];
	char *area = mmap(NULL, n * page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bool ok = true;

	if (area == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(area, 1, n * page_size);
	if (madvise(area + 2 * page_size, 2 * page_size, MADV_GUARD_INSTALL)) {
		ksft_test_result_skip("guard: MADV_GUARD_INSTALL: %s\n", strerror(errno));
		goto out;
	}
	if (categories_of(area, n, cats))
		ok = false;
	/* Outside uffd-wp, every entry without a uffd bit is also WRITTEN. */
	for (size_t i = 0; ok && i < n; i++) {
		unsigned long want = PAGE_IS_PRESENT | PAGE_IS_WRITTEN;

		if (i == 2 || i == 3)
			want = PAGE_IS_GUARD | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN;

		if ((cats[i] & ~PAGE_IS_SOFT_DIRTY) != want) {
			ksft_print_msg("page %zu: %#lx, want %#lx\n", i, cats[i], want);
			ok = false;
		}
	}
	ksft_test_result(ok, "guard: guard pages are GUARD and SWAPPED\n");
out:
	munmap(area, n * page_size);
}

/* After clear_refs 4 only a page written since is SOFT_DIRTY. */
static void test_soft_dirty(void)
{
	const size_t n = 8;
	unsigned long cats[8];
	char *area = mmap(NULL, n * page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	bool ok = true;

	if (area == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(area, 1, n * page_size);
	if (fd < 0 || write(fd, "4", 1) != 1) {
		ksft_test_result_skip("soft-dirty: clear_refs: %s\n", strerror(errno));
		goto out;
	}
	area[5 * page_size] = 2;
	if (categories_of(area, n, cats))
		ok = false;
	if (ok && !(cats[5] & PAGE_IS_SOFT_DIRTY)) {
		ksft_test_result_skip("soft-dirty: no tracking (CONFIG_MEM_SOFT_DIRTY)\n");
		goto out;
	}
	for (size_t i = 0; ok && i < n; i++) {
		bool dirty = cats[i] & PAGE_IS_SOFT_DIRTY, written = i == 5;

		if (dirty != written) {
			ksft_print_msg("page %zu: %#lx\n", i, cats[i]);
			ok = false;
		}
	}
	ksft_test_result(ok, "soft-dirty: only the page written after clear_refs\n");
out:
	if (fd >= 0)
		close(fd);
	munmap(area, n * page_size);
}

/* Under async read-write protection a page read since protecting is ACCESSED. */
static void test_accessed(void)
{
	const size_t n = 8;
	unsigned long cats[8];
	char *area = mmap(NULL, n * page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_RWP | UFFD_FEATURE_RWP_ASYNC };
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)area, .len = n * page_size },
		.mode = UFFDIO_REGISTER_MODE_RWP,
	};
	struct uffdio_rwprotect rwp = { .range = reg.range, .mode = UFFDIO_RWPROTECT_MODE_RWP };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	bool ok = true;

	if (area == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(area, 1, n * page_size);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		ksft_test_result_skip("accessed: no async uffd read-write protection: %s\n",
				      strerror(errno));
		goto out;
	}
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) || ioctl(uffd, UFFDIO_RWPROTECT, &rwp)) {
		ksft_test_result_fail("accessed: register/protect: %s\n", strerror(errno));
		goto out;
	}
	read_byte(area + 6 * page_size);
	if (categories_of(area, n, cats))
		ok = false;
	for (size_t i = 0; ok && i < n; i++) {
		bool accessed = cats[i] & PAGE_IS_ACCESSED, read = i == 6;

		if (accessed != read || cats[i] & PAGE_IS_WRITTEN) {
			ksft_print_msg("page %zu: %#lx\n", i, cats[i]);
			ok = false;
		}
	}
	ksft_test_result(ok, "accessed: only the page read after protecting\n");
out:
	if (uffd >= 0)
		close(uffd);
	munmap(area, n * page_size);
}

#define M_PAGES		64
#define M_MOVES		200

struct mover {
	char *area;
	int moves, failed;
	bool done;	/* set (release) when the mover has finished */
};

/* Migrates the pages of the area between NUMA nodes 0 and 1, back and forth. */
static void *mover_fn(void *arg)
{
	struct mover *m = arg;
	void *pages[M_PAGES];
	int nodes[M_PAGES], status[M_PAGES];

	for (int i = 0; i < M_PAGES; i++)
		pages[i] = m->area + i * page_size;
	for (; m->moves < M_MOVES; m->moves++) {
		for (int i = 0; i < M_PAGES; i++)
			nodes[i] = (m->moves + 1) % 2;
		if (syscall(__NR_move_pages, 0, M_PAGES, pages, nodes, status, MPOL_MF_MOVE)) {
			m->failed = errno;
			break;
		}
	}
	__atomic_store_n(&m->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Pages that migrate keep their write protection: scans while they move
 * between two NUMA nodes see each page as PRESENT, or as SWAPPED while a
 * migration entry stands in for it, never as WRITTEN; after the moves a
 * write makes exactly the written page WRITTEN.
 */
static void test_migration(void)
{
	unsigned long cats[M_PAGES], walk_end;
	char *area = mmap(NULL, M_PAGES * page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct mover m = { .area = area };
	void *page0 = area;
	int node = 1, status = -1, uffd, scans = 0, migrating = 0;
	pthread_t thread;
	bool ok = true;

	if (area == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(area, 1, M_PAGES * page_size);
	/* Can a page move to node 1 at all? */
	if (syscall(__NR_move_pages, 0, 1, &page0, &node, &status, MPOL_MF_MOVE) || status != 1) {
		ksft_test_result_skip("migration: no second NUMA node (status %d): %s\n",
				      status, strerror(errno));
		goto out;
	}
	uffd = uffd_wp_async(area, M_PAGES * page_size);
	if (uffd < 0 || scan(area, area + M_PAGES * page_size, NULL, 0, 0, &walk_end) < 0) {
		ksft_test_result_fail("migration: uffd register or protect failed\n");
		goto out;
	}
	if (pthread_create(&thread, NULL, mover_fn, &m))
		ksft_exit_fail_msg("pthread_create\n");
	while (!__atomic_load_n(&m.done, __ATOMIC_ACQUIRE) && ok) {
		if (categories_of(area, M_PAGES, cats)) {
			ok = false;
			break;
		}
		scans++;
		for (int i = 0; i < M_PAGES; i++) {
			unsigned long c = cats[i] & ~(PAGE_IS_SOFT_DIRTY | PAGE_IS_WPALLOWED);

			migrating += c == PAGE_IS_SWAPPED;
			if (c != PAGE_IS_PRESENT && c != PAGE_IS_SWAPPED) {
				ksft_print_msg("scan %d, page %d while migrating: %#lx\n",
					       scans, i, cats[i]);
				ok = false;
			}
		}
	}
	pthread_join(thread, NULL);
	if (m.failed) {
		ksft_print_msg("move_pages: %s after %d moves\n", strerror(m.failed), m.moves);
		ok = false;
	}
	area[5 * page_size] = 2;
	if (ok && categories_of(area, M_PAGES, cats))
		ok = false;
	for (int i = 0; ok && i < M_PAGES; i++) {
		unsigned long want = i == 5 ? PAGE_IS_PRESENT | PAGE_IS_WRITTEN : PAGE_IS_PRESENT;

		if ((cats[i] & ~(PAGE_IS_SOFT_DIRTY | PAGE_IS_WPALLOWED)) != want) {
			ksft_print_msg("page %d after the moves and a write to page 5: %#lx\n",
				       i, cats[i]);
			ok = false;
		}
	}
	ksft_print_msg("migration: %d moves of %d pages, %d scans, %d migration entries seen\n",
		       m.moves, M_PAGES, scans, migrating);
	ksft_test_result(ok, "migration: protection survives migration, scanned meanwhile\n");
	close(uffd);
out:
	munmap(area, M_PAGES * page_size);
}

/*
 * Differential test of the C and Rust implementations (needs the debugfs
 * switch of CONFIG_PAGEMAP_SCAN_RUST_SWITCH). Each round builds the same
 * random layout twice at the same addresses, runs the same random scan on it
 * with C and then with Rust, and compares the return value, the regions,
 * walk_end and the categories of every page afterwards (which show what was
 * write-protected). The checkerboard part gives scans of more than 512
 * regions, which the kernel walks in more than one round.
 */
#define D_ROUNDS	1000
#define D_ANON		96	/* uffd-wp anonymous pages, some guard */
#define D_PLAIN		32	/* anonymous pages without uffd */
#define D_SHMEM		32	/* uffd-wp shmem pages */
#define D_THP		2	/* uffd-wp 2M THPs */
#define D_HUGETLB	2	/* uffd-wp 2M hugetlb pages */
#define D_CHECKER	640	/* uffd-wp anonymous pages, each unlike its neighbours */
#define D_VEC		1024	/* the largest vec_len */

struct d_layout {
	char *base, *anon, *plain, *shmem, *checker, *thp, *hugetlb;
	size_t span;
	int uffd[5];
	bool guard[D_ANON];	/* guard pages: any access is SIGSEGV */
};

struct d_result {
	long ret;
	unsigned long walk_end;
	struct page_region vec[D_VEC];
	unsigned long *before, *cats;
	bool wp;
};

static unsigned int d_seed;

static unsigned int d_rand(void)
{
	d_seed = d_seed * 1103515245 + 12345;
	return (d_seed >> 8) & 0xffffff;
}

static int set_impl(bool rust)
{
	int fd = open(SWITCH, O_WRONLY);
	int ret = fd >= 0 && write(fd, rust ? "Y" : "N", 1) == 1 ? 0 : -1;

	if (fd >= 0)
		close(fd);
	return ret;
}

/* Whether the switch selects Rust, which it does by default. */
static bool rust_impl(void)
{
	int fd = open(SWITCH, O_RDONLY);
	char c = 'Y';

	if (fd >= 0) {
		if (read(fd, &c, 1) != 1)
			c = 'Y';
		close(fd);
	}
	return c != 'N';
}

/* Touch pages at random: none, read (zero page) or written. */
static void d_touch(char *p, size_t npages, bool reads)
{
	for (size_t i = 0; i < npages; i++) {
		unsigned int r = d_rand() % 4;

		if (r == 1 && reads)
			read_byte(p + i * page_size);
		else if (r >= 2)
			p[i * page_size] = 1;
	}
}

static char *d_map(char *at, size_t len, int flags, int fd)
{
	char *p = mmap(at, len, PROT_READ | PROT_WRITE, flags | MAP_FIXED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* Builds the layout of seed @seed at @base; the setup scans use C. */
static int d_build(struct d_layout *l, unsigned int seed)
{
	struct pm_scan_arg protect = {
		.size = sizeof(protect),
		.flags = PM_SCAN_WP_MATCHING,
		.start = (unsigned long)l->base,
		.end = (unsigned long)l->base + l->span,
	};
	int memfd;

	d_seed = seed;
	/* Each part is followed by an unmapped page, a hole outside any VMA. */
	l->anon = l->base;
	l->plain = l->anon + (D_ANON + 1) * page_size;
	l->shmem = l->plain + (D_PLAIN + 1) * page_size;
	l->checker = l->base + HPAGE_2M;
	l->thp = l->base + 4 * HPAGE_2M;
	l->hugetlb = l->base + 8 * HPAGE_2M;
	memset(l->uffd, -1, sizeof(l->uffd));

	memfd = memfd_create("pagemap_scan", 0);
	if (memfd < 0 || ftruncate(memfd, D_SHMEM * page_size))
		return -1;
	if (!d_map(l->anon, D_ANON * page_size, MAP_PRIVATE | MAP_ANONYMOUS, -1) ||
	    !d_map(l->plain, D_PLAIN * page_size, MAP_PRIVATE | MAP_ANONYMOUS, -1) ||
	    !d_map(l->shmem, D_SHMEM * page_size, MAP_SHARED, memfd) ||
	    !d_map(l->checker, D_CHECKER * page_size, MAP_PRIVATE | MAP_ANONYMOUS, -1) ||
	    !d_map(l->thp, D_THP * HPAGE_2M, MAP_PRIVATE | MAP_ANONYMOUS, -1) ||
	    !d_map(l->hugetlb, D_HUGETLB * HPAGE_2M,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1)) {
		close(memfd);
		return -1;
	}
	close(memfd);

	d_touch(l->anon, D_ANON, true);
	d_touch(l->plain, D_PLAIN, true);
	d_touch(l->shmem, D_SHMEM, true);
	madvise(l->checker, D_CHECKER * page_size, MADV_NOHUGEPAGE);
	madvise(l->thp, D_THP * HPAGE_2M, MADV_HUGEPAGE);
	memset(l->checker, 1, D_CHECKER * page_size);
	for (size_t i = 0; i < D_THP; i++)
		if (d_rand() % 2)
			memset(l->thp + i * HPAGE_2M, 1, HPAGE_2M);
	for (size_t i = 0; i < D_HUGETLB; i++)
		if (d_rand() % 2)
			l->hugetlb[i * HPAGE_2M] = 1;
	memset(l->guard, 0, sizeof(l->guard));
	for (size_t i = 0; i < 3; i++) {
		size_t at = d_rand() % D_ANON;

		if (!madvise(l->anon + at * page_size, page_size, MADV_GUARD_INSTALL))
			l->guard[at] = true;
	}

	l->uffd[0] = uffd_wp_async(l->anon, D_ANON * page_size);
	l->uffd[1] = uffd_wp_async(l->shmem, D_SHMEM * page_size);
	l->uffd[2] = uffd_wp_async(l->thp, D_THP * HPAGE_2M);
	l->uffd[3] = uffd_wp_async(l->hugetlb, D_HUGETLB * HPAGE_2M);
	l->uffd[4] = uffd_wp_async(l->checker, D_CHECKER * page_size);
	for (size_t i = 0; i < 5; i++)
		if (l->uffd[i] < 0)
			return -1;
	/* Protect everything (the uffd-wp parts), then write some pages again. */
	if (scan_arg(pagemap_fd, &protect) < 0)
		return -1;
	for (size_t i = 0; i < D_ANON; i++) {
		unsigned int r = d_rand() % 8;

		if (l->guard[i])
			continue;
		if (r == 0)
			madvise(l->anon + i * page_size, page_size, MADV_DONTNEED);
		else if (r <= 2)
			l->anon[i * page_size] = 2;
	}
	d_touch(l->shmem, D_SHMEM, false);
	/* Written, protected, written, zapped: each page unlike the next. */
	for (size_t i = 0; i < D_CHECKER; i++) {
		if (i % 2 == 0)
			l->checker[i * page_size] = 2;
		else if (i % 4 == 3)
			madvise(l->checker + i * page_size, page_size, MADV_DONTNEED);
	}
	/*
	 * A THP left alone stays as the protection left it: huge, or a page
	 * table of markers where it was never populated. A write to a protected
	 * THP splits it in async mode, and markers keep their page table: a
	 * written THP is faulted in anew only where a THP was zapped.
	 */
	for (size_t i = 0; i < D_THP; i++) {
		char *thp = l->thp + i * HPAGE_2M;
		unsigned int r = d_rand() % 3;

		if (r == 1) {
			madvise(thp, HPAGE_2M, MADV_DONTNEED);
			memset(thp, 2, HPAGE_2M);
		} else if (r == 2) {
			for (size_t k = 0; k < HPAGE_2M / page_size; k += 1 + d_rand() % 300)
				thp[k * page_size] = 2;
		}
	}
	for (size_t i = 0; i < D_HUGETLB; i++)
		if (d_rand() % 2)
			l->hugetlb[i * HPAGE_2M] = 2;
	return 0;
}

static void d_teardown(struct d_layout *l)
{
	for (size_t i = 0; i < 5; i++)
		if (l->uffd[i] >= 0)
			close(l->uffd[i]);
	mmap(l->base, l->span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

static unsigned long d_mask(void)
{
	static const unsigned long often[] = {
		0, 0, PAGE_IS_WRITTEN, PAGE_IS_PRESENT, PAGE_IS_WPALLOWED,
		PAGE_IS_PRESENT | PAGE_IS_WRITTEN, PAGE_IS_SWAPPED | PAGE_IS_GUARD,
		PAGE_IS_FILE, PAGE_IS_HUGE, PAGE_IS_PFNZERO, PAGE_IS_SOFT_DIRTY,
	};
	unsigned int r = d_rand() % 16;

	return r < 11 ? often[r] : d_rand() & ALL_CATEGORIES;
}

static int d_run(struct d_layout *l, unsigned int seed, bool rust, struct d_result *res)
{
	struct pm_scan_arg arg = { .size = sizeof(arg) };
	size_t pages = l->span / page_size;
	unsigned int r;

	if (set_impl(false) || d_build(l, seed) || categories_of(l->base, pages, res->before))
		return -1;
	/* The arguments come after the layout in the random sequence. */
	if (d_rand() % 4) {
		arg.start = (unsigned long)l->base + d_rand() % pages * page_size;
		arg.end = arg.start + d_rand() % (pages / 2) * page_size;
	} else {
		/* All of the checkerboard, or most of it. */
		arg.start = (unsigned long)l->checker - d_rand() % 64 * page_size;
		arg.end = (unsigned long)l->checker + (D_CHECKER - d_rand() % 64) * page_size;
	}
	arg.end += d_rand() % 4 ? 0 : 123;
	if (arg.end > (unsigned long)l->base + l->span)
		arg.end = (unsigned long)l->base + l->span;
	r = d_rand() % 8;
	arg.flags = r < 3 ? 0 : r < 6 ? PM_SCAN_WP_MATCHING :
		    r == 6 ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : PM_SCAN_CHECK_WPASYNC;
	arg.category_mask = d_mask();
	arg.category_inverted = d_rand() % 3 ? 0 : d_mask();
	arg.category_anyof_mask = d_rand() % 3 ? 0 : d_mask();
	arg.return_mask = d_rand() % 3 ? ALL_CATEGORIES : d_mask() | PAGE_IS_WRITTEN;
	r = d_rand() % 8;
	arg.vec_len = r == 0 ? 0 : r < 5 ? d_rand() % 16 : r < 7 ? 513 + d_rand() % 200 : D_VEC;
	arg.vec = r == 0 && d_rand() % 2 ? 0 : (unsigned long)res->vec;
	arg.max_pages = d_rand() % 3 ? 0 : 1 + d_rand() % 1100;

	memset(res->vec, 0, sizeof(res->vec));
	if (set_impl(rust))
		return -1;
	res->ret = scan_arg(pagemap_fd, &arg);
	res->wp = arg.flags & PM_SCAN_WP_MATCHING;
	res->walk_end = arg.walk_end;
	if (set_impl(false) || categories_of(l->base, pages, res->cats))
		return -1;
	d_teardown(l);
	return 0;
}

static void d_report(struct d_layout *l, int round, unsigned int seed, struct d_result *res)
{
	const unsigned long base = (unsigned long)l->base;
	const char *impl[2] = { "C", "Rust" };

	ksft_print_msg("round %d (seed %#x) differs:\n", round, seed);
	for (int k = 0; k < 2; k++)
		ksft_print_msg("  %s: ret %ld walk_end +%#lx\n", impl[k], res[k].ret,
			       res[k].walk_end - base);
	for (int i = 0, shown = 0; i < D_VEC && shown < 8; i++) {
		if (!memcmp(&res[0].vec[i], &res[1].vec[i], sizeof(res[0].vec[i])))
			continue;
		shown++;
		for (int k = 0; k < 2; k++)
			ksft_print_msg("  region %d %s: %#llx-%#llx %#llx\n", i, impl[k],
				       (unsigned long long)res[k].vec[i].start,
				       (unsigned long long)res[k].vec[i].end,
				       (unsigned long long)res[k].vec[i].categories);
	}
	for (size_t i = 0; i < l->span / page_size; i++)
		if (res[0].cats[i] != res[1].cats[i])
			ksft_print_msg("  page +%#zx after: C %#lx, Rust %#lx\n",
				       i * page_size, res[0].cats[i], res[1].cats[i]);
}

static void test_differential(void)
{
	struct d_layout l = { .span = 10 * HPAGE_2M };
	struct d_result res[2];
	size_t pages = l.span / page_size;
	int round, failed = 0, found = 0, errors = 0, protected = 0, rounds = 0;
	int thp = 0, written_thp = 0, unlike = 0;
	bool was_rust = rust_impl();

	if (access(SWITCH, W_OK)) {
		ksft_test_result_skip("differential: no %s (CONFIG_PAGEMAP_SCAN_RUST_SWITCH)\n",
				      SWITCH);
		return;
	}
	/* A 2M-aligned reservation, so that the THP part can be huge. */
	l.base = mmap(NULL, l.span + HPAGE_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (l.base == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	l.base = (char *)(((unsigned long)l.base + HPAGE_2M - 1) & ~(HPAGE_2M - 1));
	for (int k = 0; k < 2; k++) {
		res[k].before = calloc(pages, sizeof(unsigned long));
		res[k].cats = calloc(pages, sizeof(unsigned long));
		if (!res[k].before || !res[k].cats)
			ksft_exit_fail_msg("calloc: %s\n", strerror(errno));
	}

	for (round = 0; round < D_ROUNDS && failed < 5; round++) {
		unsigned int seed = 0x5eed0000 + round;
		bool has_thp = false, has_written_thp = false;

		if (d_run(&l, seed, false, &res[0]) || d_run(&l, seed, true, &res[1])) {
			ksft_print_msg("round %d: layout or switch failed: %s\n", round,
				       strerror(errno));
			failed++;
			break;
		}
		/*
		 * Each implementation scans a layout of its own, built the same
		 * way; where the system gave one build a THP and not the other
		 * (a fragmented or busy system), the results may differ rightly.
		 */
		if (memcmp(res[0].before, res[1].before, pages * sizeof(unsigned long))) {
			unlike++;
			continue;
		}
		found += res[0].ret > 0;
		errors += res[0].ret < 0;
		protected += res[0].wp;
		/* More regions than the kernel's bounce buffer: more than one walk. */
		rounds += res[0].ret > 512;
		/*
		 * THPs, where the system gives any: some written, and still
		 * there after a scan (which protects those it reports).
		 */
		for (size_t i = 0; i < D_THP * HPAGE_2M / page_size; i++) {
			unsigned long c = res[0].cats[(l.thp - l.base) / page_size + i];

			has_thp |= c & PAGE_IS_HUGE;
			has_written_thp |= (c & PAGE_IS_HUGE) && (c & PAGE_IS_WRITTEN);
		}
		thp += has_thp;
		written_thp += has_written_thp;
		if (res[0].ret != res[1].ret || res[0].walk_end != res[1].walk_end ||
		    memcmp(res[0].vec, res[1].vec, sizeof(res[0].vec)) ||
		    memcmp(res[0].cats, res[1].cats, pages * sizeof(unsigned long))) {
			d_report(&l, round, seed, res);
			failed++;
		}
	}
	/* Back to the implementation the test was started with. */
	set_impl(was_rust);
	ksft_print_msg("differential: %d scans found regions, %d failed, %d write-protected\n",
		       found, errors, protected);
	ksft_print_msg("differential: %d scans reported more than 512 regions\n", rounds);
	ksft_print_msg("differential: %d scans left a THP, %d a written one\n", thp,
		       written_thp);
	ksft_print_msg("differential: %d of %d layouts differed before the scan, not compared\n",
		       unlike, round);
	if (!failed && unlike * 10 > round)
		ksft_test_result_skip("differential: too few layouts alike (%d of %d)\n",
				      round - unlike, round);
	else
		ksft_test_result(!failed && rounds && (written_thp || !thp),
				 "differential: C and Rust agree on %d random scans\n",
				 round - unlike);
	for (int k = 0; k < 2; k++) {
		free(res[k].before);
		free(res[k].cats);
	}
}

/*
 * mmap_lock contention. The Rust scan gives the mmap lock up when a task
 * waits for it, and resumes where it stopped; C holds it for the whole walk.
 * Either way the results must be those of a scan that nobody disturbed:
 *
 * - a thread loops mmap()+munmap() of one page elsewhere while write-protecting
 *   scans report the pages written since the last one: each scan reports
 *   exactly those (its regions span page tables, so a region that the scan
 *   split where it gave the lock up would show);
 * - a thread remaps 2M chunks of the scanned range meanwhile: a resuming scan
 *   never reports a region outside its range, out of order, or a page twice.
 */
#define CT_SPAN		(32UL << 20)
#define CT_ROUNDS	12
#define CT_GAP		300	/* every 300th page is left alone: runs cross PMDs */

static int ct_stop;
static unsigned long ct_ops;
static char *ct_remap_area;

static void *ct_mapper(void *unused)
{
	while (!__atomic_load_n(&ct_stop, __ATOMIC_RELAXED)) {
		void *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			break;
		munmap(p, page_size);
		__atomic_add_fetch(&ct_ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *ct_remapper(void *unused)
{
	unsigned int seed = 1;

	while (!__atomic_load_n(&ct_stop, __ATOMIC_RELAXED)) {
		char *chunk = ct_remap_area + rand_r(&seed) % (CT_SPAN / HPAGE_2M) * HPAGE_2M;

		if (mmap(chunk, HPAGE_2M, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
			break;
		for (size_t i = rand_r(&seed) % 8; i < HPAGE_2M / page_size;
		     i += 1 + rand_r(&seed) % 64)
			chunk[i * page_size] = 1;
		__atomic_add_fetch(&ct_ops, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Round @round writes every page but those at CT_GAP intervals from @round. */
static bool ct_written(size_t page, int round)
{
	return (page + round) % CT_GAP != 0;
}

static bool ct_exact_rounds(char *area, struct page_region *vec, size_t vec_len)
{
	const size_t pages = CT_SPAN / page_size;
	bool ok = true;

	for (int round = 0; round < CT_ROUNDS && ok; round++) {
		unsigned long walk_end;
		size_t want = 0;
		long n;

		for (size_t i = 0; i < pages; i++)
			if (ct_written(i, round))
				area[i * page_size] = round;
		n = scan(area, area + CT_SPAN, vec, vec_len, 0, &walk_end);
		/* The expected regions: the runs of written pages, in order. */
		for (size_t i = 0; i < pages && ok; i++) {
			size_t j = i;

			if (!ct_written(i, round))
				continue;
			while (j < pages && ct_written(j, round))
				j++;
			if ((long)want >= n ||
			    vec[want].start != (unsigned long)(area + i * page_size) ||
			    vec[want].end != (unsigned long)(area + j * page_size) ||
			    vec[want].categories != PAGE_IS_WRITTEN) {
				ksft_print_msg("round %d: region %zu of %ld is not pages %zu-%zu\n",
					       round, want, n, i, j);
				ok = false;
			}
			want++;
			i = j;
		}
		if (ok && (n != (long)want || walk_end != (unsigned long)(area + CT_SPAN))) {
			ksft_print_msg("round %d: %ld regions, walk_end +%#lx; want %zu, +%#lx\n",
				       round, n, walk_end - (unsigned long)area, want, CT_SPAN);
			ok = false;
		}
	}
	return ok;
}

/*
 * The @n regions of one call: in the range, in order, after the last call's
 * (*@last, then moved past them) and before @walk_end.
 */
static bool ct_regions_sane(const struct page_region *vec, long n, unsigned long *last,
			    unsigned long long walk_end, unsigned long end)
{
	for (long i = 0; i < n; i++) {
		if (vec[i].start < *last || vec[i].end <= vec[i].start ||
		    vec[i].end > walk_end || walk_end > end) {
			ksft_print_msg("region %#llx-%#llx after %#lx, walk_end %#llx\n",
				       (unsigned long long)vec[i].start,
				       (unsigned long long)vec[i].end, *last, walk_end);
			return false;
		}
		*last = vec[i].end;
	}
	return true;
}

/*
 * Resuming PRESENT scans of @area while ct_remapper() remaps it: at least
 * @passes of them, and on until the remapper has done @remaps remaps.
 */
static bool ct_sane_scans(char *area, int passes, unsigned long remaps)
{
	struct page_region vec[7];
	unsigned long end = (unsigned long)area + CT_SPAN;

	for (int pass = 0; pass < passes || __atomic_load_n(&ct_ops, __ATOMIC_RELAXED) < remaps;
	     pass++) {
		if (pass == 100000) {
			ksft_print_msg("the remapper made no progress in %d passes\n", pass);
			return false;
		}
		unsigned long start = (unsigned long)area, last = start;
		int calls = 0;

		while (start < end) {
			struct pm_scan_arg arg = {
				.size = sizeof(arg),
				.start = start,
				.end = end,
				.vec = (unsigned long)vec,
				.vec_len = 7,
				.category_mask = PAGE_IS_PRESENT,
				.return_mask = PAGE_IS_PRESENT,
			};
			long n = scan_arg(pagemap_fd, &arg);

			if (n < 0 || ++calls > 100000) {
				ksft_print_msg("pass %d: scan from +%#lx: %ld\n", pass,
					       start - (unsigned long)area, n);
				return false;
			}
			if (!ct_regions_sane(vec, n, &last, arg.walk_end, end)) {
				ksft_print_msg("in pass %d, call %d\n", pass, calls);
				return false;
			}
			if (arg.walk_end <= start) {
				ksft_print_msg("pass %d: no progress at +%#lx\n", pass,
					       start - (unsigned long)area);
				return false;
			}
			start = arg.walk_end;
		}
	}
	return true;
}

static void test_contention(void)
{
	struct page_region *vec = calloc(4096, sizeof(*vec));
	unsigned long ops_exact, ops_remap;
	pthread_t thread;
	bool quiet, busy, sane;
	char *area;
	int uffd;

	area = mmap(NULL, CT_SPAN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ct_remap_area = mmap(NULL, CT_SPAN + HPAGE_2M, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!vec || area == MAP_FAILED || ct_remap_area == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	ct_remap_area = (char *)(((unsigned long)ct_remap_area + HPAGE_2M - 1) & ~(HPAGE_2M - 1));
	/* Small pages: the scan meets a page table per 2M, and may stop after each. */
	madvise(area, CT_SPAN, MADV_NOHUGEPAGE);
	uffd = uffd_wp_async(area, CT_SPAN);
	if (uffd < 0) {
		ksft_test_result_fail("contention: uffd register: %s\n", strerror(-uffd));
		return;
	}
	/* Everything protected, and never-written pages with markers, before the rounds. */
	if (scan(area, area + CT_SPAN, vec, 4096, 0, &(unsigned long){ 0 }) < 0)
		ksft_exit_fail_msg("initial protection: %s\n", strerror(errno));
	quiet = ct_exact_rounds(area, vec, 4096);

	ct_stop = 0;
	ct_ops = 0;
	if (pthread_create(&thread, NULL, ct_mapper, NULL))
		ksft_exit_fail_msg("pthread_create: %s\n", strerror(errno));
	busy = ct_exact_rounds(area, vec, 4096);
	__atomic_store_n(&ct_stop, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	ops_exact = ct_ops;

	ct_stop = 0;
	ct_ops = 0;
	/* Two pages of every three: thousands of regions, hundreds of calls a pass. */
	for (size_t i = 0; i < CT_SPAN / page_size; i++)
		if (i % 3)
			ct_remap_area[i * page_size] = 1;
	if (pthread_create(&thread, NULL, ct_remapper, NULL))
		ksft_exit_fail_msg("pthread_create: %s\n", strerror(errno));
	sane = ct_sane_scans(ct_remap_area, 20, 200);
	__atomic_store_n(&ct_stop, 1, __ATOMIC_RELAXED);
	pthread_join(thread, NULL);
	ops_remap = ct_ops;

	ksft_print_msg("contention: %lu mmap+munmap in %d exact scans, %lu remaps in the passes\n",
		       ops_exact, CT_ROUNDS, ops_remap);
	if (!ops_exact || !ops_remap)
		ksft_print_msg("contention: a thread made no progress\n");
	ksft_test_result(quiet && busy && sane && ops_exact && ops_remap,
			 "contention: results unchanged while mmap() waits; remapping never yields a stray or repeated region\n");
	close(uffd);
	munmap(area, CT_SPAN);
	free(vec);
}

int main(void)
{
	ksft_print_header();
	page_size = sysconf(_SC_PAGESIZE);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("open /proc/self/pagemap: %s\n", strerror(errno));
	ksft_set_plan(13);
	test_hugetlb_max_pages_resume();
	test_hugetlb_cut();
	test_thp_cut();
	test_walk_end();
	test_wasmtime_reset();
	test_errors();
	test_swapped();
	test_guard();
	test_soft_dirty();
	test_accessed();
	test_migration();
	test_differential();
	test_contention();
	ksft_finished();
}


// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection through every failure point of PAGEMAP_SCAN and of
 * asynchronous userfaultfd write protection.
 *
 * With /proc/thread-self/fail-nth, the n-th slab allocation, page allocation
 * or user copy of a call fails, for n = 1, 2, ... until the call completes
 * without reaching the n-th point. Each call that fails must fail cleanly
 * (ENOMEM or EFAULT), and leave the process in a state a scan without
 * injection describes consistently:
 *
 * - a PM_SCAN_WP_MATCHING scan of a layout with more than 512 written
 *   regions, a hugetlb page and a THP that the range ends inside of (so that
 *   it must be split): afterwards the written pages are a subset of those
 *   before, each written page that is no longer written was reported by a
 *   call that succeeded, and the data is intact; a scan without injection
 *   then reports and protects exactly what is left;
 * - UFFDIO_API and UFFDIO_REGISTER with UFFD_FEATURE_WP_ASYNC, then
 *   UFFDIO_WRITEPROTECT: once set up, a write scans as written;
 * - a write fault on a protected THP, which splits it: the write lands, and
 *   scans as written.
 *
 * Leaks and splats on the error paths are for kmemleak and the kernel log
 * (the sanitizer guest of the series' workbench fails on either).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kselftest.h"

#define HPAGE_2M	(2UL << 20)
#define NR_SMALL	1100	/* every other one written: 550 regions */
#define MAX_NTH		5000

static long page_size;
static int pagemap_fd, fail_nth_fd;

/* Arm the n-th failure point of this thread (0: none). */
static void fail_nth(unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	/* Disarming may itself consume the last point of a count: no matter. */
	if (pwrite(fail_nth_fd, buf, len, 0) != len && n)
		ksft_exit_fail_msg("write fail-nth: %s\n", strerror(errno));
}

/*
 * Whether the armed failure was injected; disarms it. The read copies out, a
 * failure point itself: if it fails, the count had not run out.
 */
static bool injected(void)
{
	char buf[16] = "";
	bool hit;

	hit = pread(fail_nth_fd, buf, sizeof(buf) - 1, 0) > 0 && atoi(buf) == 0;
	fail_nth(0);
	return hit;
}

static int new_async_uffd(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC |
				  UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0)
		return -errno;
	if (ioctl(uffd, UFFDIO_API, &api)) {
		int err = -errno;

		close(uffd);
		return err;
	}
	return uffd;
}

static int wp_range(int uffd, char *p, size_t len, bool reg)
{
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = r.range,
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	if (reg && ioctl(uffd, UFFDIO_REGISTER, &r))
		return -errno;
	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

/*
 * The layout: NR_SMALL 4K pages, a hugetlb page (if the system has one) and
 * a THP, in one range [base, base + len); the scans end in the middle of
 * the THP.
 */
struct layout {
	char *base, *hugetlb, *thp;
	size_t len, scan_len;
	int uffd;
};

static bool have_hugetlb = true;
static int builds, thp_huge;

/* Whether @p is mapped by a huge page, as PAGEMAP_SCAN reports it. */
static bool is_huge(char *p)
{
	struct page_region r;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uintptr_t)p,
		.end = (uintptr_t)p + page_size,
		.vec = (uintptr_t)&r,
		.vec_len = 1,
		.category_mask = PAGE_IS_HUGE,
		.return_mask = PAGE_IS_HUGE,
	};

	return ioctl(pagemap_fd, PAGEMAP_SCAN, &arg) == 1;
}

static char *place(char *at, size_t len, int flags)
{
	char *p = mmap(at, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | flags, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static uint8_t pattern(size_t page, int gen)
{
	return (uint8_t)(page * 7 + gen * 31 + 1);
}

/* Whether page @i of the layout is written again once protected. */
static bool rewritten(struct layout *l, size_t i)
{
	char *p = l->base + i * page_size;

	return (i < NR_SMALL && !(i % 2)) || (p >= l->hugetlb && p < l->thp);
}

static void build(struct layout *l)
{
	size_t small = NR_SMALL * page_size, npages, i;
	char *res;

	/* 2M-aligned room for: small pages, padding, hugetlb, THP. */
	l->len = ((small + HPAGE_2M - 1) & ~(HPAGE_2M - 1)) + 2 * HPAGE_2M;
	res = mmap(NULL, l->len + HPAGE_2M, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (res == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	l->base = (char *)(((uintptr_t)res + HPAGE_2M - 1) & ~(HPAGE_2M - 1));
	l->hugetlb = l->base + l->len - 2 * HPAGE_2M;
	l->thp = l->base + l->len - HPAGE_2M;
	if (!place(l->base, l->hugetlb - l->base, 0) || !place(l->thp, HPAGE_2M, 0))
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	madvise(l->base, l->hugetlb - l->base, MADV_NOHUGEPAGE);
	madvise(l->thp, HPAGE_2M, MADV_HUGEPAGE);
	if (!have_hugetlb || !place(l->hugetlb, HPAGE_2M, MAP_HUGETLB)) {
		have_hugetlb = false;
		if (!place(l->hugetlb, HPAGE_2M, 0))
			ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
		madvise(l->hugetlb, HPAGE_2M, MADV_NOHUGEPAGE);
	}
	l->scan_len = l->len - HPAGE_2M / 2;
	npages = l->len / page_size;
	for (i = 0; i < npages; i++)
		memset(l->base + i * page_size, pattern(i, 0), page_size);

	/*
	 * All registered; all but the THP protected, which stays huge and
	 * written, so that a scan ending inside it has to split it.
	 */
	l->uffd = new_async_uffd();
	if (l->uffd < 0 || wp_range(l->uffd, l->base, l->len, true))
		ksft_exit_fail_msg("userfaultfd: %s\n", strerror(l->uffd < 0 ? -l->uffd : errno));
	{
		struct uffdio_writeprotect un = {
			.range = { .start = (uintptr_t)l->thp, .len = HPAGE_2M },
		};

		if (ioctl(l->uffd, UFFDIO_WRITEPROTECT, &un))
			ksft_exit_fail_msg("unprotect the THP: %s\n", strerror(errno));
	}
	/* Written after: every other small page and the hugetlb page. */
	for (i = 0; i < npages; i++)
		if (rewritten(l, i))
			memset(l->base + i * page_size, pattern(i, 1), page_size);
	builds++;
	thp_huge += is_huge(l->thp);
}

static void unbuild(struct layout *l)
{
	close(l->uffd);
	munmap(l->base, l->len);
}

/* Which pages of [base, base + len) scan as written; false if the scan failed. */
static bool written(struct layout *l, size_t len, bool wp, bool *out)
{
	static struct page_region vec[4096];
	uintptr_t start = (uintptr_t)l->base, end = start + len, a;
	long n, i;

	memset(out, 0, l->len / page_size);
	while (start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = wp ? PM_SCAN_WP_MATCHING : 0,
			.start = start,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = 4096,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};

		n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0) {
			ksft_print_msg("clean scan: %s\n", strerror(errno));
			return false;
		}
		for (i = 0; i < n; i++)
			for (a = vec[i].start; a < vec[i].end; a += page_size)
				out[(a - (uintptr_t)l->base) / page_size] = true;
		start = arg.walk_end;
	}
	return true;
}

static bool data_intact(struct layout *l)
{
	size_t npages = l->len / page_size, i, j;

	for (i = 0; i < npages; i++) {
		uint8_t want = pattern(i, rewritten(l, i));

		for (j = 0; j < (size_t)page_size; j += 512)
			if ((uint8_t)l->base[i * page_size + j] != want) {
				ksft_print_msg("page %zu: %#x, not %#x\n", i,
					       (uint8_t)l->base[i * page_size + j], want);
				return false;
			}
	}
	return true;
}

/*
 * What the call did at each failure point, in order: M (ENOMEM), F (EFAULT),
 * A (absorbed: the call succeeded all the same), ? (another error), so that
 * the runs on the two implementations can be compared point by point.
 */
struct tally {
	int points, enomem, efault, absorbed, other;
	char seq[MAX_NTH + 1];
};

static void count(struct tally *t, long ret, int err)
{
	char c;

	if (ret >= 0) {
		t->absorbed++;
		c = 'A';
	} else if (err == ENOMEM) {
		t->enomem++;
		c = 'M';
	} else if (err == EFAULT) {
		t->efault++;
		c = 'F';
	} else {
		t->other++;
		c = '?';
		ksft_print_msg("point %d: %s\n", t->points + 1, strerror(err));
	}
	t->seq[t->points++] = c;
}

static void report(const char *what, struct tally *t, int bad)
{
	ksft_print_msg("%s: %d points, %d ENOMEM, %d EFAULT, %d absorbed, %d other\n",
		       what, t->points, t->enomem, t->efault, t->absorbed, t->other);
	ksft_print_msg("%s: %d inconsistent\n", what, bad);
	ksft_print_msg("%s: points %s\n", what, t->seq);
	ksft_test_result(t->points > 0 && !t->other && !bad, "%s\n", what);
}

static void test_scan(void)
{
	static struct page_region vec[1024];
	struct tally t = {};
	struct layout l;
	bool *before, *after, *wp_after, *reported;
	int bad = 0;
	unsigned int n;

	for (n = 1; n <= MAX_NTH; n++) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = PM_SCAN_WP_MATCHING,
			.vec = (uintptr_t)vec,
			.vec_len = 1024,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN | PAGE_IS_HUGE,
		};
		uintptr_t a;
		size_t npages, i;
		long ret, k;
		int err;

		build(&l);
		npages = l.len / page_size;
		before = calloc(npages, 1);
		after = calloc(npages, 1);
		wp_after = calloc(npages, 1);
		reported = calloc(npages, 1);
		if (!before || !after || !wp_after || !reported ||
		    !written(&l, l.len, false, before))
			ksft_exit_fail_msg("reference scan failed\n");
		arg.start = (uintptr_t)l.base;
		arg.end = arg.start + l.scan_len;
		memset(vec, 0, sizeof(vec));

		fail_nth(n);
		ret = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
		err = errno;
		if (!injected()) {
			if (ret < 0)
				ksft_exit_fail_msg("scan without injection: %s\n", strerror(err));
			unbuild(&l);
			free(before), free(after), free(wp_after), free(reported);
			break;
		}
		count(&t, ret, err);
		for (k = 0; k < ret; k++)
			for (a = vec[k].start; a < vec[k].end; a += page_size)
				if (a >= arg.start && a < arg.end)
					reported[(a - arg.start) / page_size] = true;
		/*
		 * Whatever it got done: no page newly written, the data
		 * intact, and a clean scan reports and protects what is left.
		 * A call that succeeded reported every page it protected: a
		 * written page it protected without saying so is a write
		 * lost to the tracker.
		 */
		if (!written(&l, l.len, false, after) || !data_intact(&l) ||
		    !written(&l, l.scan_len, true, wp_after))
			bad++;
		for (i = 0; i < npages; i++) {
			if (after[i] && !before[i]) {
				ksft_print_msg("point %u: page %zu written after the scan\n", n, i);
				bad++;
				break;
			}
			if (ret >= 0 && before[i] && !after[i] && !reported[i]) {
				ksft_print_msg("point %u: page %zu protected, not reported\n",
					       n, i);
				bad++;
				break;
			}
			if (wp_after[i] != after[i] && (l.base + i * page_size) <
			    l.base + l.scan_len) {
				ksft_print_msg("point %u: page %zu: clean WP scan %d, written %d\n",
					       n, i, wp_after[i], after[i]);
				bad++;
				break;
			}
		}
		if (!written(&l, l.scan_len, false, after))
			bad++;
		for (i = 0; i < l.scan_len / page_size; i++)
			if (after[i]) {
				ksft_print_msg("point %u: page %zu written after a clean WP scan\n",
					       n, i);
				bad++;
				break;
			}
		unbuild(&l);
		free(before), free(after), free(wp_after), free(reported);
	}
	if (n > MAX_NTH)
		ksft_print_msg("scan: still failing at point %d\n", MAX_NTH);
	/* Where the system gives no hugetlb page or THP, the title says so. */
	ksft_print_msg("the THP was huge in %d of %d layouts\n", thp_huge, builds);
	report(have_hugetlb && thp_huge == builds ?
	       "PM_SCAN_WP_MATCHING: 550 regions, hugetlb, THP split" :
	       "PM_SCAN_WP_MATCHING: 550 regions (without a hugetlb page or THP)", &t, bad);
}

static void test_setup(void)
{
	size_t len = 64 * page_size;
	struct tally t = {};
	int bad = 0;
	unsigned int n;

	for (n = 1; n <= MAX_NTH; n++) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		int uffd, ret = 0, err = 0;
		bool hit;

		if (p == MAP_FAILED)
			ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
		memset(p, 1, len);
		fail_nth(n);
		uffd = new_async_uffd();
		if (uffd < 0)
			ret = -1, err = -uffd;
		else if (wp_range(uffd, p, len, true))
			ret = -1, err = errno;
		hit = injected();
		if (!hit) {
			if (ret)
				ksft_exit_fail_msg("set up without injection: %s\n", strerror(err));
			close(uffd);
			munmap(p, len);
			break;
		}
		count(&t, ret, err);
		/* Set up again without injection: a write must then scan as written. */
		if (uffd >= 0)
			close(uffd);
		uffd = new_async_uffd();
		if (uffd < 0 || wp_range(uffd, p, len, true)) {
			ksft_print_msg("point %u: set up again: %s\n", n, strerror(errno));
			bad++;
		} else {
			struct layout l = { .base = p, .len = len };
			bool w[64];

			p[5 * page_size] = 2;
			if (!written(&l, len, false, w) || !w[5] || w[4] || w[6]) {
				ksft_print_msg("point %u: a write after set-up lost\n", n);
				bad++;
			}
		}
		if (uffd >= 0)
			close(uffd);
		munmap(p, len);
	}
	report("UFFDIO_API + UFFDIO_REGISTER + UFFDIO_WRITEPROTECT with WP_ASYNC", &t, bad);
}

static void test_fault(void)
{
	struct tally t = {};
	int bad = 0;
	unsigned int n;

	for (n = 1; n <= MAX_NTH; n++) {
		char *res = mmap(NULL, 2 * HPAGE_2M, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *p;
		struct layout l;
		bool w[512], hit;
		int uffd;

		if (res == MAP_FAILED)
			ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
		p = (char *)(((uintptr_t)res + HPAGE_2M - 1) & ~(HPAGE_2M - 1));
		madvise(p, HPAGE_2M, MADV_HUGEPAGE);
		memset(p, 1, HPAGE_2M);
		uffd = new_async_uffd();
		if (uffd < 0 || wp_range(uffd, p, HPAGE_2M, true))
			ksft_exit_fail_msg("userfaultfd: %s\n", strerror(errno));
		fail_nth(n);
		p[7 * page_size] = 2;
		hit = injected();
		l = (struct layout){ .base = p, .len = HPAGE_2M };
		if (!written(&l, HPAGE_2M, false, w) || !w[7] || p[7 * page_size] != 2) {
			ksft_print_msg("point %u: the write is lost\n", n);
			bad++;
		}
		close(uffd);
		munmap(res, 2 * HPAGE_2M);
		if (!hit)
			break;
		/* A fault cannot fail: the write was retried and landed. */
		count(&t, 0, 0);
	}
	ksft_print_msg("write fault on a protected THP: %d points\n", t.points);
	/* The fault may well have no failure point: then it is tried once. */
	ksft_test_result(!bad, "write fault on a protected THP: %d points, %d lost\n",
			 t.points, bad);
}

/* Let failslab and fail_page_alloc fail what the scan allocates. */
static bool tune(const char *knob, const char *val)
{
	char path[128];
	int fd, len = strlen(val);
	bool ok;

	snprintf(path, sizeof(path), "/sys/kernel/debug/%s", knob);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return false;
	ok = write(fd, val, len) == len;
	close(fd);
	return ok;
}

int main(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	ksft_print_header();
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("open /proc/self/pagemap: %s\n", strerror(errno));
	fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (fail_nth_fd < 0)
		ksft_exit_skip("no /proc/thread-self/fail-nth (CONFIG_FAULT_INJECTION)\n");
	if (!tune("failslab/ignore-gfp-wait", "N") ||
	    !tune("fail_page_alloc/ignore-gfp-wait", "N") ||
	    !tune("fail_page_alloc/ignore-gfp-highmem", "N") ||
	    !tune("fail_page_alloc/min-order", "0") ||
	    !tune("failslab/verbose", "0") || !tune("fail_page_alloc/verbose", "0") ||
	    !tune("fail_usercopy/verbose", "0"))
		ksft_exit_skip("failslab, fail_page_alloc and fail_usercopy need debugfs\n");
	ksft_set_plan(3);
	test_scan();
	test_setup();
	test_fault();
	ksft_finished();
}

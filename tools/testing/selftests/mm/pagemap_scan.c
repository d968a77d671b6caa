// SPDX-License-Identifier: GPL-2.0
/*
 * PAGEMAP_SCAN cases that pagemap_ioctl does not cover.
 *
 * Each case checks what a caller that resumes from walk_end sees, the way
 * CRIU and Wine drive the ioctl: every written page must be reported exactly
 * once, however max_pages and vec_len cut the scans.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../kselftest.h"

#define HPAGE_2M	(2UL << 20)
#define MAX_SCANS	64

static int pagemap_fd;
static long page_size;

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

int main(void)
{
	ksft_print_header();
	page_size = sysconf(_SC_PAGESIZE);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("open /proc/self/pagemap: %s\n", strerror(errno));
	ksft_set_plan(1);
	test_hugetlb_max_pages_resume();
	ksft_finished();
}

// SPDX-License-Identifier: GPL-2.0
/*
 * A readable demonstration of PAGEMAP_SCAN with userfaultfd WP_ASYNC dirty
 * tracking, as CRIU or Wine use it.  It checks what it prints: the exit code
 * is non-zero when the kernel reports anything but the expected pages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NPAGES 32

static long psz;
static char *area;
static int pagemap;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Page number of an address inside the area. */
static unsigned long pgno(__u64 addr)
{
	return (unsigned long)(addr - (unsigned long)area) / psz;
}

/* Scan the area for written pages, re-protect them, print and return regions. */
static int scan_written(const char *title, struct page_region *out, int max)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (unsigned long)area,
		.end = (unsigned long)area + NPAGES * psz,
		.vec = (unsigned long)out,
		.vec_len = max,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT,
	};
	int n = ioctl(pagemap, PAGEMAP_SCAN, &arg);

	if (n < 0)
		die("PAGEMAP_SCAN");
	printf("%s: %d region(s) written since the last scan, now write-protected again\n",
	       title, n);
	for (int i = 0; i < n; i++)
		printf("    pages %2lu..%2lu (%lu page(s))%s\n",
		       pgno(out[i].start), pgno(out[i].end) - 1,
		       pgno(out[i].end) - pgno(out[i].start),
		       out[i].categories & PAGE_IS_PRESENT ? " present" : "");
	return n;
}

static int expect(struct page_region *r, int n, const int (*want)[2], int nwant)
{
	int ok = n == nwant;

	for (int i = 0; ok && i < n; i++)
		ok = pgno(r[i].start) == (unsigned long)want[i][0] &&
		     pgno(r[i].end) == (unsigned long)want[i][1];
	printf("    %s\n", ok ? "as expected" : "UNEXPECTED");
	return ok ? 0 : 1;
}

int main(void)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	struct page_region r[NPAGES];
	static const int want1[][2] = { { 3, 4 }, { 7, 10 }, { 20, 21 } };
	static const int want2[][2] = { { 9, 10 }, { 30, 32 } };
	int uffd, n, bad = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	psz = sysconf(_SC_PAGESIZE);
	pagemap = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap < 0)
		die("open /proc/self/pagemap");
	area = mmap(NULL, NPAGES * psz, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("mmap");
	memset(area, 1, NPAGES * psz);
	printf("mapped and populated %d pages of anonymous memory\n", NPAGES);

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		die("userfaultfd");
	if (ioctl(uffd, UFFDIO_API, &api))
		die("UFFDIO_API (WP_ASYNC)");
	reg.range.start = (unsigned long)area;
	reg.range.len = NPAGES * psz;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
	wp.range = reg.range;
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		die("UFFDIO_WRITEPROTECT");
	printf("registered with userfaultfd WP_ASYNC and write-protected all pages\n\n");

	n = scan_written("scan 1 (nothing written yet)", r, NPAGES);
	bad |= expect(r, n, NULL, 0);

	printf("\nwriting to pages 3, 7, 8, 9 and 20 (the kernel resolves the faults itself)\n");
	area[3 * psz] = 2;
	area[7 * psz] = area[8 * psz] = area[9 * psz] = 2;
	area[20 * psz] = 2;
	n = scan_written("scan 2", r, NPAGES);
	bad |= expect(r, n, want1, 3);

	printf("\nwriting to pages 9, 30 and 31\n");
	area[9 * psz] = 3;
	area[30 * psz] = area[31 * psz] = 3;
	n = scan_written("scan 3", r, NPAGES);
	bad |= expect(r, n, want2, 2);

	n = scan_written("scan 4 (no writes since scan 3)", r, NPAGES);
	bad |= expect(r, n, NULL, 0);
	printf("\n%s\n", bad ? "demo FAILED" : "demo OK: every written page was reported exactly once");
	return bad;
}

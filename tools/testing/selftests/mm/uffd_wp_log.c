// SPDX-License-Identifier: GPL-2.0
/*
 * The log of written pages of asynchronous userfaultfd write protection
 * (UFFD_FEATURE_WP_LOG).
 *
 * - For each kind of protected entry (anonymous PTE, uffd-wp marker of an
 *   unpopulated PTE, THP, hugetlb, shmem), the pages written come out of
 *   UFFDIO_WP_LOG_READ in the order they were written, once per
 *   protect-write cycle; harvesting with UFFDIO_WP_LOG_READ_MODE_WP protects
 *   them again, so the next write logs again.
 * - Writer threads: each thread's pages come out in its program order.
 * - A full log: a writer completes while nobody reads, the log counts what
 *   it lost, and one PAGEMAP_SCAN then finds every page written.
 * - poll() reports the log once it reaches its watermark or loses a write.
 * - Bad arguments get their errors; munmap, mremap, fork and close behave as
 *   Documentation/admin-guide/mm/userfaultfd.rst says.
 * - Re-protection protects exactly the pages read, not an unprotected page
 *   next to them; a stale entry inside a hugetlb page mapped since is read
 *   and skipped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
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
#include "vm_util.h"

#define HPAGE_2M	(2UL << 20)

static int pagemap_fd;
static size_t page_size;

static int new_uffd(__u64 features, __u64 *ioctls)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (uffd < 0)
		return -errno;
	if (ioctl(uffd, UFFDIO_API, &api)) {
		int err = -errno;

		close(uffd);
		return err;
	}
	if (ioctls)
		*ioctls = api.ioctls;
	return uffd;
}

static int log_setup(int uffd, __u64 entries, __u64 watermark, __u64 flags)
{
	struct uffdio_wp_log_setup setup = {
		.entries = entries, .watermark = watermark, .flags = flags,
	};

	return ioctl(uffd, UFFDIO_WP_LOG_SETUP, &setup) ? -errno : 0;
}

/*
 * Reads up to @max entries into @out; returns how many, or -errno. *@lost
 * gets the count of lost writes.
 */
static long log_read(int uffd, struct uffd_wp_log_entry *out, __u64 max, bool wp, __u64 *lost)
{
	struct uffdio_wp_log_read rd = {
		.entries = (unsigned long)out,
		.max = max,
		.mode = wp ? UFFDIO_WP_LOG_READ_MODE_WP : 0,
		.count = -1,
		.lost = -1ULL,
	};

	if (ioctl(uffd, UFFDIO_WP_LOG_READ, &rd))
		return -errno;
	if (lost)
		*lost = rd.lost;
	return rd.count;
}

static int uffd_protect(int uffd, void *addr, size_t len)
{
	struct uffdio_writeprotect prot = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &prot) ? -errno : 0;
}

/*
 * A context with the log (@entries, @watermark) and [addr, addr + len)
 * registered and protected, or -errno.
 */
static int log_uffd(void *addr, size_t len, __u64 entries, __u64 watermark)
{
	int uffd = new_uffd(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_LOG |
			    UFFD_FEATURE_WP_HUGETLBFS_SHMEM, NULL);
	int err;

	if (uffd < 0)
		return uffd;
	err = log_setup(uffd, entries, watermark, 0);
	if (!err)
		err = uffd_register(uffd, addr, len, false, true, false);
	if (!err)
		err = uffd_protect(uffd, addr, len);
	if (err) {
		close(uffd);
		return err;
	}
	return uffd;
}

static bool is_huge(char *p)
{
	struct page_region r;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (unsigned long)p,
		.end = (unsigned long)(p + page_size),
		.vec = (unsigned long)&r,
		.vec_len = 1,
		.category_mask = PAGE_IS_HUGE,
		.return_mask = PAGE_IS_HUGE,
	};

	return ioctl(pagemap_fd, PAGEMAP_SCAN, &arg) == 1;
}

enum kind { ANON, UNPOPULATED, THP, HUGETLB, SHMEM, NR_KINDS };

static const char *const kind_name[] = {
	"anonymous", "unpopulated", "THP", "hugetlb", "shmem",
};

static char *map_kind(enum kind kind, size_t len)
{
	int prot = PROT_READ | PROT_WRITE;
	char *p;

	switch (kind) {
	case ANON:
	case UNPOPULATED:
		p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		break;
	case THP:
		p = mmap(NULL, len + HPAGE_2M, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		p = (char *)(((uintptr_t)p + HPAGE_2M - 1) & ~(HPAGE_2M - 1));
		return madvise(p, len, MADV_HUGEPAGE) ? NULL : p;
	case HUGETLB:
		p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		break;
	case SHMEM:
		p = mmap(NULL, len, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		break;
	default:
		return NULL;
	}
	return p == MAP_FAILED ? NULL : p;
}

/*
 * Whether the log holds exactly @n entries: @want[i] (an address) of @len
 * bytes each, in that order, and lost nothing. Harvests with @wp.
 */
static bool log_is(int uffd, char *const *want, size_t n, size_t len, bool wp)
{
	struct uffd_wp_log_entry got[64];
	__u64 lost = 0;
	long count = log_read(uffd, got, 64, wp, &lost);
	bool ok = count == (long)n && lost == 0;

	if (!ok)
		ksft_print_msg("read: %ld entries (%s), lost %llu; want %zu\n", count,
			       count < 0 ? strerror(-count) : "ok", (unsigned long long)lost, n);
	for (long i = 0; ok && i < count; i++) {
		if (got[i].addr != (uintptr_t)want[i] || got[i].len != len) {
			ksft_print_msg("entry %ld: %#llx+%#llx, want %p+%#zx\n", i,
				       (unsigned long long)got[i].addr,
				       (unsigned long long)got[i].len, want[i], len);
			ok = false;
		}
	}
	return ok;
}

/*
 * Protect a mapping of @kind with a log, write pages in a scrambled order
 * (twice each), and check that the log has each page once, in that order;
 * harvest with re-protection, and check that the pages are protected and
 * that writing them again logs them again.
 */
static void test_kind(enum kind kind)
{
	bool huge = kind == THP || kind == HUGETLB;
	size_t len = kind == HUGETLB ? 2 * HPAGE_2M : huge ? 4 * HPAGE_2M : 32 * page_size;
	size_t unit = kind == HUGETLB ? HPAGE_2M : page_size;
	size_t n = kind == HUGETLB ? 2 : 8, i;
	char *p = map_kind(kind, len), *want[8];
	bool ok = true;
	int uffd;

	if (!p && kind == HUGETLB) {
		ksft_test_result_skip("%s: no free hugetlb page: %s\n", kind_name[kind],
				      strerror(errno));
		return;
	}
	if (!p)
		ksft_exit_fail_msg("%s: map: %s\n", kind_name[kind], strerror(errno));
	if (kind != UNPOPULATED)
		for (i = 0; i < len; i += page_size)
			p[i] = 1;
	if (kind == THP && !is_huge(p)) {
		ksft_test_result_skip("%s: no huge page was mapped (THP disabled?)\n",
				      kind_name[kind]);
		munmap(p, len);
		return;
	}
	uffd = log_uffd(p, len, 64, 64);
	if (uffd < 0) {
		ksft_test_result_fail("%s: set up: %s\n", kind_name[kind], strerror(-uffd));
		munmap(p, len);
		return;
	}
	/* Parts 5, 2, 7, 4, 1, 6, 3, 0 of the mapping (1, 0 for hugetlb): a page of each. */
	for (i = 0; i < n; i++)
		want[i] = p + (i * 5 + 5) % n * (len / n);
	for (int round = 0; round < 3; round++) {
		/* Harvest with re-protection on the first two rounds only. */
		bool reprotect = round < 2;

		for (i = 0; i < n; i++) {
			want[i][1] = (char)round;
			/* A second write of the page in the same cycle is not logged. */
			want[i][page_size - 1] = (char)round;
		}
		ok &= log_is(uffd, want, n, unit, reprotect);
		for (i = 0; i < n; i++) {
			bool wp = pagemap_get_entry(pagemap_fd, want[i]) & PM_UFFD_WP;

			if (wp != reprotect) {
				ksft_print_msg("round %d: page %zu uffd-wp %d\n", round, i, wp);
				ok = false;
			}
		}
	}
	/* Written but not harvested with re-protection: a write logs nothing. */
	want[0][2] = 1;
	ok &= log_is(uffd, want, 0, unit, false);
	close(uffd);
	munmap(p, len);
	ksft_test_result(ok, "%s: written pages logged once per cycle, in order\n",
			 kind_name[kind]);
}

#define THREADS		4
#define PAGES_EACH	256

static char *thread_mem;
static pthread_barrier_t thread_start;

static void *writer(void *arg)
{
	long t = (long)arg;

	pthread_barrier_wait(&thread_start);
	/* Thread t writes pages t, t + THREADS, ... from the top down. */
	for (long i = PAGES_EACH - 1; i >= 0; i--)
		thread_mem[(i * THREADS + t) * page_size] = 1;
	return NULL;
}

/* Each thread's writes come out in its order, all of them, each once. */
static void test_threads(void)
{
	size_t npages = THREADS * PAGES_EACH, len = npages * page_size;
	struct uffd_wp_log_entry *got = calloc(npages + 1, sizeof(*got));
	long next[THREADS], count;
	pthread_t th[THREADS];
	bool ok = true;
	__u64 lost = 0;
	int uffd;

	thread_mem = map_kind(ANON, len);
	if (!thread_mem || !got)
		ksft_exit_fail_msg("map: %s\n", strerror(errno));
	memset(thread_mem, 0, len);
	uffd = log_uffd(thread_mem, len, 2048, 2048);
	if (uffd < 0)
		ksft_exit_fail_msg("set up: %s\n", strerror(-uffd));
	pthread_barrier_init(&thread_start, NULL, THREADS);
	for (long t = 0; t < THREADS; t++) {
		next[t] = PAGES_EACH - 1;
		pthread_create(&th[t], NULL, writer, (void *)t);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	count = log_read(uffd, got, npages + 1, true, &lost);
	if (count != (long)npages || lost) {
		ksft_print_msg("read %ld, lost %llu, want %zu\n", count,
			       (unsigned long long)lost, npages);
		ok = false;
	}
	for (long i = 0; ok && i < count; i++) {
		long page = (got[i].addr - (uintptr_t)thread_mem) / page_size;
		long t = page % THREADS;

		if (got[i].len != page_size || page / THREADS != next[t]) {
			ksft_print_msg("entry %ld: page %ld of thread %ld, want %ld\n", i,
				       page / THREADS, t, next[t]);
			ok = false;
		}
		next[t]--;
	}
	close(uffd);
	munmap(thread_mem, len);
	free(got);
	ksft_test_result(ok, "threads: each thread's writes in its order\n");
}

/*
 * A log of 16 entries and 1024 pages written with nobody reading: the writer
 * completes, the log keeps the first 16 and counts the rest as lost, poll()
 * reports it, and one PAGEMAP_SCAN with PM_SCAN_WP_MATCHING finds all 1024
 * pages written (and protects them again), so nothing is lost.
 */
static void test_overflow(void)
{
	size_t npages = 1024, len = npages * page_size, found = 0;
	struct uffd_wp_log_entry got[32];
	struct page_region vec[8];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.vec = (unsigned long)vec,
		.vec_len = 8,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	char *p = map_kind(ANON, len);
	struct pollfd pfd;
	bool ok = true;
	__u64 lost = 0;
	long count;
	int uffd;

	if (!p)
		ksft_exit_fail_msg("map: %s\n", strerror(errno));
	memset(p, 0, len);
	uffd = log_uffd(p, len, 16, 16);
	if (uffd < 0)
		ksft_exit_fail_msg("set up: %s\n", strerror(-uffd));
	pfd = (struct pollfd){ .fd = uffd, .events = POLLIN };
	if (poll(&pfd, 1, 0) != 0) {
		ksft_print_msg("poll reports an empty log\n");
		ok = false;
	}
	/* Scrambled, so that the scan cannot be confused with the order. */
	for (size_t i = 0; i < npages; i++)
		p[(i * 7 % npages) * page_size] = 2;
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLIN)) {
		ksft_print_msg("poll does not report a full log\n");
		ok = false;
	}
	count = log_read(uffd, got, 32, false, &lost);
	if (count != 16 || lost != npages - 16) {
		ksft_print_msg("read %ld, lost %llu\n", count, (unsigned long long)lost);
		ok = false;
	}
	for (long i = 0; ok && i < count; i++)
		if (got[i].addr != (uintptr_t)p + (i * 7 % npages) * page_size)
			ok = false;
	/* The count was taken: the next read reports no loss. */
	if (log_read(uffd, got, 32, false, &lost) != 0 || lost != 0) {
		ksft_print_msg("second read: lost %llu\n", (unsigned long long)lost);
		ok = false;
	}
	arg.start = (unsigned long)p;
	arg.end = (unsigned long)(p + len);
	while (arg.start < arg.end) {
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);

		if (n < 0) {
			ksft_print_msg("scan: %s\n", strerror(errno));
			ok = false;
			break;
		}
		for (long r = 0; r < n; r++)
			found += (vec[r].end - vec[r].start) / page_size;
		arg.start = arg.walk_end;
	}
	if (found != npages) {
		ksft_print_msg("scan found %zu written pages of %zu\n", found, npages);
		ok = false;
	}
	/* Protected again by the scan: a write logs again. */
	p[0] = 3;
	ok &= log_is(uffd, (char *[]){ p }, 1, page_size, false);
	close(uffd);
	munmap(p, len);
	ksft_test_result(ok, "full log: the writer goes on, losses counted, a scan finds all\n");
}

struct poller {
	int uffd;
	int ready;
	short revents;
};

/* Waits up to 20 s for the log to become readable. */
static void *poller(void *arg)
{
	struct poller *w = arg;
	struct pollfd pfd = { .fd = w->uffd, .events = POLLIN };

	w->ready = poll(&pfd, 1, 20000);
	w->revents = pfd.revents;
	return NULL;
}

/*
 * The watermark: poll() reports the log once it holds that many entries,
 * and a thread waiting in poll() is woken up by the write that reaches it.
 */
static void test_watermark(void)
{
	size_t len = 8 * page_size;
	char *p = map_kind(ANON, len);
	struct poller w;
	struct pollfd pfd;
	pthread_t th;
	bool ok = true;
	int uffd;

	if (!p)
		ksft_exit_fail_msg("map: %s\n", strerror(errno));
	memset(p, 0, len);
	uffd = log_uffd(p, len, 8, 3);
	if (uffd < 0)
		ksft_exit_fail_msg("set up: %s\n", strerror(-uffd));
	pfd = (struct pollfd){ .fd = uffd, .events = POLLIN };
	for (int i = 0; i < 4; i++) {
		int ready = poll(&pfd, 1, 0), want = i >= 3;

		if (ready != want) {
			ksft_print_msg("%d entries: poll %d\n", i, ready);
			ok = false;
		}
		p[i * page_size] = 1;
	}
	close(uffd);

	/* Woken up: the log reaches its watermark while a thread waits. */
	uffd = log_uffd(p, len, 8, 2);
	if (uffd < 0)
		ksft_exit_fail_msg("set up: %s\n", strerror(-uffd));
	w = (struct poller){ .uffd = uffd, .ready = -2 };
	if (pthread_create(&th, NULL, poller, &w))
		ksft_exit_fail_msg("pthread_create: %s\n", strerror(errno));
	usleep(200000);
	p[5 * page_size] = 2;
	p[6 * page_size] = 2;
	pthread_join(th, NULL);
	if (w.ready != 1 || !(w.revents & POLLIN)) {
		ksft_print_msg("waiting poll: %d, revents %#x\n", w.ready, w.revents);
		ok = false;
	}
	close(uffd);
	munmap(p, len);
	ksft_test_result(ok, "watermark: poll reports the log from 3 entries, wakes a waiter\n");
}

/* Every bad argument gets its error, and the ioctls are advertised. */
static void test_errors(void)
{
	struct uffd_wp_log_entry got[4];
	__u64 ioctls = 0, lost;
	bool ok = true;
	int uffd, plain;
	struct {
		__u64 entries, watermark, flags;
		int err;
	} setups[] = {
		{ 0, 1, 0, -EINVAL },
		{ 3, 1, 0, -EINVAL },
		{ 1ULL << 21, 1, 0, -EINVAL },
		{ 1ULL << 40, 1, 0, -EINVAL },
		{ 8, 0, 0, -EINVAL },
		{ 8, 9, 0, -EINVAL },
		{ 8, 1ULL << 63, 0, -EINVAL },
		{ 8, 4, 1, -EINVAL },
		{ 8, 4, 0, 0 },
		{ 8, 4, 0, -EBUSY },
		{ 16, 8, 0, -EBUSY },
	};

	/* WP_LOG needs WP_ASYNC. */
	if (new_uffd(UFFD_FEATURE_WP_LOG, NULL) != -EINVAL) {
		ksft_print_msg("WP_LOG without WP_ASYNC was accepted\n");
		ok = false;
	}
	plain = new_uffd(UFFD_FEATURE_WP_ASYNC, &ioctls);
	if (plain < 0)
		ksft_exit_fail_msg("userfaultfd: %s\n", strerror(-plain));
	if (ioctls & (1ULL << _UFFDIO_WP_LOG_SETUP)) {
		ksft_print_msg("log ioctls advertised without WP_LOG\n");
		ok = false;
	}
	if (log_setup(plain, 8, 4, 0) != -EINVAL ||
	    log_read(plain, got, 4, false, &lost) != -EINVAL) {
		ksft_print_msg("log ioctls work without WP_LOG\n");
		ok = false;
	}
	close(plain);

	uffd = new_uffd(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_LOG, &ioctls);
	if (uffd < 0)
		ksft_exit_fail_msg("userfaultfd with WP_LOG: %s\n", strerror(-uffd));
	if ((ioctls & UFFD_API_WP_LOG_IOCTLS) != UFFD_API_WP_LOG_IOCTLS) {
		ksft_print_msg("log ioctls not advertised: %#llx\n", (unsigned long long)ioctls);
		ok = false;
	}
	if (log_read(uffd, got, 4, false, &lost) != -EINVAL) {
		ksft_print_msg("read without a log did not fail with EINVAL\n");
		ok = false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(setups); i++) {
		int err = log_setup(uffd, setups[i].entries, setups[i].watermark,
				    setups[i].flags);

		if (err != setups[i].err) {
			ksft_print_msg("setup %llu/%llu/%llu: %d, want %d\n",
				       (unsigned long long)setups[i].entries,
				       (unsigned long long)setups[i].watermark,
				       (unsigned long long)setups[i].flags, err, setups[i].err);
			ok = false;
		}
	}
	if (ioctl(uffd, UFFDIO_WP_LOG_SETUP, (void *)8) != -1 || errno != EFAULT) {
		ksft_print_msg("setup with a bad pointer did not fail with EFAULT\n");
		ok = false;
	}
	if (ioctl(uffd, UFFDIO_WP_LOG_READ, (void *)8) != -1 || errno != EFAULT) {
		ksft_print_msg("read with a bad pointer did not fail with EFAULT\n");
		ok = false;
	}
	{
		struct uffdio_wp_log_read rd = {
			.entries = (unsigned long)got, .max = 4, .mode = 2,
		};

		if (ioctl(uffd, UFFDIO_WP_LOG_READ, &rd) != -1 || errno != EINVAL) {
			ksft_print_msg("read with an unknown mode did not fail with EINVAL\n");
			ok = false;
		}
	}
	/* An empty log reads as empty, even into a bad array. */
	if (log_read(uffd, (void *)8, 4, true, &lost) != 0) {
		ksft_print_msg("empty read into a bad array failed\n");
		ok = false;
	}
	close(uffd);
	ksft_test_result(ok, "errors: negotiation, setup and read arguments\n");
}

/* Whether the page at @p is write-protected, as its pagemap entry says it should be. */
static bool wp_is(char *p, bool want, const char *what)
{
	bool wp = pagemap_get_entry(pagemap_fd, p) & PM_UFFD_WP;

	if (wp != want)
		ksft_print_msg("%s page at %p: uffd-wp %d, want %d\n", what, p, wp, want);
	return wp == want;
}

/*
 * Harvesting with re-protection protects exactly the pages of the entries
 * read: not a page next to them that was unprotected with
 * UFFDIO_WRITEPROTECT, also in the same page table, and not in a group of
 * entries further than 8 MiB from the others, which is walked on its own.
 */
static void test_exact(void)
{
	size_t len = 80UL << 20, far = 40UL << 20, i;
	char *p = map_kind(ANON, len);
	char *written[5], *unprotected[2];
	bool ok = true;
	int uffd;

	/* Small pages only: a THP would be logged whole. */
	if (!p || madvise(p, len, MADV_NOHUGEPAGE))
		ksft_exit_fail_msg("map: %s\n", strerror(errno));
	written[0] = p + 2 * page_size;
	written[1] = p + 5 * page_size;
	written[2] = p + far + page_size;
	written[3] = p + len - page_size;
	written[4] = p;
	unprotected[0] = p + 3 * page_size;
	unprotected[1] = p + far + 2 * page_size;
	for (i = 0; i < 5; i++)
		*written[i] = 1;
	for (i = 0; i < 2; i++)
		*unprotected[i] = 1;
	uffd = log_uffd(p, len, 64, 64);
	if (uffd < 0)
		ksft_exit_fail_msg("set up: %s\n", strerror(-uffd));
	for (i = 0; i < 2; i++) {
		struct uffdio_writeprotect prot = {
			.range = { .start = (unsigned long)unprotected[i], .len = page_size },
		};

		if (ioctl(uffd, UFFDIO_WRITEPROTECT, &prot))
			ksft_exit_fail_msg("unprotect: %s\n", strerror(errno));
	}
	for (int round = 0; round < 2; round++) {
		for (i = 0; i < 5; i++)
			*written[i] = 2;
		/* Not protected: written without a fault, so not logged. */
		for (i = 0; i < 2; i++)
			*unprotected[i] = 2;
		ok &= log_is(uffd, written, 5, page_size, true);
		for (i = 0; i < 5; i++)
			ok &= wp_is(written[i], true, "harvested");
		for (i = 0; i < 2; i++)
			ok &= wp_is(unprotected[i], false, "unprotected");
	}
	close(uffd);
	munmap(p, len);
	ksft_test_result(ok, "re-protection: exactly the pages read, near and far\n");
}

/*
 * An entry of a small page that was unmapped, where a hugetlb page was
 * mapped and registered since, covers part of the hugetlb page: the read
 * returns it and does not protect anything for it, and the hugetlb page's
 * own entry still protects it again.
 */
static void test_stale_hugetlb(void)
{
	char *h = map_kind(HUGETLB, HPAGE_2M), *want[1];
	struct uffd_wp_log_entry got[4] = {};
	__u64 lost = 0;
	long count;
	int prot = PROT_READ | PROT_WRITE;
	bool ok = true;
	int uffd;

	if (!h) {
		ksft_test_result_skip("stale entry in a hugetlb page: no free hugetlb page: %s\n",
				      strerror(errno));
		return;
	}
	/* Small pages where the hugetlb page will be. */
	if (mmap(h, HPAGE_2M, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != h)
		ksft_exit_fail_msg("map small pages: %s\n", strerror(errno));
	if (madvise(h, HPAGE_2M, MADV_NOHUGEPAGE))
		ksft_exit_fail_msg("madvise: %s\n", strerror(errno));
	h[page_size] = 1;
	uffd = log_uffd(h, HPAGE_2M, 8, 8);
	if (uffd < 0)
		ksft_exit_fail_msg("set up: %s\n", strerror(-uffd));
	h[page_size] = 2;
	if (mmap(h, HPAGE_2M, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_FIXED,
		 -1, 0) != h) {
		ksft_test_result_skip("stale entry in a hugetlb page: no free hugetlb page: %s\n",
				      strerror(errno));
		close(uffd);
		munmap(h, HPAGE_2M);
		return;
	}
	h[0] = 1;
	if (uffd_register(uffd, h, HPAGE_2M, false, true, false) || uffd_protect(uffd, h, HPAGE_2M))
		ksft_exit_fail_msg("register the hugetlb page: %s\n", strerror(errno));
	h[0] = 2;
	/* The stale entry first, then the hugetlb page's, both in one read. */
	count = log_read(uffd, got, 4, true, &lost);
	if (count != 2 || lost || got[0].addr != (uintptr_t)(h + page_size) ||
	    got[0].len != page_size || got[1].addr != (uintptr_t)h || got[1].len != HPAGE_2M) {
		ksft_print_msg("read: %ld entries (%s), lost %llu; first %#llx+%#llx\n", count,
			       count < 0 ? strerror(-count) : "ok", (unsigned long long)lost,
			       (unsigned long long)got[0].addr, (unsigned long long)got[0].len);
		ok = false;
	}
	ok &= wp_is(h, true, "hugetlb");
	/* Protected again: the next write is logged again. */
	h[HPAGE_2M - 1] = 3;
	want[0] = h;
	ok &= log_is(uffd, want, 1, HPAGE_2M, true);
	close(uffd);
	munmap(h, HPAGE_2M);
	ksft_test_result(ok, "stale entry in a hugetlb page: read, skipped\n");
}

/*
 * The log does not follow the address space: entries of pages since
 * unmapped or moved are read as they were, and protecting them again does
 * nothing. Without UFFD_FEATURE_EVENT_REMAP, mremap() unregisters what it
 * moves, so writes there are not logged. A child forked without
 * UFFD_FEATURE_EVENT_FORK has no registration, so its writes are not
 * logged; the parent's are, copy on write or not.
 */
static void test_layout(void)
{
	size_t len = 8 * page_size;
	char *p = map_kind(ANON, len), *q = map_kind(ANON, 4 * page_size), *want[2];
	bool ok = true;
	pid_t pid;
	int uffd, status;

	if (!p || !q)
		ksft_exit_fail_msg("map: %s\n", strerror(errno));
	memset(p, 0, len);
	uffd = log_uffd(p, len, 8, 8);
	if (uffd < 0)
		ksft_exit_fail_msg("set up: %s\n", strerror(-uffd));

	/* munmap: the entry is read, and protecting it does nothing. */
	p[7 * page_size] = 1;
	munmap(p + 7 * page_size, page_size);
	want[0] = p + 7 * page_size;
	ok &= log_is(uffd, want, 1, page_size, true);

	/* mremap: the old address is read; the moved pages are not registered. */
	p[0] = 1;
	if (mremap(p, 4 * page_size, 4 * page_size, MREMAP_MAYMOVE | MREMAP_FIXED, q) != q)
		ksft_exit_fail_msg("mremap: %s\n", strerror(errno));
	want[0] = p;
	ok &= log_is(uffd, want, 1, page_size, true);
	q[page_size] = 1;
	ok &= log_is(uffd, want, 0, page_size, true);

	/* fork: the child's writes are not logged; the parent's are. */
	pid = fork();
	if (pid == 0) {
		p[4 * page_size] = 1;
		_exit(0);
	}
	waitpid(pid, &status, 0);
	ok &= log_is(uffd, want, 0, page_size, false);
	p[5 * page_size] = 1;
	want[0] = p + 5 * page_size;
	ok &= log_is(uffd, want, 1, page_size, true);

	/* close with entries in the log frees it (kmemleak would tell). */
	p[6 * page_size] = 1;
	close(uffd);
	munmap(q, 4 * page_size);
	munmap(p + 4 * page_size, 3 * page_size);
	ksft_test_result(ok, "munmap, mremap, fork, close: as documented\n");
}

int main(void)
{
	int probe;

	page_size = sysconf(_SC_PAGESIZE);
	ksft_print_header();
	probe = new_uffd(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_LOG, NULL);
	if (probe == -EINVAL)
		ksft_exit_skip("UFFD_FEATURE_WP_LOG is not available\n");
	if (probe == -EPERM)
		ksft_exit_skip("userfaultfd is not allowed (vm.unprivileged_userfaultfd)\n");
	if (probe < 0)
		ksft_exit_fail_msg("userfaultfd: %s\n", strerror(-probe));
	close(probe);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("open /proc/self/pagemap: %s\n", strerror(errno));
	ksft_set_plan(NR_KINDS + 7);

	test_errors();
	for (int kind = 0; kind < NR_KINDS; kind++)
		test_kind(kind);
	test_threads();
	test_overflow();
	test_watermark();
	test_layout();
	test_exact();
	test_stale_hugetlb();

	ksft_finished();
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Asynchronous userfaultfd write protection (UFFD_FEATURE_WP_ASYNC), as
 * dirty trackers use it with PAGEMAP_SCAN.
 *
 * - For each kind of protected entry (anonymous PTE, uffd-wp marker of an
 *   unpopulated PTE, THP, hugetlb, shmem, a file without userfaultfd support),
 *   a write is resolved by the kernel without a message, the page then scans
 *   as WRITTEN, and the data is intact.
 * - Writer threads and a thread doing PM_SCAN_WP_MATCHING scans: every write
 *   is reported by a scan of its round.
 * - An asynchronous and a synchronous context side by side, and synchronous
 *   contexts on THP and hugetlb, which must still get their messages.
 * - Closing the uffd, fork, mremap and un-protecting leave no uffd-wp bit
 *   behind (CVE-2024-36881).
 *
 * Run it under either implementation of CONFIG_USERFAULTFD_WP_ASYNC_RUST_SWITCH
 * (debugfs userfaultfd/wp_async_rust); both must pass it.
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
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest.h"
#include "vm_util.h"

#define HPAGE_2M	(2UL << 20)

static int pagemap_fd;
static long page_size;

static int new_uffd(__u64 features)
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
	return uffd;
}

static int uffd_protect(int uffd, void *addr, size_t len, bool wp)
{
	struct uffdio_writeprotect prot = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &prot) ? -errno : 0;
}

/* A context in the asynchronous mode with [addr, addr + len) registered. */
static int async_uffd(void *addr, size_t len)
{
	int uffd = new_uffd(UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	int err;

	if (uffd < 0)
		return uffd;
	err = uffd_register(uffd, addr, len, false, true, false);
	if (!err)
		err = uffd_protect(uffd, addr, len, true);
	if (err) {
		close(uffd);
		return err;
	}
	return uffd;
}

/* Whether a read of @uffd finds no message (it is O_NONBLOCK). */
static bool no_message(int uffd)
{
	struct uffd_msg msg;

	return read(uffd, &msg, sizeof(msg)) < 0 && errno == EAGAIN;
}

/*
 * Whether the pages of [p, p + len) written (in @written, one flag per page)
 * and no other page scan as WRITTEN, with PAGEMAP_SCAN, and have their uffd-wp
 * bit dropped, as /proc/self/pagemap shows it.
 */
static bool written_exactly(char *p, size_t len, const bool *written)
{
	size_t npages = len / page_size, i, seen = 0;
	struct page_region vec[64];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (unsigned long)p,
		.end = (unsigned long)(p + len),
		.vec = (unsigned long)vec,
		.vec_len = 64,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
	bool ok = true;

	if (n < 0 || arg.walk_end != arg.end) {
		ksft_print_msg("scan: %ld (%s), walk_end %#llx\n", n, strerror(errno),
			       (unsigned long long)arg.walk_end);
		return false;
	}
	for (long r = 0; r < n; r++) {
		for (__u64 a = vec[r].start; a < vec[r].end; a += page_size) {
			i = (a - (uintptr_t)p) / page_size;
			if (!written[i]) {
				ksft_print_msg("page %zu scans as written\n", i);
				ok = false;
			}
			seen++;
		}
	}
	for (i = 0; i < npages; i++) {
		bool wp = pagemap_get_entry(pagemap_fd, p + i * page_size) & PM_UFFD_WP;

		if (written[i]) {
			seen--;
			if (wp) {
				ksft_print_msg("page %zu written but still uffd-wp\n", i);
				ok = false;
			}
		} else if (!wp) {
			ksft_print_msg("page %zu not written but not uffd-wp\n", i);
			ok = false;
		}
	}
	if (seen) {
		ksft_print_msg("%zu written pages not reported\n", seen);
		ok = false;
	}
	return ok;
}

/* Whether the page at @p is mapped by a huge page (PAGE_IS_HUGE). */
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

enum kind { ANON, UNPOPULATED, THP, HUGETLB, SHMEM, FILE_NO_UFFD, NR_KINDS };

static const char *const kind_name[] = {
	"anonymous", "unpopulated", "THP", "hugetlb", "shmem", "file without uffd support",
};

static const char *ramfs_dir;

/* A mapping of @len bytes of @kind, or NULL (then the test is failed). */
static char *map_kind(enum kind kind, size_t len)
{
	int prot = PROT_READ | PROT_WRITE;
	char *p, path[64];
	int fd;

	switch (kind) {
	case ANON:
	case UNPOPULATED:
		p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	case THP:
		/* 2M aligned, so that the first fault maps a huge page. */
		p = mmap(NULL, len + HPAGE_2M, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		p = (char *)(((uintptr_t)p + HPAGE_2M - 1) & ~(HPAGE_2M - 1));
		if (madvise(p, len, MADV_HUGEPAGE))
			return NULL;
		return p;
	case HUGETLB:
		p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	case SHMEM:
		p = mmap(NULL, len, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		return p == MAP_FAILED ? NULL : p;
	case FILE_NO_UFFD:
		snprintf(path, sizeof(path), "%s/file", ramfs_dir);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || ftruncate(fd, len))
			return NULL;
		p = mmap(NULL, len, prot, MAP_SHARED, fd, 0);
		close(fd);
		return p == MAP_FAILED ? NULL : p;
	default:
		return NULL;
	}
}

/*
 * Protect a mapping of @kind, write some of its pages, and check that no
 * message came, that exactly the pages written scan as WRITTEN (all of a
 * hugetlb page; only the 4K page of a THP, which is split), and the data.
 */
static void test_kind(enum kind kind)
{
	bool huge = kind == THP || kind == HUGETLB;
	size_t len = huge ? 2 * HPAGE_2M : 32 * (size_t)page_size;
	size_t npages = len / page_size, i;
	bool *written = calloc(npages, sizeof(bool));
	char *p = map_kind(kind, len);
	bool ok = true;
	int uffd;

	if (!p && kind == HUGETLB) {
		ksft_test_result_skip("%s: no free hugetlb page: %s\n", kind_name[kind],
				      strerror(errno));
		return;
	}
	if (!p || !written)
		ksft_exit_fail_msg("%s: map: %s\n", kind_name[kind], strerror(errno));
	/* Populate with a pattern, except the unpopulated kind's odd pages. */
	for (i = 0; i < npages; i++)
		if (kind != UNPOPULATED || i % 2 == 0)
			p[i * page_size] = (char)(i + 1);
	if (kind == THP && !is_huge(p)) {
		ksft_test_result_skip("%s: no huge page was mapped (THP disabled?)\n",
				      kind_name[kind]);
		return;
	}
	uffd = async_uffd(p, len);
	if (uffd < 0) {
		ksft_test_result_fail("%s: register and protect: %s\n", kind_name[kind],
				      strerror(-uffd));
		return;
	}
	for (i = 0; i < npages; i++) {
		if (!(pagemap_get_entry(pagemap_fd, p + i * page_size) & PM_UFFD_WP)) {
			ksft_print_msg("page %zu not protected\n", i);
			ok = false;
		}
	}

	/* Write one page in three; for huge kinds, one 4K page of the first huge page. */
	for (i = 0; i < npages; i++) {
		if (huge ? i != 3 : i % 3 != 0)
			continue;
		p[i * page_size + 1] = (char)0xa5;
		written[i] = true;
	}
	if (kind == HUGETLB)
		for (i = 0; i < HPAGE_2M / page_size; i++)
			written[i] = true;

	if (!no_message(uffd)) {
		ksft_print_msg("a message was queued\n");
		ok = false;
	}
	ok &= written_exactly(p, len, written);
	for (i = 0; i < npages; i++) {
		char want = kind == UNPOPULATED && i % 2 ? 0 : (char)(i + 1);

		if (p[i * page_size] != want ||
		    p[i * page_size + 1] != (i == 3 || (!huge && i % 3 == 0) ? (char)0xa5 : 0)) {
			ksft_print_msg("page %zu: data %#x %#x\n", i, p[i * page_size] & 0xff,
				       p[i * page_size + 1] & 0xff);
			ok = false;
		}
	}
	close(uffd);
	munmap(p, len);
	free(written);
	ksft_test_result(ok, "%s: writes resolved without message, scan as WRITTEN\n",
			 kind_name[kind]);
}

/*
 * A context without UFFD support in the VMA: only the asynchronous mode may
 * register it, for write protection alone.
 */
static void test_register_any(void)
{
	size_t len = 4 * page_size;
	char *p = map_kind(FILE_NO_UFFD, len);
	int sync, async, err_sync, err_async, err_missing;

	if (!p)
		ksft_exit_fail_msg("map: %s\n", strerror(errno));
	sync = new_uffd(UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_UNPOPULATED);
	async = new_uffd(UFFD_FEATURE_WP_ASYNC);
	if (sync < 0 || async < 0)
		ksft_exit_fail_msg("userfaultfd: %s\n", strerror(-(sync < 0 ? sync : async)));
	err_sync = uffd_register(sync, p, len, false, true, false);
	err_missing = uffd_register(async, p, len, true, true, false);
	err_async = uffd_register(async, p, len, false, true, false);
	close(sync);
	close(async);
	munmap(p, len);
	ksft_print_msg("register: sync %d, async WP+MISSING %d, async WP %d\n", err_sync,
		       err_missing, err_async);
	ksft_test_result(err_sync == -EINVAL && err_missing == -EINVAL && !err_async,
			 "register: a VMA without uffd support, async WP alone\n");
}

/*
 * UFFDIO_API: WP_ASYNC and WP_UNPOPULATED are offered (the implication is
 * checked by the unpopulated case, which needs the markers), and bad sets
 * fail with EINVAL and a zeroed answer.
 */
static void test_negotiation(void)
{
	static const struct {
		__u64 asked;
		int err;
		__u64 must_have;
	} cases[] = {
		{ UFFD_FEATURE_WP_ASYNC, 0, UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED },
		{ UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, 0, UFFD_FEATURE_WP_ASYNC },
		{ UFFD_FEATURE_RWP_ASYNC, -EINVAL, 0 },
		{ UFFD_FEATURE_WP_ASYNC | (1ULL << 62), -EINVAL, 0 },
	};
	bool ok = true;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct uffdio_api api = { .api = UFFD_API, .features = cases[i].asked };
		int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
		int err;

		if (uffd < 0)
			ksft_exit_fail_msg("userfaultfd: %s\n", strerror(errno));
		err = ioctl(uffd, UFFDIO_API, &api) ? -errno : 0;
		if (err != cases[i].err ||
		    (!err && (api.features & cases[i].must_have) != cases[i].must_have) ||
		    (err && api.features)) {
			ksft_print_msg("asked %#llx: %d, features %#llx\n",
				       (unsigned long long)cases[i].asked, err,
				       (unsigned long long)api.features);
			ok = false;
		}
		close(uffd);
	}
	ksft_test_result(ok, "negotiation: WP_ASYNC offered, bad sets fail\n");
}

#define WRITERS		3
#define PAGES_EACH	64
#define ROUNDS		100

struct transact {
	char *mem;
	pthread_barrier_t start, done;
	int id;
};

static struct transact tr;
static bool writers_busy[WRITERS];

static void *writer(void *arg)
{
	int id = (int)(uintptr_t)arg;
	char *mine = tr.mem + (size_t)id * PAGES_EACH * page_size;

	for (int r = 0; r < ROUNDS; r++) {
		pthread_barrier_wait(&tr.start);
		for (int i = 0; i < PAGES_EACH; i++)
			__atomic_fetch_add(&mine[i * page_size], 1, __ATOMIC_RELAXED);
		__atomic_store_n(&writers_busy[id], false, __ATOMIC_RELEASE);
		pthread_barrier_wait(&tr.done);
	}
	return NULL;
}

/*
 * Pages a WP_MATCHING scan of [p, p + len) reports (and protects again); each
 * one reported is counted in @seen.
 */
static long scan_reset(char *p, size_t len, unsigned char *seen)
{
	struct page_region vec[WRITERS * PAGES_EACH];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (unsigned long)p,
		.end = (unsigned long)(p + len),
		.vec = (unsigned long)vec,
		.vec_len = WRITERS * PAGES_EACH,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg), pages = 0;

	if (n < 0)
		return -errno;
	for (long r = 0; r < n; r++) {
		for (__u64 a = vec[r].start; a < vec[r].end; a += page_size)
			seen[(a - (uintptr_t)p) / page_size]++;
		pages += (vec[r].end - vec[r].start) / page_size;
	}
	return pages;
}

/*
 * Writers write each of their pages once per round while the main thread
 * scans with PM_SCAN_WP_MATCHING: each write must be reported by a scan of
 * its round, none lost. A page can be reported twice: the protection is
 * dropped when the write faults, and a scan can report and protect the page
 * again before the write is retried, which then faults again.
 */
static void test_threads(void)
{
	size_t len = (size_t)WRITERS * PAGES_EACH * page_size, npages = len / page_size;
	unsigned char seen[WRITERS * PAGES_EACH];
	pthread_t threads[WRITERS];
	long reported = 0, scans = 0, missed = 0, n;
	bool ok = true;
	int uffd;

	tr.mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tr.mem == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(tr.mem, 0, len);
	uffd = async_uffd(tr.mem, len);
	if (uffd < 0) {
		ksft_test_result_fail("threads: register and protect: %s\n", strerror(-uffd));
		return;
	}
	pthread_barrier_init(&tr.start, NULL, WRITERS + 1);
	pthread_barrier_init(&tr.done, NULL, WRITERS + 1);
	for (int i = 0; i < WRITERS; i++)
		if (pthread_create(&threads[i], NULL, writer, (void *)(uintptr_t)i))
			ksft_exit_fail_msg("pthread_create\n");
	for (int r = 0; r < ROUNDS; r++) {
		bool busy = true;

		memset(seen, 0, sizeof(seen));
		for (int i = 0; i < WRITERS; i++)
			__atomic_store_n(&writers_busy[i], true, __ATOMIC_RELAXED);
		pthread_barrier_wait(&tr.start);
		while (busy) {
			n = scan_reset(tr.mem, len, seen);
			if (n < 0) {
				ksft_print_msg("scan: %s\n", strerror(-n));
				ok = false;
			}
			reported += n > 0 ? n : 0;
			scans++;
			busy = false;
			for (int i = 0; i < WRITERS; i++)
				busy |= __atomic_load_n(&writers_busy[i], __ATOMIC_ACQUIRE);
		}
		pthread_barrier_wait(&tr.done);
		n = scan_reset(tr.mem, len, seen);
		reported += n < 0 ? 0 : n;
		scans++;
		for (size_t i = 0; i < npages; i++) {
			if (!seen[i]) {
				ksft_print_msg("round %d: write to page %zu not reported\n", r, i);
				missed++;
			}
		}
		ok &= !missed;
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(threads[i], NULL);
	for (size_t i = 0; i < npages; i++)
		if (tr.mem[i * page_size] != (char)ROUNDS) {
			ksft_print_msg("page %zu: %d writes of %d\n", i, tr.mem[i * page_size],
				       ROUNDS);
			ok = false;
		}
	ksft_print_msg("threads: %ld pages reported by %ld scans, %ld writes\n", reported, scans,
		       (long)ROUNDS * WRITERS * PAGES_EACH);
	ok &= no_message(uffd) && reported >= (long)ROUNDS * WRITERS * PAGES_EACH;
	close(uffd);
	munmap(tr.mem, len);
	ksft_test_result(ok, "threads: every write reported by a scan of its round\n");
}

struct sync_handler {
	int uffd;
	/* Un-protected per message: a page, or a hugetlb page. */
	size_t granule;
	/* Written to when the writes are done. */
	int done[2];
	long messages;
	bool bad;
};

static void *handle_sync(void *arg)
{
	struct sync_handler *h = arg;
	struct pollfd pfd[2] = {
		{ .fd = h->uffd, .events = POLLIN },
		{ .fd = h->done[0], .events = POLLIN },
	};
	struct uffd_msg msg;

	while (poll(pfd, 2, -1) > 0 && !(pfd[1].revents & POLLIN)) {
		if (read(h->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT ||
		    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP)) {
			h->bad = true;
			break;
		}
		h->messages++;
		/* Un-protecting the page wakes the writer. */
		if (uffd_protect(h->uffd, (void *)(uintptr_t)(msg.arg.pagefault.address &
							     ~(h->granule - 1)),
				 h->granule, false)) {
			h->bad = true;
			break;
		}
	}
	return NULL;
}

/* An asynchronous and a synchronous context, on two areas of one process. */
static void test_side_by_side(void)
{
	size_t npages = 16, len = npages * page_size, i;
	char *a = mmap(NULL, 2 * len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	char *b = a + len;
	struct sync_handler h = { .granule = page_size };
	bool written[16], ok = true;
	pthread_t t;
	int async;

	if (a == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	memset(a, 1, 2 * len);
	async = async_uffd(a, len);
	h.uffd = new_uffd(UFFD_FEATURE_PAGEFAULT_FLAG_WP);
	if (async < 0 || h.uffd < 0 || uffd_register(h.uffd, b, len, false, true, false) ||
	    uffd_protect(h.uffd, b, len, true) || pipe(h.done)) {
		ksft_test_result_fail("side by side: set up: %s\n", strerror(errno));
		return;
	}
	if (pthread_create(&t, NULL, handle_sync, &h))
		ksft_exit_fail_msg("pthread_create\n");
	for (i = 0; i < npages; i++) {
		a[i * page_size] = 2;
		b[i * page_size] = 2;
		written[i] = true;
	}
	/* Each write to b returned after its message was handled. */
	if (write(h.done[1], "", 1) != 1)
		ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
	pthread_join(t, NULL);
	ok &= no_message(async) && written_exactly(a, len, written);
	for (i = 0; i < npages; i++)
		if (pagemap_get_entry(pagemap_fd, b + i * page_size) & PM_UFFD_WP ||
		    b[i * page_size] != 2) {
			ksft_print_msg("synchronous page %zu left protected or unwritten\n", i);
			ok = false;
		}
	ksft_print_msg("side by side: %ld messages for %zu synchronous writes\n", h.messages,
		       npages);
	ok &= !h.bad && h.messages == (long)npages;
	close(async);
	close(h.uffd);
	close(h.done[0]);
	close(h.done[1]);
	munmap(a, 2 * len);
	ksft_test_result(ok, "side by side: async resolves itself, sync gets messages\n");
}

/*
 * A synchronous context on THP or hugetlb memory: each write to a protected
 * page gets a message, whose handler un-protects the page (the whole hugetlb
 * page) and wakes the writer.
 */
static void test_sync(enum kind kind)
{
	size_t len = 2 * HPAGE_2M, granule = kind == HUGETLB ? HPAGE_2M : (size_t)page_size;
	char *p = map_kind(kind, len);
	struct sync_handler h = { .granule = granule };
	size_t i, writes = 0;
	bool ok = true;
	pthread_t t;

	if (!p && kind == HUGETLB) {
		ksft_test_result_skip("sync %s: no free hugetlb page\n", kind_name[kind]);
		return;
	}
	if (!p)
		ksft_exit_fail_msg("sync %s: map: %s\n", kind_name[kind], strerror(errno));
	memset(p, 1, len);
	if (kind == THP && !is_huge(p)) {
		ksft_test_result_skip("sync %s: no huge page was mapped\n", kind_name[kind]);
		return;
	}
	h.uffd = new_uffd(UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	if (h.uffd < 0 || uffd_register(h.uffd, p, len, false, true, false) ||
	    uffd_protect(h.uffd, p, len, true) || pipe(h.done)) {
		ksft_test_result_fail("sync %s: set up: %s\n", kind_name[kind], strerror(errno));
		return;
	}
	if (pthread_create(&t, NULL, handle_sync, &h))
		ksft_exit_fail_msg("pthread_create\n");
	/* 16 pages of the first huge page, one of the second: a message each. */
	for (i = 0; i < len / granule; i++) {
		if (kind != HUGETLB && i >= 16 && i != HPAGE_2M / page_size)
			continue;
		p[i * granule + 1] = 2;
		writes++;
	}
	if (write(h.done[1], "", 1) != 1)
		ksft_exit_fail_msg("pipe: %s\n", strerror(errno));
	pthread_join(t, NULL);
	for (i = 0; i < len / granule; i++)
		if (p[i * granule] != 1) {
			ksft_print_msg("page %zu: data %d\n", i, p[i * granule]);
			ok = false;
		}
	ksft_print_msg("sync %s: %ld messages for %zu writes\n", kind_name[kind], h.messages,
		       writes);
	ok &= !h.bad && h.messages == (long)writes;
	close(h.uffd);
	close(h.done[0]);
	close(h.done[1]);
	munmap(p, len);
	ksft_test_result(ok, "sync %s: every write to a protected page gets a message\n",
			 kind_name[kind]);
}

/* How many pages of [p, p + len) still have a uffd-wp bit or marker. */
static size_t stale(char *p, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len / page_size; i++)
		n += !!(pagemap_get_entry(pagemap_fd, p + i * page_size) & PM_UFFD_WP);
	return n;
}

/* A protected area, its odd pages unpopulated (uffd-wp markers). */
static char *protected_area(size_t len, bool shared, int *uffd)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
	for (size_t i = 0; i < len / page_size; i += 2)
		p[i * page_size] = 1;
	*uffd = async_uffd(p, len);
	if (*uffd < 0)
		ksft_exit_fail_msg("register and protect: %s\n", strerror(-*uffd));
	if (stale(p, len) != len / page_size)
		ksft_exit_fail_msg("not all pages protected: %zu of %zu\n", stale(p, len),
				   len / page_size);
	return p;
}

/*
 * No uffd-wp bit or marker may outlive the protection: after the uffd is
 * closed, in a child that did not inherit the registration, after mremap
 * without UFFD_FEATURE_EVENT_REMAP, and after un-protecting. A stale bit
 * would make PAGEMAP_SCAN report pages as unwritten, or (CVE-2024-36881)
 * trip the fault path of a VMA no longer registered.
 */
static void test_stale(bool shared)
{
	const char *what = shared ? "shmem" : "anonymous";
	size_t len = 16 * page_size, n_close, n_child = 0, n_mremap, n_unprotect;
	char *p, *q, *moved;
	int uffd, status;
	pid_t pid;

	p = protected_area(len, shared, &uffd);
	close(uffd);
	n_close = stale(p, len);
	memset(p, 2, len);
	n_close += stale(p, len);
	munmap(p, len);

	p = protected_area(len, shared, &uffd);
	pid = fork();
	if (pid == 0) {
		size_t n;

		/* The child's own pagemap, not the parent's. */
		close(pagemap_fd);
		pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
		if (pagemap_fd < 0)
			_exit(2);
		n = stale(p, len);
		memset(p, 3, len);
		_exit(n + stale(p, len) ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		n_child = 1;
	close(uffd);
	munmap(p, len);

	p = protected_area(len, shared, &uffd);
	q = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	moved = mremap(p, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, q);
	if (moved == MAP_FAILED)
		ksft_exit_fail_msg("mremap: %s\n", strerror(errno));
	n_mremap = stale(moved, len);
	memset(moved, 4, len);
	n_mremap += stale(moved, len);
	close(uffd);
	munmap(moved, len);

	p = protected_area(len, shared, &uffd);
	n_unprotect = uffd_protect(uffd, p, len, false) ? len : stale(p, len);
	close(uffd);
	munmap(p, len);

	ksft_print_msg("%s: stale after close %zu, in child %zu, after mremap %zu, %s %zu\n",
		       what, n_close, n_child, n_mremap, "after un-protect", n_unprotect);
	ksft_test_result(!n_close && !n_child && !n_mremap && !n_unprotect,
			 "stale %s: no uffd-wp left by close, fork, mremap, un-protect\n", what);
}

int main(void)
{
	char dir[] = "/tmp/uffd_wp_async.XXXXXX";
	char here[] = "uffd_wp_async.XXXXXX";
	char *d;
	int kind;

	page_size = sysconf(_SC_PAGESIZE);
	ksft_print_header();
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("open /proc/self/pagemap: %s\n", strerror(errno));
	/* ramfs: file memory whose VMAs have no userfaultfd support. */
	d = mkdtemp(dir);
	if (!d)
		d = mkdtemp(here);
	if (!d || mount("none", d, "ramfs", 0, NULL))
		ksft_exit_fail_msg("mount ramfs on %s: %s\n", d ? d : here, strerror(errno));
	ramfs_dir = d;
	ksft_set_plan(NR_KINDS + 8);

	test_negotiation();
	test_register_any();
	for (kind = 0; kind < NR_KINDS; kind++)
		test_kind(kind);
	test_threads();
	test_side_by_side();
	test_sync(THP);
	test_sync(HUGETLB);
	test_stale(false);
	test_stale(true);

	umount(d);
	rmdir(d);
	ksft_finished();
}

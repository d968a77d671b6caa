// SPDX-License-Identifier: GPL-2.0
/*
 * pagemap_scan_bench: PAGEMAP_SCAN of the C and Rust implementations side by
 * side, in one boot.
 *
 * With CONFIG_PAGEMAP_SCAN_RUST_SWITCH the debugfs file pagemap/scan_rust
 * selects the implementation. Each scenario is measured in rounds, and in
 * each round under C and then under Rust, so that both see the same state of
 * the machine; the table gives the median ns per page of each, the spread
 * (min-max) and the Rust/C ratio. Reading /proc/self/pagemap, the classic
 * alternative, is measured the same way for the scenarios where it can
 * answer the question. The async write-fault cost (one byte written to each
 * write-protected page) is measured the same way on the C and the Rust
 * UFFD_FEATURE_WP_ASYNC, which CONFIG_USERFAULTFD_WP_ASYNC_RUST_SWITCH selects
 * with the debugfs file userfaultfd/wp_async_rust; without it, that scenario
 * is left out.
 *
 *   pagemap_scan_bench [-r ROUNDS] [-s MIB[,MIB...]] [-j FILE] [-q]
 *
 * -j writes the results as JSON lines (one object per scenario and size).
 * -q: quick, for a smoke test (2 rounds, 16 MiB).
 *
 * The lock-wait scenario (-o lock-wait, or all) measures what a scan costs the
 * rest of the process: a thread maps and unmaps one page every 50 us, which
 * takes the mmap lock for writing, while WRITTEN + WP_MATCHING polls of clean
 * uffd-wp memory (nothing reported: one walk per call) scan 16 GiB with one
 * page per 2M, and 1 GiB of populated pages 16 times a round (a round scans
 * 16 GiB in both, so that the thread tries the lock about as often in
 * each). It reports the median and the worst time of the thread's
 * mmap()+munmap() during the scans, and the scan's cost per page with the
 * thread in the same process (it waits for the scan's lock) and in another
 * process (same CPU load, no lock shared): their ratio is what giving the
 * lock up costs the scan.
 *
 * The wp-log scenario (-o wp-log, or all; with UFFD_FEATURE_WP_LOG) measures one
 * dirty-tracking round over 1 GiB of uffd-wp memory with 0, 64, 4096 and
 * 65536 pages written since the last: UFFDIO_WP_LOG_READ with
 * UFFDIO_WP_LOG_READ_MODE_WP (harvest and re-protect what was written) against
 * the Rust PAGEMAP_SCAN with PM_SCAN_WP_MATCHING, per round; and the async
 * write fault of a context with the log against one without.
 *
 * Times are wall-clock (CLOCK_MONOTONIC) of the guest. Under QEMU's -icount
 * they are instruction counts (1 ns per instruction), which do not depend on
 * the host; the output says which kind it is when told (-k KIND).
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
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SWITCH		"/sys/kernel/debug/pagemap/scan_rust"
#define WP_SWITCH	"/sys/kernel/debug/userfaultfd/wp_async_rust"
#define HPAGE		(2UL << 20)
#define MAX_ROUNDS	64
#define SPARSE_VMA	16	/* pages per VMA in the sparse layout */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE	23
#endif

enum impl { IMPL_C, IMPL_RUST, IMPL_PAGEMAP, NR_IMPL };
static const char *const impl_name[NR_IMPL] = { "C", "Rust", "pagemap-read" };

static long page_size;
static int pagemap_fd;
static int rounds = 7;
static const char *kind = "wall-clock ns";
static FILE *json;

struct area {
	char *mem;
	size_t len, pages;
	int uffd;
};

struct scenario {
	const char *name;
	const char *what;
	int (*setup)(struct area *a, size_t len);
	/* Not timed: brings the area to the state a round starts from. */
	void (*prepare)(struct area *a);
	/*
	 * Timed: one scan with the selected implementation; the regions found.
	 * Or the writes that fault, with the selected WP_ASYNC.
	 */
	long (*scan)(struct area *a);
	/* Timed, for IMPL_PAGEMAP: the same answer from /proc/self/pagemap. */
	long (*pagemap)(struct area *a);
	/* Needs the WP_ASYNC switch. */
	bool wp_async;
};

static void die(const char *what)
{
	fprintf(stderr, "pagemap_scan_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static bool have_wp_switch;

/* Selects the C or the Rust PAGEMAP_SCAN, and WP_ASYNC where it can. */
static void set_impl(enum impl impl)
{
	const char *yn = impl == IMPL_RUST ? "Y" : "N";
	int fd = open(SWITCH, O_WRONLY);

	if (fd < 0 || write(fd, yn, 1) != 1)
		die("cannot set " SWITCH " (CONFIG_PAGEMAP_SCAN_RUST_SWITCH)");
	close(fd);
	if (!have_wp_switch)
		return;
	fd = open(WP_SWITCH, O_WRONLY);
	if (fd < 0 || write(fd, yn, 1) != 1)
		die("cannot set " WP_SWITCH);
	close(fd);
}

static long do_scan(struct pm_scan_arg *arg)
{
	long ret = ioctl(pagemap_fd, PAGEMAP_SCAN, arg);

	if (ret < 0)
		die("PAGEMAP_SCAN");
	return ret;
}

/* Scans all of @a, resuming from walk_end; returns the regions found. */
static long scan_all(struct area *a, uint64_t flags, uint64_t mask, uint64_t inverted,
		     uint64_t anyof, uint64_t ret_mask, bool out)
{
	static struct page_region vec[1024];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = flags,
		.start = (unsigned long)a->mem,
		.end = (unsigned long)a->mem + a->len,
		.vec = out ? (unsigned long)vec : 0,
		.vec_len = out ? 1024 : 0,
		.category_mask = mask,
		.category_inverted = inverted,
		.category_anyof_mask = anyof,
		.return_mask = ret_mask,
	};
	long regions = 0;

	while (arg.start < arg.end) {
		regions += do_scan(&arg);
		arg.start = arg.walk_end;
	}
	return regions;
}

/* Writes every page, in the kernel if it can (faster than a fault per page). */
static void populate(char *mem, size_t len)
{
	if (!madvise(mem, len, MADV_POPULATE_WRITE))
		return;
	for (size_t off = 0; off < len; off += page_size)
		mem[off] = 1;
}

static char *map_anon(size_t len, int flags)
{
	/* Aligned to 2M, so that THPs can back it. */
	char *mem = mmap(NULL, len + HPAGE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);

	if (mem == MAP_FAILED)
		return NULL;
	return (char *)(((unsigned long)mem + HPAGE - 1) & ~(HPAGE - 1));
}

static int uffd_wp_async(struct area *a)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED |
			    UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
	};
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)a->mem, .len = a->len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	a->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (a->uffd < 0 || ioctl(a->uffd, UFFDIO_API, &api) ||
	    ioctl(a->uffd, UFFDIO_REGISTER, &reg))
		return -1;
	return 0;
}

static int setup_anon(struct area *a, size_t len)
{
	a->mem = map_anon(len, 0);
	if (!a->mem)
		return -1;
	madvise(a->mem, len, MADV_NOHUGEPAGE);
	populate(a->mem, len);
	return 0;
}

static int setup_thp(struct area *a, size_t len)
{
	a->mem = map_anon(len, 0);
	if (!a->mem || madvise(a->mem, len, MADV_HUGEPAGE))
		return -1;
	populate(a->mem, len);
	return 0;
}

static int setup_uffd(struct area *a, size_t len)
{
	if (setup_anon(a, len) || uffd_wp_async(a))
		return -1;
	/* Protect everything once. */
	scan_all(a, PM_SCAN_WP_MATCHING, 0, 0, 0, 0, false);
	return 0;
}

/*
 * One populated page per 2M, protected; the rest of each page table uffd-wp
 * markers (UFFD_FEATURE_WP_UNPOPULATED), as a first protection leaves them.
 */
static int setup_uffd_sparse(struct area *a, size_t len)
{
	a->mem = map_anon(len, MAP_NORESERVE);
	if (!a->mem)
		return -1;
	madvise(a->mem, len, MADV_NOHUGEPAGE);
	for (size_t off = 0; off < len; off += HPAGE)
		a->mem[off] = 1;
	if (uffd_wp_async(a))
		return -1;
	scan_all(a, PM_SCAN_WP_MATCHING, 0, 0, 0, 0, false);
	return 0;
}

static int setup_hugetlb(struct area *a, size_t len)
{
	char n[32];
	int fd = open("/proc/sys/vm/nr_hugepages", O_WRONLY);

	snprintf(n, sizeof(n), "%zu", len / HPAGE + 8);
	if (fd < 0 || write(fd, n, strlen(n)) < 0)
		return -1;
	close(fd);
	a->mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (a->mem == MAP_FAILED)
		return -1;
	for (size_t off = 0; off < len; off += HPAGE)
		a->mem[off] = 1;
	return 0;
}

static int setup_shmem(struct area *a, size_t len)
{
	int fd = memfd_create("pagemap_scan_bench", 0);

	if (fd < 0 || ftruncate(fd, len))
		return -1;
	a->mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (a->mem == MAP_FAILED)
		return -1;
	populate(a->mem, len);
	return 0;
}

/* Many small VMAs: SPARSE_VMA populated pages each, alternately read-only. */
static int setup_sparse(struct area *a, size_t len)
{
	if (setup_anon(a, len))
		return -1;
	for (size_t off = 0; off < len; off += 2 * SPARSE_VMA * page_size)
		if (mprotect(a->mem + off, SPARSE_VMA * page_size, PROT_READ))
			return -1;
	return 0;
}

/* Dirty 1/8 of the pages, spread out. */
static void write_eighth(struct area *a)
{
	for (size_t i = 0; i < a->pages; i += 8)
		a->mem[i * page_size + (i / 8) % 8] = 2;
}

static long scan_present(struct area *a)
{
	return scan_all(a, 0, PAGE_IS_PRESENT, 0, 0, PAGE_IS_PRESENT, true);
}

static long scan_written_wp(struct area *a)
{
	return scan_all(a, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, PAGE_IS_WRITTEN, 0, 0,
			PAGE_IS_WRITTEN, true);
}

static long scan_wp_reset(struct area *a)
{
	return scan_all(a, PM_SCAN_WP_MATCHING, 0, 0, 0, 0, false);
}

static long scan_criu(struct area *a)
{
	const uint64_t excl = PAGE_IS_PFNZERO | PAGE_IS_FILE;

	return scan_all(a, 0, excl, excl, PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
			PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_SOFT_DIRTY, true);
}

/* /proc/self/pagemap: read the 64-bit entry of every page, count present ones. */
static long pagemap_present(struct area *a)
{
	static uint64_t buf[4096];
	size_t first = (unsigned long)a->mem / page_size;
	long present = 0;

	for (size_t i = 0; i < a->pages; i += 4096) {
		size_t n = a->pages - i < 4096 ? a->pages - i : 4096;

		if (pread(pagemap_fd, buf, n * 8, (first + i) * 8) != (ssize_t)(n * 8))
			die("read /proc/self/pagemap");
		for (size_t k = 0; k < n; k++)
			present += buf[k] >> 63;
	}
	return present;
}

/* The async write faults of writing one byte to each protected page. */
static long fault_all(struct area *a)
{
	for (size_t i = 0; i < a->pages; i++)
		a->mem[i * page_size] = 3;
	return a->pages;
}

static void protect_all(struct area *a)
{
	set_impl(IMPL_C);
	scan_wp_reset(a);
}

static const struct scenario scenarios[] = {
	{ .name = "present", .what = "dense PRESENT scan, populated anonymous memory",
	  .setup = setup_anon, .scan = scan_present, .pagemap = pagemap_present },
	{ .name = "wp-dirty", .what = "WRITTEN + WP_MATCHING, 1/8 of the pages written",
	  .setup = setup_uffd, .prepare = write_eighth, .scan = scan_written_wp },
	{ .name = "wp-clean", .what = "WRITTEN + WP_MATCHING, nothing written (steady-state poll)",
	  .setup = setup_uffd, .scan = scan_written_wp },
	{ .name = "wp-reset", .what = "vec == NULL exclusive WP, 1/8 of the pages written",
	  .setup = setup_uffd, .prepare = write_eighth, .scan = scan_wp_reset },
	{ .name = "wp-sparse", .what = "WRITTEN + WP_MATCHING, one page per 2M, markers around it",
	  .setup = setup_uffd_sparse, .scan = scan_written_wp },
	{ .name = "criu", .what = "CRIU-style scan: not PFNZERO|FILE, PRESENT|SWAPPED",
	  .setup = setup_anon, .scan = scan_criu, .pagemap = pagemap_present },
	{ .name = "thp", .what = "dense PRESENT scan, THP-backed memory",
	  .setup = setup_thp, .scan = scan_present, .pagemap = pagemap_present },
	{ .name = "hugetlb", .what = "dense PRESENT scan, 2M hugetlb pages",
	  .setup = setup_hugetlb, .scan = scan_present, .pagemap = pagemap_present },
	{ .name = "shmem", .what = "dense PRESENT scan, shmem (memfd) pages",
	  .setup = setup_shmem, .scan = scan_present, .pagemap = pagemap_present },
	{ .name = "sparse-vmas", .what = "PRESENT scan over VMAs of 16 pages each",
	  .setup = setup_sparse, .scan = scan_present, .pagemap = pagemap_present },
	{ .name = "write-fault", .what = "async uffd-wp write fault, one byte per protected page",
	  .setup = setup_uffd, .prepare = protect_all, .scan = fault_all, .wp_async = true },
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct stats {
	double median, min, max;
	bool valid;
};

static struct stats summarize(uint64_t *ns, int n, size_t pages)
{
	struct stats s = { .valid = n > 0 };

	if (!n)
		return s;
	qsort(ns, n, sizeof(*ns), cmp_u64);
	s.min = (double)ns[0] / pages;
	s.max = (double)ns[n - 1] / pages;
	s.median = n % 2 ? (double)ns[n / 2] / pages :
			   (double)(ns[n / 2 - 1] + ns[n / 2]) / 2 / pages;
	return s;
}

static void run(const struct scenario *sc, size_t mib)
{
	uint64_t ns[NR_IMPL][MAX_ROUNDS];
	long result[NR_IMPL] = { 0 };
	struct stats st[NR_IMPL];
	struct area a = { .len = mib << 20, .uffd = -1 };
	int n[NR_IMPL] = { 0 };

	a.pages = a.len / page_size;
	if (sc->wp_async && !have_wp_switch) {
		printf("%-12s %5zu MiB  left out: no %s\n", sc->name, mib, WP_SWITCH);
		return;
	}
	set_impl(IMPL_C);
	if (sc->setup(&a, a.len)) {
		printf("%-12s %5zu MiB  setup failed: %s\n", sc->name, mib, strerror(errno));
		return;
	}
	for (int r = 0; r < rounds; r++) {
		for (enum impl impl = 0; impl < NR_IMPL; impl++) {
			long (*fn)(struct area *a) = impl == IMPL_PAGEMAP ? sc->pagemap : sc->scan;
			uint64_t t;
			long got;

			if (!fn)
				continue;
			if (sc->prepare)
				sc->prepare(&a);
			set_impl(impl == IMPL_RUST ? IMPL_RUST : IMPL_C);
			t = now_ns();
			got = fn(&a);
			ns[impl][n[impl]++] = now_ns() - t;
			/* The same answer every round, from either implementation. */
			if (r && (impl == IMPL_C || impl == IMPL_RUST) && got != result[IMPL_C]) {
				fprintf(stderr, "%s: %s found %ld regions, C %ld\n", sc->name,
					impl_name[impl], got, result[IMPL_C]);
				exit(1);
			}
			if (!r && impl == IMPL_C)
				result[IMPL_C] = got;
		}
	}
	for (enum impl impl = 0; impl < NR_IMPL; impl++)
		st[impl] = summarize(ns[impl], n[impl], a.pages);

	printf("%-12s %5zu MiB %8zu  %7.1f [%.1f-%.1f]  %7.1f [%.1f-%.1f]  %5.2f",
	       sc->name, mib, a.pages, st[IMPL_C].median, st[IMPL_C].min, st[IMPL_C].max,
	       st[IMPL_RUST].median, st[IMPL_RUST].min, st[IMPL_RUST].max,
	       st[IMPL_RUST].median / st[IMPL_C].median);
	if (st[IMPL_PAGEMAP].valid)
		printf("  %7.1f", st[IMPL_PAGEMAP].median);
	printf("\n");
	fflush(stdout);

	if (json) {
		fprintf(json, "{\"scenario\":\"%s\",\"mib\":%zu,\"pages\":%zu,", sc->name, mib,
			a.pages);
		fprintf(json, "\"rounds\":%d,\"unit\":\"%s per page\"", rounds, kind);
		for (enum impl impl = 0; impl < NR_IMPL; impl++)
			if (st[impl].valid)
				fprintf(json, ",\"%s\":{\"median\":%.2f,\"min\":%.2f,\"max\":%.2f}",
					impl_name[impl], st[impl].median, st[impl].min,
					st[impl].max);
		if (st[IMPL_C].valid && st[IMPL_RUST].valid)
			fprintf(json, ",\"ratio\":%.3f",
				st[IMPL_RUST].median / st[IMPL_C].median);
		fprintf(json, "}\n");
		fflush(json);
	}

	if (a.uffd >= 0)
		close(a.uffd);
	munmap(a.mem, a.len);
	if (sc->setup == setup_hugetlb) {
		int fd = open("/proc/sys/vm/nr_hugepages", O_WRONLY);

		/* Give the pool back for the scenarios that follow. */
		if (fd < 0 || write(fd, "0", 1) != 1)
			die("nr_hugepages");
		close(fd);
	}
}

/* The lock-wait scenario: see the top of the file. */
#define MAPPER_SAMPLES	65536

struct mapper {
	int run, quit;
	unsigned long ops;
	uint64_t wait[MAPPER_SAMPLES];
};

static void *mapper_loop(void *arg)
{
	struct mapper *m = arg;
	const struct timespec pause = { 0, 50000 }, idle = { 0, 1000000 };

	while (!__atomic_load_n(&m->quit, __ATOMIC_ACQUIRE)) {
		unsigned long n;
		uint64_t t;
		void *p;

		if (!__atomic_load_n(&m->run, __ATOMIC_ACQUIRE)) {
			nanosleep(&idle, NULL);
			continue;
		}
		t = now_ns();
		p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
		if (p == MAP_FAILED)
			die("mapper mmap");
		munmap(p, page_size);
		t = now_ns() - t;
		n = __atomic_load_n(&m->ops, __ATOMIC_RELAXED);
		if (n < MAPPER_SAMPLES)
			m->wait[n] = t;
		__atomic_store_n(&m->ops, n + 1, __ATOMIC_RELEASE);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* A uffd-wp area of @len with a written page every @stride bytes, protected. */
static int setup_lock_wait(struct area *a, size_t len, size_t stride)
{
	a->len = len;
	a->pages = len / page_size;
	a->mem = map_anon(len, MAP_NORESERVE);
	if (!a->mem)
		return -1;
	madvise(a->mem, len, MADV_NOHUGEPAGE);
	if (stride == (size_t)page_size)
		populate(a->mem, len);
	else
		for (size_t off = 0; off < len; off += stride)
			a->mem[off] = 1;
	if (uffd_wp_async(a))
		return -1;
	protect_all(a);
	return 0;
}

static void run_lock_wait(const char *layout, size_t len, size_t stride, int repeat,
			  struct mapper *other, struct mapper *same)
{
	struct area a = { .uffd = -1 };

	if (setup_lock_wait(&a, len, stride)) {
		printf("lock-wait %-7s setup failed: %s\n", layout, strerror(errno));
		return;
	}
	for (enum impl impl = IMPL_C; impl <= IMPL_RUST; impl++) {
		struct stats cost[2], wait[2];
		unsigned long ops[2];

		set_impl(impl);
		for (int k = 0; k < 2; k++) {
			struct mapper *m = k ? same : other;
			uint64_t ns[MAX_ROUNDS];
			unsigned long n;

			__atomic_store_n(&m->ops, 0, __ATOMIC_RELEASE);
			__atomic_store_n(&m->run, 1, __ATOMIC_RELEASE);
			for (int r = 0; r < rounds; r++) {
				uint64_t t = now_ns();

				for (int i = 0; i < repeat; i++) {
					if (scan_written_wp(&a))
						die("lock-wait: a clean scan found written pages");
				}
				ns[r] = now_ns() - t;
			}
			__atomic_store_n(&m->run, 0, __ATOMIC_RELEASE);
			/* Let an operation in flight finish before its sample is read. */
			usleep(20000);
			n = __atomic_load_n(&m->ops, __ATOMIC_ACQUIRE);
			ops[k] = n;
			n = n < MAPPER_SAMPLES ? n : MAPPER_SAMPLES;
			cost[k] = summarize(ns, rounds, a.pages * repeat);
			wait[k] = summarize(m->wait, n, 1);
		}
		printf("lock-wait %-7s %6zu MiB %-4s  %7.2f  %7.2f  %5.3f", layout, len >> 20,
		       impl_name[impl], cost[0].median, cost[1].median,
		       cost[1].median / cost[0].median);
		printf("  %9.0f %11.0f  %9.0f %11.0f  %5lu\n", wait[0].median, wait[0].max,
		       wait[1].median, wait[1].max, ops[1]);
		fflush(stdout);
		if (json) {
			fprintf(json, "{\"scenario\":\"lock-wait\",\"layout\":\"%s\",\"mib\":%zu,",
				layout, len >> 20);
			fprintf(json, "\"impl\":\"%s\",\"rounds\":%d,\"repeat\":%d,",
				impl_name[impl], rounds, repeat);
			fprintf(json, "\"unit\":\"%s\",", kind);
			fprintf(json, "\"scan_per_page\":{\"other\":%.3f,\"same\":%.3f},",
				cost[0].median, cost[1].median);
			fprintf(json, "\"wait\":{\"other\":{\"median\":%.0f,\"max\":%.0f},",
				wait[0].median, wait[0].max);
			fprintf(json, "\"same\":{\"median\":%.0f,\"max\":%.0f}},\"ops\":%lu}\n",
				wait[1].median, wait[1].max, ops[1]);
			fflush(json);
		}
	}
	close(a.uffd);
	munmap(a.mem, a.len);
}

#define LOG_ENTRIES	65536

/* A context with the log, or without (@log false), protecting all of @a. */
static int log_area(struct area *a, bool log)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | (log ? UFFD_FEATURE_WP_LOG : 0),
	};
	struct uffdio_wp_log_setup setup = { .entries = LOG_ENTRIES, .watermark = LOG_ENTRIES };
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)a->mem, .len = a->len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { .start = (unsigned long)a->mem, .len = a->len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	a->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (a->uffd < 0)
		return -1;
	if (ioctl(a->uffd, UFFDIO_API, &api) ||
	    (log && ioctl(a->uffd, UFFDIO_WP_LOG_SETUP, &setup)) ||
	    ioctl(a->uffd, UFFDIO_REGISTER, &reg) || ioctl(a->uffd, UFFDIO_WRITEPROTECT, &wp)) {
		close(a->uffd);
		a->uffd = -1;
		return -1;
	}
	return 0;
}

/* Harvests the whole log, with re-protection if @wp; returns the entries. */
static long log_harvest(struct area *a, bool wp)
{
	static struct uffd_wp_log_entry e[LOG_ENTRIES];
	struct uffdio_wp_log_read rd;
	long n = 0;

	do {
		rd = (struct uffdio_wp_log_read){
			.entries = (unsigned long)e,
			.max = LOG_ENTRIES,
			.mode = wp ? UFFDIO_WP_LOG_READ_MODE_WP : 0,
		};
		if (ioctl(a->uffd, UFFDIO_WP_LOG_READ, &rd))
			die("UFFDIO_WP_LOG_READ");
		if (rd.lost)
			die("the log lost writes");
		n += rd.count;
	} while (rd.count == LOG_ENTRIES);
	return n;
}

/* Writes @n pages of @a, spread evenly. */
static void write_spread(struct area *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		a->mem[i * (a->pages / n) * page_size] = 5;
}

static void wp_log(bool quick)
{
	static const size_t written[] = { 0, 64, 4096, 65536 };
	struct area a = { .len = quick ? 16UL << 20 : 1UL << 30, .uffd = -1 };
	struct area plain = { .len = quick ? 16UL << 20 : 64UL << 20, .uffd = -1 };
	uint64_t ns[2][MAX_ROUNDS];
	struct stats st[2];

	a.pages = a.len / page_size;
	plain.pages = plain.len / page_size;
	a.mem = map_anon(a.len, 0);
	plain.mem = map_anon(plain.len, 0);
	if (!a.mem || !plain.mem)
		die("mmap");
	madvise(a.mem, a.len, MADV_NOHUGEPAGE);
	madvise(plain.mem, plain.len, MADV_NOHUGEPAGE);
	populate(a.mem, a.len);
	populate(plain.mem, plain.len);
	if (log_area(&a, true)) {
		printf("\nwp-log: left out: %s\n", strerror(errno));
		munmap(a.mem, a.len);
		munmap(plain.mem, plain.len);
		return;
	}
	set_impl(IMPL_RUST);

	printf("\nwp-log: one tracking round over %zu MiB (%zu pages), %d rounds;\n",
	       a.len >> 20, a.pages, rounds);
	printf("%s per round, ", kind);
	printf("median: UFFDIO_WP_LOG_READ + MODE_WP vs WRITTEN + WP_MATCHING scan (Rust)\n");
	printf("%-12s %9s  %14s  %14s  %9s\n", "scenario", "written", "log", "scan", "scan/log");
	for (size_t w = 0; w < ARRAY_SIZE(written); w++) {
		size_t n = written[w] < a.pages ? written[w] : a.pages;

		for (int r = 0; r < rounds; r++) {
			uint64_t t;

			write_spread(&a, n);
			t = now_ns();
			if (log_harvest(&a, true) != (long)n)
				die("the log missed writes");
			ns[0][r] = now_ns() - t;

			write_spread(&a, n);
			t = now_ns();
			scan_all(&a, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
				 PAGE_IS_WRITTEN, 0, 0, PAGE_IS_WRITTEN, true);
			ns[1][r] = now_ns() - t;
			/* Not timed: the scan's round logged its writes too. */
			log_harvest(&a, false);
		}
		st[0] = summarize(ns[0], rounds, 1);
		st[1] = summarize(ns[1], rounds, 1);
		printf("%-12s %9zu  %14.0f  %14.0f  %9.1f\n", "wp-log", n, st[0].median,
		       st[1].median, st[1].median / st[0].median);
		if (json) {
			fprintf(json, "{\"scenario\":\"wp-log\",\"mib\":%zu,\"written\":%zu,",
				a.len >> 20, n);
			fprintf(json, "\"rounds\":%d,\"unit\":\"%s per round\",", rounds, kind);
			fprintf(json, "\"log\":%.0f,\"scan\":%.0f,\"ratio\":%.2f}\n",
				st[0].median, st[1].median, st[1].median / st[0].median);
		}
	}

	/* The write fault, with and without the log, on the Rust WP_ASYNC. */
	if (log_area(&plain, false))
		die("uffd");
	for (int r = 0; r < rounds; r++) {
		uint64_t t;
		size_t n = plain.pages;

		if (n > LOG_ENTRIES)
			n = LOG_ENTRIES;
		t = now_ns();
		for (size_t i = 0; i < n; i++)
			a.mem[i * page_size] = 6;
		ns[0][r] = (now_ns() - t) / n;
		log_harvest(&a, true);
		t = now_ns();
		for (size_t i = 0; i < n; i++)
			plain.mem[i * page_size] = 6;
		ns[1][r] = (now_ns() - t) / n;
		scan_all(&plain, PM_SCAN_WP_MATCHING, PAGE_IS_WRITTEN, 0, 0, PAGE_IS_WRITTEN,
			 false);
	}
	st[0] = summarize(ns[0], rounds, 1);
	st[1] = summarize(ns[1], rounds, 1);
	printf("%-12s %9s  %14.0f  %14.0f  %9.3f  %s\n", "write-fault", "", st[0].median,
	       st[1].median, st[0].median / st[1].median,
	       "(per fault: with the log, without; ratio with/without)");
	if (json) {
		fprintf(json, "{\"scenario\":\"wp-log-fault\",\"rounds\":%d,", rounds);
		fprintf(json, "\"unit\":\"%s per fault\",\"log\":%.0f,\"nolog\":%.0f,", kind,
			st[0].median, st[1].median);
		fprintf(json, "\"ratio\":%.3f}\n", st[0].median / st[1].median);
	}
	close(a.uffd);
	close(plain.uffd);
	munmap(a.mem, a.len);
	munmap(plain.mem, plain.len);
	set_impl(IMPL_C);
}

static void lock_wait(bool quick)
{
	struct mapper *m = mmap(NULL, 2 * sizeof(*m), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_t thread;
	pid_t child;

	if (m == MAP_FAILED)
		die("mmap");
	/* m[0] runs in another process: the same load on the CPUs, another mmap lock. */
	child = fork();
	if (child < 0)
		die("fork");
	if (!child) {
		mapper_loop(&m[0]);
		_exit(0);
	}
	if (pthread_create(&thread, NULL, mapper_loop, &m[1]))
		die("pthread_create");

	printf("\nmmap_lock wait: mmap()+munmap() of one page every 50 us during\n");
	printf("WRITTEN + WP_MATCHING polls of clean memory, %d rounds (dense: 16 scans each);\n",
	       rounds);
	printf("scan: %s per page,\n", kind);
	printf("in another process / the same one / ratio; wait: %s per mmap()+munmap(),\n",
	       kind);
	printf("median and worst, thread in another process / the same\n");
	printf("%-17s %10s %-4s  %7s  %7s  %5s  %9s %11s  %9s %11s  %5s\n", "scenario", "size",
	       "impl", "scan", "scan", "ratio", "wait med", "wait worst", "wait med",
	       "wait worst", "ops");
	run_lock_wait("sparse", quick ? 256UL << 20 : 16UL << 30, HPAGE, 1, &m[0], &m[1]);
	run_lock_wait("dense", quick ? 16UL << 20 : 1UL << 30, page_size, 16, &m[0], &m[1]);

	__atomic_store_n(&m[0].quit, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&m[1].quit, 1, __ATOMIC_RELEASE);
	pthread_join(thread, NULL);
	waitpid(child, NULL, 0);
	munmap(m, 2 * sizeof(*m));
}

int main(int argc, char **argv)
{
	size_t sizes[8] = { 256, 1024 };
	int nsizes = 2, opt;
	bool quick = false;
	char *only = NULL;

	while ((opt = getopt(argc, argv, "r:s:j:k:o:q")) != -1) {
		switch (opt) {
		case 'r':
			rounds = atoi(optarg);
			break;
		case 's':
			nsizes = 0;
			for (char *tok = strtok(optarg, ","); tok && nsizes < 8;
			     tok = strtok(NULL, ","))
				sizes[nsizes++] = strtoul(tok, NULL, 0);
			break;
		case 'j':
			json = fopen(optarg, "w");
			if (!json)
				die(optarg);
			break;
		case 'k':
			kind = optarg;
			break;
		case 'o':
			only = optarg;
			break;
		case 'q':
			quick = true;
			rounds = 2;
			sizes[0] = 16;
			nsizes = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-r ROUNDS] [-s MIB,...] [-j FILE] %s\n",
				argv[0], "[-k KIND] [-o SCENARIO] [-q]");
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS)
		rounds = 7;
	page_size = sysconf(_SC_PAGESIZE);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0)
		die("open /proc/self/pagemap");
	have_wp_switch = !access(WP_SWITCH, W_OK);
	set_impl(IMPL_C);

	printf("PAGEMAP_SCAN, C and Rust interleaved, %d rounds each; %s per page, %s\n",
	       rounds, kind, "median [min-max]");
	printf("%-12s %9s %8s  %-22s  %-22s  %5s  %s\n", "scenario", "size", "pages",
	       "C", "Rust", "Rust/C", "pagemap-read");
	for (size_t i = 0; i < ARRAY_SIZE(scenarios); i++) {
		if (only && strcmp(only, scenarios[i].name))
			continue;
		for (int s = 0; s < nsizes; s++)
			run(&scenarios[i], sizes[s]);
	}
	if (!only || !strcmp(only, "lock-wait"))
		lock_wait(quick);
	if (!only || !strcmp(only, "wp-log"))
		wp_log(quick);
	set_impl(IMPL_RUST);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * No lost writes: the invariant that live migration and incremental
 * checkpointing build on PAGEMAP_SCAN and UFFD_FEATURE_WP_ASYNC.
 *
 * Writer threads write random pages of a region protected in the
 * asynchronous mode: anonymous 4K pages, THPs, shmem and, when the system has
 * free hugetlb pages, hugetlb. A tracker thread loops PM_SCAN_WP_MATCHING
 * scans for PAGE_IS_WRITTEN with a small vec_len, so that each scan resumes
 * from the walk_end of the last, and copies every page reported into a shadow
 * buffer. A mutator thread meanwhile changes the layout under them:
 * MADV_DONTNEED, MADV_PAGEOUT, MADV_COLLAPSE, THP splits by an mprotect() of
 * half a huge page, guard regions, mremap() of a sub-range away and back,
 * fork() with an exiting child.
 *
 * When the writers stop, a last round copies what is left. Every page of the
 * shadow must then equal memory: a write that no scan reported is a lost
 * write. What the mutator itself discards (the anonymous pages it zaps, a
 * guard region) it tells the tracker, which copies those pages again; a zap
 * of shmem discards nothing and is not told.
 *
 * Usage: uffd_wp_stress [-r ROUNDS] [-d SECONDS] [-w WRITERS]
 * The writers stop after ROUNDS tracker rounds (default 300) or, with -d,
 * after SECONDS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
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
#include <time.h>
#include <unistd.h>

#include "../kselftest.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE		25
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL	102
#define MADV_GUARD_REMOVE	103
#endif

#define HPAGE_2M	(2UL << 20)
#define MAX_WRITERS	8
#define VEC_LEN		7	/* small: scans stop early and resume */
#define HOT		16	/* pages of a part that get half the writes */

enum part_kind { ANON, THP, SHMEM, HUGETLB, NR_PARTS };

static const char *const part_name[] = { "anon", "thp", "shmem", "hugetlb" };

struct part {
	char *mem;
	char *shadow;
	size_t len;
	size_t npages;
	/* Pages the mutator discarded, to be copied again: one bit a page. */
	atomic_ullong *recopy;
};

static struct part parts[NR_PARTS];
static int nparts;
static long page_size;
static int pagemap_fd, uffd;

/*
 * Readers: the writers and the tracker, while they touch the region. The
 * mutator takes it for writing while a sub-range is unmapped or guarded, which
 * would fault them. Writer-preferring, so that the mutator gets its turn.
 */
static pthread_rwlock_t layout;

static atomic_bool stop_writers, stop_mutator;
static atomic_long writes, rounds, scans, copied, recopied;
static atomic_long mutations[8];

enum mutation { M_DONTNEED_ANON, M_DONTNEED_SHMEM, M_PAGEOUT, M_COLLAPSE, M_SPLIT,
		M_GUARD, M_MREMAP, M_FORK, NR_MUTATIONS };

static const char *const mutation_name[] = {
	"dontneed-anon", "dontneed-shmem", "pageout", "collapse", "split",
	"guard", "mremap", "fork",
};

/* xorshift64*: each thread its own state. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static char *map_part(enum part_kind kind, size_t len)
{
	int prot = PROT_READ | PROT_WRITE;
	char *p;

	switch (kind) {
	case ANON:
		p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			madvise(p, len, MADV_NOHUGEPAGE);
		break;
	case THP:
		p = mmap(NULL, len + HPAGE_2M, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			p = (char *)(((uintptr_t)p + HPAGE_2M - 1) & ~(HPAGE_2M - 1));
			madvise(p, len, MADV_HUGEPAGE);
		}
		break;
	case SHMEM:
		p = mmap(NULL, len, prot, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			madvise(p, len, MADV_NOHUGEPAGE);
		break;
	case HUGETLB:
		p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
		break;
	default:
		return NULL;
	}
	return p == MAP_FAILED ? NULL : p;
}

static void add_part(enum part_kind kind, size_t len)
{
	struct part *pt = &parts[kind];
	size_t i;

	pt->mem = map_part(kind, len);
	if (!pt->mem) {
		if (kind == HUGETLB) {
			ksft_print_msg("no hugetlb part: %s\n", strerror(errno));
			return;
		}
		ksft_exit_fail_msg("map %s: %s\n", part_name[kind], strerror(errno));
	}
	pt->len = len;
	pt->npages = len / page_size;
	pt->shadow = malloc(len);
	pt->recopy = calloc((pt->npages + 63) / 64, sizeof(*pt->recopy));
	if (!pt->shadow || !pt->recopy)
		ksft_exit_fail_msg("out of memory\n");
	/* Populate it: every page has its own content. */
	for (i = 0; i < pt->npages; i++)
		memset(pt->mem + i * page_size, (int)(kind * 64 + i % 64 + 1), page_size);
	nparts++;
}

static void protect_part(struct part *pt)
{
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)pt->mem, .len = pt->len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = reg.range,
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	if (ioctl(uffd, UFFDIO_REGISTER, &reg) || ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		ksft_exit_fail_msg("register and protect: %s\n", strerror(errno));
}

static void *writer(void *arg)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL * ((uintptr_t)arg + 1), seq = 0;
	uint64_t tag = (uint64_t)(uintptr_t)arg << 56;
	long n = 0;

	while (!atomic_load_explicit(&stop_writers, memory_order_relaxed)) {
		uint64_t r = rnd(&seed);
		struct part *pt = &parts[r % NR_PARTS];
		size_t page, slot;

		if (!pt->mem)
			continue;
		/*
		 * Half the writes go to the first HOT pages of a part: written
		 * again right after each scan protects them, they catch a
		 * protection that is not yet visible to the writing CPU.
		 */
		page = (r >> 8) & 1 ? pt->npages : HOT;
		r = rnd(&seed);
		page = r % page;
		slot = (r >> 32) % (page_size / sizeof(uint64_t));
		pthread_rwlock_rdlock(&layout);
		__atomic_store_n((uint64_t *)(pt->mem + page * page_size) + slot, tag | ++seq,
				 __ATOMIC_RELAXED);
		pthread_rwlock_unlock(&layout);
		n++;
	}
	atomic_fetch_add(&writes, n);
	return NULL;
}

/* Copy [start, end) of @pt to its shadow. */
static void copy_range(struct part *pt, uintptr_t start, uintptr_t end)
{
	uintptr_t base = (uintptr_t)pt->mem;

	if (start < base || end > base + pt->len || start >= end)
		ksft_exit_fail_msg("%s: region %#lx-%#lx outside %#lx-%#lx\n",
				   part_name[pt - parts], (unsigned long)start,
				   (unsigned long)end, (unsigned long)base,
				   (unsigned long)(base + pt->len));
	memcpy(pt->shadow + (start - base), (void *)start, end - start);
	atomic_fetch_add_explicit(&copied, (end - start) / page_size, memory_order_relaxed);
}

/* One round of the tracker over @pt: what the mutator discarded, then a scan. */
static void track(struct part *pt)
{
	uintptr_t start = (uintptr_t)pt->mem, end = start + pt->len;
	struct page_region vec[VEC_LEN];
	size_t w, b;

	pthread_rwlock_rdlock(&layout);
	for (w = 0; w < (pt->npages + 63) / 64; w++) {
		uint64_t bits = atomic_exchange(&pt->recopy[w], 0);

		while (bits) {
			b = w * 64 + __builtin_ctzll(bits);
			bits &= bits - 1;
			copy_range(pt, start + b * page_size, start + (b + 1) * page_size);
			atomic_fetch_add_explicit(&recopied, 1, memory_order_relaxed);
		}
	}
	pthread_rwlock_unlock(&layout);

	while (start < end) {
		struct pm_scan_arg arg = {
			.size = sizeof(arg),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = start,
			.end = end,
			.vec = (uintptr_t)vec,
			.vec_len = VEC_LEN,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long n, i;

		pthread_rwlock_rdlock(&layout);
		n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0)
			ksft_exit_fail_msg("%s: scan %#lx-%#lx: %s\n", part_name[pt - parts],
					   (unsigned long)start, (unsigned long)end,
					   strerror(errno));
		if (arg.walk_end <= start || arg.walk_end > end)
			ksft_exit_fail_msg("%s: walk_end %#llx outside (%#lx, %#lx]\n",
					   part_name[pt - parts], arg.walk_end,
					   (unsigned long)start, (unsigned long)end);
		for (i = 0; i < n; i++) {
			if (vec[i].start < start || vec[i].end > arg.walk_end ||
			    (i && vec[i].start < vec[i - 1].end))
				ksft_exit_fail_msg("%s: bad region %#llx-%#llx in %#lx-%#llx\n",
						   part_name[pt - parts], vec[i].start, vec[i].end,
						   (unsigned long)start, arg.walk_end);
			copy_range(pt, vec[i].start, vec[i].end);
		}
		pthread_rwlock_unlock(&layout);
		atomic_fetch_add_explicit(&scans, 1, memory_order_relaxed);
		start = arg.walk_end;
	}
}

static void mark_recopy(struct part *pt, size_t first, size_t count)
{
	size_t i;

	for (i = first; i < first + count; i++)
		atomic_fetch_or(&pt->recopy[i / 64], 1ULL << (i % 64));
}

static void mutate(uint64_t *seed)
{
	enum mutation m = rnd(seed) % NR_MUTATIONS;
	struct part *anon = &parts[ANON], *thp = &parts[THP], *shm = &parts[SHMEM];
	size_t page, nr, hp;
	char *at, *tmp;
	int ok = 0;
	pid_t pid;

	switch (m) {
	case M_DONTNEED_ANON:
		page = rnd(seed) % anon->npages;
		ok = !madvise(anon->mem + page * page_size, page_size, MADV_DONTNEED);
		if (ok)
			mark_recopy(anon, page, 1);
		break;
	case M_DONTNEED_SHMEM:
		/* The page cache keeps the data; a write before must still be reported. */
		page = rnd(seed) % shm->npages;
		ok = !madvise(shm->mem + page * page_size, page_size, MADV_DONTNEED);
		break;
	case M_PAGEOUT:
		page = rnd(seed) % (shm->npages - 16);
		ok = !madvise(shm->mem + page * page_size, 16 * page_size, MADV_PAGEOUT) &&
		     !madvise(thp->mem + (rnd(seed) % (thp->len / HPAGE_2M)) * HPAGE_2M,
			      HPAGE_2M, MADV_PAGEOUT);
		break;
	case M_COLLAPSE:
		/* Refused for uffd-wp ranges, but it must not lose anything trying. */
		hp = rnd(seed) % (thp->len / HPAGE_2M);
		madvise(thp->mem + hp * HPAGE_2M, HPAGE_2M, MADV_COLLAPSE);
		ok = 1;
		break;
	case M_SPLIT:
		/* A new VMA over half a huge page splits it; the second call merges it back. */
		hp = rnd(seed) % (thp->len / HPAGE_2M);
		at = thp->mem + hp * HPAGE_2M + HPAGE_2M / 2;
		ok = !mprotect(at, HPAGE_2M / 2, PROT_READ | PROT_WRITE | PROT_EXEC) &&
		     !mprotect(at, HPAGE_2M / 2, PROT_READ | PROT_WRITE);
		break;
	case M_GUARD:
		page = rnd(seed) % (anon->npages - 4);
		at = anon->mem + page * page_size;
		pthread_rwlock_wrlock(&layout);
		ok = !madvise(at, 4 * page_size, MADV_GUARD_INSTALL) &&
		     !madvise(at, 4 * page_size, MADV_GUARD_REMOVE);
		/* The guard zapped the pages: their content is now zero. */
		mark_recopy(anon, page, 4);
		pthread_rwlock_unlock(&layout);
		break;
	case M_MREMAP:
		/* Away and back: the pages keep their content, the range its registration. */
		nr = 1 + rnd(seed) % 64;
		page = rnd(seed) % (anon->npages - nr);
		at = anon->mem + page * page_size;
		tmp = mmap(NULL, nr * page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (tmp == MAP_FAILED)
			ksft_exit_fail_msg("mmap: %s\n", strerror(errno));
		pthread_rwlock_wrlock(&layout);
		if (mremap(at, nr * page_size, nr * page_size, MREMAP_MAYMOVE | MREMAP_FIXED,
			   tmp) != tmp ||
		    mremap(tmp, nr * page_size, nr * page_size, MREMAP_MAYMOVE | MREMAP_FIXED,
			   at) != at)
			ksft_exit_fail_msg("mremap: %s\n", strerror(errno));
		/*
		 * Without UFFD_FEATURE_EVENT_REMAP the moved range lost its
		 * registration and its uffd-wp bits: register it again, and its
		 * pages scan as written until the tracker protects them.
		 */
		{
			struct uffdio_register reg = {
				.range = { .start = (uintptr_t)at, .len = nr * page_size },
				.mode = UFFDIO_REGISTER_MODE_WP,
			};

			if (ioctl(uffd, UFFDIO_REGISTER, &reg))
				ksft_exit_fail_msg("register again: %s\n", strerror(errno));
		}
		pthread_rwlock_unlock(&layout);
		ok = 1;
		break;
	case M_FORK:
		pid = fork();
		if (pid < 0)
			ksft_exit_fail_msg("fork: %s\n", strerror(errno));
		if (!pid)
			_exit(0);
		ok = waitpid(pid, NULL, 0) == pid;
		break;
	default:
		break;
	}
	if (ok)
		atomic_fetch_add_explicit(&mutations[m], 1, memory_order_relaxed);
}

static void *mutator(void *arg)
{
	uint64_t seed = 0x2545f4914f6cdd1dULL;

	(void)arg;

	while (!atomic_load(&stop_mutator)) {
		mutate(&seed);
		usleep(200);
	}
	return NULL;
}

static size_t compare(struct part *pt)
{
	size_t i, bad = 0;

	for (i = 0; i < pt->npages; i++) {
		if (memcmp(pt->mem + i * page_size, pt->shadow + i * page_size, page_size)) {
			if (bad < 8)
				ksft_print_msg("%s page %zu (%p): shadow differs from memory\n",
					       part_name[pt - parts], i,
					       pt->mem + i * page_size);
			bad++;
		}
	}
	return bad;
}

int main(int argc, char **argv)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC |
				  UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	long nrounds = 300, duration = 0, nwriters = 4, r, i;
	pthread_t wt[MAX_WRITERS], mt;
	pthread_rwlockattr_t attr;
	struct timespec t0, t;
	size_t bad = 0;
	int opt, k;

	while ((opt = getopt(argc, argv, "r:d:w:")) != -1) {
		switch (opt) {
		case 'r':
			nrounds = atol(optarg);
			break;
		case 'd':
			duration = atol(optarg);
			break;
		case 'w':
			nwriters = atol(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [-r ROUNDS] [-d SECONDS] [-w WRITERS]\n",
				argv[0]);
			return KSFT_FAIL;
		}
	}
	if (nwriters < 1 || nwriters > MAX_WRITERS || nrounds < 1 || duration < 0)
		ksft_exit_fail_msg("bad arguments\n");

	ksft_print_header();
	ksft_set_plan(1);
	page_size = sysconf(_SC_PAGESIZE);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0)
		ksft_exit_fail_msg("open /proc/self/pagemap: %s\n", strerror(errno));
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api))
		ksft_exit_skip("userfaultfd with WP_ASYNC: %s\n", strerror(errno));

	add_part(ANON, 8UL << 20);
	add_part(THP, 8UL << 20);
	add_part(SHMEM, 4UL << 20);
	add_part(HUGETLB, 2 * HPAGE_2M);
	for (k = 0; k < NR_PARTS; k++) {
		if (!parts[k].mem)
			continue;
		protect_part(&parts[k]);
		memcpy(parts[k].shadow, parts[k].mem, parts[k].len);
	}

	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&layout, &attr);
	for (i = 0; i < nwriters; i++)
		if (pthread_create(&wt[i], NULL, writer, (void *)i))
			ksft_exit_fail_msg("pthread_create\n");
	if (pthread_create(&mt, NULL, mutator, NULL))
		ksft_exit_fail_msg("pthread_create\n");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (r = 0;; r++) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (duration ? t.tv_sec - t0.tv_sec >= duration : r >= nrounds)
			break;
		for (k = 0; k < NR_PARTS; k++)
			if (parts[k].mem)
				track(&parts[k]);
		atomic_fetch_add(&rounds, 1);
	}

	atomic_store(&stop_writers, true);
	for (i = 0; i < nwriters; i++)
		pthread_join(wt[i], NULL);
	atomic_store(&stop_mutator, true);
	pthread_join(mt, NULL);
	/* The last round: nothing writes or mutates any more. */
	for (k = 0; k < NR_PARTS; k++)
		if (parts[k].mem)
			track(&parts[k]);
	for (k = 0; k < NR_PARTS; k++)
		if (parts[k].mem)
			bad += compare(&parts[k]);

	ksft_print_msg("%d parts, %ld rounds, %ld scans, %ld writes, %ld pages copied\n",
		       nparts, rounds, scans, writes, copied);
	ksft_print_msg("%ld pages copied again after a discard\n", recopied);
	for (i = 0; i < NR_MUTATIONS; i++)
		ksft_print_msg("mutations %s: %ld\n", mutation_name[i], mutations[i]);
	ksft_test_result(!bad && writes > 0 && copied > 0,
			 "no lost writes: %zu pages differ from their shadow\n", bad);
	ksft_finished();
}

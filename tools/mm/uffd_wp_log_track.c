// SPDX-License-Identifier: GPL-2.0
/*
 * Live-migration-style dirty tracking of a memory area written by threads,
 * in rounds: each round finds the pages written since the last one and
 * copies them to a shadow buffer. At the end, with the writers stopped, one
 * last round makes the shadow equal the memory; the program checks that it
 * does, and says what the rounds cost.
 *
 * Two ways to find the written pages:
 *
 *   -m log   UFFD_FEATURE_WP_LOG: UFFDIO_WP_LOG_READ with
 *            UFFDIO_WP_LOG_READ_MODE_WP harvests the pages written and
 *            write-protects them again, as many as the log holds; if the
 *            log lost writes (it was full), the round also scans, as in
 *            -m scan.
 *   -m scan  PAGEMAP_SCAN with PM_SCAN_WP_MATCHING over the whole area.
 *
 * A page is copied after the call that protected it again returns: a write
 * before that is in the copy, a write after it faults and is found by the
 * next round.
 *
 * Usage: uffd_wp_log_track [-m log|scan] [-s MiB] [-t threads] [-r rounds]
 *                          [-e log entries] [-p pause between writes, us]
 * Exit status 0 if the shadow equals the memory at the end.
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
#include <time.h>
#include <unistd.h>

static size_t page_size, len;
static char *mem, *shadow;
static int uffd, pagemap_fd;
static atomic_bool stop;
static bool use_log = true;
static uint64_t copied, scans, harvests, lost_total;
static size_t entries = 4096;
static unsigned int pause_us;

static void die(const char *what)
{
	fprintf(stderr, "uffd_wp_log_track: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void copy_range(uint64_t start, uint64_t end)
{
	memcpy(shadow + (start - (uintptr_t)mem), (char *)(uintptr_t)start, end - start);
	copied += (end - start) / page_size;
}

/* One PAGEMAP_SCAN round: copy what was written, and protect it again. */
static void scan_round(void)
{
	struct page_region vec[256];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
		.start = (uintptr_t)mem,
		.end = (uintptr_t)mem + len,
		.vec = (uintptr_t)vec,
		.vec_len = 256,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};

	scans++;
	while (arg.start < arg.end) {
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);

		if (n < 0)
			die("PAGEMAP_SCAN");
		for (long i = 0; i < n; i++)
			copy_range(vec[i].start, vec[i].end);
		arg.start = arg.walk_end;
	}
}

/*
 * One log round: harvest what the log holds (at most its size: writers keep
 * filling it meanwhile, and what they add is for the next round); scan
 * instead if it lost writes.
 */
static void log_round(void)
{
	struct uffd_wp_log_entry e[512];
	struct uffdio_wp_log_read rd;
	size_t taken = 0;
	bool lost = false;

	do {
		rd = (struct uffdio_wp_log_read){
			.entries = (uintptr_t)e,
			.max = 512,
			.mode = UFFDIO_WP_LOG_READ_MODE_WP,
		};
		if (ioctl(uffd, UFFDIO_WP_LOG_READ, &rd))
			die("UFFDIO_WP_LOG_READ");
		harvests++;
		for (long i = 0; i < rd.count; i++)
			copy_range(e[i].addr, e[i].addr + e[i].len);
		if (rd.lost) {
			lost = true;
			lost_total += rd.lost;
		}
		taken += rd.count;
	} while (rd.count == 512 && taken < entries);
	if (lost)
		scan_round();
}

static void round_(void)
{
	if (use_log)
		log_round();
	else
		scan_round();
}

/*
 * A writer: bumps a counter in random pages until told to stop, pausing
 * -p microseconds after each write (0: as fast as it can).
 */
static void *writer(void *arg)
{
	unsigned int seed = (uintptr_t)arg * 2654435761u;
	size_t pages = len / page_size;

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		/* Mostly a hot eighth of the area, sometimes anywhere. */
		size_t page = rand_r(&seed) % (rand_r(&seed) % 4 ? pages / 8 : pages);
		uint64_t *w = (uint64_t *)(mem + page * page_size) + rand_r(&seed) % 8;

		__atomic_fetch_add(w, 1, __ATOMIC_RELAXED);
		if (pause_us)
			usleep(pause_us);
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg;
	struct uffdio_writeprotect wp;
	int threads = 3, rounds = 50, opt;
	size_t mib = 64, last_copied;
	pthread_t th[64];
	double t0, t;

	while ((opt = getopt(argc, argv, "m:s:t:r:e:p:")) != -1) {
		switch (opt) {
		case 'm':
			use_log = !strcmp(optarg, "log");
			if (!use_log && strcmp(optarg, "scan"))
				goto usage;
			break;
		case 's':
			mib = strtoul(optarg, NULL, 0);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'e':
			entries = strtoul(optarg, NULL, 0);
			break;
		case 'p':
			pause_us = strtoul(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (threads < 1 || threads > 64 || !mib || rounds < 1)
		goto usage;

	page_size = sysconf(_SC_PAGESIZE);
	len = mib << 20;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shadow = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || shadow == MAP_FAILED)
		die("mmap");
	for (size_t i = 0; i < len; i += page_size)
		mem[i] = (char)(i / page_size);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (pagemap_fd < 0 || uffd < 0)
		die("open");
	api.features = UFFD_FEATURE_WP_ASYNC | (use_log ? UFFD_FEATURE_WP_LOG : 0);
	if (ioctl(uffd, UFFDIO_API, &api))
		die("UFFDIO_API");
	if (use_log) {
		struct uffdio_wp_log_setup setup = {
			.entries = entries, .watermark = entries / 2 ? entries / 2 : 1,
		};

		if (ioctl(uffd, UFFDIO_WP_LOG_SETUP, &setup))
			die("UFFDIO_WP_LOG_SETUP");
	}
	reg = (struct uffdio_register){
		.range = { .start = (uintptr_t)mem, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	wp = (struct uffdio_writeprotect){
		.range = { .start = (uintptr_t)mem, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) || ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		die("register and protect");
	/* The first copy, of everything, after the protection. */
	memcpy(shadow, mem, len);

	for (long i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, writer, (void *)(i + 1)))
			die("pthread_create");
	t0 = now();
	for (int r = 0; r < rounds; r++) {
		usleep(2000);
		round_();
	}
	atomic_store(&stop, true);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t = now() - t0;
	/*
	 * The last round, with the writers stopped: with the log, until it is
	 * empty.
	 */
	last_copied = copied;
	entries = SIZE_MAX;
	round_();
	last_copied = copied - last_copied;

	printf("mode %s, %zu MiB, %d writers, %d rounds + 1: ", use_log ? "log" : "scan", mib,
	       threads, rounds);
	printf("%llu pages copied (%zu in the last), %llu scans, %llu log reads, ",
	       (unsigned long long)copied, last_copied, (unsigned long long)scans,
	       (unsigned long long)harvests);
	printf("%llu writes lost by the log, %.3f s\n", (unsigned long long)lost_total, t);
	if (memcmp(shadow, mem, len)) {
		for (size_t i = 0; i < len; i += page_size)
			if (memcmp(shadow + i, mem + i, page_size)) {
				printf("shadow != memory: first difference in page %zu\n",
				       i / page_size);
				break;
			}
		return 1;
	}
	printf("shadow == memory\n");
	return 0;
usage:
	fprintf(stderr, "usage: %s [-m log|scan] [-s MiB] [-t threads] [-r rounds] %s\n",
		argv[0], "[-e log entries] [-p pause us]");
	return 2;
}

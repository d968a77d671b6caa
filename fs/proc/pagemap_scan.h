/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _FS_PROC_PAGEMAP_SCAN_H
#define _FS_PROC_PAGEMAP_SCAN_H

#include <linux/errno.h>

struct mm_struct;

#ifdef CONFIG_PAGEMAP_SCAN_RUST
/*
 * The PAGEMAP_SCAN ioctl of /proc/PID/pagemap as implemented in Rust
 * (fs/proc/pagemap_scan.rs). @mm is the file's mm, on which the caller
 * holds a reference (mmgrab()); @uarg is the user address of the struct
 * pm_scan_arg.
 */
long rust_pagemap_scan(struct mm_struct *mm, unsigned long uarg);
#else
static inline long rust_pagemap_scan(struct mm_struct *mm, unsigned long uarg)
{
	return -ENOTTY;
}
#endif

#endif /* _FS_PROC_PAGEMAP_SCAN_H */

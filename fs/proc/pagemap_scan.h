/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _FS_PROC_PAGEMAP_SCAN_H
#define _FS_PROC_PAGEMAP_SCAN_H

struct mm_struct;

/*
 * The PAGEMAP_SCAN ioctl of /proc/PID/pagemap as implemented in Rust
 * (fs/proc/pagemap_scan.rs, CONFIG_PAGEMAP_SCAN_RUST). @mm is the file's
 * mm, on which the caller holds a reference (mmgrab()); @uarg is the user
 * address of the struct pm_scan_arg.
 */
long rust_pagemap_scan(struct mm_struct *mm, unsigned long uarg);

#endif /* _FS_PROC_PAGEMAP_SCAN_H */

/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _MM_USERFAULTFD_WP_LOG_H
#define _MM_USERFAULTFD_WP_LOG_H

#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/userfaultfd_k.h>

struct userfaultfd_ctx;

#ifdef CONFIG_USERFAULTFD_WP_ASYNC_RUST

/*
 * The log of written pages of asynchronous userfaultfd write protection
 * (UFFD_FEATURE_WP_LOG), in Rust: mm/userfaultfd_wp_log.rs, which says
 * what each function does.
 */
bool rust_uffd_wp_log_written(struct vm_area_struct *vma,
			      unsigned long address, unsigned long size);
int rust_uffd_wp_log_setup(struct userfaultfd_ctx *ctx, unsigned long arg);
int rust_uffd_wp_log_read(struct userfaultfd_ctx *ctx, unsigned long arg);
bool rust_uffd_wp_log_ready(struct userfaultfd_ctx *ctx);

/*
 * A write fault on the page of @size bytes at @vmf->address was resolved
 * by dropping its uffd bit, with its page table locked: log it if the
 * VMA's context keeps a log, and wake up its readers if that made the log
 * worth reading.
 */
static inline void userfaultfd_wp_log_written(struct vm_fault *vmf,
					      unsigned long size)
{
	struct userfaultfd_ctx *ctx = vmf->vma->vm_userfaultfd_ctx.ctx;

	if (ctx && userfaultfd_wp_log(ctx) &&
	    rust_uffd_wp_log_written(vmf->vma, vmf->address, size))
		wake_up_poll(&ctx->fd_wqh, EPOLLIN);
}

/* A new context has no log. */
static inline void userfaultfd_wp_log_init(struct userfaultfd_ctx *ctx)
{
	ctx->wp_log = NULL;
}

/*
 * The context is freed: so is its log, which may sleep (vfree()). A log is
 * set up through the context's file; the puts of a forked context under
 * event_wqh.lock in mm/userfaultfd.c are the last only when no file was
 * made for it, so that context has no log.
 */
static inline void userfaultfd_wp_log_free(struct userfaultfd_ctx *ctx)
{
	rust_uffd_wp_log_free(ctx->wp_log);
}

/* Whether poll() reports the log readable. */
static inline bool userfaultfd_wp_log_ready(struct userfaultfd_ctx *ctx)
{
	return userfaultfd_wp_log(ctx) && rust_uffd_wp_log_ready(ctx);
}

static inline int userfaultfd_wp_log_setup(struct userfaultfd_ctx *ctx,
					   unsigned long arg)
{
	return rust_uffd_wp_log_setup(ctx, arg);
}

static inline int userfaultfd_wp_log_read(struct userfaultfd_ctx *ctx,
					  unsigned long arg)
{
	return rust_uffd_wp_log_read(ctx, arg);
}

#else /* !CONFIG_USERFAULTFD_WP_ASYNC_RUST */

static inline void userfaultfd_wp_log_written(struct vm_fault *vmf,
					      unsigned long size)
{
}

static inline void userfaultfd_wp_log_init(struct userfaultfd_ctx *ctx)
{
}

static inline void userfaultfd_wp_log_free(struct userfaultfd_ctx *ctx)
{
}

static inline bool userfaultfd_wp_log_ready(struct userfaultfd_ctx *ctx)
{
	return false;
}

static inline int userfaultfd_wp_log_setup(struct userfaultfd_ctx *ctx,
					   unsigned long arg)
{
	return -EINVAL;
}

static inline int userfaultfd_wp_log_read(struct userfaultfd_ctx *ctx,
					  unsigned long arg)
{
	return -EINVAL;
}

#endif /* CONFIG_USERFAULTFD_WP_ASYNC_RUST */

#endif /* _MM_USERFAULTFD_WP_LOG_H */

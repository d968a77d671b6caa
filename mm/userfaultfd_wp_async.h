/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _MM_USERFAULTFD_WP_ASYNC_H
#define _MM_USERFAULTFD_WP_ASYNC_H

#include <linux/compiler.h>
#include <linux/jump_label.h>
#include <linux/mm_types.h>
#include <linux/types.h>

/*
 * The asynchronous mode of userfaultfd write protection
 * (UFFD_FEATURE_WP_ASYNC) as implemented in Rust, in
 * mm/userfaultfd_wp_async.rs; see there for what each function does.
 * Callers go through userfaultfd_wp_async_rust() first, which is false
 * when CONFIG_USERFAULTFD_WP_ASYNC_RUST is off, so that the calls are
 * compiled out.
 */
u64 rust_uffd_wp_available_features(u64 available);
int rust_uffd_api_negotiate(u64 *features, u64 available);
bool rust_uffd_wp_async_any_vma(vm_flags_t vm_flags, bool wp_async);
bool rust_uffd_wp_async_resolve_pte(struct vm_fault *vmf);
bool rust_uffd_wp_async_split_huge_pmd(struct vm_fault *vmf);
bool rust_uffd_wp_async_resolve_hugetlb(struct vm_fault *vmf);

#ifdef CONFIG_USERFAULTFD_WP_ASYNC_RUST_SWITCH
/* debugfs userfaultfd/wp_async_rust: Y for Rust (the default), N for C. */
DECLARE_STATIC_KEY_TRUE(userfaultfd_wp_async_rust_key);

static inline bool userfaultfd_wp_async_rust(void)
{
	return static_branch_likely(&userfaultfd_wp_async_rust_key);
}
#else
static inline bool userfaultfd_wp_async_rust(void)
{
	return IS_ENABLED(CONFIG_USERFAULTFD_WP_ASYNC_RUST);
}
#endif

#endif /* _MM_USERFAULTFD_WP_ASYNC_H */

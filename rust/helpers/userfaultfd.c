// SPDX-License-Identifier: GPL-2.0

#include <linux/hugetlb.h>
#include <linux/userfaultfd_k.h>

__rust_helper bool rust_helper_userfaultfd_wp(struct vm_area_struct *vma)
{
	return userfaultfd_wp(vma);
}

__rust_helper bool rust_helper_userfaultfd_rwp(struct vm_area_struct *vma)
{
	return userfaultfd_rwp(vma);
}

__rust_helper bool rust_helper_userfaultfd_wp_use_markers(struct vm_area_struct *vma)
{
	return userfaultfd_wp_use_markers(vma);
}

__rust_helper bool rust_helper_is_vm_hugetlb_page(struct vm_area_struct *vma)
{
	return is_vm_hugetlb_page(vma);
}

__rust_helper bool rust_helper_uffd_supports_wp_marker(void)
{
	return uffd_supports_wp_marker();
}

#ifdef CONFIG_USERFAULTFD
__rust_helper unsigned int rust_helper_userfaultfd_vma_features(struct vm_area_struct *vma)
{
	return userfaultfd_vma_features(vma);
}
#endif

#ifdef CONFIG_HUGETLB_PAGE
__rust_helper pte_t rust_helper_huge_pte_clear_uffd(pte_t pte)
{
	return huge_pte_clear_uffd(pte);
}
#endif

#ifdef CONFIG_USERFAULTFD_WP_ASYNC_RUST
__rust_helper void *rust_helper_userfaultfd_wp_log(struct userfaultfd_ctx *ctx)
{
	return userfaultfd_wp_log(ctx);
}

__rust_helper bool rust_helper_userfaultfd_wp_log_set(struct userfaultfd_ctx *ctx, void *log)
{
	return userfaultfd_wp_log_set(ctx, log);
}
#endif

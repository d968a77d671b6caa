// SPDX-License-Identifier: GPL-2.0

#include <linux/huge_mm.h>
#include <linux/leafops.h>
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/swapops.h>
#include <linux/userfaultfd_k.h>

__rust_helper int rust_helper_pte_none(pte_t pte)
{
	return pte_none(pte);
}

__rust_helper int rust_helper_pte_present(pte_t pte)
{
	return pte_present(pte);
}

__rust_helper int rust_helper_pte_write(pte_t pte)
{
	return pte_write(pte);
}

__rust_helper bool rust_helper_pte_dirty(pte_t pte)
{
	return pte_dirty(pte);
}

__rust_helper int rust_helper_pte_young(pte_t pte)
{
	return pte_young(pte);
}

__rust_helper int rust_helper_pte_soft_dirty(pte_t pte)
{
	return pte_soft_dirty(pte);
}

__rust_helper int rust_helper_pte_uffd(pte_t pte)
{
	return pte_uffd(pte);
}

__rust_helper unsigned long rust_helper_pte_pfn(pte_t pte)
{
	return pte_pfn(pte);
}

__rust_helper int rust_helper_is_zero_pfn(unsigned long pfn)
{
	return is_zero_pfn(pfn);
}

__rust_helper int rust_helper_pte_swp_soft_dirty(pte_t pte)
{
	return pte_swp_soft_dirty(pte);
}

__rust_helper bool rust_helper_pte_swp_uffd_any(pte_t pte)
{
	return pte_swp_uffd_any(pte);
}

__rust_helper softleaf_t rust_helper_softleaf_from_pte(pte_t pte)
{
	return softleaf_from_pte(pte);
}

__rust_helper softleaf_t rust_helper_softleaf_from_pmd(pmd_t pmd)
{
	return softleaf_from_pmd(pmd);
}

__rust_helper bool rust_helper_softleaf_is_swap(softleaf_t entry)
{
	return softleaf_is_swap(entry);
}

__rust_helper bool rust_helper_softleaf_is_migration(softleaf_t entry)
{
	return softleaf_is_migration(entry);
}

__rust_helper bool rust_helper_softleaf_is_device_private(softleaf_t entry)
{
	return softleaf_is_device_private(entry);
}

__rust_helper bool rust_helper_softleaf_is_device_exclusive(softleaf_t entry)
{
	return softleaf_is_device_exclusive(entry);
}

__rust_helper bool rust_helper_softleaf_is_hwpoison(softleaf_t entry)
{
	return softleaf_is_hwpoison(entry);
}

__rust_helper bool rust_helper_softleaf_is_marker(softleaf_t entry)
{
	return softleaf_is_marker(entry);
}

__rust_helper bool rust_helper_softleaf_is_uffd_wp_marker(softleaf_t entry)
{
	return softleaf_is_uffd_wp_marker(entry);
}

__rust_helper bool rust_helper_softleaf_is_guard_marker(softleaf_t entry)
{
	return softleaf_is_guard_marker(entry);
}

__rust_helper bool rust_helper_softleaf_is_poison_marker(softleaf_t entry)
{
	return softleaf_is_poison_marker(entry);
}

__rust_helper bool rust_helper_softleaf_has_pfn(softleaf_t entry)
{
	return softleaf_has_pfn(entry);
}

__rust_helper int rust_helper_pmd_none(pmd_t pmd)
{
	return pmd_none(pmd);
}

__rust_helper int rust_helper_pmd_present(pmd_t pmd)
{
	return pmd_present(pmd);
}

__rust_helper int rust_helper_pmd_trans_huge(pmd_t pmd)
{
	return pmd_trans_huge(pmd);
}

__rust_helper bool rust_helper_pmd_is_huge(pmd_t pmd)
{
#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	return pmd_is_huge(pmd);
#else
	return false;
#endif
}

__rust_helper int rust_helper_pmd_uffd(pmd_t pmd)
{
	return pmd_uffd(pmd);
}

__rust_helper int rust_helper_pmd_soft_dirty(pmd_t pmd)
{
	return pmd_soft_dirty(pmd);
}

__rust_helper bool rust_helper_is_huge_zero_pmd(pmd_t pmd)
{
	return is_huge_zero_pmd(pmd);
}

__rust_helper unsigned long rust_helper_pmd_pfn(pmd_t pmd)
{
	return pmd_pfn(pmd);
}

__rust_helper bool rust_helper_pmd_is_migration_entry(pmd_t pmd)
{
	return pmd_is_migration_entry(pmd);
}

__rust_helper int rust_helper_pmd_swp_uffd(pmd_t pmd)
{
	return pmd_swp_uffd(pmd);
}

__rust_helper int rust_helper_pmd_swp_soft_dirty(pmd_t pmd)
{
	return pmd_swp_soft_dirty(pmd);
}

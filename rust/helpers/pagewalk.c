// SPDX-License-Identifier: GPL-2.0

#include <linux/huge_mm.h>
#include <linux/hugetlb.h>
#include <linux/leafops.h>
#include <linux/mm.h>
#include <linux/page-flags.h>
#include <linux/pgtable.h>
#include <linux/swapops.h>
#include <asm/tlbflush.h>

__rust_helper pte_t rust_helper_ptep_get(pte_t *ptep)
{
	return ptep_get(ptep);
}

__rust_helper pmd_t rust_helper_pmdp_get(pmd_t *pmdp)
{
	return pmdp_get(pmdp);
}

__rust_helper pmd_t rust_helper_pmdp_get_lockless(pmd_t *pmdp)
{
	return pmdp_get_lockless(pmdp);
}

__rust_helper void rust_helper_pte_unmap_unlock(pte_t *pte, spinlock_t *ptl)
{
	pte_unmap_unlock(pte, ptl);
}

__rust_helper void rust_helper_lazy_mmu_mode_enable(void)
{
	lazy_mmu_mode_enable();
}

__rust_helper void rust_helper_lazy_mmu_mode_disable(void)
{
	lazy_mmu_mode_disable();
}

__rust_helper pte_t rust_helper_ptep_modify_prot_start(struct vm_area_struct *vma,
						       unsigned long addr, pte_t *ptep)
{
	return ptep_modify_prot_start(vma, addr, ptep);
}

__rust_helper void rust_helper_ptep_modify_prot_commit(struct vm_area_struct *vma,
						       unsigned long addr, pte_t *ptep,
						       pte_t old_pte, pte_t pte)
{
	ptep_modify_prot_commit(vma, addr, ptep, old_pte, pte);
}

__rust_helper pte_t rust_helper_pte_mkuffd(pte_t pte)
{
	return pte_mkuffd(pte);
}

__rust_helper pte_t rust_helper_pte_clear_uffd(pte_t pte)
{
	return pte_clear_uffd(pte);
}

__rust_helper pte_t rust_helper_pte_swp_mkuffd(pte_t pte)
{
	return pte_swp_mkuffd(pte);
}

__rust_helper pte_t rust_helper_make_pte_marker(pte_marker marker)
{
	return make_pte_marker(marker);
}

__rust_helper void rust_helper_set_pte_at(struct mm_struct *mm, unsigned long addr,
					  pte_t *ptep, pte_t pte)
{
	set_pte_at(mm, addr, ptep, pte);
}

/*
 * asm/tlbflush.h hides TLB flushing from modules, and bindgen sees the
 * headers as a module does: declare the helper for it, define it for the
 * built-in kernel crate only.
 */
#ifndef MODULE
__rust_helper void rust_helper_flush_tlb_range(struct vm_area_struct *vma,
					       unsigned long start, unsigned long end)
{
	flush_tlb_range(vma, start, end);
}
#else
void rust_helper_flush_tlb_range(struct vm_area_struct *vma,
				 unsigned long start, unsigned long end);
#endif

__rust_helper spinlock_t *rust_helper_pmd_trans_huge_lock(pmd_t *pmd, struct vm_area_struct *vma)
{
	return pmd_trans_huge_lock(pmd, vma);
}

__rust_helper void rust_helper_split_huge_pmd(struct vm_area_struct *vma, pmd_t *pmd,
					      unsigned long address)
{
	split_huge_pmd(vma, pmd, address);
}

__rust_helper pmd_t rust_helper_pmd_mkuffd(pmd_t pmd)
{
	return pmd_mkuffd(pmd);
}

__rust_helper pmd_t rust_helper_pmd_swp_mkuffd(pmd_t pmd)
{
	return pmd_swp_mkuffd(pmd);
}

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
__rust_helper void rust_helper_set_pmd_at(struct mm_struct *mm, unsigned long addr,
					  pmd_t *pmdp, pmd_t pmd)
{
	set_pmd_at(mm, addr, pmdp, pmd);
}
#endif

__rust_helper struct folio *rust_helper_page_folio(struct page *page)
{
	return page_folio(page);
}

__rust_helper bool rust_helper_folio_test_anon(const struct folio *folio)
{
	return folio_test_anon(folio);
}

__rust_helper struct folio *rust_helper_softleaf_to_folio(softleaf_t entry)
{
	return softleaf_to_folio(entry);
}

__rust_helper void rust_helper_i_mmap_lock_write(struct address_space *mapping)
{
	i_mmap_lock_write(mapping);
}

__rust_helper void rust_helper_i_mmap_unlock_write(struct address_space *mapping)
{
	i_mmap_unlock_write(mapping);
}

#ifdef CONFIG_HUGETLB_PAGE
__rust_helper struct hstate *rust_helper_hstate_vma(struct vm_area_struct *vma)
{
	return hstate_vma(vma);
}

__rust_helper unsigned long rust_helper_huge_page_size(const struct hstate *h)
{
	return huge_page_size(h);
}

__rust_helper spinlock_t *rust_helper_huge_pte_lock(struct hstate *h, struct mm_struct *mm,
						    pte_t *pte)
{
	return huge_pte_lock(h, mm, pte);
}

__rust_helper struct page *rust_helper_pte_page(pte_t pte)
{
	return pte_page(pte);
}

__rust_helper pte_t rust_helper_huge_pte_mkuffd(pte_t pte)
{
	return huge_pte_mkuffd(pte);
}

__rust_helper pte_t rust_helper_huge_ptep_modify_prot_start(struct vm_area_struct *vma,
							    unsigned long addr, pte_t *ptep)
{
	return huge_ptep_modify_prot_start(vma, addr, ptep);
}

__rust_helper void rust_helper_huge_ptep_modify_prot_commit(struct vm_area_struct *vma,
							    unsigned long addr, pte_t *ptep,
							    pte_t old_pte, pte_t pte)
{
	huge_ptep_modify_prot_commit(vma, addr, ptep, old_pte, pte);
}

__rust_helper void rust_helper_set_huge_pte_at(struct mm_struct *mm, unsigned long addr,
					       pte_t *ptep, pte_t pte, unsigned long sz)
{
	set_huge_pte_at(mm, addr, ptep, pte, sz);
}

/* Built-in only, like flush_tlb_range() above. */
#ifndef MODULE
__rust_helper void rust_helper_flush_hugetlb_tlb_range(struct vm_area_struct *vma,
						       unsigned long start, unsigned long end)
{
	flush_hugetlb_tlb_range(vma, start, end);
}
#else
void rust_helper_flush_hugetlb_tlb_range(struct vm_area_struct *vma,
					 unsigned long start, unsigned long end);
#endif

__rust_helper pte_t rust_helper_huge_ptep_get(struct mm_struct *mm, unsigned long addr,
					      pte_t *ptep)
{
	return huge_ptep_get(mm, addr, ptep);
}
#endif

__rust_helper pgd_t *rust_helper_pgd_offset(struct mm_struct *mm, unsigned long addr)
{
	return pgd_offset(mm, addr);
}

__rust_helper p4d_t *rust_helper_p4d_offset(pgd_t *pgd, unsigned long addr)
{
	return p4d_offset(pgd, addr);
}

__rust_helper pud_t *rust_helper_pud_offset(p4d_t *p4d, unsigned long addr)
{
	return pud_offset(p4d, addr);
}

__rust_helper pmd_t *rust_helper_pmd_offset(pud_t *pud, unsigned long addr)
{
	return pmd_offset(pud, addr);
}

__rust_helper unsigned long rust_helper_pgd_addr_end(unsigned long addr, unsigned long end)
{
	return pgd_addr_end(addr, end);
}

__rust_helper unsigned long rust_helper_p4d_addr_end(unsigned long addr, unsigned long end)
{
	return p4d_addr_end(addr, end);
}

__rust_helper pgd_t rust_helper_pgdp_get(pgd_t *pgdp)
{
	return pgdp_get(pgdp);
}

__rust_helper p4d_t rust_helper_p4dp_get(p4d_t *p4dp)
{
	return p4dp_get(p4dp);
}

__rust_helper pud_t rust_helper_pudp_get(pud_t *pudp)
{
	return pudp_get(pudp);
}

__rust_helper int rust_helper_pgd_none(pgd_t pgd)
{
	return pgd_none(pgd);
}

__rust_helper int rust_helper_pgd_bad(pgd_t pgd)
{
	return pgd_bad(pgd);
}

__rust_helper int rust_helper_p4d_none(p4d_t p4d)
{
	return p4d_none(p4d);
}

__rust_helper int rust_helper_p4d_bad(p4d_t p4d)
{
	return p4d_bad(p4d);
}

__rust_helper int rust_helper_pgd_present(pgd_t pgd)
{
	return pgd_present(pgd);
}

__rust_helper int rust_helper_p4d_present(p4d_t p4d)
{
	return p4d_present(p4d);
}

__rust_helper int rust_helper_pud_none(pud_t pud)
{
	return pud_none(pud);
}

__rust_helper int rust_helper_pud_present(pud_t pud)
{
	return pud_present(pud);
}

__rust_helper int rust_helper_pud_bad(pud_t pud)
{
	return pud_bad(pud);
}

__rust_helper bool rust_helper_pud_leaf(pud_t pud)
{
	return pud_leaf(pud);
}

// SPDX-License-Identifier: GPL-2.0

//! A table of PTEs, mapped and locked.

use super::{flush_tlb_range, WalkRange};
use crate::{
    bindings,
    mm::{
        pgtable::{Pte, PteKind},
        virt::VmaRef,
    },
    page::PAGE_SIZE,
    types::NotThreadSafe,
};
use core::ptr::NonNull;

/// The PTEs of a walked range, mapped and locked.
///
/// While this guard lives, the PTE lock is held: the entries change only by the hardware setting
/// accessed and dirty bits on present entries, and by this guard (see
/// [`PteTable::uffd_wp`](super::uffd)). The lazy MMU mode is entered for the lifetime of the
/// guard, so that changes can be batched.
///
/// # Invariants
///
/// `ptes` points at the `len` entries for `start..start + len * PAGE_SIZE` in a PTE table of
/// `range.vma`, mapped by `pte_offset_map_lock()`, whose lock `ptl` this guard holds; `start` and
/// `len` are those of `range`. The lazy MMU mode is entered. Entries `flush.0..flush.1` (none if
/// the range is empty) include every present entry that was write-protected under this guard;
/// their TLB entries are flushed before the lock is released.
pub struct PteTable<'a> {
    pub(super) range: WalkRange<'a>,
    pub(super) ptes: NonNull<bindings::pte_t>,
    ptl: NonNull<bindings::spinlock_t>,
    len: usize,
    pub(super) flush: (usize, usize),
    _nts: NotThreadSafe,
}

impl<'a> PteTable<'a> {
    /// Maps and locks the table of PTEs that `pmd` points at, for `range`.
    ///
    /// Returns `None` if `pmd` no longer points at a table.
    ///
    /// # Safety
    ///
    /// `pmd` is a PMD entry of `range.vma` covering `range`, which is within one PMD, and the mmap
    /// lock is held for `'a`. If `range.uffd_wp`, the walk runs inside an mmu notifier
    /// invalidation of a range covering `range`.
    #[inline]
    pub(super) unsafe fn lock(range: WalkRange<'a>, pmd: NonNull<bindings::pmd_t>) -> Option<Self> {
        let mut ptl = core::ptr::null_mut();
        // SAFETY: `pmd` is a PMD entry of the VMA's mm, which is alive, and the mmap lock is held
        // (the function's safety requirements).
        let ptes = unsafe {
            bindings::pte_offset_map_lock(
                range.vma().mm().as_raw(),
                pmd.as_ptr(),
                range.start(),
                &mut ptl,
            )
        };
        let (ptes, ptl) = (NonNull::new(ptes)?, NonNull::new(ptl)?);
        // SAFETY: The PTE lock was just taken; `Drop` leaves the mode again before it releases
        // the lock, so the mode is entered and left in pairs, on this CPU.
        unsafe { bindings::lazy_mmu_mode_enable() };
        // INVARIANT: `pte_offset_map_lock()` mapped the table with the entry for `start` at
        // `ptes` and took its lock `ptl`; the range stays within one PMD. Nothing is pending.
        Some(Self {
            range,
            ptes,
            ptl,
            len: range.pages(),
            flush: (usize::MAX, 0),
            _nts: NotThreadSafe,
        })
    }

    /// Returns the VMA.
    #[inline]
    pub fn vma(&self) -> &'a VmaRef {
        self.range.vma()
    }

    /// Returns the number of entries.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns whether there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the address that entry `index` maps.
    ///
    /// For `index <= len()` that is a page of the walked range or its end; a larger `index` gives
    /// an address of no use, but does not panic.
    #[inline]
    pub fn addr(&self, index: usize) -> usize {
        // The entries map consecutive pages from `start` on and lie in one PMD of user addresses
        // (type invariants), so this does not wrap for `index <= len`: the check for overflow,
        // on every entry of the loops over a table, would be dead code.
        self.range
            .start()
            .wrapping_add(index.wrapping_mul(PAGE_SIZE))
    }

    /// Returns entry `index`, or `None` if out of range.
    #[inline]
    pub fn get(&self, index: usize) -> Option<Pte> {
        // SAFETY: `index < self.len()` was just checked.
        (index < self.len()).then(|| unsafe { self.entry(index) })
    }

    /// Returns the value of entry `index`, as `ptep_get()` reads it.
    ///
    /// Where the architecture has the generic `ptep_get()`, `READ_ONCE(*ptep)`, the entry is read
    /// here with the same single volatile load: clang compiles C's `READ_ONCE()` of the `pte_t`
    /// structure as a copy through a stack slot, one store more for each entry of a loop. With
    /// KCSAN, whose instrumentation Rust code does not have, `ptep_get()` is called, so that the
    /// read stays a marked access to it.
    ///
    /// # Safety
    ///
    /// `index < self.len()`.
    #[inline(always)]
    pub(super) unsafe fn entry(&self, index: usize) -> Pte {
        // SAFETY: `index` is in range, so the entry is valid and mapped (type invariants).
        let ptep = unsafe { self.ptes.as_ptr().add(index) };
        if bindings::ARCH_PTEP_GET
            || cfg!(CONFIG_KCSAN)
            || size_of::<bindings::pte_t>() != size_of::<usize>()
        {
            // SAFETY: `ptep` points at a valid, mapped entry.
            Pte::from_raw(unsafe { bindings::ptep_get(ptep) })
        } else {
            // SAFETY: `ptep` points at a valid, mapped and aligned entry of the machine's word
            // size. Under the PTE lock only the hardware changes it meanwhile, atomically (the
            // accessed and dirty bits): a volatile load of the whole entry is the generic
            // `ptep_get()`'s `READ_ONCE()`, a marked access in the LKMM.
            Pte::from_raw(unsafe { ptep.read_volatile() })
        }
    }

    /// Returns the index of the first entry from index `from` on for which `f` returns `true`.
    ///
    /// `f` gets the index and the value of each entry in turn. This is the loop to use where an
    /// entry may be changed between two searches: the table's length is read once per search,
    /// not once per entry as with [`PteTable::get`] after each change. It is kept out of line:
    /// inlined into a caller that changes entries between searches, it kept the caller's state
    /// live in every iteration (a quarter more instructions per entry in the PAGEMAP_SCAN loops).
    #[inline(never)]
    pub fn find_from(&self, from: usize, mut f: impl FnMut(usize, Pte) -> bool) -> Option<usize> {
        (from..self.len()).find(|&index| {
            // SAFETY: `index` is in range.
            f(index, unsafe { self.entry(index) })
        })
    }

    /// Iterates over the entries with their addresses.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (usize, Pte)> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i).map(|pte| (self.addr(i), pte)))
    }

    /// Returns whether entry `index` maps a page that is not anonymous memory.
    ///
    /// That is a page-cache or shmem page, mapped (C `vm_normal_page()`) or being migrated or
    /// held by a device (a software leaf with a page frame). The shared zero page and the raw
    /// page frames of `VM_PFNMAP` and `VM_MIXEDMAP` mappings are not "normal" pages and do not
    /// count; neither do swap entries, which are anonymous or shmem memory that is not in the
    /// page cache.
    pub fn maps_file_page(&self, index: usize) -> bool {
        let Some(pte) = self.get(index) else {
            return false;
        };
        let folio = match pte.kind() {
            PteKind::None => return false,
            PteKind::Present => {
                // SAFETY: The entry is mapped and locked (type invariants) and `pte` is its
                // value, at `addr(index)` of `vma`.
                let page = unsafe {
                    bindings::vm_normal_page(self.vma().as_ptr(), self.addr(index), pte.as_raw())
                };
                if page.is_null() {
                    return false;
                }
                // SAFETY: `vm_normal_page()` returned the page the locked entry maps.
                unsafe { bindings::page_folio(page) }
            }
            PteKind::Leaf(leaf) if leaf.has_pfn() => {
                // SAFETY: The entry is a software leaf with a page frame, locked (type
                // invariants), so its folio is pinned by the entry.
                unsafe { bindings::softleaf_to_folio(leaf.as_raw()) }
            }
            PteKind::Leaf(_) => return false,
        };
        // SAFETY: `folio` is the folio the locked entry refers to.
        !unsafe { bindings::folio_test_anon(folio) }
    }
}

impl Drop for PteTable<'_> {
    #[inline]
    fn drop(&mut self) {
        let (from, to) = self.flush;
        if from < to {
            // As C does, inside the lazy MMU mode: the flush is what makes the batched changes
            // visible to other CPUs.
            flush_tlb_range(self.vma(), self.addr(from), self.addr(to));
        }
        // SAFETY: Leaves the lazy MMU mode entered by `PteTable::lock`.
        unsafe { bindings::lazy_mmu_mode_disable() };
        // SAFETY: The table was mapped and locked by `pte_offset_map_lock()` (type invariants)
        // with `ptes` in it; this unlocks and unmaps it once.
        unsafe { bindings::pte_unmap_unlock(self.ptes.as_ptr(), self.ptl.as_ptr()) };
    }
}

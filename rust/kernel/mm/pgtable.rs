// SPDX-License-Identifier: GPL-2.0

//! Page-table entries.
//!
//! A process's page tables map each page of its address space. The lowest level holds one page
//! table entry ([`Pte`]) per page; one level up, a page middle directory entry ([`Pmd`]) either
//! points at a table of PTEs or, for a transparent huge page (THP), maps a whole PMD-sized page
//! itself.
//!
//! An entry is either *none* (nothing mapped, never touched), *present* (it maps a page frame;
//! its bits say whether the page may be written, was written or accessed, and carry the
//! soft-dirty and userfaultfd bits), or *non-present but not none*: a *software leaf* that
//! encodes a swap slot, a migration entry, a device-private entry, a hardware-poison entry or a
//! marker (userfaultfd write-protect, guard region, poison). [`SoftLeaf`] decodes those.
//!
//! The types here are values, copied out of the page table: reading one needs no lock, but what
//! it says is only stable while the page-table lock that covers the entry is held, and a
//! page-table walk hands them out under that lock.
//!
//! C header: [`include/linux/pgtable.h`](srctree/include/linux/pgtable.h),
//! [`include/linux/leafops.h`](srctree/include/linux/leafops.h)

use crate::bindings;

/// A page table entry, as read from a page table.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Pte(bindings::pte_t);

impl Pte {
    /// Wraps a raw entry.
    #[inline]
    pub fn from_raw(pte: bindings::pte_t) -> Self {
        Self(pte)
    }

    /// Returns the raw entry.
    #[inline]
    pub fn as_raw(self) -> bindings::pte_t {
        self.0
    }

    /// Returns whether the entry is empty: nothing was ever mapped here, or it was zapped.
    #[inline]
    pub fn is_none(self) -> bool {
        // SAFETY: Pure function of the value.
        unsafe { bindings::pte_none(self.0) != 0 }
    }

    /// Returns whether the entry maps a page frame (including `PROT_NONE` mappings).
    #[inline]
    pub fn is_present(self) -> bool {
        // SAFETY: Pure function of the value.
        unsafe { bindings::pte_present(self.0) != 0 }
    }

    /// Returns whether a present entry allows writes.
    #[inline]
    pub fn is_write(self) -> bool {
        // SAFETY: Pure function of the value.
        self.is_present() && unsafe { bindings::pte_write(self.0) != 0 }
    }

    /// Returns whether a present entry has been written through (hardware dirty bit).
    #[inline]
    pub fn is_dirty(self) -> bool {
        // SAFETY: Pure function of the value; `pte_dirty` is only meaningful for present entries,
        // which is checked first.
        self.is_present() && unsafe { bindings::pte_dirty(self.0) }
    }

    /// Returns whether a present entry has been accessed (hardware accessed bit).
    #[inline]
    pub fn is_young(self) -> bool {
        // SAFETY: Pure function of the value.
        self.is_present() && unsafe { bindings::pte_young(self.0) != 0 }
    }

    /// Returns whether the entry is soft-dirty, present or not.
    ///
    /// See `Documentation/admin-guide/mm/soft-dirty.rst`. Always false without
    /// `CONFIG_MEM_SOFT_DIRTY`.
    #[inline]
    pub fn is_soft_dirty(self) -> bool {
        if self.is_present() {
            // SAFETY: Pure function of the value.
            unsafe { bindings::pte_soft_dirty(self.0) != 0 }
        } else if self.is_none() {
            false
        } else {
            // SAFETY: Pure function of the value, which is a software leaf.
            unsafe { bindings::pte_swp_soft_dirty(self.0) != 0 }
        }
    }

    /// Returns whether the entry is protected by userfaultfd.
    ///
    /// For a present entry this is the userfaultfd bit (`pte_uffd()`), which means
    /// write-protected in a `VM_UFFD_WP` area and read-write-protected in a `VM_UFFD_RWP` one.
    /// For a non-present entry it is the same bit on a swap or migration entry, or a
    /// userfaultfd write-protect marker (`pte_swp_uffd_any()`). None entries are never protected.
    #[inline]
    pub fn is_uffd(self) -> bool {
        if self.is_present() {
            // SAFETY: Pure function of the value.
            unsafe { bindings::pte_uffd(self.0) != 0 }
        } else {
            // SAFETY: Pure function of the value; it checks `pte_present()` itself.
            unsafe { bindings::pte_swp_uffd_any(self.0) }
        }
    }

    /// Returns whether the entry is protected by userfaultfd, as [`Pte::is_uffd`] does, asking
    /// first whether it is a present protected one: for loops in which most entries are.
    ///
    /// On x86-64 an entry with both `_PAGE_PRESENT` and `_PAGE_UFFD` set is present
    /// (`pte_present()` is either of `_PAGE_PRESENT` and `_PAGE_PROTNONE`) and protected
    /// (`pte_uffd()` is `_PAGE_UFFD`): one test of the two bits answers for it, instead of a
    /// test for each helper. Every other entry is asked the helpers, after that test; a loop
    /// over entries of all kinds is better off with [`Pte::is_uffd`], which compiles to code
    /// without a branch there.
    #[inline]
    pub fn is_uffd_present_first(self) -> bool {
        // `_PAGE_UFFD` is a bit only with `CONFIG_HAVE_ARCH_USERFAULTFD_WP` (0 otherwise, and on
        // UML, which has `CONFIG_X86_64` too but not that).
        #[cfg(all(CONFIG_X86_64, CONFIG_HAVE_ARCH_USERFAULTFD_WP))]
        {
            const BOTH: bindings::pteval_t =
                (1 << bindings::_PAGE_BIT_PRESENT) | (1 << bindings::_PAGE_BIT_UFFD);
            if self.0.pte & BOTH == BOTH {
                return true;
            }
        }
        self.is_uffd()
    }

    /// Returns `true` if both entries are protected by userfaultfd, as far as one or two
    /// comparisons tell: where both are present and protected on x86-64, with `_PAGE_PRESENT`
    /// and `_PAGE_UFFD` set in each (see [`Pte::is_uffd_present_first`]), or where both are the
    /// uffd-wp marker that protects a none entry. `false` says nothing: ask each entry.
    ///
    /// A loop in which most entries are protected skips them two by two with it.
    #[inline]
    pub fn both_known_uffd(a: Self, b: Self) -> bool {
        #[cfg(all(CONFIG_X86_64, CONFIG_HAVE_ARCH_USERFAULTFD_WP))]
        {
            const BOTH: bindings::pteval_t =
                (1 << bindings::_PAGE_BIT_PRESENT) | (1 << bindings::_PAGE_BIT_UFFD);
            if a.0.pte & b.0.pte & BOTH == BOTH {
                return true;
            }
        }
        Self::both_uffd_wp_markers(a, b)
    }

    /// Returns `true` if both entries are, bit for bit, the uffd-wp marker that protects a none
    /// entry (`make_pte_marker(PTE_MARKER_UFFD_WP)`) where markers are supported: then both are
    /// protected. With `CONFIG_RUST_INLINE_HELPERS` (arm64 and x86-64, where `pte_t` is a
    /// structure) the marker is a constant and this is two comparisons; without, it is `false`,
    /// which says nothing (it would be two calls for each pair).
    #[inline]
    fn both_uffd_wp_markers(a: Self, b: Self) -> bool {
        #[cfg(CONFIG_RUST_INLINE_HELPERS)]
        {
            // SAFETY: Pure functions, of the value and of the configuration.
            unsafe {
                a.0.pte == b.0.pte
                    && a.0.pte == bindings::make_pte_marker(bindings::PTE_MARKER_UFFD_WP).pte
                    && bindings::uffd_supports_wp_marker()
            }
        }
        #[cfg(not(CONFIG_RUST_INLINE_HELPERS))]
        {
            let _ = (a, b);
            false
        }
    }

    /// Returns the page frame number a present entry maps.
    #[inline]
    pub fn pfn(self) -> Option<usize> {
        if !self.is_present() {
            return None;
        }
        // SAFETY: Pure function of the value.
        Some(unsafe { bindings::pte_pfn(self.0) })
    }

    /// Returns whether a present entry maps the shared zero page.
    #[inline]
    pub fn is_zero_pfn(self) -> bool {
        match self.pfn() {
            // SAFETY: `is_zero_pfn` only compares with the zero page's pfn.
            Some(pfn) => unsafe { bindings::is_zero_pfn(pfn) != 0 },
            None => false,
        }
    }

    /// Decodes a non-present, non-none entry; `None` for present or none entries.
    #[inline]
    pub fn soft_leaf(self) -> Option<SoftLeaf> {
        if self.is_present() || self.is_none() {
            return None;
        }
        // SAFETY: Pure function of the value.
        Some(SoftLeaf(unsafe { bindings::softleaf_from_pte(self.0) }))
    }

    /// Classifies the entry.
    #[inline]
    pub fn kind(self) -> PteKind {
        if self.is_present() {
            PteKind::Present
        } else {
            match self.soft_leaf() {
                Some(leaf) => PteKind::Leaf(leaf),
                None => PteKind::None,
            }
        }
    }
}

/// What a [`Pte`] is.
#[derive(Clone, Copy)]
pub enum PteKind {
    /// Nothing mapped.
    None,
    /// Maps a page frame.
    Present,
    /// A non-present software leaf entry.
    Leaf(SoftLeaf),
}

/// A non-present page-table entry that is not none: a *software leaf*.
///
/// # Invariants
///
/// The value was decoded from a non-present, non-none entry.
#[derive(Clone, Copy)]
pub struct SoftLeaf(bindings::softleaf_t);

/// The kinds of [`SoftLeaf`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SoftLeafKind {
    /// The page is in a swap slot.
    Swap,
    /// The page is being migrated; faults wait for the migration to finish.
    Migration,
    /// The page is device-private memory.
    DevicePrivate,
    /// The page is exclusively owned by a device.
    DeviceExclusive,
    /// The page has a hardware memory error.
    HwPoison,
    /// A marker with no page behind it (userfaultfd write-protect, guard region, poison).
    Marker,
    /// An encoding this kernel does not know.
    Unknown,
}

macro_rules! leaf_test {
    ($(#[$doc:meta])* $name:ident => $c:ident) => {
        $(#[$doc])*
        #[inline]
        pub fn $name(self) -> bool {
            // SAFETY: Pure function of the value.
            unsafe { bindings::$c(self.0) }
        }
    };
}

impl SoftLeaf {
    /// Returns the raw C value.
    #[inline]
    pub fn as_raw(self) -> bindings::softleaf_t {
        self.0
    }

    leaf_test!(
        /// Returns whether this is a swap entry.
        is_swap => softleaf_is_swap
    );
    leaf_test!(
        /// Returns whether this is a migration entry (read, exclusive read or write).
        is_migration => softleaf_is_migration
    );
    leaf_test!(
        /// Returns whether this is a marker (userfaultfd write-protect, guard or poison).
        is_marker => softleaf_is_marker
    );
    leaf_test!(
        /// Returns whether this is a userfaultfd write-protect marker on an unpopulated entry.
        is_uffd_wp_marker => softleaf_is_uffd_wp_marker
    );
    leaf_test!(
        /// Returns whether this is a guard-region marker (`MADV_GUARD_INSTALL`).
        is_guard_marker => softleaf_is_guard_marker
    );
    leaf_test!(
        /// Returns whether this is a poison marker (`UFFDIO_POISON`).
        is_poison_marker => softleaf_is_poison_marker
    );
    leaf_test!(
        /// Returns whether this is a device-private entry.
        is_device_private => softleaf_is_device_private
    );
    leaf_test!(
        /// Returns whether this is a device-exclusive entry.
        is_device_exclusive => softleaf_is_device_exclusive
    );
    leaf_test!(
        /// Returns whether this is a hardware-poison entry.
        is_hwpoison => softleaf_is_hwpoison
    );
    leaf_test!(
        /// Returns whether the entry refers to a page frame (migration, device or hwpoison).
        has_pfn => softleaf_has_pfn
    );

    /// Classifies the entry.
    pub fn kind(self) -> SoftLeafKind {
        if self.is_swap() {
            SoftLeafKind::Swap
        } else if self.is_migration() {
            SoftLeafKind::Migration
        } else if self.is_device_private() {
            SoftLeafKind::DevicePrivate
        } else if self.is_device_exclusive() {
            SoftLeafKind::DeviceExclusive
        } else if self.is_hwpoison() {
            SoftLeafKind::HwPoison
        } else if self.is_marker() {
            SoftLeafKind::Marker
        } else {
            SoftLeafKind::Unknown
        }
    }
}

/// A page middle directory entry, as read from a page table.
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct Pmd(bindings::pmd_t);

impl Pmd {
    /// Wraps a raw entry.
    #[inline]
    pub fn from_raw(pmd: bindings::pmd_t) -> Self {
        Self(pmd)
    }

    /// Returns the raw entry.
    #[inline]
    pub fn as_raw(self) -> bindings::pmd_t {
        self.0
    }

    /// Returns whether the entry is empty.
    #[inline]
    pub fn is_none(self) -> bool {
        // SAFETY: Pure function of the value.
        unsafe { bindings::pmd_none(self.0) != 0 }
    }

    /// Returns whether the entry is present (a PTE table or a mapped huge page).
    #[inline]
    pub fn is_present(self) -> bool {
        // SAFETY: Pure function of the value.
        unsafe { bindings::pmd_present(self.0) != 0 }
    }

    /// Returns whether the entry maps a transparent huge page itself.
    #[inline]
    pub fn is_trans_huge(self) -> bool {
        // SAFETY: Pure function of the value.
        unsafe { bindings::pmd_trans_huge(self.0) != 0 }
    }

    /// Returns whether the entry is huge: a transparent huge page, or a PMD-level migration
    /// entry (C `pmd_is_huge()`). Never with `CONFIG_TRANSPARENT_HUGEPAGE=n`.
    #[inline]
    pub fn is_huge(self) -> bool {
        // SAFETY: Pure function of the value.
        unsafe { bindings::pmd_is_huge(self.0) }
    }

    /// Returns whether a huge entry is protected by userfaultfd (present or not).
    #[inline]
    pub fn is_uffd(self) -> bool {
        if self.is_present() {
            // SAFETY: Pure function of the value.
            unsafe { bindings::pmd_uffd(self.0) != 0 }
        } else {
            // SAFETY: Pure function of the value, which is a software leaf if not none.
            !self.is_none() && unsafe { bindings::pmd_swp_uffd(self.0) != 0 }
        }
    }

    /// Returns whether a huge entry is soft-dirty (present or not).
    #[inline]
    pub fn is_soft_dirty(self) -> bool {
        if self.is_present() {
            // SAFETY: Pure function of the value.
            unsafe { bindings::pmd_soft_dirty(self.0) != 0 }
        } else {
            // SAFETY: Pure function of the value, which is a software leaf if not none.
            !self.is_none() && unsafe { bindings::pmd_swp_soft_dirty(self.0) != 0 }
        }
    }

    /// Returns whether the entry maps the huge zero page.
    #[inline]
    pub fn is_huge_zero(self) -> bool {
        // SAFETY: Pure function of the value.
        unsafe { bindings::is_huge_zero_pmd(self.0) }
    }

    /// Returns whether the entry is a PMD-level migration entry.
    #[inline]
    pub fn is_migration(self) -> bool {
        // SAFETY: Pure function of the value.
        unsafe { bindings::pmd_is_migration_entry(self.0) }
    }

    /// Returns the page frame number a present huge entry maps.
    #[inline]
    pub fn pfn(self) -> Option<usize> {
        if !(self.is_present() && self.is_trans_huge()) {
            return None;
        }
        // SAFETY: Pure function of the value.
        Some(unsafe { bindings::pmd_pfn(self.0) })
    }

    /// Decodes a non-present, non-none huge entry; `None` otherwise.
    #[inline]
    pub fn soft_leaf(self) -> Option<SoftLeaf> {
        if self.is_present() || self.is_none() {
            return None;
        }
        // SAFETY: Pure function of the value.
        Some(SoftLeaf(unsafe { bindings::softleaf_from_pmd(self.0) }))
    }
}

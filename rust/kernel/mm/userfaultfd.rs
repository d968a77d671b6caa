// SPDX-License-Identifier: GPL-2.0

//! Userfaultfd: the features of a context, and the write faults on entries it protects.
//!
//! A userfaultfd context negotiates a set of [`Features`] with `UFFDIO_API` once, and then VMAs
//! are registered with it. In write-protect mode (`VM_UFFD_WP`) a protected page table entry has
//! the uffd bit, which makes it read-only; a write to it faults, and the fault handler either
//! queues a message to the context or, in the asynchronous mode, drops the bit itself. The fault
//! types here are the state the handler is in at that point: the entry mapped and its page table
//! lock held.
//!
//! C header: [`include/linux/userfaultfd_k.h`](srctree/include/linux/userfaultfd_k.h)

#![cfg(CONFIG_USERFAULTFD)]

use crate::{bindings, mm::virt::VmaRef};
use core::{marker::PhantomData, ptr::NonNull};

/// A set of userfaultfd features (`UFFD_FEATURE_*` of `include/uapi/linux/userfaultfd.h`).
///
/// # Examples
///
/// ```
/// use kernel::mm::userfaultfd::Features;
///
/// let wp = Features::WP_ASYNC.union(Features::WP_UNPOPULATED);
/// assert!(wp.contains(Features::WP_ASYNC));
/// assert!(!wp.contains(Features::WP_ASYNC.union(Features::RWP)));
/// assert_eq!(wp.without(Features::WP_ASYNC), Features::WP_UNPOPULATED);
/// assert_eq!(Features::from_bits(wp.bits()), wp);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Features(u64);

impl Features {
    /// No feature.
    pub const NONE: Self = Self(0);
    /// Fault messages say whether the fault was a write-protect fault.
    pub const PAGEFAULT_FLAG_WP: Self = Self(bindings::UFFD_FEATURE_PAGEFAULT_FLAG_WP as u64);
    /// Forks are reported as events, and the child keeps the registrations.
    pub const EVENT_FORK: Self = Self(bindings::UFFD_FEATURE_EVENT_FORK as u64);
    /// Write protection of hugetlbfs and shmem memory.
    pub const WP_HUGETLBFS_SHMEM: Self = Self(bindings::UFFD_FEATURE_WP_HUGETLBFS_SHMEM as u64);
    /// Write protection of unpopulated entries too, with uffd-wp markers.
    pub const WP_UNPOPULATED: Self = Self(bindings::UFFD_FEATURE_WP_UNPOPULATED as u64);
    /// Write-protect faults are resolved by the kernel, without a message.
    pub const WP_ASYNC: Self = Self(bindings::UFFD_FEATURE_WP_ASYNC as u64);
    /// Read-write protection (`UFFDIO_RWPROTECT`).
    pub const RWP: Self = Self(bindings::UFFD_FEATURE_RWP as u64);
    /// Read-write-protect faults are resolved by the kernel, without a message.
    pub const RWP_ASYNC: Self = Self(bindings::UFFD_FEATURE_RWP_ASYNC as u64);

    /// Returns the set whose `UFFD_FEATURE_*` bits are `bits`.
    #[inline]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// Returns the `UFFD_FEATURE_*` bits of the set.
    #[inline]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Returns whether every feature of `other` is in the set.
    #[inline]
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Returns the set with the features of `other` too.
    #[inline]
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Returns the set without the features of `other`.
    #[inline]
    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }
}

impl VmaRef {
    /// Returns the features of the userfaultfd context the VMA is registered with, or
    /// [`Features::NONE`] if it is not registered.
    #[inline]
    pub fn uffd_features(&self) -> Features {
        // SAFETY: By the type invariants the vma is valid, and its mmap or vma lock is held,
        // which keeps its userfaultfd context attached and alive.
        Features::from_bits(unsafe { bindings::userfaultfd_vma_features(self.as_ptr()) }.into())
    }
}

/// The state of a fault handler: a `struct vm_fault` and the locks it holds, for `'a`.
///
/// # Invariants
///
/// For `'a`: `vmf` points at a valid `struct vm_fault` that only this object changes, and whose
/// VMA is valid with its mmap or vma lock held.
struct Fault<'a> {
    vmf: NonNull<bindings::vm_fault>,
    _lock: PhantomData<&'a mut bindings::vm_fault>,
}

impl Fault<'_> {
    /// # Safety
    ///
    /// For `'a`, `vmf` must point at a valid `struct vm_fault` that nothing else accesses, whose
    /// VMA's mmap or vma lock is held.
    #[inline]
    unsafe fn from_raw(vmf: NonNull<bindings::vm_fault>) -> Self {
        // INVARIANT: What the caller guarantees.
        Self {
            vmf,
            _lock: PhantomData,
        }
    }

    /// Returns the VMA of the fault.
    #[inline]
    fn vma(&self) -> &VmaRef {
        // SAFETY: The fault is valid, and its VMA field is not written while it is borrowed
        // here: only `self` changes the fault, and not that field. The VMA is valid and its mmap
        // or vma lock held for `'a` (type invariants).
        unsafe { VmaRef::from_raw(self.vmf.as_ref().__bindgen_anon_1.vma) }
    }
}

/// A write fault on a present page table entry with the uffd bit, with that entry's page table
/// mapped and locked: the state of C `do_wp_page()` when it checks for userfaultfd.
///
/// # Invariants
///
/// For `'a`: the fault's `pte` points at the mapped entry of its `address`, whose page table lock
/// `ptl` is held.
pub struct PteWriteFault<'a>(Fault<'a>);

impl<'a> PteWriteFault<'a> {
    /// Creates the fault from its C state.
    ///
    /// # Safety
    ///
    /// For `'a`, `vmf` must point at a valid `struct vm_fault` that nothing else accesses, whose
    /// VMA's mmap or vma lock is held, and whose `pte` is mapped with its `ptl` held.
    #[inline]
    pub unsafe fn from_raw(vmf: NonNull<bindings::vm_fault>) -> Self {
        // SAFETY: The caller guarantees what `Fault` needs.
        // INVARIANT: The caller guarantees the rest.
        Self(unsafe { Fault::from_raw(vmf) })
    }

    /// Returns the VMA of the fault.
    #[inline]
    pub fn vma(&self) -> &VmaRef {
        self.0.vma()
    }

    /// Drops the uffd bit of the entry and makes the rest of the fault handling see the new entry.
    ///
    /// The bit only made the entry read-only for userfaultfd, so nothing has to be flushed: no
    /// TLB can hold the entry as writable. The write then goes on as any write to a read-only
    /// entry, which reuses or copies the page. If the entry has no uffd bit nothing changes.
    #[inline]
    pub fn clear_uffd(&mut self) {
        let vmf = self.0.vmf.as_ptr();
        // SAFETY: The fault is valid and only changed through `self`; its entry is mapped and its
        // page table locked, so no other thread changes it; the hardware may set the accessed
        // bit of this read-only entry meanwhile, and losing it is harmless (C does the same).
        // The mm is alive while its VMA is (type invariants).
        unsafe {
            let pte = bindings::pte_clear_uffd(bindings::ptep_get((*vmf).pte));
            let address = (*vmf).__bindgen_anon_1.address;
            bindings::set_pte_at(
                (*(*vmf).__bindgen_anon_1.vma).vm_mm,
                address,
                (*vmf).pte,
                pte,
            );
            (*vmf).__bindgen_anon_2.orig_pte = pte;
        }
    }
}

/// A write fault on a present huge PMD with the uffd bit: the state of C `wp_huge_pmd()`.
///
/// # Invariants
///
/// For `'a`: the fault is a PMD-level fault.
pub struct HugePmdWriteFault<'a>(Fault<'a>);

impl<'a> HugePmdWriteFault<'a> {
    /// Creates the fault from its C state.
    ///
    /// # Safety
    ///
    /// For `'a`, `vmf` must point at a valid `struct vm_fault` of a PMD-level fault (its
    /// `orig_pmd` is set), whose VMA's mmap or vma lock is held.
    #[inline]
    pub unsafe fn from_raw(vmf: NonNull<bindings::vm_fault>) -> Self {
        // SAFETY: The caller guarantees what `Fault` needs.
        // INVARIANT: The caller guarantees the rest.
        Self(unsafe { Fault::from_raw(vmf) })
    }

    /// Returns the VMA of the fault.
    #[inline]
    pub fn vma(&self) -> &VmaRef {
        self.0.vma()
    }
}

/// A write fault on a present hugetlb entry with the uffd bit, with the entry's page table
/// locked: the state of C `hugetlb_fault()` when it checks for userfaultfd.
///
/// # Invariants
///
/// For `'a`: the fault's VMA is a hugetlb VMA; its `pte` points at the hugetlb entry of its
/// `address`, whose lock (`huge_pte_lock()`) `ptl` is held, and `orig_pte` is the value of that
/// entry.
#[cfg(CONFIG_HUGETLB_PAGE)]
pub struct HugetlbWriteFault<'a>(Fault<'a>);

#[cfg(CONFIG_HUGETLB_PAGE)]
impl<'a> HugetlbWriteFault<'a> {
    /// Creates the fault from its C state.
    ///
    /// # Safety
    ///
    /// For `'a`, `vmf` must point at a valid `struct vm_fault` of a hugetlb VMA that nothing else
    /// accesses, whose VMA's mmap or vma lock is held, whose `ptl` (the lock of its hugetlb entry
    /// `pte`) is held, and whose `orig_pte` is the value of that entry.
    #[inline]
    pub unsafe fn from_raw(vmf: NonNull<bindings::vm_fault>) -> Self {
        // SAFETY: The caller guarantees what `Fault` needs.
        // INVARIANT: The caller guarantees the rest.
        Self(unsafe { Fault::from_raw(vmf) })
    }

    /// Returns the VMA of the fault.
    #[inline]
    pub fn vma(&self) -> &VmaRef {
        self.0.vma()
    }

    /// Drops the uffd bit of the entry and makes the rest of the fault handling see the new entry.
    ///
    /// As for a PTE, nothing has to be flushed; the write then goes on as a copy-on-write or
    /// reuse of the huge page.
    #[inline]
    pub fn clear_uffd(&mut self) {
        let vmf = self.0.vmf.as_ptr();
        // SAFETY: The fault is valid and only changed through `self`; its VMA is a hugetlb VMA
        // whose mm is alive, and the entry's lock is held, so no other thread changes the entry;
        // only the hardware may set its accessed bit, as for a PTE (type invariants).
        unsafe {
            let vma = (*vmf).__bindgen_anon_1.vma;
            let pte = bindings::huge_pte_clear_uffd((*vmf).__bindgen_anon_2.orig_pte);
            (*vmf).__bindgen_anon_2.orig_pte = pte;
            bindings::set_huge_pte_at(
                (*vma).vm_mm,
                (*vmf).__bindgen_anon_1.address,
                (*vmf).pte,
                pte,
                bindings::huge_page_size(bindings::hstate_vma(vma)),
            );
        }
    }
}

/// Returns whether unpopulated entries can be write-protected with uffd-wp markers, which
/// write protection of shmem, hugetlbfs and unpopulated memory needs.
#[inline]
pub fn supports_wp_markers() -> bool {
    // SAFETY: It only reads what the architecture supports.
    unsafe { bindings::uffd_supports_wp_marker() }
}

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
#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST)]
use crate::{
    mm::Mm,
    prelude::*,
    sync::ring::Ring,
    transmute::AsBytes,
    types::{ForeignOwnable, Opaque},
};
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
    /// The asynchronously resolved write faults are logged (`UFFDIO_WP_LOG_SETUP`).
    pub const WP_LOG: Self = Self(bindings::UFFD_FEATURE_WP_LOG as u64);

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

/// A userfaultfd context (`struct userfaultfd_ctx`).
///
/// # Invariants
///
/// The context is valid for the lifetime of the reference. It keeps its mm allocated
/// (`mmgrab()`) for as long.
#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST)]
#[repr(transparent)]
pub struct UffdCtx(Opaque<bindings::userfaultfd_ctx>);

/// A page whose write fault a context resolved asynchronously: an entry of its [`WpLog`], as
/// user space reads it (`struct uffd_wp_log_entry`).
#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST)]
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct WrittenPage {
    /// The address of the page.
    pub addr: u64,
    /// The size of the page: the base page size, or that of a hugetlb page.
    pub len: u64,
}

// SAFETY: Two `u64`s with `repr(C)`: no padding, and any value is initialised bytes.
#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST)]
unsafe impl AsBytes for WrittenPage {}

/// The log of the pages written in a context's asynchronous write-protect mode
/// (`UFFD_FEATURE_WP_LOG`).
#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST)]
pub type WpLog = Ring<WrittenPage>;

#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST)]
impl UffdCtx {
    /// Creates a reference to a context from its C pointer.
    ///
    /// # Safety
    ///
    /// `ptr` must point at a valid context that stays valid for `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::userfaultfd_ctx) -> &'a Self {
        // SAFETY: `UffdCtx` is a transparent wrapper of the C struct; the caller guarantees that
        // it is valid for `'a`.
        unsafe { &*ptr.cast::<Self>() }
    }

    /// Returns the C pointer of the context.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::userfaultfd_ctx {
        self.0.get()
    }

    /// Returns the mm the context was made for.
    #[inline]
    pub fn mm(&self) -> &Mm {
        // SAFETY: The context is valid, and `mm` is set when it is made and never changes; the
        // context keeps the mm allocated while it is alive (type invariants).
        unsafe { Mm::from_raw((*self.as_ptr()).mm) }
    }

    /// Returns the features of the context, as `UFFDIO_API` and `UFFDIO_SET_MODE` last set them.
    #[inline]
    pub fn features(&self) -> Features {
        // SAFETY: The context is valid; `UFFDIO_SET_MODE` writes the field with `WRITE_ONCE()`,
        // so it is read once, as C `READ_ONCE()` does.
        let bits = unsafe { core::ptr::read_volatile(&raw const (*self.as_ptr()).features) };
        Features::from_bits(bits.into())
    }

    /// Returns the context's log of written pages, if it has one.
    #[inline]
    pub fn wp_log(&self) -> Option<Pin<&WpLog>> {
        // SAFETY: The context is valid.
        let log = unsafe { bindings::userfaultfd_wp_log(self.as_ptr()) };
        if log.is_null() {
            return None;
        }
        // SAFETY: A log that is not null was set by `set_wp_log` from a `Pin<KBox<WpLog>>`, and is
        // freed only with the context, which outlives `self`. The acquire load above pairs with
        // the release that published it, so it is seen initialised.
        Some(unsafe { <Pin<KBox<WpLog>>>::borrow(log) })
    }

    /// Gives the context its log of written pages, once.
    ///
    /// # Errors
    ///
    /// [`EBUSY`] if the context has a log already (`log` is then dropped).
    pub fn set_wp_log(&self, log: Pin<KBox<WpLog>>) -> Result {
        let raw = log.into_foreign();
        // SAFETY: The context is valid; the log is published with a release, after its
        // initialisation.
        if unsafe { bindings::userfaultfd_wp_log_set(self.as_ptr(), raw) } {
            return Ok(());
        }
        // SAFETY: `raw` comes from `into_foreign` above and was not published, so it is still
        // owned here.
        drop(unsafe { <Pin<KBox<WpLog>>>::from_foreign(raw) });
        Err(EBUSY)
    }
}

#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST)]
impl VmaRef {
    /// Returns the userfaultfd context the VMA is registered with, if any.
    #[inline]
    pub fn uffd_ctx(&self) -> Option<&UffdCtx> {
        // SAFETY: The VMA is valid and its mmap or vma lock held (type invariants of `VmaRef`),
        // which keeps the field and the context it points at (if any) as they are.
        let ctx = unsafe { (*self.as_ptr()).vm_userfaultfd_ctx.ctx };
        // SAFETY: A context a VMA is registered with is alive until it is unregistered, which
        // takes the locks held for the lifetime of `self`.
        (!ctx.is_null()).then(|| unsafe { UffdCtx::from_raw(ctx) })
    }
}

/// Frees the log of written pages of a context that is freed.
///
/// # Safety
///
/// `log` is null, or the log of a context that is freed (set by [`UffdCtx::set_wp_log`]), which
/// nothing uses any more.
#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST)]
#[export]
pub unsafe extern "C" fn rust_uffd_wp_log_free(log: *mut c_void) {
    if !log.is_null() {
        // SAFETY: The caller guarantees that the log came from `set_wp_log`, that is from
        // `into_foreign`, and that nothing borrows it any more.
        drop(unsafe { <Pin<KBox<WpLog>>>::from_foreign(log) });
    }
}

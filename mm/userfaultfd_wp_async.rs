// SPDX-License-Identifier: GPL-2.0

//! The asynchronous mode of userfaultfd write protection (`UFFD_FEATURE_WP_ASYNC`).
//!
//! A context with `UFFD_FEATURE_WP_ASYNC` gets no message when a write hits a page it
//! write-protected: the fault handler drops the protection itself and lets the write go on. The
//! page then no longer has the uffd bit, which `PAGEMAP_SCAN` reports as `PAGE_IS_WRITTEN`, so a
//! tracker (CRIU, Wine/Proton, live migration, a garbage collector) finds what was written since
//! the last `PM_SCAN_WP_MATCHING` scan without handling a fault per page.
//!
//! This file owns the rules of the mode, and C calls it where they apply:
//!
//! - `UFFDIO_API`: the mode needs uffd-wp markers, since it also protects unpopulated entries
//!   (it implies `UFFD_FEATURE_WP_UNPOPULATED`); without markers it is not offered.
//! - `UFFDIO_REGISTER`: a context in the mode may register any VMA for write protection alone,
//!   whatever its memory type, because it never has to fill or resolve a page for user space.
//! - The write fault, for each kind of protected entry:
//!   - a present PTE (anonymous, shmem or file memory): the uffd bit is dropped under the page
//!     table lock, and the fault goes on to reuse or copy the page as for any read-only entry;
//!   - a uffd-wp marker in an unpopulated PTE: the fault populates the page and keeps the
//!     protection on it, as for a synchronous context, and the write that retries is then the
//!     present-PTE case; the two faults leave the entry as one would;
//!   - a transparent huge PMD: it is split, so that only the page written loses its protection
//!     and a scan keeps reporting the rest of the huge page as protected;
//!   - a hugetlb entry: the uffd bit is dropped on the whole huge page, the smallest unit
//!     hugetlb maps. A stale bit in a VMA no longer registered for write protection is dropped
//!     the same way, whatever the mode.
//!
//! Read-write protection (`UFFD_FEATURE_RWP_ASYNC`) stays in C.

use core::ptr::NonNull;
#[cfg(CONFIG_HUGETLB_PAGE)]
use kernel::mm::userfaultfd::HugetlbWriteFault;
use kernel::{
    bindings,
    error::from_result,
    mm::{
        userfaultfd::{supports_wp_markers, Features, HugePmdWriteFault, PteWriteFault},
        virt::{flags, vm_flags_t, VmaRef},
    },
    prelude::*,
};

/// The features that write-protect unpopulated or non-anonymous memory, which only uffd-wp
/// markers make possible.
const NEEDS_WP_MARKERS: Features = Features::WP_HUGETLBFS_SHMEM
    .union(Features::WP_UNPOPULATED)
    .union(Features::WP_ASYNC)
    .union(Features::WP_LOG);

/// Returns the features of `available` that this system can offer, as far as write protection
/// is concerned: those needing uffd-wp markers only if `wp_markers`.
fn available_features(available: Features, wp_markers: bool) -> Features {
    if wp_markers {
        available
    } else {
        available.without(NEEDS_WP_MARKERS)
    }
}

/// Returns the features a context gets when user space asks for `requested`, of which the
/// system offers `available`.
///
/// # Errors
///
/// [`EINVAL`] if what was asked for, with what it implies, is not available, or if
/// `UFFD_FEATURE_RWP_ASYNC` is asked for without `UFFD_FEATURE_RWP`, or `UFFD_FEATURE_WP_LOG`
/// without `UFFD_FEATURE_WP_ASYNC`.
fn negotiate(requested: Features, available: Features) -> Result<Features> {
    // The asynchronous mode resolves faults on unpopulated entries too, so they must be
    // protected with markers.
    let features = if requested.contains(Features::WP_ASYNC) {
        requested.union(Features::WP_UNPOPULATED)
    } else {
        requested
    };
    if features.contains(Features::RWP_ASYNC) && !features.contains(Features::RWP) {
        return Err(EINVAL);
    }
    // The log records what the asynchronous mode resolves.
    if features.contains(Features::WP_LOG) && !features.contains(Features::WP_ASYNC) {
        return Err(EINVAL);
    }
    if !available.contains(features) {
        return Err(EINVAL);
    }
    Ok(features)
}

/// Returns whether a context in the asynchronous mode (`wp_async`) may register a VMA in the
/// userfaultfd modes of `vm_flags` whatever its memory type: if write protection is the only
/// mode asked for. Only the mode flags of `vm_flags` count (C compares flags already masked
/// to them). VMAs that no context may register, such as `VM_DROPPABLE` or shadow stacks, are
/// refused before this rule is asked.
fn any_vma(vm_flags: vm_flags_t, wp_async: bool) -> bool {
    wp_async && vm_flags & flags::UFFD_FLAGS == flags::UFFD_WP
}

/// Returns whether the VMA's userfaultfd context is in the asynchronous mode.
fn is_async(vma: &VmaRef) -> bool {
    vma.uffd_features().contains(Features::WP_ASYNC)
}

/// Resolves a write to a present PTE with the uffd bit in an asynchronous context by dropping
/// the bit. Returns whether it did; if not, the fault is for the context to handle.
fn resolve_pte(fault: &mut PteWriteFault<'_>) -> bool {
    if !is_async(fault.vma()) {
        return false;
    }
    fault.clear_uffd();
    true
}

/// Returns whether a write to a huge PMD with the uffd bit is resolved by splitting the PMD,
/// for PTE-level faults to resolve: in an asynchronous context. If not, the fault is for the
/// context to handle.
fn split_huge_pmd(fault: &HugePmdWriteFault<'_>) -> bool {
    is_async(fault.vma())
}

/// Resolves a write to a hugetlb entry with the uffd bit by dropping the bit, unless the VMA is
/// registered for write protection with a context that handles the fault itself. Returns
/// whether it did.
#[cfg(CONFIG_HUGETLB_PAGE)]
fn resolve_hugetlb(fault: &mut HugetlbWriteFault<'_>) -> bool {
    let vma = fault.vma();
    if vma.uffd_wp() && !is_async(vma) {
        return false;
    }
    fault.clear_uffd();
    true
}

/// Returns the features of `available` (`UFFD_API_FEATURES` less what the kernel lacks) that
/// write protection leaves available on this system.
///
/// # Safety
///
/// None: the function is `unsafe` only because C calls it.
#[export]
pub unsafe extern "C" fn rust_uffd_wp_available_features(available: u64) -> u64 {
    available_features(Features::from_bits(available), supports_wp_markers()).bits()
}

/// Replaces `*features`, what user space asked for in `UFFDIO_API`, with the features its
/// context gets, of those `available`. Returns 0, or `-EINVAL` if the request is invalid.
///
/// # Safety
///
/// `features` must be valid for reads and writes.
#[export]
pub unsafe extern "C" fn rust_uffd_api_negotiate(features: *mut u64, available: u64) -> c_int {
    from_result(|| {
        // SAFETY: The caller guarantees that `features` is valid for reads.
        let requested = Features::from_bits(unsafe { *features });
        let negotiated = negotiate(requested, Features::from_bits(available))?;
        // SAFETY: The caller guarantees that `features` is valid for writes.
        unsafe { *features = negotiated.bits() };
        Ok(0)
    })
}

/// Returns whether a context in the asynchronous mode (`wp_async`) may register any VMA in the
/// userfaultfd modes of `vm_flags`, whatever its memory type.
///
/// # Safety
///
/// None: the function is `unsafe` only because C calls it.
#[export]
pub unsafe extern "C" fn rust_uffd_wp_async_any_vma(vm_flags: vm_flags_t, wp_async: bool) -> bool {
    any_vma(vm_flags, wp_async)
}

/// Resolves the write fault `vmf` on a present PTE with the uffd bit if its context is
/// asynchronous; returns whether it did.
///
/// # Safety
///
/// `vmf` must be the valid fault of a VMA whose mmap or vma lock is held, with its `pte` mapped
/// and its `ptl` held, as in `do_wp_page()`; nothing else may use it during the call.
#[export]
pub unsafe extern "C" fn rust_uffd_wp_async_resolve_pte(vmf: *mut bindings::vm_fault) -> bool {
    // SAFETY: The caller passes a valid fault, so not a null pointer, and guarantees the rest
    // of what the type needs for the duration of the call.
    resolve_pte(&mut unsafe { PteWriteFault::from_raw(NonNull::new_unchecked(vmf)) })
}

/// Returns whether the write fault `vmf` on a huge PMD with the uffd bit is resolved by
/// splitting the PMD.
///
/// # Safety
///
/// `vmf` must be the valid PMD-level fault of a VMA whose mmap or vma lock is held, as in
/// `wp_huge_pmd()`.
#[export]
pub unsafe extern "C" fn rust_uffd_wp_async_split_huge_pmd(vmf: *mut bindings::vm_fault) -> bool {
    // SAFETY: The caller passes a valid fault, so not a null pointer, and guarantees the rest
    // of what the type needs for the duration of the call.
    split_huge_pmd(&unsafe { HugePmdWriteFault::from_raw(NonNull::new_unchecked(vmf)) })
}

/// Resolves the write fault `vmf` on a hugetlb entry with the uffd bit unless its context
/// handles it; returns whether it did.
///
/// # Safety
///
/// `vmf` must be the valid fault of a hugetlb VMA whose mmap or vma lock is held, with the lock
/// of its entry `pte` held in `ptl` and `orig_pte` the value of the entry, as in
/// `hugetlb_fault()`; nothing else may use it during the call.
#[cfg(CONFIG_HUGETLB_PAGE)]
#[export]
pub unsafe extern "C" fn rust_uffd_wp_async_resolve_hugetlb(vmf: *mut bindings::vm_fault) -> bool {
    // SAFETY: The caller passes a valid fault, so not a null pointer, and guarantees the rest
    // of what the type needs for the duration of the call.
    resolve_hugetlb(&mut unsafe { HugetlbWriteFault::from_raw(NonNull::new_unchecked(vmf)) })
}

#[cfg(CONFIG_USERFAULTFD_WP_ASYNC_RUST_KUNIT_TEST)]
#[kunit_tests(rust_userfaultfd_wp_async)]
mod tests {
    use super::*;

    /// Every feature the rules are about.
    const NAMED: [Features; 8] = [
        Features::PAGEFAULT_FLAG_WP,
        Features::EVENT_FORK,
        Features::WP_HUGETLBFS_SHMEM,
        Features::WP_UNPOPULATED,
        Features::WP_ASYNC,
        Features::RWP,
        Features::RWP_ASYNC,
        Features::WP_LOG,
    ];

    /// Returns the `n`-th subset of [`NAMED`].
    fn subset(n: usize) -> Features {
        NAMED
            .iter()
            .enumerate()
            .filter(|(i, _)| n & (1 << i) != 0)
            .fold(Features::NONE, |set, (_, f)| set.union(*f))
    }

    fn all() -> Features {
        subset((1 << NAMED.len()) - 1)
    }

    #[test]
    fn examples() {
        let all = all();
        let wp = Features::WP_ASYNC.union(Features::WP_UNPOPULATED);
        assert_eq!(negotiate(Features::NONE, all), Ok(Features::NONE));
        assert_eq!(negotiate(Features::WP_ASYNC, all), Ok(wp));
        assert_eq!(negotiate(wp, all), Ok(wp));
        let no_markers = available_features(all, false);
        assert_eq!(negotiate(Features::WP_ASYNC, no_markers), Err(EINVAL));
        assert_eq!(negotiate(Features::WP_UNPOPULATED, no_markers), Err(EINVAL));
        assert_eq!(
            negotiate(Features::PAGEFAULT_FLAG_WP, no_markers),
            Ok(Features::PAGEFAULT_FLAG_WP)
        );
        assert_eq!(negotiate(Features::RWP_ASYNC, all), Err(EINVAL));
        let rwp = Features::RWP.union(Features::RWP_ASYNC);
        assert_eq!(negotiate(rwp, all), Ok(rwp));
        // The log needs the asynchronous mode, whose implied feature it gets too.
        assert_eq!(negotiate(Features::WP_LOG, all), Err(EINVAL));
        let log = Features::WP_LOG.union(Features::WP_ASYNC);
        assert_eq!(negotiate(log, all), Ok(log.union(Features::WP_UNPOPULATED)));
        assert_eq!(negotiate(log, no_markers), Err(EINVAL));
        // A bit the kernel does not know.
        assert_eq!(negotiate(Features::from_bits(1 << 40), all), Err(EINVAL));
        // WP_UNPOPULATED is implied, so it must be available for WP_ASYNC to be.
        let no_unpopulated = all.without(Features::WP_UNPOPULATED);
        assert_eq!(negotiate(Features::WP_ASYNC, no_unpopulated), Err(EINVAL));
    }

    #[test]
    fn markers_gate_the_wp_features() {
        for n in 0..1 << NAMED.len() {
            let offered = subset(n);
            assert_eq!(available_features(offered, true), offered);
            let without = available_features(offered, false);
            assert!(offered.contains(without));
            assert_eq!(without.bits() & NEEDS_WP_MARKERS.bits(), 0);
            assert_eq!(
                without.union(NEEDS_WP_MARKERS),
                offered.union(NEEDS_WP_MARKERS)
            );
        }
    }

    /// Every request against every set of available features: the request succeeds exactly
    /// when it is consistent and available, and then grants what was asked plus what it
    /// implies, nothing else.
    #[test]
    fn every_combination() {
        for a in 0..1 << NAMED.len() {
            let available = subset(a);
            for r in 0..1 << NAMED.len() {
                let requested = subset(r);
                let result = negotiate(requested, available);
                let wp_async = requested.contains(Features::WP_ASYNC);
                let rwp_async_alone =
                    requested.contains(Features::RWP_ASYNC) && !requested.contains(Features::RWP);
                let log_alone =
                    requested.contains(Features::WP_LOG) && !requested.contains(Features::WP_ASYNC);
                let implied_missing = wp_async && !available.contains(Features::WP_UNPOPULATED);
                if rwp_async_alone || log_alone || !available.contains(requested) || implied_missing
                {
                    assert_eq!(result, Err(EINVAL));
                    continue;
                }
                let Ok(granted) = result else {
                    panic!(
                        "request {:#x} of {:#x} refused",
                        requested.bits(),
                        available.bits()
                    );
                };
                assert!(granted.contains(requested));
                assert!(available.contains(granted));
                assert_eq!(
                    granted.contains(Features::WP_UNPOPULATED),
                    requested.contains(Features::WP_UNPOPULATED) || wp_async
                );
                assert_eq!(
                    granted.without(Features::WP_UNPOPULATED),
                    requested.without(Features::WP_UNPOPULATED)
                );
            }
        }
    }

    /// Registration of any memory type: write protection alone, and only in the async mode.
    #[test]
    fn any_vma_is_wp_alone() {
        assert_eq!(flags::UFFD_FLAGS & flags::UFFD_WP, flags::UFFD_WP);
        // Every combination of the mode flags (VM_UFFD_MISSING, VM_UFFD_WP, VM_UFFD_MINOR and
        // VM_UFFD_RWP, those the kernel has), each subset of VM_UFFD_FLAGS once.
        let mut vm_flags = flags::UFFD_FLAGS;
        loop {
            let wp_alone = vm_flags == flags::UFFD_WP;
            assert!(!any_vma(vm_flags, false));
            assert_eq!(any_vma(vm_flags, true), wp_alone);
            // Flags other than the userfaultfd modes do not matter.
            let other = vm_flags | flags::SHARED | flags::WRITE;
            assert_eq!(any_vma(other, true), wp_alone);
            if vm_flags == 0 {
                break;
            }
            vm_flags = (vm_flags - 1) & flags::UFFD_FLAGS;
        }
    }
}

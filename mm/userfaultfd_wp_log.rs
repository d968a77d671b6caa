// SPDX-License-Identifier: GPL-2.0

//! The log of written pages of asynchronous userfaultfd write protection (`UFFD_FEATURE_WP_LOG`).
//!
//! A context in the asynchronous mode (`UFFD_FEATURE_WP_ASYNC`) resolves a write to a page it
//! protected by dropping the protection; a tracker then finds the written pages with a
//! `PAGEMAP_SCAN`, which walks the whole range it tracks. With `UFFD_FEATURE_WP_LOG` the context
//! also logs each page whose write fault it resolved, in the order it resolved them, so that a
//! tracking round costs what was written, not what is tracked:
//!
//! - `UFFDIO_WP_LOG_SETUP` gives the context its log, once: a ring of a power of two of entries
//!   (a `WpLog`), allocated there and charged to the caller's memory cgroup, never on a fault.
//! - The write fault, where C resolved it (the PTE or hugetlb entry locked), appends the page.
//!   A page faults once per protect-write cycle, so it is logged once per cycle. A full log
//!   never makes the writer wait: the entry is counted as lost, and the reader learns that it
//!   has to scan instead, which stays exact because the page tables keep the state. The first
//!   loss, or reaching the watermark, wakes up `poll()`.
//! - `UFFDIO_WP_LOG_READ` moves the oldest entries to user space, in order, and with
//!   `UFFDIO_WP_LOG_READ_MODE_WP` write-protects those pages again in the same call, so that a
//!   round is one call whose cost is the number of pages written. The entries are removed only
//!   once copied (and protected): a failure leaves them in the log, to be read again.
//!
//! What the log does not know: an entry whose page has since been unmapped, moved (`mremap()`),
//! or unregistered is still read; protecting it again finds no page of the context there and
//! does nothing. A forked child's context (`UFFD_FEATURE_EVENT_FORK`) starts without a log. The
//! log is freed with the context, when the last file reference to it goes.
//!
//! Lock order: the log's reader mutex, then the mmap lock, then page table locks, then the log's
//! spinlock; a fault takes the last two only.

use core::ops::ControlFlow::Continue;
use kernel::{
    alloc::{flags::GFP_KERNEL_ACCOUNT, KVVec},
    bindings,
    error::from_result,
    mm::{
        pagewalk::{
            Hole, HugetlbEntry, PageWalker, PmdEntry, PmdLock, PteTable, VmaAction, WalkResult,
        },
        userfaultfd::{Features, UffdCtx, WrittenPage},
        virt::{flags, VmaRef},
    },
    page::PAGE_SIZE,
    prelude::*,
    sync::ring::Ring,
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice},
};

/// The `struct uffdio_wp_log_setup` of user space: `entries`, `watermark`, `flags`.
type RawSetup = [u64; 3];

/// The `struct uffdio_wp_log_read` of user space: `entries`, `max`, `mode` that the kernel
/// reads, then `count` and `lost` that it writes.
type RawRead = [u64; 5];

/// The fields of [`RawRead`] the kernel reads.
const READ_IN: usize = 3;

/// The most entries a read moves with the mmap lock held once, and copies at once.
const CHUNK: usize = 1024;

/// Logs the page at `address`, of `size` bytes, whose write fault in `vma` was just resolved
/// by dropping its uffd bit. Returns whether a reader waiting in `poll()` should be woken up.
fn log_written(vma: &VmaRef, address: usize, size: usize) -> bool {
    // A stale uffd bit dropped in a VMA not registered for write protection is no write the
    // context protected.
    if !vma.uffd_wp() {
        return false;
    }
    let Some(log) = vma.uffd_ctx().and_then(|ctx| ctx.wp_log()) else {
        return false;
    };
    let page = WrittenPage {
        addr: (address & !(size - 1)) as u64,
        len: size as u64,
    };
    log.push(page).wakes()
}

/// Gives `ctx` the log that the `struct uffdio_wp_log_setup` at `uarg` asks for.
///
/// # Errors
///
/// [`EFAULT`] if the argument cannot be read; [`EINVAL`] if the context has no
/// `UFFD_FEATURE_WP_LOG`, the size is not a power of two of at most `UFFD_WP_LOG_MAX_ENTRIES`,
/// the watermark is not between 1 and the size, or a flag is set; [`EBUSY`] if the context has
/// a log already; [`ENOMEM`] if it cannot be allocated.
fn setup(ctx: &UffdCtx, uarg: usize) -> Result {
    let [entries, watermark, flags]: RawSetup =
        UserSlice::new(UserPtr::from_addr(uarg), size_of::<RawSetup>())
            .reader()
            .read()?;
    if !ctx.features().contains(Features::WP_LOG) || flags != 0 {
        return Err(EINVAL);
    }
    if entries > u64::from(bindings::UFFD_WP_LOG_MAX_ENTRIES) {
        return Err(EINVAL);
    }
    // Both fit in a `usize` now (the watermark is checked against the size by `Ring::new`).
    let watermark = usize::try_from(watermark).unwrap_or(usize::MAX);
    if ctx.wp_log().is_some() {
        return Err(EBUSY);
    }
    let ring = Ring::new(entries as usize, watermark, GFP_KERNEL_ACCOUNT)?;
    ctx.set_wp_log(KBox::pin_init(ring, GFP_KERNEL_ACCOUNT)?)
}

/// Write-protects again, in the VMAs registered with a context for write protection, exactly the
/// pages of a list of log entries, sorted by address, in one walk over their span: a table with
/// none of them is not locked, a table with some is locked once for all of them.
struct Reprotect<'a, 'p> {
    ctx: &'a UffdCtx,
    /// The entries the walk has not passed yet.
    pages: &'p [WrittenPage],
}

impl Reprotect<'_, '_> {
    /// Drops the entries that end at or before `addr`, which the walk has passed.
    fn pass(&mut self, addr: usize) {
        while let Some((first, rest)) = self.pages.split_first() {
            if end_of(first) > addr {
                break;
            }
            self.pages = rest;
        }
    }

    /// Returns the entries that start before `end`, once those before `start` are dropped.
    fn within(&mut self, start: usize, end: usize) -> &[WrittenPage] {
        self.pass(start);
        // Most tables of a sparse group have none: answer those without a search.
        if self
            .pages
            .first()
            .is_none_or(|page| page.addr as usize >= end)
        {
            return &[];
        }
        let n = self
            .pages
            .partition_point(|page| (page.addr as usize) < end);
        &self.pages[..n]
    }
}

/// Returns whether the log of `ctx` protects pages of `vma` again: whether `vma` is registered
/// with `ctx` for write protection (and maps pages, not raw PFNs).
fn protects_in(ctx: &UffdCtx, vma: &VmaRef) -> bool {
    vma.uffd_ctx().is_some_and(|c| core::ptr::eq(c, ctx))
        && vma.uffd_wp()
        && vma.flags() & flags::PFNMAP == 0
}

/// Write-protects, in the locked table `ptes`, the entries of the pages of `pages` that are not
/// protected yet.
fn protect_listed(ptes: &mut PteTable<'_>, pages: &[WrittenPage]) -> Result {
    let start = ptes.addr(0);
    let end = start + ptes.len() * PAGE_SIZE;
    let Some(mut wp) = ptes.uffd_wp() else {
        return Ok(());
    };
    for page in pages {
        let addr = (page.addr as usize).max(start);
        let last = end_of(page).min(end);
        if addr >= last {
            continue;
        }
        for index in (addr - start) / PAGE_SIZE..(last - start).div_ceil(PAGE_SIZE) {
            if wp.get(index).is_some_and(|pte| !pte.is_uffd()) {
                wp.protect(index)?;
            }
        }
    }
    Ok(())
}

/// Returns the end of the page of `page`.
fn end_of(page: &WrittenPage) -> usize {
    (page.addr as usize).saturating_add(page.len as usize)
}

#[vtable]
impl PageWalker for Reprotect<'_, '_> {
    type OwnerModule = kernel::module::BuiltIn;

    fn test_vma(&mut self, vma: &VmaRef, _start: usize, _end: usize) -> Result<VmaAction> {
        Ok(if protects_in(self.ctx, vma) {
            VmaAction::Walk
        } else {
            VmaAction::Skip
        })
    }

    fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> WalkResult {
        let (start, end) = (entry.start(), entry.end());
        if self.within(start, end).is_empty() {
            return Ok(Continue(()));
        }
        match entry.lock() {
            PmdLock::Table(mut ptes) => protect_listed(&mut ptes, self.within(start, end))?,
            PmdLock::Huge(mut huge) => {
                let whole = huge.is_whole()
                    && self
                        .within(start, end)
                        .iter()
                        .all(|page| page.addr as usize <= start && end_of(page) >= end);
                if !whole {
                    // Entries cover part of the huge page: protect just those, as small pages
                    // (the walk looks at the entry again once it is split).
                    huge.split();
                } else if let Some(mut wp) = huge.uffd_wp() {
                    wp.protect()?;
                }
            }
            PmdLock::Retry => {}
        }
        Ok(Continue(()))
    }

    fn pte_hole(&mut self, hole: &mut Hole<'_>) -> WalkResult {
        // A page written and then zapped is protected as an unpopulated one, as a scan would.
        let (start, end) = (hole.start(), hole.end());
        let Some(mut wp) = hole.uffd_wp() else {
            return Ok(Continue(()));
        };
        self.pass(start);
        for page in self
            .pages
            .iter()
            .take_while(|page| (page.addr as usize) < end)
        {
            let from = (page.addr as usize).max(start);
            wp.protect(from, end_of(page).min(end))?;
        }
        Ok(Continue(()))
    }

    fn hugetlb_entry(&mut self, entry: &mut HugetlbEntry<'_>) -> WalkResult {
        let (start, end) = (entry.start(), entry.end());
        // A hugetlb page is protected whole or not at all: only by an entry of its size (a
        // stale entry may cover part of a hugetlb page mapped there since).
        let whole = self
            .within(start, end)
            .iter()
            .any(|page| page.addr as usize == start && end_of(page) == end);
        if !whole {
            return Ok(Continue(()));
        }
        let mut locked = entry.lock();
        if !locked.is_whole() {
            return Ok(Continue(()));
        }
        if let Some(mut wp) = locked.uffd_wp() {
            wp.protect()?;
        }
        Ok(Continue(()))
    }
}

/// Entries further apart than this are protected in separate walks, rather than in one walk
/// over the tables between them: a walk costs about as much as passing four tables with none
/// (measured with `pagemap_scan_bench -o wp-log`).
const WALK_GAP: usize = 8 << 20;

/// Write-protects again the pages of `pages` in the VMAs of `ctx`, with the mmap lock of its mm
/// held once. Sorts `pages` by address and walks each group of them once.
fn reprotect(ctx: &UffdCtx, pages: &mut [WrittenPage]) -> Result {
    let mm = ctx.mm().mmget_not_zero().ok_or(ESRCH)?;
    pages.sort_unstable_by_key(|page| page.addr);
    let lock = mm.mmap_read_lock();
    let mut vma: Option<&VmaRef> = None;
    let mut rest: &[WrittenPage] = pages;
    while let Some(first) = rest.first() {
        let start = first.addr as usize;
        let mut end = end_of(first);
        let mut n = 1;
        while let Some(next) = rest.get(n) {
            if next.addr as usize > end.saturating_add(WALK_GAP) {
                break;
            }
            end = end.max(end_of(next));
            n += 1;
        }
        let (group, tail) = rest.split_at(n);
        let mut walker = Reprotect { ctx, pages: group };
        // A group within one VMA, as most are, is walked without looking the VMA up again. The
        // walker never breaks.
        if vma.is_none_or(|vma| start < vma.start() || end > vma.end()) {
            vma = lock.vma_lookup(start);
        }
        let _ = match vma {
            Some(vma) if end <= vma.end() => {
                if protects_in(ctx, vma) {
                    lock.walk_vma_range_uffd_wp(vma, start, end, &mut walker)?
                } else {
                    Continue(())
                }
            }
            _ => lock.walk_page_range_uffd_wp(start, end, &mut walker)?,
        };
        rest = tail;
    }
    Ok(())
}

/// Moves the oldest entries of the log of `ctx` to user space, as the `struct
/// uffdio_wp_log_read` at `uarg` asks, write-protecting their pages again with
/// `UFFDIO_WP_LOG_READ_MODE_WP`; writes how many it moved, and how many writes the log lost,
/// to the struct.
///
/// # Errors
///
/// [`EFAULT`] if the argument cannot be read or written, or if no entry could be copied to the
/// array; [`EINVAL`] if the context has no log, or a mode bit is unknown; [`ESRCH`] if the
/// process is gone and pages were to be protected; [`ENOMEM`]. An error after some entries were
/// moved ends the read there instead: it returns those. If the count cannot be written back at
/// the end (the struct was writable at the start), the entries moved are counted as lost, so
/// that the next read says to scan.
fn read(ctx: &UffdCtx, uarg: usize) -> Result {
    let [array, max, mode]: [u64; READ_IN] =
        UserSlice::new(UserPtr::from_addr(uarg), READ_IN * size_of::<u64>())
            .reader()
            .read()?;
    let protect = mode == bindings::UFFDIO_WP_LOG_READ_MODE_WP;
    if mode != 0 && !protect {
        return Err(EINVAL);
    }
    let log = ctx.wp_log().ok_or(EINVAL)?;
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    // Fail on a struct whose results cannot be written before anything is taken from the log.
    write_results(uarg, 0, 0)?;

    let mut reader = log.reader();
    // As large as what the log holds now, up to a chunk: an idle round allocates nothing.
    let size = reader.stats().len.min(max).min(CHUNK);
    let mut chunk = KVVec::new();
    if size > 0 {
        chunk = KVVec::from_elem(WrittenPage::default(), size, GFP_KERNEL)?;
    }
    let mut count = 0usize;
    let mut user = array as usize;
    let mut moved = Ok(());
    while count < max && !chunk.is_empty() {
        let want = (max - count).min(chunk.len());
        let n = reader.peek(&mut chunk[..want]);
        if n == 0 {
            break;
        }
        let pages = &mut chunk[..n];
        let bytes = AsBytes::as_bytes(pages);
        moved = UserSlice::new(UserPtr::from_addr(user), bytes.len())
            .writer()
            .write_slice(bytes);
        if moved.is_ok() && protect {
            moved = reprotect(ctx, pages);
        }
        if moved.is_err() {
            break;
        }
        reader.consume(n);
        count += n;
        user += n * size_of::<WrittenPage>();
    }
    if count == 0 {
        moved?;
    }
    let lost = reader.take_lost();
    let written = write_results(uarg, count as u64, lost);
    if written.is_err() {
        // User space changed its mapping meanwhile: it will not see the entries it was given.
        reader.count_lost(count as u64 + lost);
    }
    written
}

/// Writes `count` and `lost` to the `struct uffdio_wp_log_read` at `uarg`.
fn write_results(uarg: usize, count: u64, lost: u64) -> Result {
    let out: [u64; 2] = [count, lost];
    let at = UserPtr::from_addr(uarg).wrapping_byte_add(READ_IN * size_of::<u64>());
    UserSlice::new(at, size_of_val(&out))
        .writer()
        .write_slice(AsBytes::as_bytes(&out))
}

/// Logs the page at `address`, of `size` bytes (a power of two), whose write fault in `vma` was
/// just resolved by dropping its uffd bit; returns whether to wake up the context's readers.
///
/// # Safety
///
/// `vma` must be a valid VMA whose mmap or vma lock is held, with the page table lock of the
/// entry held, as where `do_wp_page()` and `hugetlb_fault()` resolve the fault.
#[export]
pub unsafe extern "C" fn rust_uffd_wp_log_written(
    vma: *mut bindings::vm_area_struct,
    address: c_ulong,
    size: c_ulong,
) -> bool {
    // SAFETY: The caller guarantees that the VMA is valid with its lock held during the call.
    log_written(unsafe { VmaRef::from_raw(vma) }, address, size)
}

/// `UFFDIO_WP_LOG_SETUP` on `ctx` with the argument `arg`: 0 or a negative errno.
///
/// # Safety
///
/// `ctx` must be a valid context, for the duration of the call.
#[export]
pub unsafe extern "C" fn rust_uffd_wp_log_setup(
    ctx: *mut bindings::userfaultfd_ctx,
    arg: c_ulong,
) -> c_int {
    // SAFETY: The caller guarantees that the context is valid during the call.
    let ctx = unsafe { UffdCtx::from_raw(ctx) };
    from_result(|| setup(ctx, arg).map(|()| 0))
}

/// `UFFDIO_WP_LOG_READ` on `ctx` with the argument `arg`: 0 or a negative errno.
///
/// # Safety
///
/// `ctx` must be a valid context, for the duration of the call.
#[export]
pub unsafe extern "C" fn rust_uffd_wp_log_read(
    ctx: *mut bindings::userfaultfd_ctx,
    arg: c_ulong,
) -> c_int {
    // SAFETY: The caller guarantees that the context is valid during the call.
    let ctx = unsafe { UffdCtx::from_raw(ctx) };
    from_result(|| read(ctx, arg).map(|()| 0))
}

/// Returns whether the log `ctx` has is worth reading, for `poll()`.
///
/// # Safety
///
/// `ctx` must be a valid context, for the duration of the call.
#[export]
pub unsafe extern "C" fn rust_uffd_wp_log_ready(ctx: *mut bindings::userfaultfd_ctx) -> bool {
    // SAFETY: The caller guarantees that the context is valid during the call.
    let ctx = unsafe { UffdCtx::from_raw(ctx) };
    ctx.wp_log().is_some_and(|log| log.is_ready())
}

// The layouts of the uapi structs, which are read and written as arrays of `u64`.
kernel::static_assert!(size_of::<WrittenPage>() == size_of::<bindings::uffd_wp_log_entry>());
kernel::static_assert!(
    core::mem::offset_of!(WrittenPage, len)
        == core::mem::offset_of!(bindings::uffd_wp_log_entry, len)
);
kernel::static_assert!(size_of::<RawSetup>() == size_of::<bindings::uffdio_wp_log_setup>());
kernel::static_assert!(size_of::<RawRead>() == size_of::<bindings::uffdio_wp_log_read>());
kernel::static_assert!(
    READ_IN * size_of::<u64>() == core::mem::offset_of!(bindings::uffdio_wp_log_read, count)
);

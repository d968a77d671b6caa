// SPDX-License-Identifier: GPL-2.0

//! The `PAGEMAP_SCAN` ioctl of `/proc/PID/pagemap`.
//!
//! A scan walks the page tables of `start..end` of the process, puts each page into the
//! `PAGE_IS_*` categories, and reports the pages whose categories match the masks as a vector of
//! `struct page_region` (runs of pages with the same reported categories). With
//! `PM_SCAN_WP_MATCHING` it also write-protects what it reports, in the same locked section, so
//! that nothing written between the report and the protection is lost. The behaviour is that of
//! the C implementation in `task_mmu.c`; see `Documentation/admin-guide/mm/pagemap.rst`.
//!
//! The work is bounded per call: at most `vec_len` regions and `max_pages` pages are reported,
//! and the regions go through a bounce buffer of at most one PMD's worth of entries that is
//! copied to user space after each locked walk. A scan that stops early returns where it stopped
//! in `walk_end`, so that the caller can resume from there.

use core::mem::{offset_of, size_of};
use kernel::{
    bindings,
    error::from_result,
    mm::{
        pagewalk::{
            HugePmd, HugetlbEntry, PageWalker, PmdEntry, PmdLock, PteTable, VmaAction, Walk,
        },
        pgtable::{Pmd, Pte, PteKind},
        virt::{flags, VmaRef},
        Mm,
    },
    page::PAGE_SIZE,
    prelude::*,
    task::cond_resched,
    transmute::AsBytes,
    uaccess::{access_ok, untagged_addr, UserPtr, UserSlice},
};

const WPALLOWED: u64 = bindings::PAGE_IS_WPALLOWED as u64;
const WRITTEN: u64 = bindings::PAGE_IS_WRITTEN as u64;
const FILE: u64 = bindings::PAGE_IS_FILE as u64;
const PRESENT: u64 = bindings::PAGE_IS_PRESENT as u64;
const SWAPPED: u64 = bindings::PAGE_IS_SWAPPED as u64;
const PFNZERO: u64 = bindings::PAGE_IS_PFNZERO as u64;
const HUGE: u64 = bindings::PAGE_IS_HUGE as u64;
const SOFT_DIRTY: u64 = bindings::PAGE_IS_SOFT_DIRTY as u64;
const GUARD: u64 = bindings::PAGE_IS_GUARD as u64;
const ACCESSED: u64 = bindings::PAGE_IS_ACCESSED as u64;

/// Every category a scan knows.
const CATEGORIES: u64 =
    WPALLOWED | WRITTEN | FILE | PRESENT | SWAPPED | PFNZERO | HUGE | SOFT_DIRTY | GUARD | ACCESSED;

const WP_MATCHING: u64 = bindings::PM_SCAN_WP_MATCHING as u64;
const CHECK_WPASYNC: u64 = bindings::PM_SCAN_CHECK_WPASYNC as u64;

/// Every flag a scan knows.
const FLAGS: u64 = WP_MATCHING | CHECK_WPASYNC;

/// The size of the address range one PMD entry maps.
const PMD_SIZE: usize = bindings::PMD_SIZE;

/// The most regions the bounce buffer holds: one for each page a PMD maps.
const BOUNCE_REGIONS: usize = PMD_SIZE / PAGE_SIZE;

/// `struct pm_scan_arg` as read from user space: all its fields are `__u64`.
type RawArgs = [u64; size_of::<bindings::pm_scan_arg>() / size_of::<u64>()];

/// `struct page_region` as written to user space: `start`, `end` and `categories`.
type RawRegion = [u64; 3];

const _: () = assert!(size_of::<RawArgs>() == size_of::<bindings::pm_scan_arg>());
const _: () = assert!(size_of::<RawRegion>() == size_of::<bindings::page_region>());

/// Reads the field `$field` of a [`RawArgs`].
macro_rules! arg {
    ($raw:expr, $field:ident) => {
        $raw[offset_of!(bindings::pm_scan_arg, $field) / size_of::<u64>()]
    };
}

/// The validated arguments of a scan.
struct Args {
    flags: u64,
    start: usize,
    end: usize,
    vec: usize,
    vec_len: usize,
    max_pages: usize,
    inverted: u64,
    mask: u64,
    anyof: u64,
    ret: u64,
}

impl Args {
    /// Reads and checks the arguments at `uarg`, with the errors of the C implementation.
    fn read(uarg: usize) -> Result<Self> {
        let raw: RawArgs = UserSlice::new(UserPtr::from_addr(uarg), size_of::<RawArgs>())
            .reader()
            .read()?;

        if arg!(raw, size) != size_of::<RawArgs>() as u64 {
            return Err(EINVAL);
        }
        let flags = arg!(raw, flags);
        if flags & !FLAGS != 0 {
            return Err(EINVAL);
        }
        let (inverted, mask, anyof, ret) = (
            arg!(raw, category_inverted),
            arg!(raw, category_mask),
            arg!(raw, category_anyof_mask),
            arg!(raw, return_mask),
        );
        if (inverted | mask | anyof | ret) & !CATEGORIES != 0 {
            return Err(EINVAL);
        }

        // Addresses that do not fit a `usize` are not user addresses: `access_ok()` fails.
        let addr = |value: u64| {
            usize::try_from(value)
                .map(untagged_addr)
                .map_err(|_| EFAULT)
        };
        let start = addr(arg!(raw, start))?;
        let end = addr(arg!(raw, end))?;
        let vec = addr(arg!(raw, vec))?;

        if start % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        if !access_ok(start, end.wrapping_sub(start)) {
            return Err(EFAULT);
        }
        let vec_len = arg!(raw, vec_len);
        if vec == 0 && vec_len != 0 {
            return Err(EINVAL);
        }
        let vec_len = usize::try_from(vec_len).map_err(|_| EINVAL)?;
        let vec_size = vec_len.saturating_mul(size_of::<RawRegion>());
        if vec != 0 && !access_ok(vec, vec_size) {
            return Err(EFAULT);
        }

        Ok(Self {
            flags,
            start,
            // `access_ok()` passed, so `end` is a user address and rounding it up cannot wrap.
            end: end.next_multiple_of(PAGE_SIZE),
            vec,
            vec_len,
            max_pages: match usize::try_from(arg!(raw, max_pages)) {
                Ok(0) | Err(_) => usize::MAX,
                Ok(n) => n,
            },
            inverted,
            mask,
            anyof,
            ret,
        })
    }
}

/// A run of pages with the same reported categories.
#[derive(Clone, Copy)]
struct Region {
    start: usize,
    end: usize,
    categories: u64,
}

impl Region {
    fn to_raw(self) -> RawRegion {
        [self.start as u64, self.end as u64, self.categories]
    }
}

/// The regions found and not yet copied to the user's vector.
struct Output {
    /// The bounce buffer, allocated once: the regions that can no longer grow. Its capacity is
    /// at least `cap`; it is never filled in advance, like the C `kmalloc_array()` buffer.
    buf: KVec<RawRegion>,
    /// The region that the next page extends if it follows it with the same categories.
    cur: Option<Region>,
    /// How many regions fit, counting `cur`, before the buffer has to be copied out.
    cap: usize,
    /// Where the next copy goes in the user's vector.
    user: usize,
    /// How many more regions the user's vector has room for.
    room: usize,
}

impl Output {
    fn new(vec: usize, vec_len: usize) -> Result<Self> {
        let cap = vec_len.min(BOUNCE_REGIONS);
        Ok(Self {
            buf: KVec::with_capacity(cap, GFP_KERNEL)?,
            cur: None,
            cap,
            user: vec,
            room: vec_len,
        })
    }

    /// Adds `start..end` with `categories`; returns `false` if it needs a new region and the
    /// buffer is full.
    fn push(&mut self, categories: u64, start: usize, end: usize) -> bool {
        let next = Region {
            start,
            end,
            categories,
        };
        match &mut self.cur {
            Some(cur) if cur.end == start && cur.categories == categories => cur.end = end,
            Some(cur) => {
                // `cur` moves to `buf` and `next` takes its place: both have to fit.
                if self.buf.len() + 1 >= self.cap
                    || self.buf.push_within_capacity(cur.to_raw()).is_err()
                {
                    return false;
                }
                self.cur = Some(next);
            }
            None => self.cur = Some(next),
        }
        true
    }

    /// Takes `addr..` back out of the last region, which it ends.
    fn back_out(&mut self, addr: usize) {
        if let Some(cur) = &mut self.cur {
            if cur.start == addr {
                self.cur = None;
            } else {
                cur.end = addr;
            }
        }
    }

    /// Copies the regions to the user's vector; returns how many.
    fn flush(&mut self) -> Result<usize> {
        if let Some(cur) = self.cur.take() {
            // `cur` counts towards `cap`, so it fits.
            self.buf
                .push_within_capacity(cur.to_raw())
                .map_err(|_| ENOMEM)?;
        }
        let n = self.buf.len();
        if n == 0 {
            return Ok(0);
        }
        let bytes = AsBytes::as_bytes(self.buf.as_slice());
        let len = bytes.len();
        let copied = UserSlice::new(UserPtr::from_addr(self.user), len)
            .writer()
            .write_slice(bytes);
        self.buf.clear();
        copied?;
        self.user += len;
        self.room -= n;
        self.cap = self.cap.min(self.room);
        Ok(n)
    }
}

/// What is known about the VMA being walked, set by [`PageWalker::test_vma`].
#[derive(Clone, Copy, Default)]
struct VmaState {
    /// The categories every page of the VMA has (`WPALLOWED`, `SOFT_DIRTY`).
    categories: u64,
    /// The category of a present or swapped page without a uffd bit: `ACCESSED` in a uffd-rwp
    /// VMA, `WRITTEN` in any other.
    unprotected: u64,
    uffd_wp: bool,
    hugetlb: bool,
    /// The `FILE` category is wanted and can be set: not in a private anonymous VMA, whose
    /// pages are all anonymous, so that the page behind each entry is not looked up for
    /// nothing.
    file: bool,
    /// Every page of the VMA that userfaultfd does not write-protect matches, with the
    /// categories `categories | WRITTEN`: no other category can change the outcome.
    written_only: bool,
}

/// A scan in progress.
struct Scan {
    args: Args,
    /// The categories the masks look at: only these need to be computed.
    interest: u64,
    vma: VmaState,
    /// `None` if nothing is reported (`vec_len == 0`): the scan then only write-protects.
    out: Option<Output>,
    /// Pages reported so far.
    found: usize,
    /// Where the last walk stopped, if it stopped early.
    stopped_at: Option<usize>,
}

/// What [`Scan::report`] did.
struct Reported {
    /// The end of what was reported; `start` if nothing was.
    end: usize,
    /// The limit of pages or regions was reached: stop the walk.
    full: bool,
}

impl Reported {
    fn walk(&self) -> Walk {
        if self.full {
            Walk::Stop
        } else {
            Walk::Continue
        }
    }
}

impl Scan {
    fn new(args: Args) -> Result<Self> {
        let out = if args.vec_len == 0 {
            None
        } else {
            Some(Output::new(args.vec, args.vec_len)?)
        };
        Ok(Self {
            interest: args.mask | args.anyof | args.ret,
            vma: VmaState::default(),
            out,
            found: 0,
            stopped_at: None,
            args,
        })
    }

    fn write_protects(&self) -> bool {
        self.args.flags & WP_MATCHING != 0
    }

    /// Returns whether a page with `categories` is reported.
    fn matches(&self, categories: u64) -> bool {
        matches(
            categories,
            self.args.mask,
            self.args.inverted,
            self.args.anyof,
        )
    }

    /// Reports `start..end` with `categories`, as much of it as the limits allow.
    #[inline(always)]
    fn report(&mut self, categories: u64, start: usize, end: usize) -> Reported {
        let Some(out) = &mut self.out else {
            return Reported { end, full: false };
        };
        let mut end = end;
        let mut pages = (end - start) / PAGE_SIZE;
        let mut full = false;
        let room = self.args.max_pages - self.found;
        if pages > room {
            pages = room;
            end = start + pages * PAGE_SIZE;
            full = true;
        }
        if pages > 0 && !out.push(categories & self.args.ret, start, end) {
            end = start;
            pages = 0;
            full = true;
        }
        self.found += pages;
        if full {
            self.stopped_at = Some(end);
        }
        Reported { end, full }
    }

    /// Takes back the report of `start..end`, the last pages reported.
    fn back_out(&mut self, start: usize, end: usize) {
        if let Some(out) = &mut self.out {
            out.back_out(start);
            self.found -= (end - start) / PAGE_SIZE;
        }
    }

    /// What the loop over a table of PTEs needs to classify entries, copied out of the scan.
    fn pte_filter(&self) -> PteFilter {
        PteFilter {
            vma: self.vma,
            want: self.interest | WRITTEN,
            mask: self.args.mask,
            inverted: self.args.inverted,
            anyof: self.args.anyof,
        }
    }

    /// The categories of a transparent huge page or PMD migration entry, `pmd`;
    /// `maps_file_page` is called to look up its page if `FILE` is wanted and can be set.
    #[inline]
    fn huge_pmd_categories(&self, pmd: Pmd, maps_file_page: impl FnOnce() -> bool) -> u64 {
        let mut categories = self.vma.categories | HUGE;
        if pmd.is_none() {
            return categories;
        }
        categories |= if pmd.is_present() { PRESENT } else { SWAPPED };
        if !pmd.is_uffd() {
            categories |= self.vma.unprotected;
        }
        if self.vma.file && maps_file_page() {
            categories |= FILE;
        }
        if pmd.is_present() && pmd.is_huge_zero() {
            categories |= PFNZERO;
        }
        if pmd.is_soft_dirty() {
            categories |= SOFT_DIRTY;
        }
        categories
    }

    /// Scans a table of PTEs; write-protects what it reports if asked to.
    ///
    /// Runs of adjacent entries with the same categories are reported at once, as one range:
    /// that is what the region they end up in would be anyway, and the limits cut a range at the
    /// same page as they would cut the entries one by one.
    fn scan_ptes(&mut self, ptes: &mut PteTable<'_>) -> Result<Walk> {
        // The entries whose TLB entries need flushing: present ones that got protected.
        let mut flush = None;
        let mut walk = Walk::Continue;

        if self.write_protects() && self.out.is_none() {
            // Without an output vector every entry that is not protected yet gets protected.
            protect_ptes(ptes, 0, ptes.len(), &mut flush)?;
        } else if self.vma.written_only {
            walk = self.scan_written(ptes, &mut flush)?;
        } else {
            let filter = self.pte_filter();
            // The first entry and the categories of the run being built.
            let mut run: Option<(usize, u64)> = None;
            for i in 0..ptes.len() {
                let Some(pte) = ptes.get(i) else { break };
                let categories = filter.check(ptes, i, pte);
                if let Some((first, run_categories)) = run {
                    if categories == Some(run_categories) {
                        continue;
                    }
                    walk = self.report_ptes(ptes, first, i, run_categories, &mut flush)?;
                    if walk == Walk::Stop {
                        break;
                    }
                }
                run = categories.map(|categories| (i, categories));
            }
            if let (Walk::Continue, Some((first, categories))) = (walk, run) {
                walk = self.report_ptes(ptes, first, ptes.len(), categories, &mut flush)?;
            }
        }

        if let Some((from, to)) = flush {
            ptes.flush_tlb(from, to)?;
        }
        Ok(walk)
    }

    /// Scans a table of PTEs when only `WRITTEN` counts: reports each entry that userfaultfd does
    /// not protect, and write-protects it if asked to.
    ///
    /// Written pages are few and far between in a dirty-tracking scan, so entries are taken one
    /// at a time; the output merges adjacent ones into a region.
    fn scan_written(
        &mut self,
        ptes: &mut PteTable<'_>,
        flush: &mut Option<(usize, usize)>,
    ) -> Result<Walk> {
        for i in 0..ptes.len() {
            if ptes.get(i).is_none_or(Pte::is_uffd) {
                continue;
            }
            let addr = ptes.addr(i);
            if self.report(WRITTEN, addr, addr + PAGE_SIZE).full {
                return Ok(Walk::Stop);
            }
            if self.write_protects() {
                protect_pte(ptes, i, flush)?;
            }
        }
        Ok(Walk::Continue)
    }

    /// Reports entries `first..end` of a PTE table, which have `categories`, and write-protects
    /// the ones reported if asked to.
    #[inline(always)]
    fn report_ptes(
        &mut self,
        ptes: &mut PteTable<'_>,
        first: usize,
        end: usize,
        categories: u64,
        flush: &mut Option<(usize, usize)>,
    ) -> Result<Walk> {
        let start = ptes.addr(first);
        let reported = self.report(categories, start, ptes.addr(end));
        if self.write_protects() && categories & WRITTEN != 0 {
            let reported_end = first + (reported.end - start) / PAGE_SIZE;
            for i in first..reported_end {
                protect_pte(ptes, i, flush)?;
            }
        }
        Ok(reported.walk())
    }

    /// Scans a huge PMD entry. Returns `None` if it was split and has to be looked at again.
    fn scan_huge_pmd(&mut self, mut huge: HugePmd<'_>) -> Result<Option<Walk>> {
        let categories = self.huge_pmd_categories(huge.pmd(), || huge.maps_file_page());
        if !self.matches(categories) {
            return Ok(Some(Walk::Continue));
        }
        let start = huge.start();
        let reported = self.report(categories, start, huge.end());
        if reported.end == start || !self.write_protects() || categories & WRITTEN == 0 {
            return Ok(Some(reported.walk()));
        }
        if reported.end != start + PMD_SIZE {
            // Only part of the huge page is reported: protect just that part of it, as small
            // pages. Report them again from the page table.
            huge.split();
            self.back_out(start, reported.end);
            return Ok(None);
        }
        huge.make_uffd_wp()?;
        huge.flush_tlb();
        Ok(Some(reported.walk()))
    }
}

/// Returns whether a page with `categories` is reported, given the masks of a scan.
#[inline]
fn matches(categories: u64, mask: u64, inverted: u64, anyof: u64) -> bool {
    let categories = categories ^ inverted;
    categories & mask == mask && (anyof == 0 || categories & anyof != 0)
}

/// The categories of PTEs, and whether they are reported: what the loop over a table of PTEs
/// needs of a scan, in a copy that the reports in the loop do not change.
#[derive(Clone, Copy)]
struct PteFilter {
    vma: VmaState,
    /// The categories that can make a difference: those the masks look at, and `WRITTEN`,
    /// which decides what gets write-protected. Others are not computed.
    want: u64,
    mask: u64,
    inverted: u64,
    anyof: u64,
}

impl PteFilter {
    /// The categories of entry `i` of a PTE table, as far as they are wanted.
    #[inline]
    fn categories(&self, ptes: &PteTable<'_>, i: usize, pte: Pte) -> u64 {
        let (vma, want) = (&self.vma, self.want);
        let mut categories = vma.categories;
        match pte.kind() {
            PteKind::None => {
                // Unpopulated: written, unless uffd-wp put a marker there; never accessed.
                if vma.uffd_wp {
                    categories |= WRITTEN;
                }
            }
            PteKind::Present => {
                categories |= PRESENT;
                if !pte.is_uffd() {
                    categories |= vma.unprotected;
                }
                if vma.file && ptes.maps_file_page(i) {
                    categories |= FILE;
                }
                if want & PFNZERO != 0 && pte.is_zero_pfn() {
                    categories |= PFNZERO;
                }
                if want & SOFT_DIRTY != 0 && pte.is_soft_dirty() {
                    categories |= SOFT_DIRTY;
                }
            }
            PteKind::Leaf(leaf) => {
                categories |= SWAPPED;
                if !pte.is_uffd() {
                    categories |= vma.unprotected;
                }
                if leaf.is_guard_marker() {
                    categories |= GUARD;
                } else if vma.file && ptes.maps_file_page(i) {
                    categories |= FILE;
                }
                if want & SOFT_DIRTY != 0 && pte.is_soft_dirty() {
                    categories |= SOFT_DIRTY;
                }
            }
        }
        categories & want
    }

    /// The categories of entry `i` of a PTE table if it is reported, `None` if it is not.
    #[inline]
    fn check(&self, ptes: &PteTable<'_>, i: usize, pte: Pte) -> Option<u64> {
        let categories = self.categories(ptes, i, pte);
        matches(categories, self.mask, self.inverted, self.anyof).then_some(categories)
    }
}

/// Write-protects entry `i` of a PTE table for userfaultfd, whatever its kind; records a present
/// one in `flush`, the range of entries whose TLB entries need flushing.
#[inline]
fn protect_pte(ptes: &mut PteTable<'_>, i: usize, flush: &mut Option<(usize, usize)>) -> Result {
    if ptes.protect_uffd_any(i)? {
        *flush = Some((flush.map_or(i, |(from, _)| from), i + 1));
    }
    Ok(())
}

/// Write-protects for userfaultfd the entries of `from..to` of a PTE table that are not
/// protected yet, whatever their kind; adds the present ones to `flush`, the range of entries
/// whose TLB entries need flushing.
#[inline]
fn protect_ptes(
    ptes: &mut PteTable<'_>,
    from: usize,
    to: usize,
    flush: &mut Option<(usize, usize)>,
) -> Result {
    if let Some((first, end)) = ptes.protect_uffd_unprotected(from, to)? {
        *flush = Some((flush.map_or(first, |(first, _)| first), end));
    }
    Ok(())
}

/// The categories of a hugetlb entry.
#[inline]
fn hugetlb_categories(vma: &VmaState, pte: &Pte, file: bool) -> u64 {
    let mut categories = vma.categories | HUGE;
    if pte.is_none() {
        return categories;
    }
    if !pte.is_uffd() {
        categories |= vma.unprotected;
    }
    if pte.is_present() {
        categories |= PRESENT;
        if file {
            categories |= FILE;
        }
        if pte.is_zero_pfn() {
            categories |= PFNZERO;
        }
    } else {
        // A hugetlbfs page in the page cache is never swapped out: no `FILE` here.
        categories |= SWAPPED;
    }
    if pte.is_soft_dirty() {
        categories |= SOFT_DIRTY;
    }
    categories
}

#[vtable]
impl PageWalker for Scan {
    type OwnerModule = kernel::module::BuiltIn;

    #[inline]
    fn test_vma(&mut self, vma: &VmaRef, _start: usize, _end: usize) -> Result<VmaAction> {
        let wp_allowed = vma.userfaultfd_wp_async() && vma.userfaultfd_wp_use_markers();
        if !wp_allowed {
            if self.args.flags & CHECK_WPASYNC != 0 {
                return Err(EPERM);
            }
            if self.write_protects() {
                // Write protection was asked for; skip what cannot have it.
                return Ok(VmaAction::Skip);
            }
        }
        if vma.flags() & flags::PFNMAP != 0 {
            return Ok(VmaAction::Skip);
        }

        let mut categories = 0;
        if wp_allowed {
            categories |= WPALLOWED;
        }
        if vma.is_soft_dirty() {
            categories |= SOFT_DIRTY;
        }
        let required = self.args.mask & WPALLOWED;
        if (categories ^ self.args.inverted) & required != required {
            return Ok(VmaAction::Skip);
        }

        let uffd_wp = vma.userfaultfd_wp();
        let unprotected = if vma.userfaultfd_rwp() {
            ACCESSED
        } else {
            WRITTEN
        };
        let hugetlb = vma.is_hugetlb();
        let anonymous = vma.is_anonymous();

        // Skip a VMA in which no page can have a category the masks require. Walking it would
        // report nothing and protect nothing, except without an output vector, where every
        // entry is protected whatever the masks.
        let mut possible = categories | PRESENT | SWAPPED | PFNZERO | HUGE | SOFT_DIRTY | GUARD;
        possible |= unprotected;
        if !anonymous {
            possible |= FILE;
        }
        let required = self.args.mask & !self.args.inverted;
        if required & !possible != 0 && !(self.write_protects() && self.out.is_none()) {
            return Ok(VmaAction::Skip);
        }

        self.vma = VmaState {
            categories,
            unprotected,
            uffd_wp,
            hugetlb,
            file: self.interest & FILE != 0 && !anonymous,
            written_only: uffd_wp
                && self.args.mask == WRITTEN
                && self.args.ret == WRITTEN
                && self.args.anyof == 0
                && self.args.inverted == 0,
        };
        Ok(VmaAction::Walk)
    }

    #[inline]
    fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> Result<Walk> {
        if !self.write_protects() && !self.vma.file {
            // Reporting a huge entry needs nothing but its value, which the lock would not make
            // any truer: the entry may change as soon as the lock is dropped, as it may after
            // this read. Only looking up its page (`FILE`, not wanted here) or protecting it
            // needs the lock.
            if let Some(pmd) = entry.huge_lockless() {
                let categories = self.huge_pmd_categories(pmd, || false);
                if !self.matches(categories) {
                    return Ok(Walk::Continue);
                }
                return Ok(self.report(categories, entry.start(), entry.end()).walk());
            }
        }
        loop {
            match entry.lock() {
                PmdLock::Huge(huge) => {
                    if let Some(walk) = self.scan_huge_pmd(huge)? {
                        return Ok(walk);
                    }
                }
                PmdLock::Table(mut ptes) => {
                    let walk = self.scan_ptes(&mut ptes);
                    drop(ptes);
                    cond_resched();
                    return walk;
                }
                PmdLock::Retry => return Ok(Walk::Continue),
            }
        }
    }

    #[inline]
    fn pte_hole(&mut self, vma: Option<&VmaRef>, start: usize, end: usize) -> Result<Walk> {
        let Some(vma) = vma else {
            return Ok(Walk::Continue);
        };
        // An unpopulated range of a uffd-wp VMA counts as written: registering with
        // WP_UNPOPULATED puts markers in every entry, so a missing one was zapped. Hugetlb
        // entries are always there, see `hugetlb_categories`.
        let mut categories = self.vma.categories;
        if self.vma.uffd_wp && !self.vma.hugetlb {
            categories |= WRITTEN;
        }
        if !self.matches(categories) {
            return Ok(Walk::Continue);
        }
        let reported = self.report(categories, start, end);
        if reported.end == start || !self.write_protects() {
            return Ok(reported.walk());
        }
        if self.vma.hugetlb {
            vma.uffd_wp_hugetlb_holes(start, reported.end)?;
        } else {
            vma.uffd_wp_range(start, reported.end)?;
        }
        Ok(reported.walk())
    }

    #[inline]
    fn hugetlb_entry(&mut self, entry: &mut HugetlbEntry<'_>) -> Result<Walk> {
        let (start, end, size) = (entry.start(), entry.end(), entry.size());
        let file = self.interest & FILE != 0;
        if !self.write_protects() {
            let pte = entry.pte();
            let categories = hugetlb_categories(&self.vma, &pte, file && pte.maps_file_page());
            if !self.matches(categories) {
                return Ok(Walk::Continue);
            }
            return Ok(self.report(categories, start, end).walk());
        }

        let mut locked = entry.lock();
        let pte = locked.pte();
        let categories = hugetlb_categories(&self.vma, &pte, file && pte.maps_file_page());
        if !self.matches(categories) {
            return Ok(Walk::Continue);
        }
        let reported = self.report(categories, start, end);
        if reported.end == start || categories & WRITTEN == 0 {
            return Ok(reported.walk());
        }
        if reported.end != start + size {
            // Part of a hugetlb page cannot be protected. If the limit of pages cut it after other
            // pages, the scan ends before it, and the next one, resuming there, protects it
            // whole. If the range cuts it, or the limit is smaller than the page, no scan can:
            // the part reported stays unprotected, written, and is reported again by every scan
            // that covers it.
            let pages = (reported.end - start) / PAGE_SIZE;
            if reported.full && self.found > pages {
                self.back_out(start, reported.end);
                self.stopped_at = Some(start);
                self.args.max_pages = self.found;
            }
            return Ok(reported.walk());
        }
        locked.make_uffd_wp()?;
        locked.flush_tlb();
        Ok(reported.walk())
    }
}

/// Runs a scan of `mm` with the arguments at `uarg`; returns the number of regions reported.
fn pagemap_scan(mm: &Mm, uarg: usize) -> Result<usize> {
    let mm = mm.mmget_not_zero().ok_or(ESRCH)?;
    let args = Args::read(uarg)?;
    let (start, end) = (args.start, args.end);
    let mut scan = Scan::new(args)?;

    let mut regions = 0;
    let mut result = Ok(());
    let mut walk_start = start;
    while walk_start < end {
        if kernel::current!().fatal_signal_pending() {
            result = Err(EINTR);
            break;
        }
        let walked = match mm.mmap_read_lock_killable() {
            Ok(lock) => {
                // A walk that goes on to the end leaves this `None`, whatever an earlier one did.
                scan.stopped_at = None;
                if scan.write_protects() {
                    lock.notify_protection_change(walk_start, end, |lock| {
                        lock.walk_page_range(walk_start, end, &mut scan)
                    })
                } else {
                    lock.walk_page_range(walk_start, end, &mut scan)
                }
            }
            Err(e) => Err(e),
        };
        let flushed = scan.out.as_mut().map_or(Ok(0), Output::flush);
        let stopped = match (walked, flushed) {
            (_, Err(e)) | (Err(e), _) => {
                result = Err(e);
                break;
            }
            (Ok(walk), Ok(n)) => {
                regions += n;
                walk == Walk::Stop
            }
        };
        let room = scan.out.as_ref().map_or(0, |out| out.room);
        if !stopped || room == 0 || scan.found == scan.args.max_pages {
            break;
        }
        walk_start = scan.stopped_at.unwrap_or(end);
    }

    let walk_end = scan.stopped_at.unwrap_or(end);
    let walk_end_at = uarg.wrapping_add(offset_of!(bindings::pm_scan_arg, walk_end));
    UserSlice::new(UserPtr::from_addr(walk_end_at), size_of::<u64>())
        .writer()
        .write(&(walk_end as u64))?;
    result.map(|()| regions)
}

/// The `PAGEMAP_SCAN` ioctl of `/proc/PID/pagemap`, called by `do_pagemap_cmd()`.
///
/// # Safety
///
/// `mm` points at the `mm_struct` of the pagemap file, on which the caller holds a reference
/// (`mmgrab()`) for the duration of the call.
#[export]
pub unsafe extern "C" fn rust_pagemap_scan(
    mm: *mut bindings::mm_struct,
    uarg: kernel::ffi::c_ulong,
) -> kernel::ffi::c_long {
    // SAFETY: The caller holds a reference on `mm` for the duration of the call.
    let mm = unsafe { Mm::from_raw(mm) };
    from_result(|| {
        // The regions were copied to user memory, 24 bytes each: their count fits a `long`.
        kernel::ffi::c_long::try_from(pagemap_scan(mm, uarg)?).map_err(|_| EOVERFLOW)
    })
}

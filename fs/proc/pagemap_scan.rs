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
//!
//! The mmap read lock is held for one walk at a time, not for the whole scan: when a task waits
//! for the lock (an `mmap()` or `munmap()` of the process, and every reader queued behind it), the
//! walk ends at the next page-table boundary, after the guards of what it holds have flushed what
//! they protected, and the scan gives the lock up and resumes there. The region being built stays
//! open across the gap, so a scan of a layout that does not change meanwhile reports exactly what
//! one uninterrupted walk would; one of a layout that changes reports what the sequence of
//! shorter scans around the change would.

use core::{
    mem::{offset_of, size_of},
    ops::ControlFlow::{self, Break, Continue},
};
use kernel::{
    bindings,
    error::from_result,
    impl_flags,
    mm::{
        pagewalk::{
            uffd::UffdWp, Hole, HugePmd, HugetlbEntry, HugetlbPte, PageWalker, PmdEntry, PmdLock,
            PteTable, VmaAction, WalkResult,
        },
        pgtable::{Pmd, Pte},
        virt::{flags, VmaRef},
        Mm, MmWithUser,
    },
    page::PAGE_SIZE,
    prelude::*,
    task::cond_resched,
    time::Delta,
    transmute::AsBytes,
    uaccess::{UserPtr, UserSlice},
};

impl_flags!(
    /// A set of page categories (`PAGE_IS_*` of `include/uapi/linux/fs.h`).
    #[derive(Clone, Copy, Default, PartialEq, Eq)]
    struct Categories(u64);

    /// A page category.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Category {
        /// Userfaultfd can write-protect the page asynchronously (`PAGE_IS_WPALLOWED`).
        WpAllowed = bindings::PAGE_IS_WPALLOWED as u64,
        /// Written since userfaultfd last write-protected it (`PAGE_IS_WRITTEN`).
        Written = bindings::PAGE_IS_WRITTEN as u64,
        /// A page-cache or shmem page (`PAGE_IS_FILE`).
        File = bindings::PAGE_IS_FILE as u64,
        /// Mapped (`PAGE_IS_PRESENT`).
        Present = bindings::PAGE_IS_PRESENT as u64,
        /// Swapped out, or any other non-present entry (`PAGE_IS_SWAPPED`).
        Swapped = bindings::PAGE_IS_SWAPPED as u64,
        /// The zero page (`PAGE_IS_PFNZERO`).
        PfnZero = bindings::PAGE_IS_PFNZERO as u64,
        /// Mapped by a huge entry (`PAGE_IS_HUGE`).
        Huge = bindings::PAGE_IS_HUGE as u64,
        /// Soft-dirty (`PAGE_IS_SOFT_DIRTY`).
        SoftDirty = bindings::PAGE_IS_SOFT_DIRTY as u64,
        /// A guard region (`PAGE_IS_GUARD`).
        Guard = bindings::PAGE_IS_GUARD as u64,
        /// Accessed since userfaultfd last read-write-protected it (`PAGE_IS_ACCESSED`).
        Accessed = bindings::PAGE_IS_ACCESSED as u64,
    }
);

impl Categories {
    /// Returns the categories of the bits of `raw`, or `None` if it has an unknown one.
    fn from_raw(raw: u64) -> Option<Self> {
        (raw & !Self::all_bits() == 0).then_some(Self(raw))
    }

    /// Returns the categories with those of `other` removed.
    fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Returns the categories as `PAGE_IS_*` bits.
    fn bits(self) -> u64 {
        self.0
    }
}

use Category::*;

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
    inverted: Categories,
    mask: Categories,
    anyof: Categories,
    ret: Categories,
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
        let categories = |raw: u64| Categories::from_raw(raw).ok_or(EINVAL);
        let (inverted, mask, anyof, ret) = (
            categories(arg!(raw, category_inverted))?,
            categories(arg!(raw, category_mask))?,
            categories(arg!(raw, category_anyof_mask))?,
            categories(arg!(raw, return_mask))?,
        );

        // Addresses that do not fit a `usize` are not user addresses: `access_ok()` fails.
        let user = |value: u64| {
            usize::try_from(value)
                .map(|addr| UserPtr::from_addr(addr).untagged())
                .map_err(|_| EFAULT)
        };
        let start = user(arg!(raw, start))?;
        let end = user(arg!(raw, end))?;
        let vec = user(arg!(raw, vec))?;

        if start.addr() % PAGE_SIZE != 0 {
            return Err(EINVAL);
        }
        if !start.access_ok(end.addr().wrapping_sub(start.addr())) {
            return Err(EFAULT);
        }
        let vec_len = arg!(raw, vec_len);
        if vec.addr() == 0 && vec_len != 0 {
            return Err(EINVAL);
        }
        let vec_len = usize::try_from(vec_len).map_err(|_| EINVAL)?;
        let vec_size = vec_len.saturating_mul(size_of::<RawRegion>());
        if vec.addr() != 0 && !vec.access_ok(vec_size) {
            return Err(EFAULT);
        }

        Ok(Self {
            flags,
            start: start.addr(),
            // `access_ok()` passed, so `end` is a user address and rounding it up cannot wrap.
            end: end.addr().next_multiple_of(PAGE_SIZE),
            vec: vec.addr(),
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

    /// Returns whether a page with `categories` is reported.
    #[inline]
    fn matches(&self, categories: Categories) -> bool {
        let categories = categories ^ self.inverted;
        categories.contains_all(self.mask)
            && (self.anyof == Categories::empty() || categories.contains_any(self.anyof))
    }

    /// Returns `categories` if a page with them is reported.
    #[inline(always)]
    fn matching(&self, categories: Categories) -> Option<Categories> {
        self.matches(categories).then_some(categories)
    }
}

/// A run of pages with the same reported categories.
#[derive(Clone, Copy)]
struct Region {
    start: usize,
    end: usize,
    categories: Categories,
}

impl Region {
    /// No region: empty, and it ends where no page starts, so no page extends it.
    const NONE: Self = Self {
        start: usize::MAX,
        end: usize::MAX,
        categories: Categories::empty(),
    };

    /// Returns whether this is no region: a region has at least one page.
    fn is_none(&self) -> bool {
        self.start == self.end
    }

    fn to_raw(self) -> RawRegion {
        [self.start as u64, self.end as u64, self.categories.bits()]
    }
}

/// The regions found and not yet copied to the user's vector.
struct Output {
    /// The bounce buffer, allocated once: the regions that can no longer grow. Its capacity is
    /// at least `cap`; it is never filled in advance, like the C `kmalloc_array()` buffer.
    buf: KVec<RawRegion>,
    /// The region that the next page extends if it follows it with the same categories, or an
    /// empty one ([`Region::is_none`]).
    cur: Region,
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
            cur: Region::NONE,
            cap,
            user: vec,
            room: vec_len,
        })
    }

    /// Adds `start..end` with `categories`; returns `false` if it needs a new region and the
    /// buffer is full.
    ///
    /// Inline in every caller: most pages extend the region before them or start the next one,
    /// a few instructions each.
    #[inline(always)]
    fn push(&mut self, categories: Categories, start: usize, end: usize) -> bool {
        Self::push_to(
            &mut self.cur,
            &mut self.buf,
            self.cap,
            categories,
            start,
            end,
        )
    }

    /// [`Output::push`] on the parts of an output: for a loop that keeps `cur` and `cap` in
    /// locals ([`Scan::protect_written`]).
    #[inline(always)]
    fn push_to(
        cur: &mut Region,
        buf: &mut KVec<RawRegion>,
        cap: usize,
        categories: Categories,
        start: usize,
        end: usize,
    ) -> bool {
        if cur.end == start && cur.categories == categories {
            cur.end = end;
            return true;
        }
        if !cur.is_none() {
            // `cur` moves to `buf` and the new region takes its place: both have to fit.
            // `buf.len() + 1 >= cap`, without an overflow check.
            if buf.len() >= cap.saturating_sub(1) || buf.push_within_capacity(cur.to_raw()).is_err()
            {
                return false;
            }
        } else if buf.len() >= cap {
            // No region open, and none fits: after a copy that left no room, or after
            // `close_open()` filled the buffer.
            return false;
        }
        *cur = Region {
            start,
            end,
            categories,
        };
        true
    }

    /// Takes `addr..` back out of the last region, which it ends.
    fn back_out(&mut self, addr: usize) {
        let cur = &mut self.cur;
        if cur.is_none() {
            return;
        }
        if cur.start == addr {
            *cur = Region::NONE;
        } else {
            cur.end = addr;
        }
    }

    /// Moves the open region, if any, to the buffer.
    fn close_open(&mut self) -> Result {
        let cur = core::mem::replace(&mut self.cur, Region::NONE);
        if !cur.is_none() {
            // `cur` counts towards `cap`, so it fits.
            self.buf
                .push_within_capacity(cur.to_raw())
                .map_err(|_| ENOMEM)?;
        }
        Ok(())
    }

    /// Copies the regions to the user's vector; returns how many. The region being built goes
    /// too, unless `keep_open` (the scan goes on where it left off, and may extend it).
    fn flush(&mut self, keep_open: bool) -> Result<usize> {
        if !keep_open {
            self.close_open()?;
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

/// What a page table entry is, as far as its categories go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Unpopulated (or, at the huge level, unmapped).
    None,
    /// Mapped.
    Present,
    /// A software leaf: swapped out, being migrated, a marker.
    Leaf,
}

impl State {
    /// Returns what `pte` is.
    #[inline(always)]
    fn of_pte(pte: Pte) -> Self {
        // Present first: most entries of most scans are.
        if pte.is_present() {
            Self::Present
        } else if pte.is_none() {
            Self::None
        } else {
            Self::Leaf
        }
    }
}

/// A page table entry, at any level, as [`VmaState::categories`] looks at it.
///
/// Each method is asked only when its answer can change the categories, so that what costs
/// something (looking up the page) is done only when the categories need it.
trait Entry {
    /// Whether the entry maps a huge page: a transparent huge page or a hugetlb page.
    const HUGE: bool;

    /// Returns what the entry is.
    fn state(&self) -> State;

    /// Returns whether userfaultfd protects the entry: the uffd bit of a present entry or a
    /// leaf, or a uffd-wp marker.
    fn is_uffd(&self) -> bool;

    /// Returns whether the entry is soft-dirty.
    fn is_soft_dirty(&self) -> bool;

    /// Returns whether a present entry maps the zero page.
    fn is_zero(&self) -> bool;

    /// Returns whether a leaf is a guard marker.
    fn is_guard(&self) -> bool {
        false
    }

    /// Returns whether the entry maps (or, as a leaf, refers to) a page that is not anonymous.
    fn maps_file_page(&self) -> bool;
}

/// An entry known only by what it is and by its uffd and soft-dirty bits.
///
/// That is all a part of a walked range without a page table or a none PTE is
/// ([`Bare::NONE`]), all a scan that wants nothing but `Written` asks about a populated entry
/// ([`Bare::UNPROTECTED`]), and all [`VmaState::categories`] asks about any PTE when the scan
/// wants neither `PfnZero`, `Guard` nor `File` ([`Bare::of`]).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Bare {
    state: State,
    uffd: bool,
    soft_dirty: bool,
}

impl Bare {
    const NONE: Self = Self {
        state: State::None,
        uffd: false,
        soft_dirty: false,
    };

    const UNPROTECTED: Self = Self {
        state: State::Present,
        uffd: false,
        soft_dirty: false,
    };

    /// Returns what `pte` is, with its soft-dirty bit if `soft_dirty`, else without it.
    #[inline(always)]
    fn of(pte: Pte, soft_dirty: bool) -> Self {
        match State::of_pte(pte) {
            State::None => Self::NONE,
            state => Self {
                state,
                uffd: pte.is_uffd(),
                soft_dirty: soft_dirty && pte.is_soft_dirty(),
            },
        }
    }
}

impl Entry for Bare {
    const HUGE: bool = false;

    #[inline(always)]
    fn state(&self) -> State {
        self.state
    }

    #[inline(always)]
    fn is_uffd(&self) -> bool {
        self.uffd
    }

    #[inline(always)]
    fn is_soft_dirty(&self) -> bool {
        self.soft_dirty
    }

    fn is_zero(&self) -> bool {
        false
    }

    fn maps_file_page(&self) -> bool {
        false
    }
}

/// Entry `index` of a locked PTE table, whose value is `pte`.
struct PteEntry<'t, 'a> {
    ptes: &'t PteTable<'a>,
    index: usize,
    pte: Pte,
}

impl<'t, 'a> PteEntry<'t, 'a> {
    #[inline(always)]
    fn new(ptes: &'t PteTable<'a>, index: usize, pte: Pte) -> Self {
        Self { ptes, index, pte }
    }
}

impl Entry for PteEntry<'_, '_> {
    const HUGE: bool = false;

    #[inline(always)]
    fn state(&self) -> State {
        State::of_pte(self.pte)
    }

    #[inline(always)]
    fn is_uffd(&self) -> bool {
        self.pte.is_uffd()
    }

    #[inline(always)]
    fn is_soft_dirty(&self) -> bool {
        self.pte.is_soft_dirty()
    }

    #[inline(always)]
    fn is_zero(&self) -> bool {
        self.pte.is_zero_pfn()
    }

    #[inline(always)]
    fn is_guard(&self) -> bool {
        self.pte
            .soft_leaf()
            .is_some_and(|leaf| leaf.is_guard_marker())
    }

    #[inline(always)]
    fn maps_file_page(&self) -> bool {
        self.ptes.maps_file_page(self.index)
    }
}

/// A huge PMD entry, `pmd`, locked in `huge` or read without its lock.
struct PmdHuge<'t, 'a> {
    pmd: Pmd,
    huge: Option<&'t HugePmd<'a>>,
}

impl Entry for PmdHuge<'_, '_> {
    const HUGE: bool = true;

    /// A huge entry, locked or not, is never none.
    #[inline]
    fn state(&self) -> State {
        if self.pmd.is_present() {
            State::Present
        } else {
            State::Leaf
        }
    }

    #[inline]
    fn is_uffd(&self) -> bool {
        self.pmd.is_uffd()
    }

    #[inline]
    fn is_soft_dirty(&self) -> bool {
        self.pmd.is_soft_dirty()
    }

    #[inline]
    fn is_zero(&self) -> bool {
        self.pmd.is_huge_zero()
    }

    /// Without the lock the page cannot be looked up; scans that want `FILE` lock the entry.
    #[inline]
    fn maps_file_page(&self) -> bool {
        self.huge.is_some_and(HugePmd::maps_file_page)
    }
}

impl Entry for HugetlbPte<'_> {
    const HUGE: bool = true;

    #[inline]
    fn state(&self) -> State {
        State::of_pte(**self)
    }

    #[inline]
    fn is_uffd(&self) -> bool {
        Pte::is_uffd(**self)
    }

    #[inline]
    fn is_soft_dirty(&self) -> bool {
        Pte::is_soft_dirty(**self)
    }

    #[inline]
    fn is_zero(&self) -> bool {
        self.is_zero_pfn()
    }

    /// A hugetlbfs page in the page cache is never swapped out: only a present entry maps one.
    #[inline]
    fn maps_file_page(&self) -> bool {
        HugetlbPte::maps_file_page(self)
    }
}

/// What is known about the VMA being walked, set by [`PageWalker::test_vma`], and the rules
/// that give an entry of it its categories.
#[derive(Clone, Copy, Default)]
struct VmaState {
    /// The categories every page of the VMA has (`WpAllowed`, `SoftDirty`).
    categories: Categories,
    /// The category of a populated entry without a uffd bit: `Accessed` in a uffd-rwp VMA,
    /// `Written` in any other.
    unprotected: Categories,
    /// The categories that can make a difference to the scan: those its masks look at, and
    /// `Written`, which decides what gets write-protected. Others are not computed.
    want: Categories,
    /// Registered for userfaultfd write protection.
    uffd_wp: bool,
    hugetlb: bool,
    /// `File` is wanted and can be set: not in a private anonymous VMA, whose pages are all
    /// anonymous, so that the page behind each entry is not looked up for nothing.
    file: bool,
    /// Every page of the VMA that userfaultfd does not write-protect matches, with the
    /// categories `Written` (only `Written` is wanted): the scan can look at nothing else.
    written_only: bool,
}

impl VmaState {
    /// Returns the categories of `entry`, as far as they are wanted: every rule that makes a
    /// category is here, for entries of every level and kind.
    #[inline(always)]
    fn categories(&self, entry: &impl Entry) -> Categories {
        let want = self.want;
        let mut categories = self.categories;
        if entry_is_huge(entry) {
            categories |= Huge;
        }
        match entry.state() {
            State::None => return (categories | self.unprotected_category(entry)) & want,
            State::Present => {
                categories |= Present;
                if want.contains(PfnZero) && entry.is_zero() {
                    categories |= PfnZero;
                }
            }
            State::Leaf => {
                categories |= Swapped;
                if want.contains_any(Guard | File) && entry.is_guard() {
                    categories |= Guard;
                }
            }
        }
        // A guard marker maps nothing, so it is no file page either.
        if self.file && !categories.contains(Guard) && entry.maps_file_page() {
            categories |= File;
        }
        if want.contains(SoftDirty) && entry.is_soft_dirty() {
            categories |= SoftDirty;
        }
        (categories | self.unprotected_category(entry)) & want
    }

    /// Returns the category `entry` has for not being protected by userfaultfd, if any: the
    /// one rule for `Written` (and `Accessed`), which a scan for nothing else asks directly.
    #[inline(always)]
    fn unprotected_category(&self, entry: &impl Entry) -> Categories {
        match entry.state() {
            // Registering a VMA for write protection puts a uffd-wp marker in every unpopulated
            // entry (with `UFFD_FEATURE_WP_UNPOPULATED` or in memory other than anonymous), so a
            // none entry was zapped after that: written. Hugetlb entries are always populated or
            // marked; a none one was never written.
            State::None if self.uffd_wp && !self.hugetlb => Written.into(),
            State::None => Categories::empty(),
            _ if entry.is_uffd() => Categories::empty(),
            _ => self.unprotected,
        }
    }

    /// Returns every category that [`VmaState::categories`] can give an entry of the VMA, with
    /// `anonymous` whether it is a private anonymous VMA.
    fn possible(&self, anonymous: bool) -> Categories {
        let mut possible = self.categories | Present | Swapped | PfnZero | Huge | SoftDirty | Guard;
        possible |= self.unprotected;
        if self.uffd_wp {
            possible |= Written;
        }
        if !anonymous {
            possible |= File;
        }
        possible
    }
}

/// Returns whether `entry` is a huge entry.
#[inline(always)]
fn entry_is_huge<E: Entry>(_entry: &E) -> bool {
    E::HUGE
}

/// A scan in progress.
struct Scan {
    args: Args,
    /// The categories the masks look at: only these need to be computed.
    interest: Categories,
    /// Neither `PfnZero`, `Guard` nor `File` is wanted: the categories of a PTE depend on
    /// nothing but what [`Bare::of`] returns for it.
    bare_ptes: bool,
    vma: VmaState,
    /// `None` if nothing is reported (`vec_len == 0`): the scan then only write-protects.
    out: Option<Output>,
    /// How many more pages may be reported: `max_pages` less those reported so far.
    left: usize,
    /// Where the last walk stopped, if it stopped early.
    stopped_at: Option<usize>,
    /// The last walk stopped only to give the mmap lock up to a task waiting for it.
    gave_way: bool,
}

/// What [`Scan::report`] did.
struct Reported {
    /// The end of what was reported; `start` if nothing was.
    end: usize,
    /// The limit of pages or regions was reached: stop the walk.
    full: bool,
}

impl Reported {
    fn walk(&self) -> ControlFlow<()> {
        if self.full {
            Break(())
        } else {
            Continue(())
        }
    }
}

/// Write-protects entries `from..to` of a PTE table for userfaultfd; with `unprotected_only`,
/// only those not protected yet.
#[inline]
fn protect_ptes(ptes: &mut PteTable<'_>, from: usize, to: usize, unprotected_only: bool) -> Result {
    // A scan that write-protects walks only VMAs registered for it, in a walk for it.
    let mut wp = ptes.uffd_wp().ok_or(EINVAL)?;
    if unprotected_only {
        wp.protect_unprotected(from, to)
    } else {
        (from..to).try_for_each(|i| wp.protect(i))
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
            bare_ptes: !(args.mask | args.anyof | args.ret).contains_any(PfnZero | Guard | File),
            vma: VmaState::default(),
            out,
            left: args.max_pages,
            stopped_at: None,
            gave_way: false,
            args,
        })
    }

    fn write_protects(&self) -> bool {
        self.args.flags & WP_MATCHING != 0
    }

    /// Ends the walk at `at`, where a page table or a hole ended, if a task waits for the mmap
    /// lock: [`pagemap_scan`] then gives the lock up and resumes at `at`. Anything the walk held
    /// there has been unlocked, and flushed, by then.
    #[inline(always)]
    fn give_way(&mut self, walk: ControlFlow<()>, mm: &MmWithUser, at: usize) -> ControlFlow<()> {
        if walk.is_continue() && at < self.args.end && mm.mmap_lock_is_contended() {
            self.stopped_at = Some(at);
            self.gave_way = true;
            return Break(());
        }
        walk
    }

    /// Reports `start..end` with `categories`, as much of it as the limits allow.
    #[inline(always)]
    fn report(&mut self, categories: Categories, start: usize, end: usize) -> Reported {
        let Some(out) = &mut self.out else {
            return Reported { end, full: false };
        };
        let pages = (end - start) / PAGE_SIZE;
        // The pages fit, and so does the region: all there is to it, most of the time.
        if pages <= self.left && out.push(categories & self.args.ret, start, end) {
            self.left -= pages;
            return Reported { end, full: false };
        }
        self.report_cut(categories, start, end)
    }

    /// [`Scan::report`] where a limit is reached: reports the pages of `start..end` that fit.
    #[inline(never)]
    fn report_cut(&mut self, categories: Categories, start: usize, end: usize) -> Reported {
        let Some(out) = &mut self.out else {
            return Reported { end, full: false };
        };
        let pages = ((end - start) / PAGE_SIZE).min(self.left);
        let mut end = start + pages * PAGE_SIZE;
        // A failed push changed nothing: it fails again if the region does not fit.
        if pages > 0 && out.push(categories & self.args.ret, start, end) {
            self.left -= pages;
        } else {
            end = start;
        }
        self.stopped_at = Some(end);
        Reported { end, full: true }
    }

    /// Takes back the report of `start..end`, the last pages reported.
    fn back_out(&mut self, start: usize, end: usize) {
        if let Some(out) = &mut self.out {
            out.back_out(start);
            self.left += (end - start) / PAGE_SIZE;
        }
    }

    /// Scans a table of PTEs; write-protects what it reports if asked to.
    ///
    /// Runs of adjacent entries with the same categories are reported at once, as one range:
    /// that is what the region they end up in would be anyway, and the limits cut a range at the
    /// same page as they would cut the entries one by one.
    fn scan_ptes(&mut self, ptes: &mut PteTable<'_>) -> WalkResult {
        if self.write_protects() && self.out.is_none() {
            // Without an output vector every entry that is not protected yet gets protected.
            protect_ptes(ptes, 0, ptes.len(), true)?;
            return Ok(Continue(()));
        }
        if self.vma.written_only {
            return self.scan_written(ptes);
        }
        let vma = self.vma;
        let soft_dirty = vma.want.contains(SoftDirty);
        let mut first = 0;
        while let Some(pte) = ptes.get(first) {
            // The run of entries from `first` on with its categories, `None` if they do not match.
            let (categories, end) = {
                let (table, args): (&PteTable<'_>, _) = (ptes, &self.args);
                let (categories, end) = if self.bare_ptes {
                    // Entries with the same `Bare` self have the same categories: compare that,
                    // and work the categories out once for the run.
                    let bare = Bare::of(pte, soft_dirty);
                    let end =
                        table.find_from(first + 1, |_, pte| Bare::of(pte, soft_dirty) != bare);
                    (vma.categories(&bare), end)
                } else {
                    let categories = vma.categories(&PteEntry::new(table, first, pte));
                    let end = table.find_from(first + 1, |index, pte| {
                        vma.categories(&PteEntry::new(table, index, pte)) != categories
                    });
                    (categories, end)
                };
                (args.matching(categories), end.unwrap_or(table.len()))
            };
            if let Some(categories) = categories {
                if self.report_ptes(ptes, first, end, categories)?.is_break() {
                    return Ok(Break(()));
                }
            }
            first = end;
        }
        Ok(Continue(()))
    }

    /// Scans a table of PTEs when only `Written` counts: reports each written entry, and
    /// write-protects it if asked to.
    ///
    /// Written pages are few and far between in a dirty-tracking scan, so entries are taken one
    /// at a time; the output merges adjacent ones into a region.
    fn scan_written(&mut self, ptes: &mut PteTable<'_>) -> WalkResult {
        let written = Categories::from(Written);
        // Whether an entry is written depends only on whether it is populated and on its uffd
        // bit (the VMA's categories and a populated entry's are not wanted): ask the rule once.
        let none_written = self.vma.unprotected_category(&Bare::NONE) == written;
        let unprotected_written = self.vma.unprotected_category(&Bare::UNPROTECTED) == written;
        // Of an entry that is not protected (a none entry never is). Present entries are the
        // most, and the test for protection asked it already.
        let written_unless_protected = move |pte: Pte| {
            if pte.is_present() || !pte.is_none() {
                unprotected_written
            } else {
                none_written
            }
        };
        let write_protects = self.write_protects();
        if write_protects {
            // The right to protect is asked for once for the table, not for each entry; an entry
            // is protected once it is reported. Protected entries are left out before asking.
            let mut wp = ptes.uffd_wp().ok_or(EINVAL)?;
            return self.protect_written(&mut wp, written_unless_protected);
        }
        // Protected entries are the most, so ask that first.
        let is_written =
            move |pte: Pte| !pte.is_uffd_present_first() && written_unless_protected(pte);
        let mut report = |addr| {
            if self.report(written, addr, addr + PAGE_SIZE).full {
                Break(())
            } else {
                Continue(())
            }
        };
        let mut from = 0;
        while let Some(index) = ptes.find_from(from, move |_, pte| is_written(pte)) {
            if report(ptes.addr(index)).is_break() {
                return Ok(Break(()));
            }
            from = index + 1;
        }
        Ok(Continue(()))
    }

    /// Reports and write-protects the entries of a table that are not protected and that
    /// `written_unless_protected` picks (it is asked only about those): the loop of a
    /// dirty-tracking round, with [`Scan::report`] of each page inline in it.
    ///
    /// The open region and the limit of pages are kept in locals for the table (and `cap`, which
    /// does not change) and written back once, so that they stay in registers in the loop:
    /// through `self`, each page stored and reloaded them. The masks of the scan are `Written`
    /// alone (see [`VmaState::written_only`]), so every page is reported with `Written`, and so
    /// is every region of such a scan. The compiler does not know that: an open region with
    /// other categories, which no page here could extend, is closed first, and an empty one gets
    /// `Written`, so that the open region's categories are known in the loop and not compared.
    #[inline(always)]
    fn protect_written(
        &mut self,
        wp: &mut UffdWp<'_, PteTable<'_>>,
        written_unless_protected: impl FnMut(Pte) -> bool,
    ) -> WalkResult {
        let written = Categories::from(Written);
        let Some(out) = &mut self.out else {
            // Not reached (`scan_ptes()` protects without reporting when there is no output
            // vector), but that is what is right here too.
            return Ok(wp.protect_each(0, written_unless_protected, |_| Continue(())));
        };
        let mut cur = out.cur;
        if cur.categories != written {
            out.close_open()?;
            cur = Region {
                categories: written,
                ..Region::NONE
            };
        }
        let (buf, cap) = (&mut out.buf, out.cap);
        let mut left = self.left;
        let mut cut = 0;
        let walk = wp.protect_each(0, written_unless_protected, |addr| {
            // `addr` is a page of a page table's range, which lies in a VMA: its end does not
            // wrap.
            let end = addr.wrapping_add(PAGE_SIZE);
            if left != 0 && Output::push_to(&mut cur, buf, cap, written, addr, end) {
                left -= 1;
                return Continue(());
            }
            cut = addr;
            Break(())
        });
        out.cur = cur;
        self.left = left;
        if walk.is_break() {
            // A limit is reached at `cut`: the limits' path, out of line, as for any report.
            return Ok(self.report_cut(written, cut, cut + PAGE_SIZE).walk());
        }
        Ok(Continue(()))
    }

    /// Reports entries `first..end` of a PTE table, which have `categories`, and write-protects
    /// the ones reported if asked to.
    #[inline(always)]
    fn report_ptes(
        &mut self,
        ptes: &mut PteTable<'_>,
        first: usize,
        end: usize,
        categories: Categories,
    ) -> WalkResult {
        let start = ptes.addr(first);
        let reported = self.report(categories, start, ptes.addr(end));
        if self.write_protects() && categories.contains(Written) && reported.end > start {
            let reported_end = first + (reported.end - start) / PAGE_SIZE;
            protect_ptes(ptes, first, reported_end, false)?;
        }
        Ok(reported.walk())
    }

    /// Scans a huge PMD entry. Returns `None` if it was split and has to be looked at again.
    fn scan_huge_pmd(&mut self, mut huge: HugePmd<'_>) -> Result<Option<ControlFlow<()>>> {
        let categories = self.vma.categories(&PmdHuge {
            pmd: huge.pmd(),
            huge: Some(&huge),
        });
        if !self.args.matches(categories) {
            return Ok(Some(Continue(())));
        }
        let start = huge.start();
        let reported = self.report(categories, start, huge.end());
        if reported.end == start || !self.write_protects() || !categories.contains(Written) {
            return Ok(Some(reported.walk()));
        }
        if reported.end != start + PMD_SIZE {
            // Only part of the huge page is reported: protect just that part of it, as small
            // pages. Report them again from the page table.
            huge.split();
            self.back_out(start, reported.end);
            return Ok(None);
        }
        huge.uffd_wp().ok_or(EINVAL)?.protect()?;
        Ok(Some(reported.walk()))
    }
}

#[vtable]
impl PageWalker for Scan {
    type OwnerModule = kernel::module::BuiltIn;

    #[inline]
    fn test_vma(&mut self, vma: &VmaRef, _start: usize, _end: usize) -> Result<VmaAction> {
        let wp_allowed = vma.uffd_wp_async() && vma.uffd_wp_use_markers();
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

        let mut categories = Categories::empty();
        if wp_allowed {
            categories |= WpAllowed;
        }
        if vma.is_soft_dirty() {
            categories |= SoftDirty;
        }
        let required = self.args.mask & WpAllowed;
        if !(categories ^ self.args.inverted).contains_all(required) {
            return Ok(VmaAction::Skip);
        }

        let anonymous = vma.is_anonymous();
        let written = Categories::from(Written);
        let state = VmaState {
            categories,
            unprotected: if vma.uffd_rwp() {
                Accessed.into()
            } else {
                written
            },
            want: self.interest | Written,
            uffd_wp: vma.uffd_wp(),
            hugetlb: vma.is_hugetlb(),
            file: self.interest.contains(File) && !anonymous,
            written_only: false,
        };
        // Skip a VMA in which no page can have a category the masks require. Walking it would
        // report nothing and protect nothing, except without an output vector, where every
        // entry is protected whatever the masks.
        let required = self.args.mask.without(self.args.inverted);
        let protects_all = self.write_protects() && self.out.is_none();
        if !(protects_all || state.possible(anonymous).contains_all(required)) {
            return Ok(VmaAction::Skip);
        }
        self.vma = VmaState {
            written_only: state.uffd_wp
                && self.args.mask == written
                && self.args.ret == written
                && self.args.anyof == Categories::empty()
                && self.args.inverted == Categories::empty(),
            ..state
        };
        Ok(VmaAction::Walk)
    }

    /// Inline in the walk: what is left of it for a table of PTEs is out of line.
    #[inline(always)]
    fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> WalkResult {
        if !self.write_protects() && !self.vma.file {
            // Reporting a huge entry needs nothing but its value, which the lock would not make
            // any truer: the entry may change as soon as the lock is dropped, as it may after
            // this read. Only looking up its page (`File`, not wanted here) or protecting it
            // needs the lock.
            if let Some(pmd) = entry.huge_lockless() {
                if self
                    .scan_huge_pmd_value(pmd, entry.start(), entry.end())
                    .is_break()
                {
                    return Ok(Break(()));
                }
                return Ok(self.give_way(Continue(()), entry.vma().mm(), entry.end()));
            }
        }
        self.pmd_entry_locked(entry)
    }

    #[inline]
    fn pte_hole(&mut self, hole: &mut Hole<'_>) -> WalkResult {
        let Some(vma) = hole.vma() else {
            return Ok(Continue(()));
        };
        let walk = self.scan_hole(hole)?;
        Ok(self.give_way(walk, vma.mm(), hole.end()))
    }

    /// Inline in the walk, as `pmd_entry()` is.
    #[inline(always)]
    fn hugetlb_entry(&mut self, entry: &mut HugetlbEntry<'_>) -> WalkResult {
        let walk = if self.write_protects() {
            self.scan_hugetlb_wp(entry)?
        } else {
            // Reporting needs nothing but the entry's value.
            let categories = self.vma.categories(&entry.pte());
            if self.args.matches(categories)
                && self.report(categories, entry.start(), entry.end()).full
            {
                return Ok(Break(()));
            }
            Continue(())
        };
        Ok(self.give_way(walk, entry.vma().mm(), entry.end()))
    }
}

impl Scan {
    /// Scans the huge PMD entry `pmd` of `start..end` by its value alone.
    #[inline(always)]
    fn scan_huge_pmd_value(&mut self, pmd: Pmd, start: usize, end: usize) -> ControlFlow<()> {
        let categories = self.vma.categories(&PmdHuge { pmd, huge: None });
        if !self.args.matches(categories) {
            return Continue(());
        }
        self.report(categories, start, end).walk()
    }

    /// [`PageWalker::pmd_entry`] for an entry that needs its lock: a table of PTEs, or a huge
    /// page that is looked up or protected. Out of line, so that the walk's loop, in which the
    /// rest of `pmd_entry` is inline, stays small for the lockless scan of huge entries.
    #[inline(never)]
    fn pmd_entry_locked(&mut self, entry: &mut PmdEntry<'_>) -> WalkResult {
        match self.scan_pmd(entry)? {
            Some(walk) => Ok(self.give_way(walk, entry.vma().mm(), entry.end())),
            // The walk looks at the entry again before it goes on: it cannot stop here.
            None => Ok(Continue(())),
        }
    }

    /// Scans the entries of a PMD entry: a huge page, or a table of PTEs. Returns `None` if the
    /// entry changed under the walk, which calls [`PageWalker::pmd_entry`] for it again.
    #[inline(always)]
    fn scan_pmd(&mut self, entry: &mut PmdEntry<'_>) -> Result<Option<ControlFlow<()>>> {
        loop {
            match entry.lock() {
                PmdLock::Huge(huge) => {
                    if let Some(walk) = self.scan_huge_pmd(huge)? {
                        return Ok(Some(walk));
                    }
                }
                PmdLock::Table(mut ptes) => {
                    let walk = self.scan_ptes(&mut ptes);
                    drop(ptes);
                    cond_resched();
                    return walk.map(Some);
                }
                PmdLock::Retry => return Ok(None),
            }
        }
    }

    /// Scans a range without page tables in a VMA.
    #[inline(always)]
    fn scan_hole(&mut self, hole: &mut Hole<'_>) -> WalkResult {
        let categories = self.vma.categories(&Bare::NONE);
        if !self.args.matches(categories) {
            return Ok(Continue(()));
        }
        let start = hole.start();
        let reported = self.report(categories, start, hole.end());
        if reported.end == start || !self.write_protects() {
            return Ok(reported.walk());
        }
        hole.uffd_wp().ok_or(EINVAL)?.protect(start, reported.end)?;
        Ok(reported.walk())
    }

    /// Scans a hugetlb entry for a scan that write-protects what it reports. Out of line, as
    /// [`Scan::pmd_entry_locked`].
    #[inline(never)]
    fn scan_hugetlb_wp(&mut self, entry: &mut HugetlbEntry<'_>) -> WalkResult {
        let (start, end, size) = (entry.start(), entry.end(), entry.size());
        let mut locked = entry.lock();
        let categories = self.vma.categories(&locked.pte());
        if !self.args.matches(categories) {
            return Ok(Continue(()));
        }
        let reported = self.report(categories, start, end);
        if reported.end == start || !categories.contains(Written) {
            return Ok(reported.walk());
        }
        if reported.end != start + size {
            // Part of a hugetlb page cannot be protected. If the limit of pages cut it after other
            // pages, the scan ends before it, and the next one, resuming there, protects it
            // whole. If the range cuts it, or the limit is smaller than the page, no scan can:
            // the part reported stays unprotected, written, and is reported again by every scan
            // that covers it.
            let pages = (reported.end - start) / PAGE_SIZE;
            if reported.full && self.args.max_pages - self.left > pages {
                self.back_out(start, reported.end);
                self.stopped_at = Some(start);
                // The limit is reached as it was where the page starts.
                self.left = 0;
            }
            return Ok(reported.walk());
        }
        locked.uffd_wp().ok_or(EINVAL)?.protect()?;
        Ok(reported.walk())
    }
}

/// How long a scan that gave the mmap lock up waits at most for the task waiting for the lock to
/// take it (see [`MmWithUser::mmap_lock_wait_for_waiters`]). Waking up a task takes microseconds;
/// a writer that takes longer is waiting for another holder of the lock.
const GIVE_WAY_WAIT: Delta = Delta::from_micros(100);

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
                    lock.walk_page_range_uffd_wp(walk_start, end, &mut scan)
                } else {
                    lock.walk_page_range(walk_start, end, &mut scan)
                }
            }
            Err(e) => Err(e),
        };
        let gave_way = core::mem::take(&mut scan.gave_way);
        let flushed = scan.out.as_mut().map_or(Ok(0), |out| out.flush(gave_way));
        let stopped = match (walked, flushed) {
            (_, Err(e)) | (Err(e), _) => {
                result = Err(e);
                break;
            }
            (Ok(walk), Ok(n)) => {
                regions += n;
                walk.is_break()
            }
        };
        let room = scan.out.as_ref().map_or(0, |out| out.room);
        if !stopped || (!gave_way && (room == 0 || scan.left == 0)) {
            break;
        }
        walk_start = scan.stopped_at.unwrap_or(end);
        if gave_way {
            // Let the waiting task have the lock before this one asks for it again.
            mm.mmap_lock_wait_for_waiters(GIVE_WAY_WAIT);
        }
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

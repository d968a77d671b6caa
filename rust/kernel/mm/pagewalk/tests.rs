// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of page-table walks, on real memory of the test's own address space.

use super::*;
use crate::{
    kunit::{prot, vm_mmap},
    mm::pgtable::{Pmd, Pte, PteKind},
    sync::atomic::{Atomic, Relaxed},
    uaccess::{UserPtr, UserSlice},
};
use core::ops::ControlFlow::{Break, Continue};

/// The last TLB flush of a lock guard: start and end.
static FLUSHED: [Atomic<usize>; 2] = [Atomic::new(0), Atomic::new(0)];

/// Records a TLB flush of a lock guard (see [`super::flush_tlb_range`]).
pub(super) fn record_flush(start: usize, end: usize) {
    FLUSHED[0].store(start, Relaxed);
    FLUSHED[1].store(end, Relaxed);
}

/// Returns the last flush recorded, and forgets it.
fn take_flush() -> (usize, usize) {
    (FLUSHED[0].xchg(0, Relaxed), FLUSHED[1].xchg(0, Relaxed))
}

#[kunit_tests(rust_mm_pagewalk)]
mod walk {
    use super::*;

    /// What a test walker saw.
    ///
    /// The vectors are allocated before the walk: entries are recorded with a page-table lock
    /// held, where an allocation could sleep.
    struct Seen {
        /// Addresses and entries of every PTE of the walked tables.
        ptes: KVec<(usize, Pte)>,
        /// Addresses of the present PTEs, as [`PteTable::find_from`] finds them one after the
        /// other.
        found: KVec<usize>,
        /// Huge entries: start, end and the entry.
        huge: KVec<(usize, usize, Pmd)>,
        /// Holes: start, end and whether they were inside a VMA.
        holes: KVec<(usize, usize, bool)>,
        /// The VMAs tested, as start and end of the part in the range.
        vmas: KVec<(usize, usize)>,
        /// Skip VMAs that start at this address.
        skip: Option<usize>,
        /// Stop after this many present PTEs.
        stop_after: Option<usize>,
        /// Fail with this error on the first present PTE.
        fail: Option<Error>,
        /// Split huge pages before looking at their PTEs.
        split: bool,
        /// For each PMD entry, whether [`PmdEntry::huge_lockless`] saw a huge one.
        lockless_huge: KVec<bool>,
    }

    impl Default for Seen {
        fn default() -> Self {
            // Room for the largest walk of a test, a few PTE tables. If an allocation fails, the
            // walk fails with `ENOMEM` when it runs out of room, and so does the test.
            fn room<T>(n: usize) -> KVec<T> {
                KVec::with_capacity(n, GFP_KERNEL).unwrap_or_default()
            }
            Seen {
                ptes: room(4 * (PMD_SIZE / PAGE_SIZE)),
                found: room(4 * (PMD_SIZE / PAGE_SIZE)),
                huge: room(16),
                holes: KVec::new(),
                vmas: KVec::new(),
                skip: None,
                stop_after: None,
                fail: None,
                split: false,
                lockless_huge: KVec::new(),
            }
        }
    }

    /// Records `value` in `v` without allocating.
    fn record<T>(v: &mut KVec<T>, value: T) -> Result {
        v.push_within_capacity(value).map_err(|_| ENOMEM)
    }

    #[vtable]
    impl PageWalker for Seen {
        fn test_vma(&mut self, vma: &VmaRef, start: usize, end: usize) -> Result<VmaAction> {
            self.vmas.push((start, end), GFP_KERNEL)?;
            Ok(if Some(vma.start()) == self.skip {
                VmaAction::Skip
            } else {
                VmaAction::Walk
            })
        }

        fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> WalkResult {
            self.lockless_huge
                .push(entry.huge_lockless().is_some(), GFP_KERNEL)?;
            let ptes = loop {
                match entry.lock() {
                    PmdLock::Retry => return Ok(Continue(())),
                    PmdLock::Huge(huge) if self.split => huge.split(),
                    PmdLock::Huge(huge) => {
                        record(&mut self.huge, (huge.start(), huge.end(), huge.pmd()))?;
                        return Ok(Continue(()));
                    }
                    PmdLock::Table(ptes) => break ptes,
                }
            };
            let mut from = 0;
            while let Some(index) = ptes.find_from(from, |_, pte| pte.is_present()) {
                record(&mut self.found, ptes.addr(index))?;
                from = index + 1;
            }
            for (addr, pte) in ptes.iter() {
                record(&mut self.ptes, (addr, pte))?;
                if pte.is_present() {
                    if let Some(err) = self.fail {
                        return Err(err);
                    }
                    let present = self.ptes.iter().filter(|(_, p)| p.is_present()).count();
                    if Some(present) == self.stop_after {
                        return Ok(Break(()));
                    }
                }
            }
            Ok(Continue(()))
        }

        fn pte_hole(&mut self, hole: &mut Hole<'_>) -> WalkResult {
            self.holes
                .push((hole.start(), hole.end(), hole.vma().is_some()), GFP_KERNEL)?;
            Ok(Continue(()))
        }
    }

    pub(super) fn touch(addr: usize) -> Result {
        UserSlice::new(UserPtr::from_addr(addr), 1)
            .writer()
            .write(&0x5au8)
    }

    pub(super) fn read(addr: usize) -> Result {
        let mut buf = KVec::new();
        UserSlice::new(UserPtr::from_addr(addr), 1).read_all(&mut buf, GFP_KERNEL)
    }

    pub(super) fn walk<T: PageWalker>(start: usize, end: usize, walker: &mut T) -> WalkResult {
        let current = crate::current!();
        let mm = current.mm().ok_or(ESRCH)?;
        let guard = mm.mmap_read_lock();
        guard.walk_page_range(start, end, walker)
    }

    /// The entries of `start..end`, one per page (huge pages are split), `None` where there is
    /// no page table.
    pub(super) fn ptes(start: usize, end: usize) -> Result<KVec<Option<Pte>>> {
        let mut seen = Seen {
            split: true,
            ..Seen::default()
        };
        assert_eq!(walk(start, end, &mut seen)?, Continue(()));
        let mut ptes = KVec::with_capacity((end - start) / PAGE_SIZE, GFP_KERNEL)?;
        for page in 0..(end - start) / PAGE_SIZE {
            let addr = start + page * PAGE_SIZE;
            let pte = seen.ptes.iter().find(|(a, _)| *a == addr).map(|(_, p)| *p);
            ptes.push(pte, GFP_KERNEL)?;
        }
        Ok(ptes)
    }

    /// Returns whether `pte` is an entry with the uffd bit.
    pub(super) fn uffd(pte: Option<Pte>) -> bool {
        pte.is_some_and(Pte::is_uffd)
    }

    fn present(seen: &Seen) -> KVec<usize> {
        let mut v = KVec::new();
        for (addr, _) in seen.ptes.iter().filter(|(_, p)| p.is_present()) {
            let _ = v.push(*addr, GFP_KERNEL);
        }
        v
    }

    #[test]
    fn reports_present_pages_and_their_bits() -> Result {
        let addr = vm_mmap(16 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        for page in [0, 3, 4, 9] {
            touch(addr + page * PAGE_SIZE)?;
        }
        read(addr + 12 * PAGE_SIZE)?;
        let mut seen = Seen::default();
        assert_eq!(walk(addr, addr + 16 * PAGE_SIZE, &mut seen)?, Continue(()));

        // One PTE table covers the range: every entry is reported, in order.
        assert_eq!(seen.ptes.len(), 16);
        for (i, (a, _)) in seen.ptes.iter().enumerate() {
            assert_eq!(*a, addr + i * PAGE_SIZE);
        }
        let want = [0, 3, 4, 9, 12].map(|p| addr + p * PAGE_SIZE);
        assert_eq!(&present(&seen)[..], &want[..]);
        assert_eq!(&seen.found[..], &want[..]);
        for (a, pte) in seen.ptes.iter() {
            let page = (a - addr) / PAGE_SIZE;
            match page {
                0 | 3 | 4 | 9 => {
                    assert!(pte.is_write() && pte.is_dirty() && pte.is_young());
                    assert!(!pte.is_zero_pfn() && pte.pfn().is_some());
                }
                // A read fault on anonymous memory maps the shared zero page, read-only.
                12 => assert!(pte.is_zero_pfn() && !pte.is_write()),
                _ => assert!(pte.is_none() && matches!(pte.kind(), PteKind::None)),
            }
            assert!(!pte.is_uffd());
        }
        assert_eq!(seen.vmas.len(), 1);
        assert!(seen.huge.is_empty());
        Ok(())
    }

    /// The bits that the tests of the one-test checks on x86-64 combine: the two tested
    /// (`_PAGE_PRESENT`, `_PAGE_UFFD`) and bits next to them that must not count.
    #[cfg(all(CONFIG_X86_64, CONFIG_HAVE_ARCH_USERFAULTFD_WP))]
    const BITS: [u32; 10] = [0, 1, 2, 5, 6, 8, 9, 10, 11, 59];

    /// An entry of page frame 0x1234 with the bits of `BITS` that `n` selects set.
    #[cfg(all(CONFIG_X86_64, CONFIG_HAVE_ARCH_USERFAULTFD_WP))]
    fn pte_with_bits(n: u32) -> Pte {
        let raw = BITS
            .iter()
            .enumerate()
            .filter(|&(i, _)| n & (1 << i) != 0)
            .fold(0x1234 << 12, |raw: bindings::pteval_t, (_, bit)| {
                raw | 1 << bit
            });
        Pte::from_raw(bindings::pte_t { pte: raw })
    }

    /// [`Pte::is_uffd_present_first`] answers as [`Pte::is_uffd`] for every combination of the
    /// bits its one test on x86-64 looks at (`_PAGE_PRESENT`, `_PAGE_UFFD`) and of bits next to
    /// them that it must not (`_PAGE_PROTNONE`, the uffd bit of a swap entry, writable, accessed,
    /// dirty, soft-dirty, a bit of a swap entry's type), present or not, and for a uffd-wp marker.
    #[cfg(all(CONFIG_X86_64, CONFIG_HAVE_ARCH_USERFAULTFD_WP))]
    #[test]
    fn tells_a_protected_entry_present_first_as_is_uffd() {
        let (mut present, mut not_present) = (0, 0);
        for n in 0..1u32 << BITS.len() {
            let pte = pte_with_bits(n);
            assert_eq!(pte.is_uffd_present_first(), pte.is_uffd());
            if pte.is_uffd() {
                *if pte.is_present() {
                    &mut present
                } else {
                    &mut not_present
                } += 1;
            }
        }
        // Protected entries of both kinds were compared, and not every entry is protected.
        assert!(present > 0 && not_present > 0 && present + not_present < 1 << BITS.len());
        // SAFETY: Pure function of the value.
        let marker = unsafe { bindings::make_pte_marker(bindings::PTE_MARKER_UFFD_WP) };
        let marker = Pte::from_raw(marker);
        assert!(marker.is_uffd() && marker.is_uffd_present_first());
    }

    /// [`Pte::both_known_uffd`] is `true` only for two present protected entries, and for
    /// two of them at least, over pairs of the combinations of bits of
    /// `tells_a_protected_entry_present_first_as_is_uffd` (none of which is a marker).
    #[cfg(all(CONFIG_X86_64, CONFIG_HAVE_ARCH_USERFAULTFD_WP))]
    #[test]
    fn tells_two_protected_entries_with_one_test() {
        let pte = pte_with_bits;
        let protected_present = |pte: Pte| pte.is_present() && pte.is_uffd();
        let mut both = 0;
        for n in 0..1u32 << BITS.len() {
            // Every entry against a spread of others (a full square takes too long under TCG).
            for m in (n % 7..1u32 << BITS.len()).step_by(7) {
                let (a, b) = (pte(n), pte(m));
                if Pte::both_known_uffd(a, b) {
                    assert!(protected_present(a) && protected_present(b));
                    both += 1;
                }
            }
        }
        assert!(both > 0);
        // Each entry that one test tells, with itself.
        for n in 0..1u32 << BITS.len() {
            let a = pte(n);
            let bits = (1 << bindings::_PAGE_BIT_PRESENT) | (1 << bindings::_PAGE_BIT_UFFD);
            assert_eq!(Pte::both_known_uffd(a, a), a.as_raw().pte & bits == bits);
        }
    }

    /// [`Pte::both_known_uffd`] tells two uffd-wp markers where the marker is a constant
    /// (`CONFIG_RUST_INLINE_HELPERS`), and nothing else next to a marker: not a none entry, not
    /// a marker with any bit changed, unless both entries are protected.
    #[cfg(CONFIG_RUST_INLINE_HELPERS)]
    #[test]
    fn tells_two_markers_by_value() {
        // SAFETY: Pure function of the value.
        let marker = unsafe { bindings::make_pte_marker(bindings::PTE_MARKER_UFFD_WP) };
        let (marker, none) = (
            Pte::from_raw(marker),
            Pte::from_raw(bindings::pte_t { pte: 0 }),
        );
        assert_eq!(Pte::both_known_uffd(marker, marker), marker.is_uffd());
        let sound = |a: Pte, b: Pte| !Pte::both_known_uffd(a, b) || (a.is_uffd() && b.is_uffd());
        assert!(sound(marker, none) && sound(none, marker) && !Pte::both_known_uffd(none, none));
        for bit in 0..bindings::pteval_t::BITS {
            let other = Pte::from_raw(bindings::pte_t {
                pte: marker.as_raw().pte ^ 1 << bit,
            });
            assert!(sound(marker, other) && sound(other, marker) && sound(other, other));
        }
    }

    #[test]
    fn reports_holes_inside_and_outside_vmas() -> Result {
        let addr = vm_mmap(4 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        // Nothing is populated: the VMA has no page table at all, or one with none entries.
        let mut seen = Seen::default();
        let (start, end) = (addr - 8 * PAGE_SIZE, addr + 4 * PAGE_SIZE);
        assert_eq!(walk(start, end, &mut seen)?, Continue(()));
        assert!(present(&seen).is_empty());
        // The part below the mapping is a hole outside any VMA.
        assert!(seen.holes.contains(&(start, addr, false)));
        // The mapping itself is either a hole inside the VMA or none PTEs.
        let covered = seen
            .holes
            .iter()
            .filter(|h| h.2)
            .map(|h| h.1 - h.0)
            .sum::<usize>()
            + seen.ptes.len() * PAGE_SIZE;
        assert_eq!(covered, 4 * PAGE_SIZE);
        assert_eq!(&seen.vmas[..], &[(addr, end)][..]);
        Ok(())
    }

    #[test]
    fn walks_each_vma_and_skips_on_request() -> Result {
        // Different protections keep the two mappings apart as two VMAs.
        let a = vm_mmap(4 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        let b = vm_mmap(4 * PAGE_SIZE, prot::READ)?;
        touch(a)?;
        read(b)?;
        let (start, end) = (a.min(b), a.max(b) + 4 * PAGE_SIZE);

        let mut seen = Seen::default();
        assert_eq!(walk(start, end, &mut seen)?, Continue(()));
        assert_eq!(seen.vmas.len(), 2);
        assert!(seen.vmas[0].1 <= seen.vmas[1].0);
        let mut want = [a, b];
        want.sort_unstable();
        assert_eq!(&present(&seen)[..], &want[..]);

        let mut seen = Seen {
            skip: Some(a),
            ..Seen::default()
        };
        assert_eq!(walk(start, end, &mut seen)?, Continue(()));
        assert_eq!(seen.vmas.len(), 2);
        assert_eq!(&present(&seen)[..], &[b][..]);
        Ok(())
    }

    #[test]
    fn finds_the_vmas_of_a_range_in_order() -> Result {
        // Alternating protections keep the mappings apart as three VMAs.
        let mut maps = [
            (vm_mmap(2 * PAGE_SIZE, prot::READ)?, 2 * PAGE_SIZE),
            (
                vm_mmap(3 * PAGE_SIZE, prot::READ | prot::WRITE)?,
                3 * PAGE_SIZE,
            ),
            (vm_mmap(PAGE_SIZE, prot::READ)?, PAGE_SIZE),
        ];
        maps.sort_unstable();
        let (lo, hi) = (maps[0].0, maps[2].0 + maps[2].1);
        let current = kernel::current!();
        let mm = current.mm().ok_or(ESRCH)?;
        let lock = mm.mmap_read_lock();

        let mut found = KVec::new();
        for vma in lock.vmas(lo, hi) {
            found.push((vma.start(), vma.end()), GFP_KERNEL)?;
        }
        // Each test has an mm of its own: the three mappings are its only VMAs in the range.
        assert_eq!(found.len(), 3);
        for (&(start, end), &(addr, len)) in found.iter().zip(&maps) {
            assert_eq!((start, end), (addr, addr + len));
        }

        // The range of one VMA whose neighbours touch both of its ends finds just that one.
        let (addr, len) = maps[1];
        let mut one = lock.vmas(addr, addr + len);
        assert!(one.next().is_some_and(|vma| vma.start() == addr));
        assert!(one.next().is_none());

        // A range within one VMA finds just that one; an empty or reversed one finds none.
        let mid = addr + PAGE_SIZE;
        let mut one = lock.vmas(mid, mid + PAGE_SIZE);
        assert!(one.next().is_some_and(|vma| vma.start() == addr));
        assert!(one.next().is_none());
        assert!(lock.vmas(mid, mid).next().is_none());
        assert!(lock.vmas(mid + PAGE_SIZE, mid).next().is_none());
        assert!(lock.vmas(mid, 0).next().is_none());
        Ok(())
    }

    /// A walker with `pte_hole` only.
    struct HolesOnly(KVec<(usize, usize)>);

    #[vtable]
    impl PageWalker for HolesOnly {
        fn pte_hole(&mut self, hole: &mut Hole<'_>) -> WalkResult {
            self.0.push((hole.start(), hole.end()), GFP_KERNEL)?;
            Ok(Continue(()))
        }
    }

    #[test]
    fn reports_a_none_pmd_under_populated_tables_as_c_does() -> Result {
        // A PMD entry that is none, between two with tables: the tables above it are populated
        // (one of the two neighbours is in its PUD, whichever side a PUD boundary falls on).
        let map = vm_mmap(4 * PMD_SIZE, prot::READ | prot::WRITE)?;
        let first = (map + PMD_SIZE - 1) & !(PMD_SIZE - 1);
        touch(first)?;
        touch(first + 2 * PMD_SIZE)?;
        let (start, end) = (first + PMD_SIZE, first + PMD_SIZE + PAGE_SIZE);

        // With `pmd_entry`, the entry is one hole inside the VMA.
        let mut seen = Seen::default();
        assert_eq!(walk(start, end, &mut seen)?, Continue(()));
        assert_eq!(&seen.holes[..], &[(start, end, true)][..]);
        assert!(seen.ptes.is_empty());

        // Without it, the C walk does not go below the top level, so it sees no hole at all.
        let mut holes = HolesOnly(KVec::new());
        assert_eq!(walk(start, end, &mut holes)?, Continue(()));
        assert!(holes.0.is_empty());
        Ok(())
    }

    /// A walker that records each call: whether it was `pmd_entry` (else `pte_hole`), and the
    /// range.
    struct Calls(KVec<(bool, usize, usize)>);

    #[vtable]
    impl PageWalker for Calls {
        fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> WalkResult {
            self.0
                .push((true, entry.start(), entry.end()), GFP_KERNEL)?;
            Ok(Continue(()))
        }

        fn pte_hole(&mut self, hole: &mut Hole<'_>) -> WalkResult {
            self.0.push((false, hole.start(), hole.end()), GFP_KERNEL)?;
            Ok(Continue(()))
        }
    }

    #[test]
    fn walks_pmd_entries_in_order_across_a_pud_boundary() -> Result {
        // Read-only, so that the PUD's worth of address space is not accounted; a read maps the
        // zero page (or the huge zero page), which is enough for a PMD entry.
        let map = vm_mmap(PUD_SIZE + 4 * PMD_SIZE, prot::READ)?;
        let pud = (map + 2 * PMD_SIZE).next_multiple_of(PUD_SIZE);
        read(pud - PAGE_SIZE)?;
        read(pud)?;
        let (start, end) = (pud - 2 * PMD_SIZE, pud + 2 * PMD_SIZE);

        // Each PMD entry once, in address order: a none one, the two on both sides of the
        // boundary, another none one.
        let mut calls = Calls(KVec::new());
        assert_eq!(walk(start, end, &mut calls)?, Continue(()));
        let want = [
            (false, start, pud - PMD_SIZE),
            (true, pud - PMD_SIZE, pud),
            (true, pud, pud + PMD_SIZE),
            (false, pud + PMD_SIZE, end),
        ];
        assert_eq!(&calls.0[..], &want[..]);

        // Part of a PMD on each side: the entries, cut to the range.
        let mut calls = Calls(KVec::new());
        let (start, end) = (pud - PAGE_SIZE, pud + PAGE_SIZE);
        assert_eq!(walk(start, end, &mut calls)?, Continue(()));
        assert_eq!(&calls.0[..], &[(true, start, pud), (true, pud, end)][..]);
        Ok(())
    }

    /// x86-64 only: the case needs a free, unpopulated part of the address space at 64 TiB and a
    /// PUD level of its own (where the PUD level is folded, C reports one hole per PUD-sized
    /// top-level entry, which the expectations below do not describe).
    #[cfg(CONFIG_X86_64)]
    #[test]
    fn reports_upper_holes_as_c_does_next_to_pmd_entries() -> Result {
        use crate::kunit::vm_mmap_at;

        // Three PUDs' worth at 64 TiB, far below anything else the test maps, so that no page
        // table covers it yet: the top-level entry is none (the P4D entry with four levels, into
        // which the PGD is folded; the PGD entry with five).
        let hint = 1 << 46;
        let addr = vm_mmap_at(hint, 3 * PUD_SIZE, prot::READ)?;
        assert_eq!(addr, hint);
        let end = addr + 3 * PUD_SIZE;

        // The C walk reports the upper entry's part as one hole, not one per PUD.
        let mut calls = Calls(KVec::new());
        assert_eq!(walk(addr, end, &mut calls)?, Continue(()));
        assert_eq!(&calls.0[..], &[(false, addr, end)][..]);

        // With a table in the first PMD: its PMD entries one by one, then a hole for each none
        // PUD entry after them.
        read(addr)?;
        let mut calls = Calls(KVec::with_capacity(PUD_SIZE / PMD_SIZE + 2, GFP_KERNEL)?);
        assert_eq!(walk(addr, end, &mut calls)?, Continue(()));
        assert_eq!(calls.0.len(), PUD_SIZE / PMD_SIZE + 2);
        assert_eq!(calls.0[0], (true, addr, addr + PMD_SIZE));
        for (i, call) in calls.0[1..PUD_SIZE / PMD_SIZE].iter().enumerate() {
            let pmd = addr + (i + 1) * PMD_SIZE;
            assert_eq!(*call, (false, pmd, pmd + PMD_SIZE));
        }
        let upper = &calls.0[PUD_SIZE / PMD_SIZE..];
        let want = [
            (false, addr + PUD_SIZE, addr + 2 * PUD_SIZE),
            (false, addr + 2 * PUD_SIZE, end),
        ];
        assert_eq!(upper, &want[..]);
        Ok(())
    }

    #[test]
    fn stops_early_and_propagates_errors() -> Result {
        let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        for page in 0..8 {
            touch(addr + page * PAGE_SIZE)?;
        }
        let mut seen = Seen {
            stop_after: Some(3),
            ..Seen::default()
        };
        assert_eq!(walk(addr, addr + 8 * PAGE_SIZE, &mut seen)?, Break(()));
        assert_eq!(present(&seen).len(), 3);

        let mut seen = Seen {
            fail: Some(ENOSPC),
            ..Seen::default()
        };
        assert_eq!(walk(addr, addr + 8 * PAGE_SIZE, &mut seen), Err(ENOSPC));
        assert_eq!(seen.ptes.len(), 1);

        assert_eq!(walk(addr, addr, &mut Seen::default()), Err(EINVAL));
        Ok(())
    }

    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    #[test]
    fn sees_and_splits_transparent_huge_pages() -> Result {
        // Two huge pages' worth, so that one aligned huge page fits inside.
        let map = vm_mmap(2 * PMD_SIZE, prot::READ | prot::WRITE)?;
        let start = map.next_multiple_of(PMD_SIZE);
        let end = start + PMD_SIZE;
        touch(start)?;

        let mut seen = Seen::default();
        assert_eq!(walk(start, end, &mut seen)?, Continue(()));
        // THP is "always" in the test config: the write fault maps a whole huge page.
        assert_eq!(seen.huge.len(), 1);
        let (s, e, pmd) = seen.huge[0];
        assert_eq!((s, e), (start, end));
        assert!(pmd.is_present() && pmd.is_trans_huge() && pmd.pfn().is_some());
        assert!(!pmd.is_huge_zero() && !pmd.is_uffd());
        assert!(seen.ptes.is_empty());
        assert_eq!(seen.lockless_huge.as_slice(), &[true]);

        // After a split, the same memory is 512 present PTEs.
        let mut seen = Seen {
            split: true,
            ..Seen::default()
        };
        assert_eq!(walk(start, end, &mut seen)?, Continue(()));
        assert!(seen.huge.is_empty());
        assert_eq!(present(&seen).len(), PMD_SIZE / PAGE_SIZE);

        // Now the entry points at a table: not huge, with or without the lock.
        let mut seen = Seen::default();
        assert_eq!(walk(start, end, &mut seen)?, Continue(()));
        assert!(seen.huge.is_empty());
        assert_eq!(seen.lockless_huge.as_slice(), &[false]);
        Ok(())
    }
}

#[kunit_tests(rust_mm_pagewalk_uffd)]
mod uffd_wp {
    use super::walk::{ptes, read, touch, uffd};
    use super::*;

    /// Registers the VMA at `addr` for userfaultfd write protection, as far as the page tables
    /// are concerned: it gets `VM_UFFD_WP`, without a userfaultfd context. A write to an entry
    /// it protects then fails (`handle_userfault()` without a context answers `SIGBUS`), so the
    /// tests only read protected pages.
    fn register_uffd_wp(addr: usize) -> Result {
        let current = crate::current!();
        let mm = current.mm().ok_or(ESRCH)?;
        let mm = mm.as_raw();
        // SAFETY: `mm` is the test's live address space; the VMA's flags are changed under the
        // mmap write lock, as `vm_flags_set()` requires.
        let found = unsafe {
            bindings::mmap_write_lock(mm);
            let vma = bindings::vma_lookup(mm, addr);
            if !vma.is_null() {
                bindings::vm_flags_set(vma, bindings::VM_UFFD_WP as bindings::vm_flags_t);
            }
            bindings::mmap_write_unlock(mm);
            !vma.is_null()
        };
        if found {
            Ok(())
        } else {
            Err(EINVAL)
        }
    }

    /// A walker that write-protects the entries of given pages, and then fails if asked to.
    struct Protect {
        base: usize,
        pages: &'static [usize],
        /// Whether `uffd_wp()` gave a view of each table, huge page or hole met.
        views: KVec<bool>,
        fail: Option<Error>,
        /// Protect the present, unprotected entries of each table with
        /// `UffdWp::protect_each()` instead, and stop after this many.
        each: Option<usize>,
        /// How many entries `protect_each` picked.
        taken: usize,
    }

    impl Protect {
        fn new(base: usize, pages: &'static [usize]) -> Result<Self> {
            Ok(Self {
                base,
                pages,
                views: KVec::with_capacity(8, GFP_KERNEL)?,
                fail: None,
                each: None,
                taken: 0,
            })
        }

        fn wants(&self, addr: usize) -> bool {
            self.pages.contains(&((addr - self.base) / PAGE_SIZE))
        }
    }

    #[vtable]
    impl PageWalker for Protect {
        fn pmd_entry(&mut self, entry: &mut PmdEntry<'_>) -> WalkResult {
            match entry.lock() {
                PmdLock::Table(mut ptes) => {
                    let wp = ptes.uffd_wp();
                    self.views
                        .push_within_capacity(wp.is_some())
                        .map_err(|_| ENOMEM)?;
                    let Some(mut wp) = wp else {
                        return Ok(Continue(()));
                    };
                    if let Some(limit) = self.each {
                        let taken = &mut self.taken;
                        let select = |pte: Pte| pte.is_present() && !pte.is_uffd();
                        return Ok(wp.protect_each(0, select, |_| {
                            *taken += 1;
                            if *taken > limit {
                                Break(())
                            } else {
                                Continue(())
                            }
                        }));
                    }
                    for i in 0..wp.len() {
                        if self.wants(wp.addr(i)) {
                            wp.protect(i)?;
                        }
                    }
                    // The table is unlocked on the way out, after the flush, error or not.
                    self.fail.map_or(Ok(Continue(())), Err)
                }
                PmdLock::Huge(mut huge) => {
                    let wants = self.wants(huge.start());
                    if let Some(mut wp) = huge.uffd_wp().filter(|_| wants) {
                        wp.protect()?;
                    }
                    self.fail.map_or(Ok(Continue(())), Err)
                }
                PmdLock::Retry => Ok(Continue(())),
            }
        }

        fn pte_hole(&mut self, hole: &mut Hole<'_>) -> WalkResult {
            let (start, end) = (hole.start(), hole.end());
            let wp = hole.uffd_wp();
            self.views
                .push_within_capacity(wp.is_some())
                .map_err(|_| ENOMEM)?;
            if let Some(mut wp) = wp {
                wp.protect(start, end)?;
            }
            Ok(Continue(()))
        }
    }

    /// A walker that tries to protect each hole it meets: past its end, unaligned, and whole.
    struct ProtectHoles {
        /// Each hole met, and the results of the three tries if `uffd_wp()` gave a view.
        holes: KVec<(usize, usize, Option<[Result; 3]>)>,
    }

    impl ProtectHoles {
        fn new() -> Result<Self> {
            Ok(Self {
                holes: KVec::with_capacity(8, GFP_KERNEL)?,
            })
        }
    }

    #[vtable]
    impl PageWalker for ProtectHoles {
        // Without a `pmd_entry` the C walker would not go below the top level.
        fn pmd_entry(&mut self, _entry: &mut PmdEntry<'_>) -> WalkResult {
            Ok(Continue(()))
        }

        fn pte_hole(&mut self, hole: &mut Hole<'_>) -> WalkResult {
            let (start, end) = (hole.start(), hole.end());
            let tries = hole.uffd_wp().map(|mut wp| {
                [
                    wp.protect(start, end + PAGE_SIZE),
                    wp.protect(start + 1, end),
                    wp.protect(start, end),
                ]
            });
            self.holes
                .push_within_capacity((start, end, tries))
                .map_err(|_| ENOMEM)?;
            Ok(Continue(()))
        }
    }

    fn walk_uffd_wp<T: PageWalker>(start: usize, end: usize, walker: &mut T) -> WalkResult {
        let current = crate::current!();
        let mm = current.mm().ok_or(ESRCH)?;
        let guard = mm.mmap_read_lock();
        guard.walk_page_range_uffd_wp(start, end, walker)
    }

    #[test]
    fn protects_only_registered_vmas_in_uffd_wp_walks() -> Result {
        let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        let end = addr + 8 * PAGE_SIZE;
        touch(addr)?;

        // Not registered: no view, in either kind of walk.
        let mut p = Protect::new(addr, &[0])?;
        assert_eq!(walk_uffd_wp(addr, end, &mut p)?, Continue(()));
        assert_eq!(p.views.as_slice(), &[false]);
        register_uffd_wp(addr)?;
        // Registered, but not a walk for write protection: no view either.
        let mut p = Protect::new(addr, &[0])?;
        assert_eq!(super::walk::walk(addr, end, &mut p)?, Continue(()));
        assert_eq!(p.views.as_slice(), &[false]);
        assert!(!uffd(ptes(addr, end)?[0]));
        // Both: the page gets protected.
        let mut p = Protect::new(addr, &[0])?;
        assert_eq!(walk_uffd_wp(addr, end, &mut p)?, Continue(()));
        assert_eq!(p.views.as_slice(), &[true]);
        assert!(uffd(ptes(addr, end)?[0]));
        Ok(())
    }

    #[test]
    fn protects_present_entries_and_flushes_them() -> Result {
        let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        let end = addr + 8 * PAGE_SIZE;
        for page in [0, 1, 2] {
            touch(addr + page * PAGE_SIZE)?;
        }
        register_uffd_wp(addr)?;
        take_flush();
        let mut p = Protect::new(addr, &[0, 1, 5])?;
        assert_eq!(walk_uffd_wp(addr, end, &mut p)?, Continue(()));
        assert_eq!(p.views.as_slice(), &[true]);
        // Pages 0 and 1 were present and writable: flushed, both, before the unlock.
        assert_eq!(take_flush(), (addr, addr + 2 * PAGE_SIZE));

        let ptes = ptes(addr, end)?;
        for pte in [ptes[0], ptes[1]] {
            // Protected: uffd bit set, no longer writable, still present and dirty.
            let pte = pte.ok_or(EINVAL)?;
            assert!(pte.is_uffd() && !pte.is_write() && pte.is_present() && pte.is_dirty());
        }
        let pte = ptes[2].ok_or(EINVAL)?;
        assert!(!pte.is_uffd() && pte.is_write());
        // A none entry of an anonymous VMA without `UFFD_FEATURE_WP_UNPOPULATED` (here without
        // any context) gets no marker.
        assert!(ptes[5].is_some_and(Pte::is_none));
        // A protected page can still be read.
        read(addr)?;

        // A present entry is flushed again when it is protected again; a none entry needs no
        // flush, whether it gets a marker or not.
        let mut p = Protect::new(addr, &[0, 7])?;
        assert_eq!(walk_uffd_wp(addr, end, &mut p)?, Continue(()));
        assert_eq!(take_flush(), (addr, addr + PAGE_SIZE));
        Ok(())
    }

    #[test]
    fn protects_each_picked_entry_until_told_to_stop() -> Result {
        let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        let end = addr + 8 * PAGE_SIZE;
        for page in [1, 2, 4, 6] {
            touch(addr + page * PAGE_SIZE)?;
        }
        register_uffd_wp(addr)?;
        take_flush();
        // The third present entry picked stops the walk before it is protected.
        let mut p = Protect {
            each: Some(2),
            ..Protect::new(addr, &[])?
        };
        assert_eq!(walk_uffd_wp(addr, end, &mut p)?, Break(()));
        assert_eq!(p.taken, 3);
        assert_eq!(take_flush(), (addr + PAGE_SIZE, addr + 3 * PAGE_SIZE));
        let entries = ptes(addr, end)?;
        assert!(uffd(entries[1]) && uffd(entries[2]) && !uffd(entries[4]) && !uffd(entries[6]));
        // Without a limit: the other two; the protected ones are not picked again.
        let mut p = Protect {
            each: Some(usize::MAX),
            ..Protect::new(addr, &[])?
        };
        assert_eq!(walk_uffd_wp(addr, end, &mut p)?, Continue(()));
        assert_eq!(p.taken, 2);
        assert_eq!(take_flush(), (addr + 4 * PAGE_SIZE, addr + 7 * PAGE_SIZE));
        let entries = ptes(addr, end)?;
        assert!([1, 2, 4, 6].iter().all(|&page| uffd(entries[page])));
        assert!(entries[0].is_some_and(Pte::is_none));
        Ok(())
    }

    #[test]
    fn picks_entries_across_rounds_of_the_search() -> Result {
        // 21 pages within one PTE table: rounds of eight entries while eight are left, then one
        // by one.
        let mapped = vm_mmap(64 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        let pmd_end = (mapped | (PMD_SIZE - 1)) + 1;
        let addr = if mapped + 21 * PAGE_SIZE <= pmd_end {
            mapped
        } else {
            pmd_end
        };
        let end = addr + 21 * PAGE_SIZE;
        let pages = [8, 9, 15, 16, 20];
        for page in pages {
            touch(addr + page * PAGE_SIZE)?;
        }
        register_uffd_wp(mapped)?;
        take_flush();
        // A round from 0 picks nothing, the next one, from 8, picks its first entry; a round
        // starts where the last pick left off: 9 from 9, and 15, the third, from 10, which stops
        // the walk.
        let mut p = Protect {
            each: Some(2),
            ..Protect::new(addr, &[])?
        };
        assert_eq!(walk_uffd_wp(addr, end, &mut p)?, Break(()));
        assert_eq!(p.taken, 3);
        assert_eq!(take_flush(), (addr + 8 * PAGE_SIZE, addr + 10 * PAGE_SIZE));
        let entries = ptes(addr, end)?;
        for (page, &entry) in entries.iter().enumerate() {
            assert_eq!(uffd(entry), [8, 9].contains(&page));
        }
        // The rest: 15, the last entry of a round from 8 (8 and 9 are protected already), then
        // 16 and 20 one by one, with fewer than eight entries left for a round.
        let mut p = Protect {
            each: Some(usize::MAX),
            ..Protect::new(addr, &[])?
        };
        assert_eq!(walk_uffd_wp(addr, end, &mut p)?, Continue(()));
        assert_eq!(p.taken, 3);
        assert_eq!(take_flush(), (addr + 15 * PAGE_SIZE, end));
        let entries = ptes(addr, end)?;
        for (page, &entry) in entries.iter().enumerate() {
            assert_eq!(uffd(entry), pages.contains(&page));
        }
        Ok(())
    }

    #[test]
    fn flushes_before_unlock_on_an_error_return() -> Result {
        let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        let end = addr + 8 * PAGE_SIZE;
        for page in 0..8 {
            touch(addr + page * PAGE_SIZE)?;
        }
        register_uffd_wp(addr)?;
        take_flush();
        let mut p = Protect {
            fail: Some(ENOSPC),
            ..Protect::new(addr, &[3, 4])?
        };
        assert_eq!(walk_uffd_wp(addr, end, &mut p), Err(ENOSPC));
        // The walker returned an error with two entries protected: the guard flushed them.
        assert_eq!(take_flush(), (addr + 3 * PAGE_SIZE, addr + 5 * PAGE_SIZE));
        let ptes = ptes(addr, end)?;
        assert!(uffd(ptes[3]) && uffd(ptes[4]) && !uffd(ptes[5]));
        Ok(())
    }

    #[cfg(CONFIG_TRANSPARENT_HUGEPAGE)]
    #[test]
    fn protects_whole_huge_pages_only() -> Result {
        let map = vm_mmap(2 * PMD_SIZE, prot::READ | prot::WRITE)?;
        let start = map.next_multiple_of(PMD_SIZE);
        let end = start + PMD_SIZE;
        touch(start)?;
        register_uffd_wp(start)?;
        take_flush();

        // Part of a huge page cannot be protected: the walk fails, nothing changed.
        let mut p = Protect::new(start, &[0])?;
        assert_eq!(walk_uffd_wp(start, start + PAGE_SIZE, &mut p), Err(EINVAL));
        assert_eq!(take_flush(), (0, 0));

        let mut p = Protect::new(start, &[0])?;
        assert_eq!(walk_uffd_wp(start, end, &mut p)?, Continue(()));
        assert_eq!(take_flush(), (start, end));
        // Split for the check: every page of the huge page has the protection.
        let ptes = ptes(start, end)?;
        assert_eq!(ptes.len(), PMD_SIZE / PAGE_SIZE);
        assert!(ptes
            .iter()
            .all(|pte| pte.is_some_and(|p| p.is_uffd() && !p.is_write())));
        Ok(())
    }

    #[test]
    fn protects_holes_within_them_only() -> Result {
        // A huge-page aligned range where nothing was ever mapped: one hole, no PTE table.
        let map = vm_mmap(2 * PMD_SIZE, prot::READ | prot::WRITE)?;
        let start = map.next_multiple_of(PMD_SIZE);
        let end = start + PMD_SIZE;

        // Not registered, or not a walk for write protection: no view.
        let mut p = ProtectHoles::new()?;
        assert_eq!(walk_uffd_wp(start, end, &mut p)?, Continue(()));
        assert_eq!(p.holes.as_slice(), &[(start, end, None)]);
        register_uffd_wp(start)?;
        let mut p = ProtectHoles::new()?;
        assert_eq!(super::walk::walk(start, end, &mut p)?, Continue(()));
        assert_eq!(p.holes.as_slice(), &[(start, end, None)]);

        // Both: a range past the hole or not page-aligned is refused, the hole is protected.
        let mut p = ProtectHoles::new()?;
        assert_eq!(walk_uffd_wp(start, end, &mut p)?, Continue(()));
        assert_eq!(
            p.holes.as_slice(),
            &[(start, end, Some([Err(EINVAL), Err(EINVAL), Ok(())]))]
        );
        // An anonymous VMA without `UFFD_FEATURE_WP_UNPOPULATED` gets no markers, so no table
        // was allocated for them.
        assert!(ptes(start, end)?.iter().all(Option::is_none));
        Ok(())
    }

    #[test]
    fn protects_within_a_vma_looked_up_once() -> Result {
        let addr = vm_mmap(8 * PAGE_SIZE, prot::READ | prot::WRITE)?;
        let end = addr + 8 * PAGE_SIZE;
        for page in [1, 2] {
            touch(addr + page * PAGE_SIZE)?;
        }
        register_uffd_wp(addr)?;
        let current = crate::current!();
        let mm = current.mm().ok_or(ESRCH)?;
        let guard = mm.mmap_read_lock();
        let vma = guard.vma_lookup(addr).ok_or(EINVAL)?;

        // An empty range, or one outside the VMA: refused.
        let mut p = Protect::new(addr, &[2])?;
        let vend = vma.end();
        assert!(guard.walk_vma_range_uffd_wp(vma, addr, addr, &mut p) == Err(EINVAL));
        let outside = guard.walk_vma_range_uffd_wp(vma, vend, vend + PAGE_SIZE, &mut p);
        assert!(outside == Err(EINVAL));
        // Page 2 is protected, and flushed before the unlock; page 1 is left as it was.
        take_flush();
        assert_eq!(
            guard.walk_vma_range_uffd_wp(vma, addr, end, &mut p)?,
            Continue(())
        );
        assert_eq!(take_flush(), (addr + 2 * PAGE_SIZE, addr + 3 * PAGE_SIZE));
        drop(guard);
        let ptes = ptes(addr, end)?;
        assert!(uffd(ptes[2]) && !uffd(ptes[1]) && !uffd(ptes[0]));
        Ok(())
    }
}

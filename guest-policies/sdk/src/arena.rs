//! An allocator for policies whose allocations live no longer than one
//! decision: see [`DecisionArena`].

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes in a WebAssembly page.
const PAGE_BYTES: usize = 65_536;

unsafe extern "C" {
    /// Where the linker ends the stack and static data: the heap's start.
    static __heap_base: u8;
}

/// A bump allocator for a policy's `#[global_allocator]`.
///
/// edgepbx runs every decision in a fresh instance and discards its memory
/// afterwards, so a policy's allocator never needs to give memory back to
/// anyone: this one hands out the memory after the policy's static data in
/// order, reuses a block only when it is the latest one freed or grown,
/// and grows the linear memory when it runs out. Compared with Rust's
/// default allocator it has no set-up in each fresh instance, no
/// bookkeeping, and touches fewer pages, which edgepbx then has fewer of to
/// reset. The built-in policy uses it.
///
/// The trade: memory freed out of order is not reused within a decision. A
/// policy that allocates and frees in a loop, many times over its memory
/// limit (looking up every member of a large group with
/// [`Host::extension`](crate::Host::extension), say, where
/// [`Host::status`](crate::Host::status) would do), should keep the
/// default allocator.
///
/// ```ignore
/// #[global_allocator]
/// static ALLOCATOR: edgepbx_policy_sdk::DecisionArena = edgepbx_policy_sdk::DecisionArena::new();
/// ```
#[derive(Debug, Default)]
pub struct DecisionArena {
    /// The first free byte; 0 before the first allocation.
    next: AtomicUsize,
}

impl DecisionArena {
    /// An arena that starts at the heap's base on its first allocation.
    pub const fn new() -> DecisionArena {
        DecisionArena {
            next: AtomicUsize::new(0),
        }
    }

    /// The first free byte.
    fn next(&self) -> usize {
        match self.next.load(Ordering::Relaxed) {
            0 => (&raw const __heap_base).addr(),
            next => next,
        }
    }

    /// Makes the memory below `end` usable and moves the free space there;
    /// false when the memory cannot grow that far.
    fn claim_until(&self, end: usize) -> bool {
        let available = wasm32::memory_size(0).saturating_mul(PAGE_BYTES);
        if end > available {
            let pages = (end - available).div_ceil(PAGE_BYTES);
            if wasm32::memory_grow(0, pages) == usize::MAX {
                return false;
            }
        }
        self.next.store(end, Ordering::Relaxed);
        true
    }
}

// SAFETY: every block handed out lies between the heap's base and the end
// of the linear memory, is aligned as asked (`align` is a power of two),
// and does not overlap a live block: `next` only moves back over a block
// that its owner freed or resized. A policy's component is single-threaded,
// so `next` is never updated concurrently.
unsafe impl GlobalAlloc for DecisionArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(start) = self.next().checked_next_multiple_of(layout.align()) else {
            return null_mut();
        };
        match start.checked_add(layout.size()) {
            Some(end) if self.claim_until(end) => core::ptr::with_exposed_provenance_mut(start),
            _ => null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Only the latest block can be given back.
        if ptr.addr() + layout.size() == self.next() {
            self.next.store(ptr.addr(), Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The latest block grows or shrinks in place.
        if ptr.addr() + layout.size() == self.next() {
            return match ptr.addr().checked_add(new_size) {
                Some(end) if self.claim_until(end) => ptr,
                _ => null_mut(),
            };
        }
        // A block shrinks where it is.
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees that `new_size`, rounded up to
        // `layout.align()`, does not overflow.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size, as the caller guarantees.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, at least this long, and
            // disjoint: the new one lies past every block handed out.
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

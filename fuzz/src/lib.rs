//! Shared helpers of the fuzz targets: an allocator that counts, so a target can check that a parser's
//! allocations stay within a bound of its input's size, and the fixed keys the verifying targets use.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes live now and the most live since the last [`peak_during`].
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grow(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grow(new_size);
        }
        new
    }
}

fn grow(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it held allocated at once (beyond what was live
/// before). libFuzzer runs one input at a time, so the counters see only `f`'s allocations.
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = f();
    (result, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

/// Asserts that `f` never holds more than `per_byte` × `input_len` + `slack` bytes at once.
pub fn bounded<R>(what: &str, input_len: usize, per_byte: usize, slack: usize, f: impl FnOnce() -> R) -> R {
    let (result, peak) = peak_during(f);
    let limit = per_byte * input_len + slack;
    assert!(peak <= limit, "{what}: {peak} bytes allocated at once for a {input_len}-byte input (bound {limit})");
    result
}

/// The public key of the cosign 2.5 fixtures (tests/fixtures/third-party/cosign-2.5/signer.pub).
pub const COSIGN_KEY_PEM: &str = include_str!("../../tests/fixtures/third-party/cosign-2.5/signer.pub");

/// The signed DSSE envelope of the cosign 2.5 fixtures: the only envelope that key's signature covers.
pub const COSIGN_ENVELOPE: &[u8] = include_bytes!("../../tests/fixtures/third-party/cosign-2.5/att-dsse-envelope.json");

//! The memory budget's meter: the process allocator, wrapped to count the bytes it
//! holds, so every value a script keeps (map keys, strings, captured variables,
//! curried arguments, emitted records, staged changes) is counted without the engine
//! having to know its shape.
//!
//! Rhai's own size limits measure one value at a time and re-walk a whole array or
//! map after each change to it, which is quadratic in its size; the meter costs one
//! atomic add per allocation and one load per operation.

use std::alloc::System;

use cap::Cap;

/// The allocator of every ocsh binary, with no limit of its own: the sandbox compares
/// its count with the budget between operations, where a script can be stopped with
/// a clear error instead of an abort.
#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Bytes held by the process now.
pub fn allocated() -> usize {
    ALLOCATOR.allocated()
}

/// The most bytes the process held at any time.
pub fn peak() -> usize {
    ALLOCATOR.max_allocated()
}

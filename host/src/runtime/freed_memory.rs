//! Giving the memory a module load freed back to the operating system.
//!
//! Loading a module handles a few large buffers once: the module's bytes
//! (19.5 MB for a Python component), its compiled artifact read from the
//! cache (41 MB) before wasmtime copies it into executable memory, and the
//! compiler's scratch on a cache miss. The server's allocator, mimalloc,
//! returns freed memory to the OS only after a delay, and only when some
//! later allocation on the same thread gets round to it. A server that
//! loads its processes at start-up and then waits for requests never gets
//! round to it: it kept 50–57 MB of freed pages resident per Python
//! process, for good (BENCHMARKS.md, "Memory of loaded Python processes").
//!
//! [`release`] asks mimalloc to collect the calling thread's free pages
//! and to purge every arena's freed ranges now. It costs `madvise` calls,
//! which is why it runs once per load, not on the job path. It is called
//! on the threads that freed the buffers: a thread's own free pages are
//! only collected by that thread.
//!
//! In a binary whose global allocator is not mimalloc (the library's
//! tests and benches use the system allocator), mimalloc holds nothing
//! and the call does no harm.

/// Return what mimalloc holds freed but resident to the OS (see the
/// module docs): called by a module load on its compiling thread, and by
/// the registry once it has stored a new module's bytes.
pub(crate) fn release() {
    // SAFETY: `mi_collect` takes no pointers and is safe to call from any
    // thread at any time; it only frees memory mimalloc already considers
    // free.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
}

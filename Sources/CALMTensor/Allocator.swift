import CAllocator

/// Process-wide allocator tuning for tensor workloads.
public enum Allocator {
    /// Keeps freed tensor buffers in the heap instead of returning them to the kernel, which
    /// otherwise costs page faults and zeroing for every large temporary (measured: a third of
    /// a training step's time at the benchmark's M shapes). Call once at start-up.
    public static func keepFreedMemory() {
        calm_keep_freed_memory()
    }
}

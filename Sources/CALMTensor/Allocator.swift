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

extension Array where Element == Float {
    /// An array whose contents the caller overwrites completely (e.g. a GEMM output with
    /// beta = 0), so the zero fill of `init(repeating:count:)` is skipped.
    @inline(__always)
    static func uninitialized(count: Int, _ fill: (UnsafeMutableBufferPointer<Float>) -> Void) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            fill(buffer)
            initialized = count
        }
    }
}

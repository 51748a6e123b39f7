import CAllocator
import Glibc

/// Process-wide allocator tuning for tensor workloads.
public enum Allocator {
    /// Keeps freed tensor buffers in the heap instead of returning them to the kernel, which
    /// otherwise costs page faults and zeroing for every large temporary (measured: a third of
    /// a training step's time at the benchmark's M shapes). Call once at start-up.
    public static func keepFreedMemory() {
        calm_keep_freed_memory()
    }
}

/// What a stretch of work took from the kernel: page faults (first touches of fresh memory)
/// and heap growth. Zero for both means every buffer came from memory already resident.
public struct MemoryTraffic {
    public var pageFaults: Int
    public var heapGrowthBytes: Int

    public init(pageFaults: Int, heapGrowthBytes: Int) {
        self.pageFaults = pageFaults
        self.heapGrowthBytes = heapGrowthBytes
    }

    /// Runs `body` and counts both over it.
    public static func measure(_ body: () -> Void) -> MemoryTraffic {
        let (faults, heap) = (minorFaults(), calm_heap_bytes_from_kernel())
        body()
        return MemoryTraffic(pageFaults: minorFaults() - faults, heapGrowthBytes: Int(calm_heap_bytes_from_kernel()) - Int(heap))
    }

    private static func minorFaults() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_minflt
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

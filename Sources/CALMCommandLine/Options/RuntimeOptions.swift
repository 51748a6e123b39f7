import ArgumentParser
import CALMTensor

/// Options every compute-heavy command shares.
struct RuntimeOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Threads for matrix products, attention and element-wise work (default: all cores).")
    var threads: Int?

    func apply() throws {
        if let threads {
            try OptionCheck.atLeast(threads, 1, "--threads")
            BLAS.setThreads(threads)
        }
    }
}

import ArgumentParser
import CALMTensor

/// Options every compute-heavy command shares.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "OpenBLAS threads (default: all cores).")
    var threads: Int?

    func apply() throws {
        if let threads {
            guard threads > 0 else { throw CLIError("--threads must be positive") }
            BLAS.setThreads(threads)
        }
    }
}

import CALMCheckpoint
import Foundation

/// Runs `calm` under Open MPI's `mpirun` for the data-parallel tests, and compares what runs wrote.
enum MPIRunner {
    static let mpirun: String? = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var available: Bool { mpirun != nil }

    /// Options every test job needs: root is allowed in CI containers, more ranks than cores are
    /// fine, and a missing InfiniBand or high-speed interface stays quiet.
    static let common = ["--allow-run-as-root", "--oversubscribe", "--mca", "btl", "self,vader,tcp", "--bind-to", "none"]

    /// `mpirun -np N calm ARGS`, or one rank per entry of `programs` (`mpirun -np 1 calm A : -np 1 calm B`).
    static func run(ranks: Int, _ arguments: [String], environment: [String: String] = [:],
                    programs: [[String]]? = nil) throws -> CLI.Result {
        let job = try start(ranks: ranks, arguments, environment: environment, programs: programs)
        job.process.waitUntilExit()
        return try job.result()
    }

    /// A started job whose output goes to files (so a test can watch it while it runs).
    struct Job {
        let process: Process
        let output: String
        func result() throws -> CLI.Result {
            CLI.Result(status: process.terminationStatus,
                       stdout: (try? String(contentsOfFile: output + ".out", encoding: .utf8)) ?? "",
                       stderr: (try? String(contentsOfFile: output + ".err", encoding: .utf8)) ?? "")
        }
    }

    static func start(ranks: Int, _ arguments: [String], environment: [String: String] = [:], programs: [[String]]? = nil,
                      launcher: [String] = []) throws -> Job {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: mpirun ?? "mpirun")
        var args = common + launcher
        if let programs {
            for (i, program) in programs.enumerated() {
                args += (i > 0 ? [":"] : []) + ["-np", "1", CLI.executable] + program
            }
        } else {
            args += ["-np", "\(ranks)", CLI.executable] + arguments
        }
        process.arguments = args
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = try makeTemporaryDirectory() + "/mpirun"
        _ = FileManager.default.createFile(atPath: output + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: output + ".err", contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: output + ".out")
        process.standardError = FileHandle(forWritingAtPath: output + ".err")
        try process.run()
        return Job(process: process, output: output)
    }

    /// Largest relative difference between two compositions' bridge tensors: per tensor,
    /// the norm of the difference over the norm of the second (float32 summation order
    /// changes single elements of near-zero-gradient weights more, see README).
    static func largestRelativeDifference(_ a: String, _ b: String) throws -> Double {
        let first = try HDF5File.open(a), second = try HDF5File.open(b)
        let names = try first.children(of: CheckpointFormat.tensorsGroup).sorted()
        guard names == (try second.children(of: CheckpointFormat.tensorsGroup).sorted()), !names.isEmpty else {
            throw CLITests.CLIFailure("\(a) and \(b) hold different tensors")
        }
        var worst = 0.0
        for name in names {
            let x = try first.readFloats("\(CheckpointFormat.tensorsGroup)/\(name)").1
            let y = try second.readFloats("\(CheckpointFormat.tensorsGroup)/\(name)").1
            let difference = zip(x, y).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            let norm = y.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            worst = max(worst, difference / max(norm, 1e-30))
        }
        return worst
    }

    /// The per-step training losses saved in a checkpoint's resumable state.
    static func losses(_ path: String) throws -> [Float] {
        let file = try HDF5File.open(path)
        guard let json = try file.stringAttribute("progress", of: CheckpointFormat.trainingGroup),
              let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let losses = object["losses"] as? [Double] else { throw CLITests.CLIFailure("\(path): no saved losses") }
        return losses.map(Float.init)
    }

    /// Process ids of mpirun's children that are rank `rank` (read from their environment).
    static func pids(ofRank rank: Int, under parent: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, Int32(fields[1]) == parent,
                  let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return environ.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=\(rank)" }
        }
    }
}

import Foundation
import Testing

/// `mpirun -np 2 calm compose` against one process (issue 12). Needs Open MPI's mpirun
/// (scripts/setup.sh installs it); without it the suite is skipped.
@Suite("calm compose under mpirun", .serialized, .enabled(if: MPIRunner.available, "Open MPI's mpirun is not installed"))
struct MPICLITests {
    /// A random anchor and expert (`pretrain --steps 0`) sharing a tokenizer, the expert registered, and a small D_C.
    static let setup: Result<String, any Error> = Result {
        let dir = try makeTemporaryDirectory()
        func write(_ name: String, _ lines: [String]) throws {
            try lines.joined(separator: "\n").write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8)
        }
        let keys = Array("abcdefgh").map(String.init)
        try write("vocab.txt", ["abcdefgh0123456789 +=>"])
        try write("dc.jsonl", (0..<40).map { "{\"prompt\": \"\(keys[$0 % 8]) + \($0 % 10) =\", \"completion\": \" \(($0 * 7) % 10)\"}" })
        // The same records but one: what a rank with another copy of D_C would read.
        try write("dc-other.jsonl", (0..<40).map { "{\"prompt\": \"\(keys[$0 % 8]) + \($0 % 10) =\", \"completion\": \" \($0 == 5 ? 1 : ($0 * 7) % 10)\"}" })
        for (name, tokenizer, seed) in [("anchor", "vocab.txt", "1"), ("expert", "anchor.h5", "2")] {
            let r = try CLI.run(["pretrain", "--data", "\(dir)/dc.jsonl", "--output", "\(dir)/\(name).h5", "--steps", "0", "--layers", "2",
                                 "--hidden", "32", "--heads", "2", "--seq-len", "16", "--seed", seed,
                                 "--tokenizer-from", "\(dir)/\(tokenizer)"])
            guard r.status == 0 else { throw CLITests.CLIFailure(r.stderr) }
        }
        let reg = try CLI.run(["experts", "register", "\(dir)/expert.h5", "--name", "kv", "--domain", "kv", "--registry", "\(dir)/experts"])
        guard reg.status == 0 else { throw CLITests.CLIFailure(reg.stderr) }
        return dir
    }

    static func compose(_ dir: String, output: String, steps: Int = 20, data: String = "dc.jsonl", extra: [String] = []) -> [String] {
        ["compose", "--anchor", "\(dir)/anchor.h5", "--expert", "kv", "--registry", "\(dir)/experts", "--data", "\(dir)/\(data)",
         "--output", "\(dir)/\(output)", "--steps", "\(steps)", "--batch-size", "8", "--lr", "1e-4", "--warmup", "2",
         "--connections", "0:1,1:1", "--threads", "1"] + extra
    }

    static func expectClose(_ a: [Float], _ b: [Float], _ what: String) {
        #expect(a.count == b.count, "\(what): \(a.count) against \(b.count) losses")
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-5 * abs(y), "\(what): loss \(x) against \(y)") }
    }

    @Test(arguments: ["--no-activation-cache", "--activation-cache"])
    func twoRanksTrainLikeOneProcess(cache: String) throws {
        let dir = try Self.setup.get()
        let single = try CLI.run(Self.compose(dir, output: "one\(cache).h5", extra: [cache]))
        #expect(single.status == 0, "\(single.stderr)")
        let parallel = try MPIRunner.run(ranks: 2, Self.compose(dir, output: "two\(cache).h5", extra: [cache]))
        #expect(parallel.status == 0, "\(parallel.stderr)")
        // Rank 0 alone reports.
        #expect(parallel.stderr.components(separatedBy: "data parallel over 2 ranks").count == 2, "\(parallel.stderr)")
        #expect(parallel.stdout.components(separatedBy: "trainable parameters").count == 2)
        let difference = try MPIRunner.largestRelativeDifference("\(dir)/two\(cache).h5", "\(dir)/one\(cache).h5")
        #expect(difference <= 1e-5, "bridges differ by \(difference) relative")
        Self.expectClose(try MPIRunner.losses("\(dir)/two\(cache).h5"), try MPIRunner.losses("\(dir)/one\(cache).h5"), "2 ranks")
        // The check can fail: one rank's half of every batch alone trains visibly different bridges.
        let half = try CLI.run(Self.compose(dir, output: "half\(cache).h5", extra: [cache, "--batch-size", "4"]))
        #expect(half.status == 0)
        #expect(try MPIRunner.largestRelativeDifference("\(dir)/half\(cache).h5", "\(dir)/one\(cache).h5") > 1e-3)
    }

    @Test func aRankWithAnotherDataSetStopsEveryRank() throws {
        let dir = try Self.setup.get()
        let result = try MPIRunner.run(ranks: 2, [], programs: [Self.compose(dir, output: "mixed.h5"),
                                                               Self.compose(dir, output: "mixed.h5", data: "dc-other.jsonl")])
        #expect(result.status != 0)
        #expect(result.stderr.components(separatedBy: "Error: ").count == 2, "\(result.stderr)")
        #expect(result.stderr.contains("Error: ranks disagree on the training data: rank 1"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/mixed.h5"))
    }

    @Test func aFailedSetupOnOneRankStopsEveryRank() throws {
        let dir = try Self.setup.get()
        let result = try MPIRunner.run(ranks: 2, [], programs: [Self.compose(dir, output: "missing.h5"),
                                                               Self.compose(dir, output: "missing.h5", data: "absent.jsonl")])
        #expect(result.status != 0)
        #expect(result.stderr.contains("Error: rank 1 of 2 ("), "\(result.stderr)")
        #expect(result.stderr.contains("absent.jsonl: cannot read the file"), "\(result.stderr)")
    }

    /// Kills (SIGKILL) or stops (SIGSTOP, a hung peer) rank 1 while training; the job must end
    /// on its own. A generous limit only keeps a broken build from hanging the suite.
    @Test(arguments: [SIGKILL, SIGSTOP])
    func aLostRankEndsTheJob(signal: Int32) throws {
        let dir = try Self.setup.get()
        let job = try MPIRunner.start(ranks: 2, Self.compose(dir, output: "lost.h5", steps: 1_000_000, extra: ["--log-every", "1"]),
                                      environment: ["CALM_MPI_TIMEOUT": "3"])
        var victims: [Int32] = []
        for _ in 0..<600 where job.process.isRunning {
            let progress = (try? String(contentsOfFile: job.output + ".err", encoding: .utf8)) ?? ""
            victims = MPIRunner.pids(ofRank: 1, under: job.process.processIdentifier)
            if progress.contains("step 5/"), !victims.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(!victims.isEmpty, "rank 1 never started training: \((try? job.result().stderr) ?? "")")
        for pid in victims { kill(pid, signal) }
        let limit = Date().addingTimeInterval(120)
        while job.process.isRunning && Date() < limit { Thread.sleep(forTimeInterval: 0.1) }
        if job.process.isRunning { job.process.terminate() }
        for pid in victims { kill(pid, SIGKILL) }  // in case mpirun left a stopped rank behind
        job.process.waitUntilExit()
        let result = try job.result()
        #expect(result.status != 0)
        if signal == SIGSTOP {
            #expect(result.stderr.contains("no answer from the other ranks for 3 s"), "\(result.stderr)")
        } else {
            #expect(result.stderr.contains("signal 9"), "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/lost.h5"))
    }

    /// The saved state is the global step and data position, so a run started on 2 ranks and
    /// resumed by one process follows the same loss curve as one started and resumed by one process.
    @Test func resumeOnFewerProcessesContinuesTheSameCurve() throws {
        let dir = try Self.setup.get()
        #expect(try CLI.run(Self.compose(dir, output: "a10.h5", steps: 10)).status == 0)
        #expect(try CLI.run(Self.compose(dir, output: "a20.h5", extra: ["--resume", "\(dir)/a10.h5"])).status == 0)
        let first = try MPIRunner.run(ranks: 2, Self.compose(dir, output: "b10.h5", steps: 10))
        #expect(first.status == 0, "\(first.stderr)")
        let resumed = try CLI.run(Self.compose(dir, output: "b20.h5", extra: ["--resume", "\(dir)/b10.h5"]))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        Self.expectClose(try MPIRunner.losses("\(dir)/b20.h5"), try MPIRunner.losses("\(dir)/a20.h5"), "resumed 2 -> 1")
        #expect(try MPIRunner.largestRelativeDifference("\(dir)/b20.h5", "\(dir)/a20.h5") <= 1e-5)
    }

    @Test func pretrainOnTwoRanksTrainsLikeOneProcess() throws {
        let dir = try Self.setup.get()
        func pretrain(_ output: String) -> [String] {
            ["pretrain", "--data", "\(dir)/dc.jsonl", "--output", "\(dir)/\(output)", "--steps", "20", "--batch-size", "8",
             "--layers", "1", "--hidden", "32", "--heads", "2", "--seq-len", "16", "--lr", "1e-4", "--warmup", "2",
             "--tokenizer-from", "\(dir)/vocab.txt", "--threads", "1"]
        }
        #expect(try CLI.run(pretrain("p1.h5")).status == 0)
        let parallel = try MPIRunner.run(ranks: 2, pretrain("p2.h5"))
        #expect(parallel.status == 0, "\(parallel.stderr)")
        #expect(try MPIRunner.largestRelativeDifference("\(dir)/p2.h5", "\(dir)/p1.h5") <= 1e-5)
        Self.expectClose(try MPIRunner.losses("\(dir)/p2.h5"), try MPIRunner.losses("\(dir)/p1.h5"), "pretrain")
    }

    /// As between two hosts: one rank in each of two network namespaces joined by a veth pair,
    /// Open MPI's TCP transport between them (scripts/mpi_netns.sh).
    @Test(.enabled(if: NetworkNamespaces.available, "network namespaces cannot be created here (needs root and iproute2)"))
    func twoNamespacesOverTCPTrainLikeOneProcess() throws {
        let dir = try Self.setup.get()
        #expect(try CLI.run(Self.compose(dir, output: "local.h5")).status == 0)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["\(CLI.root)/scripts/mpi_netns.sh", CLI.executable] + Self.compose(dir, output: "netns.h5")
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains("data parallel over 2 ranks"))
        #expect(try MPIRunner.largestRelativeDifference("\(dir)/netns.h5", "\(dir)/local.h5") <= 1e-5)
        Self.expectClose(try MPIRunner.losses("\(dir)/netns.h5"), try MPIRunner.losses("\(dir)/local.h5"), "namespaces")
    }
}

/// Whether this process may create network namespaces (root with iproute2).
enum NetworkNamespaces {
    static let available: Bool = {
        func ip(_ arguments: [String]) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["ip"] + arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        let name = "calm-probe-\(ProcessInfo.processInfo.processIdentifier)"
        guard ip(["netns", "add", name]) else { return false }
        _ = ip(["netns", "del", name])
        return true
    }()
}

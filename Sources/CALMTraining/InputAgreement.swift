import CALMSupport
import Foundation

/// The start-up check of a data-parallel run: every rank describes its inputs (model hashes,
/// data, options, initial training state) as named digests, or the error that stopped its
/// set-up, and every rank compares all of them with rank 0's. Any failure or difference stops
/// every rank with the same message, so nothing trains on mismatched inputs and no rank waits
/// for a peer that gave up.
public enum InputAgreement {
    public struct Fingerprint: Codable, Sendable, Equatable {
        public var name: String
        public var digest: String
        public init(_ name: String, _ digest: String) {
            self.name = name
            self.digest = digest
        }
    }

    struct Report: Codable {
        var host: String
        var fingerprints: [Fingerprint]?
        var failure: String?
    }

    /// Throws `AgreedFailure` on every rank when a rank's set-up failed or its inputs differ.
    public static func check(_ local: Result<[Fingerprint], any Error>, group: any DataParallelGroup) throws {
        var report = Report(host: hostName())
        switch local {
        case .success(let fingerprints): report.fingerprints = fingerprints
        case .failure(let error): report.failure = "\(error)"
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let gathered = try group.gather(Array(try encoder.encode(report)), patient: true)
        let reports = try gathered.map { try JSONDecoder().decode(Report.self, from: Data($0)) }
        if let message = disagreement(reports) { throw AgreedFailure(message) }
    }

    /// The message for the first failure or difference among `reports` (indexed by rank).
    static func disagreement(_ reports: [Report]) -> String? {
        let failures = reports.enumerated().compactMap { rank, report in report.failure.map { (rank, $0) } }
        if let (rank, message) = failures.first {
            // The same error everywhere (a bad option, a missing shared file) reads as usual.
            if failures.count == reports.count && Set(failures.map(\.1)).count == 1 { return message }
            return "rank \(rank) of \(reports.count) (\(reports[rank].host)): \(message)"
        }
        let reference = reports[0].fingerprints ?? []
        for (rank, report) in reports.enumerated().dropFirst() {
            let mine = report.fingerprints ?? []
            for (index, expected) in reference.enumerated() {
                let actual = index < mine.count ? mine[index] : nil
                guard actual != expected else { continue }
                return "ranks disagree on the \(expected.name): rank \(rank) (\(report.host)) has \(short(actual?.digest)), "
                    + "rank 0 (\(reports[0].host)) has \(short(expected.digest)); every rank must start from the same models, data and options"
            }
            if mine.count != reference.count { return "rank \(rank) (\(report.host)) describes other inputs than rank 0" }
        }
        return nil
    }

    /// gethostname(2), without the name lookups Foundation's `hostName` may make.
    public static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "unknown host" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func short(_ digest: String?) -> String {
        guard let digest else { return "nothing" }
        return digest.count > 16 ? "sha256 " + digest.prefix(12) + "..." : digest
    }

    // MARK: Digests of common inputs

    public static func digest(ofExamples examples: [Example]) -> String {
        var hasher = ContentDigest()
        for example in examples {
            let record = [Int64(example.ids.count)] + example.ids.map(Int64.init) + example.lossMask.map { $0 ? 1 : 0 }
            record.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize()
    }

    public static func digest(ofArrays arrays: [[Float]]) -> String {
        var hasher = ContentDigest()
        for array in arrays {
            var count = Int64(array.count)
            withUnsafeBytes(of: &count) { hasher.update($0) }
            array.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize()
    }

    public static func digest<T: Encodable>(ofJSON value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return ContentDigest.hex(of: Array(try encoder.encode(value)))
    }
}

extension Trainer {
    /// What every rank must share before training: data, options, weights being trained and
    /// optimizer state (fresh or resumed).
    public func fingerprints() throws -> [InputAgreement.Fingerprint] {
        var items = [
            InputAgreement.Fingerprint("training data", InputAgreement.digest(ofExamples: train.examples)),
            InputAgreement.Fingerprint("training options and data position", try InputAgreement.digest(ofJSON: progress)),
            InputAgreement.Fingerprint("trained weights", InputAgreement.digest(ofArrays: parameters.map(\.tensor.data))),
            InputAgreement.Fingerprint("optimizer state", InputAgreement.digest(ofArrays: optimizer.firstMoments + optimizer.secondMoments
                                                                                 + [[Float(optimizer.stepCount)]])),
            InputAgreement.Fingerprint("batch sharding", sharding.rawValue),
        ]
        if let eval { items.append(.init("evaluation data", InputAgreement.digest(ofExamples: eval.examples))) }
        return items
    }
}

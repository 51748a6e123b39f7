import Foundation

/// The server's Prometheus metrics, rendered in the text exposition format at `/metrics`.
/// Updated from the scheduler thread and request handlers, hence the locks.
final class ServerMetrics: @unchecked Sendable {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func increment(by amount: Int) { lock.withLock { value += amount } }
        var current: Int { lock.withLock { value } }
    }

    final class Gauge: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0.0
        func set(_ newValue: Double) { lock.withLock { value = newValue } }
        var current: Double { lock.withLock { value } }
    }

    final class Histogram: @unchecked Sendable {
        let bounds: [Double]
        private let lock = NSLock()
        private var counts: [Int]
        private var sum = 0.0
        private var count = 0

        init(bounds: [Double]) {
            self.bounds = bounds
            counts = [Int](repeating: 0, count: bounds.count)
        }

        func observe(_ value: Double) {
            lock.withLock {
                for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
                sum += value
                count += 1
            }
        }

        /// Cumulative bucket counts, sum and count, read together.
        var snapshot: (counts: [Int], sum: Double, count: Int) { lock.withLock { (counts, sum, count) } }
    }

    private let lock = NSLock()
    /// (endpoint, status) -> requests answered.
    private var requests: [String: Int] = [:]
    let promptTokens = Counter()
    let completionTokens = Counter()
    /// Clients whose connection closed while their request was being answered (also when the
    /// last token had already gone out and only the end of the response was left).
    let clientsGone = Counter()
    /// Requests that left the queue or the batch unfinished because their client went away.
    let requestsDropped = Counter()
    let queueDepth = Gauge()
    let batchSize = Gauge()
    let batchSizes = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64, 128])
    let timeToFirstToken = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
    let perTokenLatency = Histogram(bounds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
    /// Bytes of weights held for each resident model (each once, however many compositions use it).
    var residentWeights: [(path: String, bytes: Int)] = []

    func countRequest(endpoint: String, status: Int) {
        lock.withLock { requests["endpoint=\"\(endpoint)\",status=\"\(status)\"", default: 0] += 1 }
    }

    func render() -> String {
        var out = ""
        func header(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        header("calm_requests_total", "counter", "HTTP requests answered, by endpoint and status.")
        for (labels, n) in lock.withLock({ requests }).sorted(by: { $0.key < $1.key }) { out += "calm_requests_total{\(labels)} \(n)\n" }
        header("calm_prompt_tokens_total", "counter", "Prompt tokens prefilled.")
        out += "calm_prompt_tokens_total \(promptTokens.current)\n"
        header("calm_generated_tokens_total", "counter", "Tokens generated.")
        out += "calm_generated_tokens_total \(completionTokens.current)\n"
        header("calm_clients_gone_total", "counter", "Clients whose connection closed while their request was being answered.")
        out += "calm_clients_gone_total \(clientsGone.current)\n"
        header("calm_requests_dropped_total", "counter", "Requests dropped unfinished because their client went away.")
        out += "calm_requests_dropped_total \(requestsDropped.current)\n"
        header("calm_queue_depth", "gauge", "Requests waiting for a decoding slot.")
        out += "calm_queue_depth \(queueDepth.current)\n"
        header("calm_batch_size", "gauge", "Sequences in the running decode batch.")
        out += "calm_batch_size \(batchSize.current)\n"
        histogram("calm_decode_batch_size", "Sequences per decode step.", batchSizes, into: &out)
        histogram("calm_time_to_first_token_seconds", "From request queued to first token.", timeToFirstToken, into: &out)
        histogram("calm_inter_token_latency_seconds", "Between consecutive tokens of one request.", perTokenLatency, into: &out)
        header("calm_resident_weight_bytes", "gauge", "Weights held in memory per distinct model file.")
        for (path, bytes) in residentWeights { out += "calm_resident_weight_bytes{path=\"\(Self.escape(path))\"} \(bytes)\n" }
        return out
    }

    private func histogram(_ name: String, _ help: String, _ h: Histogram, into out: inout String) {
        out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        let (counts, sum, count) = h.snapshot
        for (bound, n) in zip(h.bounds, counts) { out += "\(name)_bucket{le=\"\(bound)\"} \(n)\n" }
        out += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
    }

    static func escape(_ label: String) -> String {
        label.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}

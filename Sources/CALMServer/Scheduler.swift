import CALMComposition
import CALMModels
import Foundation

/// Why a request was not queued.
enum SchedulerRefusal: Error {
    /// `--max-queue` requests are already waiting.
    case queueFull
    /// The server is shutting down.
    case shuttingDown
}

/// A queued request: its events, and how to cancel it.
struct Submission: Sendable {
    let events: AsyncStream<GenerationEvent>
    /// Its client went away: it leaves the queue, or the batch at the next token boundary.
    let cancel: @Sendable () -> Void
}

/// Continuous batching on one dedicated thread (model code is synchronous and not shared
/// across threads). Requests wait in a bounded queue and join the running batch at token
/// boundaries: each step feeds every newcomer's prompt and one token for every other active
/// sequence, packed into one batched step per anchor (sequences of different compositions of
/// one anchor share it), so prompts are prefilled together and alongside the decoding rows.
/// Finished or cancelled sequences leave at once, freeing their slot; cancelled ones still
/// queued leave the queue as soon as the thread wakes.
final class Scheduler: @unchecked Sendable {
    let maxBatch: Int
    let maxQueue: Int
    let metrics: ServerMetrics
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var waiting: [SequenceJob] = []
    private var accepting = true
    private var running = true
    private var paused = false
    private var cancelAllAt: UInt64?
    private var beforeStep: (@Sendable () -> Void)?
    // Scheduler thread only.
    private var active: [SequenceJob] = []
    private var thread: Thread?
    private let stopped = DispatchSemaphore(value: 0)

    init(maxBatch: Int, maxQueue: Int, metrics: ServerMetrics) {
        self.maxBatch = maxBatch
        self.maxQueue = maxQueue
        self.metrics = metrics
    }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "calm-scheduler"
        thread.stackSize = 16 << 20
        self.thread = thread
        thread.start()
    }

    /// Queues a request; its events arrive on the returned stream. Dropping the stream (a
    /// handler cancelled) or calling `cancel` (a client gone) cancels the request at the next
    /// token boundary.
    func submit(_ request: GenerationRequest) throws(SchedulerRefusal) -> Submission {
        let (stream, continuation) = AsyncStream.makeStream(of: GenerationEvent.self)
        let job = SequenceJob(request: request, continuation: continuation)
        let cancel: @Sendable () -> Void = { [weak self, weak job] in
            job?.cancel()
            self?.wake()
        }
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { throw .shuttingDown }
        guard waiting.count < maxQueue else { throw .queueFull }
        continuation.onTermination = { _ in cancel() }
        waiting.append(job)
        metrics.queueDepth.set(Double(waiting.count))
        condition.signal()
        return Submission(events: stream, cancel: cancel)
    }

    /// Requests waiting for a slot.
    var queueDepth: Int { condition.withLock { waiting.count } }

    /// Holds newcomers in the queue (tests fill the queue deterministically with this).
    func setPaused(_ value: Bool) {
        condition.withLock {
            paused = value
            condition.signal()
        }
    }

    /// Test hook: runs on the scheduler thread before each decode step (tests hold steps with it).
    func setBeforeStep(_ hook: (@Sendable () -> Void)?) { condition.withLock { beforeStep = hook } }

    /// Stops taking requests; whatever is still running after `grace` seconds is cut short
    /// (finish reason `cancelled`).
    func beginShutdown(grace: Double) {
        condition.withLock {
            accepting = false
            paused = false
            cancelAllAt = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, grace) * 1e9)
            condition.signal()
        }
    }

    /// Ends the thread once every request has finished (after `beginShutdown`).
    func stop() {
        condition.withLock {
            accepting = false
            running = false
            condition.signal()
        }
        if thread != nil { stopped.wait() }
    }

    private func wake() { condition.withLock { condition.signal() } }

    private func loop() {
        while true {
            condition.lock()
            var gone: [SequenceJob] = []
            while true {
                gone += waiting.filter(\.isCancelled)
                waiting.removeAll(where: \.isCancelled)
                guard gone.isEmpty, running, active.isEmpty, waiting.isEmpty || paused else { break }
                condition.wait()
            }
            let hook = beforeStep
            let newcomers = paused ? [] : Array(waiting.prefix(max(0, maxBatch - active.count)))
            waiting.removeFirst(newcomers.count)
            let cutShort = cancelAllAt.map { DispatchTime.now().uptimeNanoseconds >= $0 } ?? false
            var leftover: [SequenceJob] = []
            if cutShort || !running {
                leftover = waiting
                waiting.removeAll()
            }
            let exit = !running && active.isEmpty && newcomers.isEmpty
            metrics.queueDepth.set(Double(waiting.count))
            condition.unlock()

            for job in gone { drop(job) }
            for job in leftover { job.finish(.cancelled) }
            if exit { break }
            if cutShort {
                for job in active + newcomers { job.finish(.cancelled) }
                active.removeAll()
                continue
            }
            for job in newcomers {
                if job.isCancelled { drop(job); continue }
                job.begin()
                active.append(job)
            }
            active.removeAll { job in
                if job.isCancelled { drop(job) }
                return job.isFinished
            }
            metrics.batchSize.set(Double(active.count))
            guard !active.isEmpty else { continue }
            hook?()
            step()
            active.removeAll(where: \.isFinished)
            metrics.batchSize.set(Double(active.count))
        }
        stopped.signal()
    }

    private func drop(_ job: SequenceJob) {
        guard !job.isFinished else { return }
        job.drop()
        metrics.requestsDropped.increment(by: 1)
    }

    /// The prompt of every newcomer and one token for every other active sequence: one
    /// batched step per anchor.
    private func step() {
        var groups: [ObjectIdentifier: [SequenceJob]] = [:]
        var order: [ObjectIdentifier] = []
        for job in active {
            if groups[job.anchor] == nil { order.append(job.anchor) }
            groups[job.anchor, default: []].append(job)
        }
        metrics.batchSizes.observe(Double(active.count))
        for key in order {
            guard let jobs = groups[key] else { continue }
            let sequences = jobs.compactMap(\.sequence)
            guard sequences.count == jobs.count else { continue }
            let logits = BatchedDecoding.step(anchor: jobs[0].request.model.anchor, feeding: jobs.map(\.pendingTokens),
                                              sequences: sequences)
            for (job, row) in zip(jobs, logits) { job.accept(logits: row, metrics: metrics) }
        }
    }
}

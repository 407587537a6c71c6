import Foundation
import SproutData
import SproutTensor
import SproutTrain

/// Groups concurrent requests into one forward pass, on `inferenceThreads` threads. Each
/// thread has an `ExecutionContext` of its own (its convolution state and an equal share of
/// the cores), so their forward passes run at once; one thread at a time collects a batch.
///
/// A request waits at most `maxWait` for others to join it; a batch holds at most `maxBatch`
/// images, all for the same model, and runs on the version current when it starts.
public final class Batcher: @unchecked Sendable {
    public struct Result: Sendable {
        public let probabilities: [Float]
        public let version: Int
        public let batchSize: Int
    }

    struct Pending {
        let slot: ModelSlot
        let pixels: [UInt8]
        let arrived: Date
        let done: @Sendable (Swift.Result<Result, Error>) -> Void
    }

    public let maxBatch: Int
    public let maxWait: TimeInterval
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var stopped = false
    /// A thread is gathering a batch (the others wait for it to finish).
    private var collecting = false
    public let inferenceThreads: Int
    /// Called with each batch's size (metrics).
    let onBatch: @Sendable (Int) -> Void

    public init(maxBatch: Int = 16, maxWait: TimeInterval = 0.005, inferenceThreads: Int = 1,
                onBatch: @escaping @Sendable (Int) -> Void = { _ in }) {
        precondition(maxBatch >= 1, "Batcher: maxBatch must be at least 1")
        precondition(inferenceThreads >= 1, "Batcher: inferenceThreads must be at least 1")
        (self.maxBatch, self.maxWait, self.onBatch, self.inferenceThreads) = (maxBatch, maxWait, onBatch, inferenceThreads)
        let share = max(1, Threading.count / inferenceThreads)
        for i in 0..<inferenceThreads {
            let t = Thread { [unowned self] in ExecutionContext(threads: share).run { self.run() } }
            t.name = "sprout-inference-\(i)"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    /// Class probabilities for one decoded image ([C, H, W] bytes at the model's
    /// preprocessing size), computed in a batch with whatever else is waiting.
    public func classify(_ pixels: [UInt8], on slot: ModelSlot) async throws -> Result {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(Pending(slot: slot, pixels: pixels, arrived: Date()) { continuation.resume(with: $0) })
        }
    }

    func enqueue(_ p: Pending) {
        condition.lock()
        queue.append(p)
        condition.signal()
        condition.unlock()
    }

    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while (queue.isEmpty || collecting) && !stopped { condition.wait() }
            if stopped && queue.isEmpty { condition.unlock(); return }
            // Wait until the oldest request has waited maxWait, or a batch is full. Only the
            // collecting thread removes requests, so the queue cannot empty under it.
            collecting = true
            let slot = queue[0].slot
            let deadline = queue[0].arrived.addingTimeInterval(maxWait)
            while queue.filter({ $0.slot === slot }).count < maxBatch && Date() < deadline && !stopped {
                _ = condition.wait(until: deadline)
            }
            var batch: [Pending] = []
            var rest: [Pending] = []
            for p in queue {
                if p.slot === slot && batch.count < maxBatch { batch.append(p) } else { rest.append(p) }
            }
            queue = rest
            collecting = false
            condition.broadcast()
            condition.unlock()
            process(batch, slot: slot)
        }
    }

    private func process(_ batch: [Pending], slot: ModelSlot) {
        let version = slot.current
        let shape = version.classifier.preprocessedShape
        let images = ImageDataset(pixels: batch.flatMap(\.pixels), labels: [Int32](repeating: 0, count: batch.count),
                                  channels: shape[0], height: shape[1], width: shape[2],
                                  classNames: version.manifest.classNames, source: "request")
        let probs = version.classifier.probabilities(images).scalars
        do {
            try TensorMemory.checkLimit()
        } catch {
            // This batch went over --max-memory: its requests fail, the server serves on.
            for request in batch { request.done(.failure(error)) }
            return
        }
        let classes = version.manifest.classNames.count
        onBatch(batch.count)
        for (i, request) in batch.enumerated() {
            let row = Array(probs[(i * classes)..<((i + 1) * classes)])
            request.done(.success(Result(probabilities: row, version: version.step, batchSize: batch.count)))
        }
    }
}

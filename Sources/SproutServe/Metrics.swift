import Foundation

/// The server's Prometheus metrics, rendered in the text exposition format at /metrics:
/// requests by endpoint and status, a request-latency histogram, a batch-size histogram and
/// each model's served version.
public final class ServeMetrics: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [String: Int] = [:]          // "endpoint|status" → count
    static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
    private var latencyCounts = [Int](repeating: 0, count: latencyBuckets.count)
    private var latencySum = 0.0, latencyCount = 0
    static let batchBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128]
    private var batchCounts = [Int](repeating: 0, count: batchBuckets.count)
    private var batchSum = 0.0, batchCount = 0
    private var versions: [String: Int] = [:]

    public init() {}

    public func record(endpoint: String, status: Int, seconds: Double) {
        lock.lock()
        defer { lock.unlock() }
        requests["\(endpoint)|\(status)", default: 0] += 1
        for (i, b) in Self.latencyBuckets.enumerated() where seconds <= b { latencyCounts[i] += 1 }
        latencySum += seconds
        latencyCount += 1
    }

    public func recordBatch(size: Int) {
        lock.lock()
        defer { lock.unlock() }
        for (i, b) in Self.batchBuckets.enumerated() where Double(size) <= b { batchCounts[i] += 1 }
        batchSum += Double(size)
        batchCount += 1
    }

    public func setVersion(model: String, step: Int) {
        lock.lock()
        versions[model] = step
        lock.unlock()
    }

    public func requestCount(endpoint: String, status: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return requests["\(endpoint)|\(status)", default: 0]
    }

    public func render() -> String {
        lock.lock()
        defer { lock.unlock() }
        var out = "# HELP sprout_requests_total HTTP requests by endpoint and status code.\n# TYPE sprout_requests_total counter\n"
        for (key, n) in requests.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|", maxSplits: 1)
            out += "sprout_requests_total{endpoint=\"\(parts[0])\",status=\"\(parts[1])\"} \(n)\n"
        }
        out += histogram("sprout_request_duration_seconds", "Request latency in seconds.", Self.latencyBuckets,
                         latencyCounts, latencySum, latencyCount)
        out += histogram("sprout_batch_size", "Images per forward pass.", Self.batchBuckets, batchCounts, batchSum, batchCount)
        out += "# HELP sprout_model_version Checkpoint step being served.\n# TYPE sprout_model_version gauge\n"
        for (model, step) in versions.sorted(by: { $0.key < $1.key }) { out += "sprout_model_version{model=\"\(model)\"} \(step)\n" }
        return out
    }

    private func histogram(_ name: String, _ help: String, _ buckets: [Double], _ counts: [Int], _ sum: Double, _ count: Int) -> String {
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        for (b, c) in zip(buckets, counts) { out += "\(name)_bucket{le=\"\(b)\"} \(c)\n" }
        out += "\(name)_bucket{le=\"+Inf\"} \(count)\n\(name)_sum \(sum)\n\(name)_count \(count)\n"
        return out
    }
}

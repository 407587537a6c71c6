import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Owns one 64-byte-aligned buffer of `Float`s. Buffers come from and go back to a
/// process-wide cache keyed by element count, so a training loop that runs the same
/// shapes every step allocates nothing once warm (a fresh 40 MB buffer costs tens of
/// milliseconds in page faults on this class of machine).
/// Storage knows its device; both devices of this build keep their tensors in host memory,
/// so `pointer` is valid for either (a device with memory of its own will hand out host
/// copies through `Tensor.withData` instead).
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    public let device: Device

    /// A buffer of `count` elements; its contents are undefined unless `zeroed`.
    public init(count: Int, zeroed: Bool = false, device: Device = .current) {
        self.count = count
        self.device = device
        self.pointer = BufferCache.shared.take(count: count)
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    deinit { BufferCache.shared.give(pointer, count: count) }
}

/// Size-bucketed free list of aligned buffers. Bounded by SPROUT_BUFFER_CACHE_MB when set;
/// by default by the peak of tensor memory the process has held (at least 1 GiB, at most
/// half the machine's memory): a training step frees and asks again for the same buffers
/// every step, and when the step's working set exceeded the cache, each step returned
/// gigabytes to the kernel and faulted them back in (mobilenet-v2 at 224 px, batch 32:
/// 17 img/s with a 1 GiB cache, 33 with the whole working set cached).
final class BufferCache: Sendable {
    static let shared = BufferCache()

    private struct State {
        var free: [Int: [UInt]] = [:]   // addresses: raw pointers are not Sendable
        var cachedBytes = 0
        /// Bytes of every buffer allocated and not yet freed (in use or cached).
        var heldBytes = 0
        var peakHeldBytes = 0
        var limitBytes = 0              // 0: no limit
        var overrun: TensorMemoryError?
    }
    private let state = Mutex(State())
    /// nil: adaptive (see above).
    let cacheLimitBytes: Int?
    let physicalBytes: Int

    init() {
        // The first tensor of the process comes through here: the kernels get their settings first.
        RuntimeSettings.applied
        cacheLimitBytes = RuntimeSettings.current.bufferCacheMegabytes.map { $0 << 20 }
        physicalBytes = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func take(count: Int) -> UnsafeMutablePointer<Float> {
        let reused: UInt? = state.withLock { s in
            guard var list = s.free[count], let p = list.popLast() else { return nil }
            s.free[count] = list.isEmpty ? nil : list
            s.cachedBytes -= count * 4
            return p
        }
        if let reused, let p = UnsafeMutablePointer<Float>(bitPattern: reused) { return p }
        reserve(bytes: count * 4)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let raw = UnsafeMutableRawPointer(pointer)
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { s -> Bool in
            let limit = cacheLimitBytes ?? min(max(1 << 30, s.peakHeldBytes), physicalBytes / 2)
            guard s.cachedBytes + count * 4 <= limit else { return false }
            s.free[count, default: []].append(address)
            s.cachedBytes += count * 4
            return true
        }
        if !kept {
            raw.deallocate()
            state.withLock { $0.heldBytes -= count * 4 }
        }
    }

    /// Accounts for a new allocation; over the limit, frees the cache first. Still over, the
    /// allocation goes ahead (allocation sites cannot throw) and the overrun is recorded for
    /// `TensorMemory.checkLimit()`, which the training loop, the server and the CLI call at
    /// each step, batch or command: the library never stops the process.
    private func reserve(bytes: Int) {
        let over = state.withLock { s -> Bool in
            if s.limitBytes > 0 && s.heldBytes + bytes > s.limitBytes { return true }
            s.heldBytes += bytes
            s.peakHeldBytes = max(s.peakHeldBytes, s.heldBytes)
            return false
        }
        guard over else { return }
        drain()
        state.withLock { s in
            if s.heldBytes + bytes > s.limitBytes && s.overrun == nil {
                s.overrun = TensorMemoryError.limitExceeded(limitBytes: s.limitBytes, neededBytes: bytes, heldBytes: s.heldBytes)
            }
            s.heldBytes += bytes
            s.peakHeldBytes = max(s.peakHeldBytes, s.heldBytes)
        }
    }

    /// The first overrun since the last call, cleared.
    func takeOverrun() -> TensorMemoryError? {
        state.withLock { s in
            defer { s.overrun = nil }
            return s.overrun
        }
    }

    /// Caps the bytes tensors may hold (0 = no cap).
    func setLimit(bytes: Int) { state.withLock { $0.limitBytes = max(0, bytes) } }
    var heldBytes: Int { state.withLock { $0.heldBytes } }
    var peakHeldBytes: Int { state.withLock { $0.peakHeldBytes } }

    /// Frees every cached buffer (memory goes back to the system).
    func drain() {
        let all = state.withLock { s -> [UInt] in
            let all = s.free.values.flatMap { $0 }
            s.free = [:]
            s.heldBytes -= s.cachedBytes
            s.cachedBytes = 0
            return all
        }
        for a in all { UnsafeMutableRawPointer(bitPattern: a)?.deallocate() }
    }

    var cachedBytes: Int { state.withLock { $0.cachedBytes } }
}

/// Tensor memory went over the cap set with `TensorMemory.setLimit`.
public enum TensorMemoryError: Error, Equatable, Sendable, CustomStringConvertible {
    case limitExceeded(limitBytes: Int, neededBytes: Int, heldBytes: Int)

    public var description: String {
        switch self {
        case let .limitExceeded(limit, needed, held):
            return "tensor memory limit of \(formatBytes(limit)) exceeded: a tensor needs \(formatBytes(needed)) more with \(formatBytes(held)) in use; raise --max-memory (SPROUT_MAX_MEMORY) or lower the batch size"
        }
    }
}

/// Memory held by tensors, and its optional cap.
public enum TensorMemory {
    /// Throws if tensors went over the cap since the last check (and clears that record).
    /// The cap is enforced at these checks, not inside allocations: the step or batch that
    /// crossed it completes, then its caller stops with this error.
    public static func checkLimit() throws {
        if let overrun = BufferCache.shared.takeOverrun() { throw overrun }
    }

    /// Caps what tensors may hold, in bytes (nil = no cap). Nothing is reserved up front:
    /// memory grows as tensors need it, and freed buffers are reused.
    public static func setLimit(bytes: Int?) { BufferCache.shared.setLimit(bytes: bytes ?? 0) }
    /// Bytes held by tensors now (in use plus the reuse cache).
    public static var heldBytes: Int { BufferCache.shared.heldBytes }
    public static var peakHeldBytes: Int { BufferCache.shared.peakHeldBytes }
    /// Returns cached buffers to the system.
    public static func releaseCache() { BufferCache.shared.drain() }

    /// Parses "512M", "2G", "1.5GiB", "1000000" (bytes).
    public static func parseSize(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased()
        let (k, m, g) = (1024.0, 1048576.0, 1073741824.0)
        let units: [(String, Double)] = [("GIB", g), ("MIB", m), ("KIB", k), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3),
                                         ("G", g), ("M", m), ("K", k), ("B", 1)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            guard let v = Double(t.dropLast(suffix.count)), v > 0 else { return nil }
            return Int(v * scale)
        }
        return Int(t).flatMap { $0 > 0 ? $0 : nil }
    }
}

func formatBytes(_ n: Int) -> String {
    n >= 1 << 30 ? String(format2(Double(n) / Double(1 << 30))) + " GiB" : String(format2(Double(n) / Double(1 << 20))) + " MiB"
}

private func format2(_ x: Double) -> String { "\((x * 100).rounded() / 100)" }

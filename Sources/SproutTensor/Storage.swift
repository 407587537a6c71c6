import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Owns one 64-byte-aligned buffer of `Float`s. Buffers come from and go back to a
/// process-wide cache keyed by element count, so a training loop that runs the same
/// shapes every step allocates nothing once warm (a fresh 40 MB buffer costs tens of
/// milliseconds in page faults on this class of machine).
public final class TensorStorage: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    /// A buffer of `count` elements; its contents are undefined unless `zeroed`.
    public init(count: Int, zeroed: Bool = false) {
        self.count = count
        self.pointer = BufferCache.shared.take(count: count)
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    deinit { BufferCache.shared.give(pointer, count: count) }
}

/// Size-bucketed free list of aligned buffers. Bounded by `limitBytes`
/// (`SPROUT_BUFFER_CACHE_MB`, default 1024): past it, buffers are freed.
final class BufferCache: Sendable {
    static let shared = BufferCache()

    private struct State {
        var free: [Int: [UInt]] = [:]   // addresses: raw pointers are not Sendable
        var cachedBytes = 0
    }
    private let state = Mutex(State())
    let limitBytes: Int

    init() {
        if let text = getenv("SPROUT_BUFFER_CACHE_MB"), let mb = Int(String(cString: text)), mb >= 0 {
            limitBytes = mb << 20
        } else {
            limitBytes = 1024 << 20
        }
    }

    func take(count: Int) -> UnsafeMutablePointer<Float> {
        let reused: UInt? = state.withLock { s in
            guard var list = s.free[count], let p = list.popLast() else { return nil }
            s.free[count] = list.isEmpty ? nil : list
            s.cachedBytes -= count * 4
            return p
        }
        if let reused, let p = UnsafeMutablePointer<Float>(bitPattern: reused) { return p }
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let raw = UnsafeMutableRawPointer(pointer)
        let address = UInt(bitPattern: pointer)
        let kept = state.withLock { s -> Bool in
            guard s.cachedBytes + count * 4 <= limitBytes else { return false }
            s.free[count, default: []].append(address)
            s.cachedBytes += count * 4
            return true
        }
        if !kept { raw.deallocate() }
    }

    /// Frees every cached buffer (memory goes back to the system).
    func drain() {
        let all = state.withLock { s -> [UInt] in
            let all = s.free.values.flatMap { $0 }
            s.free = [:]
            s.cachedBytes = 0
            return all
        }
        for a in all { UnsafeMutableRawPointer(bitPattern: a)?.deallocate() }
    }

    var cachedBytes: Int { state.withLock { $0.cachedBytes } }
}

import CMPI
import Foundation
import SproutNN
import SproutTensor
import SproutTrain

/// Synchronous data-parallel training over MPI (Open MPI): `mpirun -np N sprout train …`.
///
/// Each rank computes the gradient of its shard of every global batch; gradients are summed
/// with MPI_Allreduce in buckets and divided by N, so every rank applies the same update and
/// the weights stay identical. The global batch size and the learning rate mean what they
/// mean in one process.
public final class MPICommunicator: GradientReducer, StatisticsReducer, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// Floats per MPI_Allreduce call (16 MiB buckets).
    public let bucketFloats: Int
    /// Seconds spent in MPI_Allreduce, summed (for the step-time share).
    public private(set) var allreduceSeconds = 0.0
    public private(set) var allreduceCalls = 0
    private var bucket: [Float] = []

    /// Started under mpirun (Open MPI's or a PMI launcher's environment): initialises MPI and
    /// returns the communicator. In a plain process: nil, and MPI is never touched.
    public static func fromLauncher(bucketBytes: Int = 16 << 20) -> MPICommunicator? {
        let env = ProcessInfo.processInfo.environment
        guard env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMI_SIZE"] != nil || env["PMIX_RANK"] != nil else { return nil }
        guard sprout_mpi_init() == 0 else { return nil }
        return MPICommunicator(bucketFloats: max(1, bucketBytes / 4))
    }

    init(bucketFloats: Int) {
        rank = Int(sprout_mpi_rank())
        size = Int(sprout_mpi_size())
        self.bucketFloats = bucketFloats
    }

    //   g ← (Σ_ranks g) / N, bucket by bucket; `extras` (loss, correct count) are summed alongside.
    public func average(_ gradients: inout Gradients, extras: inout [Float]) {
        let started = Date()
        var pending: [(tensor: Int, offset: Int, count: Int)] = []
        bucket.removeAll(keepingCapacity: true)
        func flush() {
            guard !bucket.isEmpty else { return }
            let n = bucket.count
            bucket.withUnsafeMutableBufferPointer { _ = sprout_mpi_allreduce_sum($0.baseAddress, Int32(n)) }
            allreduceCalls += 1
            var at = 0
            let scale = 1 / Float(size)
            for p in pending {
                gradients.tensors[p.tensor].withMutableData { g in
                    for i in 0..<p.count { g[p.offset + i] = bucket[at + i] * scale }
                }
                at += p.count
            }
            pending.removeAll(keepingCapacity: true)
            bucket.removeAll(keepingCapacity: true)
        }
        for t in gradients.tensors.indices {
            let count = gradients.tensors[t].count
            var offset = 0
            while offset < count {
                let n = min(count - offset, bucketFloats - bucket.count)
                gradients.tensors[t].withData { g in bucket.append(contentsOf: g[offset..<(offset + n)]) }
                pending.append((t, offset, n))
                offset += n
                if bucket.count == bucketFloats { flush() }
            }
        }
        flush()
        if !extras.isEmpty {
            var e = extras
            let n = e.count
            e.withUnsafeMutableBufferPointer { _ = sprout_mpi_allreduce_sum($0.baseAddress, Int32(n)) }
            extras = e
        }
        allreduceSeconds += Date().timeIntervalSince(started)
    }

    /// Sums `buffer` across ranks in place (synchronised batch-norm statistics).
    public func sumAcrossProcesses(_ buffer: UnsafeMutableBufferPointer<Double>) {
        _ = sprout_mpi_allreduce_sum_double(buffer.baseAddress, Int32(buffer.count))
    }

    /// Every batch-norm layer of `model` normalises with the global batch's statistics
    /// (`--sync-bn`); other models in the process are untouched.
    public func synchronizeBatchNorm(in model: any Layer) {
        model.forEachLayer { ($0 as? BatchNorm2D)?.statisticsReducer = self }
    }

    /// Every rank's value, in rank order.
    public func allGather(_ value: UInt64) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: size)
        _ = sprout_mpi_allgather_u64(value, &out)
        return out
    }

    public func barrier() { _ = sprout_mpi_barrier() }

    public func finalize() { _ = sprout_mpi_finalize() }

    /// Stops every rank of the job (after printing the reason on this one).
    public func abort(_ code: Int32) -> Never {
        sprout_mpi_abort(code)
        exit(code)
    }
}

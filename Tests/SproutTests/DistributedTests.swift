import Foundation
import Testing
import SproutTensor
@testable import SproutTrain

/// `mpirun -np 2 sprout train` against one process with the same global batch and seed: the
/// same weights after 150 steps (data order and augmentation follow the global sample index).
@Suite(.serialized) struct DistributedTests {
    static let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let fashion = "/usr/share/datasets/fashion-mnist"

    func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func weights(_ runDir: String) throws -> [String: Tensor] {
        let manifest = CheckpointDirectory((runDir as NSString).appendingPathComponent("checkpoints")).latest()!
        return try LoadedCheckpoint.load(manifest: manifest).model.namedParameters
            .reduce(into: [:]) { $0[$1.name] = $1.parameter.value }
    }

    @Test func twoRanksMatchOneProcess() throws {
        guard let mpirun = Self.mpirun, FileManager.default.isExecutableFile(atPath: CLITests.binary),
              FileManager.default.fileExists(atPath: Self.fashion) else {
            print("skipped: needs mpirun (libopenmpi-dev), the sprout binary and Fashion-MNIST")
            return
        }
        let dir = TemporaryDirectory()
        let common = ["train", "--dataset", "fashion-mnist", "--data-dir", Self.fashion, "--model", "mlp", "--steps", "150",
                      "--batch-size", "64", "--val-split", "1000", "--seed", "5", "--threads", "1", "--augment", "true",
                      "--optimizer", "nesterov", "--lr", "0.05"]
        let one = try run(CLITests.binary, common + ["--run-dir", dir.file("one")])
        #expect(one.status == 0, "\(one.output)")
        let two = try run(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "2", CLITests.binary]
                          + common + ["--run-dir", dir.file("two")])
        #expect(two.status == 0, "\(two.output)")
        #expect(two.output.contains("data-parallel: 2 ranks"))
        let a = try weights(dir.file("one")), b = try weights(dir.file("two"))
        #expect(a.keys.sorted() == b.keys.sorted())
        var worst: Float = 0
        for (name, t) in a {
            for (x, y) in zip(t.scalars, b[name]!.scalars) { worst = max(worst, abs(x - y) / max(1, abs(x))) }
        }
        // Summation order differs (two halves then a sum), so not bit-equal; the drift after
        // 150 steps stays at float rounding level.
        #expect(worst < 1e-4, "largest weight difference \(worst)")
        // A rank with other settings is refused before the first step.
        let mismatch = try run(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "1", CLITests.binary]
                               + common + ["--run-dir", dir.file("three")]
                               + [":", "-np", "1", CLITests.binary] + common + ["--run-dir", dir.file("three"), "--lr", "0.1"])
        #expect(mismatch.status != 0 && mismatch.output.contains("has a different configuration"), "\(mismatch.output)")
    }
}

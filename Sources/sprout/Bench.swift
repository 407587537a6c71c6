import ArgumentParser
import Foundation
import Sprout

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed on this machine.",
        subcommands: [BenchOps.self])
}

struct BenchOps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Time the convolution passes of the zoo's shapes against this machine's sgemm rate.")

    @OptionGroup var threadOptions: ThreadOptions
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @Option(help: "Timed repetitions per pass (median is reported).") var repetitions = 5
    @Option(help: "Batch size of the convolution shapes.") var batch = 128

    static func shapes(batch n: Int) -> [ConvolutionPasses] {
        [
            ConvolutionPasses(name: "tf-cifar10 conv1 5x5 3->64 24x24", batch: n, inChannels: 3, height: 24, width: 24, outChannels: 64, kernel: 5),
            ConvolutionPasses(name: "tf-cifar10 conv2 5x5 64->64 12x12", batch: n, inChannels: 64, height: 12, width: 12, outChannels: 64, kernel: 5),
            ConvolutionPasses(name: "resnet9 3x3 128->128 16x16", batch: n, inChannels: 128, height: 16, width: 16, outChannels: 128, kernel: 3),
            ConvolutionPasses(name: "resnet9 3x3 256->256 8x8", batch: n, inChannels: 256, height: 8, width: 8, outChannels: 256, kernel: 3),
            ConvolutionPasses(name: "airbench 3x3 64->256 16x16", batch: n, inChannels: 64, height: 16, width: 16, outChannels: 256, kernel: 3),
        ]
    }

    func run() throws {
        try threadOptions.apply()
        guard repetitions > 0, batch > 0 else { throw ValidationError("--repetitions and --batch must be positive") }
        let sgemmSeconds = timeSgemm(size: 2048, repetitions: repetitions)
        let sgemm = 2 * pow(2048.0, 3) / sgemmSeconds / 1e9
        var rows: [(name: String, pass: String, ms: Double, gflops: Double, impl: String)] = []
        for shape in Self.shapes(batch: batch) {
            let passes: [(String, () -> Void)] = [
                ("forward", shape.forward), ("backward_data", shape.backwardData), ("backward_weights", shape.backwardWeights),
            ]
            let seconds = passes.map { medianSeconds(repetitions: repetitions, $0.1) }
            let impl = shape.implementations  // after the first calls: what autotuning kept
            for (i, s) in seconds.enumerated() {
                rows.append((shape.name, passes[i].0, s * 1e3, shape.flops / s / 1e9, impl[i]))
            }
        }
        if json {
            let ops: [[String: Any]] = rows.map {
                ["name": $0.name, "pass": $0.pass, "ms": round3($0.ms), "gflops": round3($0.gflops),
                 "ratio_to_sgemm": round3($0.gflops / sgemm), "implementation": $0.impl]
            }
            let object: [String: Any] = ["sgemm_gflops": round3(sgemm), "threads": Threading.count, "batch": batch, "ops": ops]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("threads \(Threading.count), batch \(batch), median of \(repetitions); sgemm 2048³: \(String(format: "%.1f", sgemm)) GFLOP/s")
        print(pad("shape", 36) + pad("pass", 18) + lpad("ms", 9) + lpad("GFLOP/s", 9) + lpad("×sgemm", 8) + "  implementation")
        for r in rows {
            print(pad(r.name, 36) + pad(r.pass, 18) + lpad(String(format: "%.2f", r.ms), 9)
                  + lpad(String(format: "%.1f", r.gflops), 9) + lpad(String(format: "%.2f", r.gflops / sgemm), 8) + "  " + r.impl)
        }
    }
}

func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }

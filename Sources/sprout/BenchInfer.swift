import ArgumentParser
import Foundation
import Sprout
import SproutExport

/// Inference speed of one model as a deployment engine would be measured: batch-1 latency
/// (median and p99 over many calls) and batch throughput, through the compiled inference
/// graph and, for comparison, layer by layer. `--onnx FILE` writes the very model it times,
/// so ONNX Runtime and OpenVINO can be timed on the same weights (benchmarks/infer_bench.py).
struct BenchInfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infer",
        abstract: "Inference latency (batch 1: median, p99) and throughput (a larger batch) of a zoo model or a run.",
        discussion: """
        Examples:
          sprout bench infer --model resnet50 --threads 2
          sprout bench infer --model tf-cifar10 --engine both --calls 500 --json
          sprout bench infer --run runs/plants --onnx plants.onnx
        """)

    @Option(help: "Zoo model (random weights, seed 0).") var model = "tf-cifar10"
    @Option(name: .customLong("run"), help: "A run directory whose latest checkpoint to time instead of --model.") var runDir: String?
    @Option(help: "Width multiplier.") var width: Float = 1
    @Option(help: "Classes (default: 1000 for the 224-px photo models, else 10).") var classes: Int?
    @Option(help: "Input shape C,H,W (default: the model's own).") var input: String?
    @Option(help: "graph (the compiled inference graph), layers (the training graph in evaluation mode) or both.") var engine = "graph"
    @Flag(help: "Time the graph with its optimisations added one at a time (layers; graph alone; + folded batch norms; + fused post-ops; + Winograd).")
    var ablation = false
    @Option(help: "Timed batch-1 calls (median and p99 are reported).") var calls = 200
    @Option(help: "Batch size of the throughput measurement.") var batchSize = 32
    @Option(help: "Timed batches (the median batch time gives the throughput).") var batches = 20
    @Option(help: "Untimed warm-up calls before each measurement.") var warmup = 10
    @Option(help: "Also write the timed model as ONNX to this file.") var onnx: String?
    @Option(help: "Also write the timed model as TensorFlow Lite to this file.") var tflite: String?
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        guard ["graph", "layers", "both"].contains(engine) else { throw ValidationError("--engine must be graph, layers or both") }
        guard calls > 0, batches > 0, batchSize > 0, warmup >= 0 else { throw ValidationError("--calls, --batches and --batch-size must be positive") }
        let net: any Layer, shape: [Int], name: String
        if let runDir {
            let (loaded, _) = try RunDirectory(runDir).load(.latest, useEMA: true)
            (net, shape, name) = (loaded.model, loaded.manifest.model.inputShape, loaded.manifest.model.name)
        } else {
            guard let entry = Zoo.entry(model) else { throw CLIError("\(ModelError.unknownModel(model, known: Zoo.names))") }
            shape = try input.map(parseShape) ?? entry.defaultInput
            seedEverything(0)
            net = try Zoo.build(model, inputShape: shape, classes: classes ?? (entry.input.photo ? 1000 : 10), width: width)
            var g = SeededGenerator(seed: 1)
            (net as? any TrainingDataInitializable)?.initialize(fromTrainingImages: Tensor.normal([64] + shape, generator: &g))
            name = model
        }
        net.eval()
        if let onnx {
            let bytes = try ONNXExport.export(net, inputShape: shape, options: .init(metadata: ["sprout.model": name]))
            try writeAtomically(bytes, to: onnx)
        }
        if let tflite {
            try writeAtomically(try TFLiteExport.export(net, inputShape: shape, metadata: ["sprout.model": name]), to: tflite)
        }
        var g = SeededGenerator(seed: 2)
        let one = Tensor.normal([1] + shape, generator: &g), many = Tensor.normal([batchSize] + shape, generator: &g)
        var results: [String: Any] = [:]
        var lines: [String] = []
        typealias Step = (name: String, options: InferencePlan.Options?)
        let steps: [Step] = ablation
            ? [("layers", nil), ("graph, blocked layouts", .init(foldBatchNorm: false, fusePostOps: false, winograd: false)),
               ("+ folded batch norms", .init(foldBatchNorm: true, fusePostOps: false, winograd: false)),
               ("+ fused post-ops", .init(foldBatchNorm: true, fusePostOps: true, winograd: false)),
               ("+ Winograd", .init())]
            : (engine == "both" ? ["graph", "layers"] : [engine]).map { ($0, $0 == "graph" ? InferencePlan.Options() : nil) }
        for (e, options) in steps {
            let forward: (Tensor) throws -> Tensor
            var planNote = ""
            if let options {
                let started = DispatchTime.now().uptimeNanoseconds
                let plan: InferencePlan
                do { plan = try InferencePlan.make(net, inputShape: shape, options: options) } catch {
                    throw CLIError("\(name): no inference graph (\(error)); time it with --engine layers")
                }
                try plan.graph.prepare(batch: 1)
                try plan.graph.prepare(batch: min(batchSize, InferenceGraph.largestPlan))
                let buildMs = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
                forward = { try plan($0) }
                planNote = String(format: " (graph built and compiled for 2 batch sizes in %.0f ms)", buildMs)
                results["graph_build_ms"] = round3(buildMs)
                // Activation memory of the compiled plans against every layer's output kept apart.
                let planBytes = plan.graph.compiledPlanBytes
                let largest = min(batchSize, InferenceGraph.largestPlan)
                let everyOutput = summary(net, inputShape: shape).rows.map { $0.outputShape.reduce(1, *) }.reduce(0, +) * 4 * largest
                results["plan_mb"] = Dictionary(uniqueKeysWithValues: planBytes.map { ("\($0.key)", round3(Double($0.value) / 1048576)) })
                results["every_layer_output_mb"] = round3(Double(everyOutput) / 1048576)
                planNote += String(format: "; batch-%d plan %.0f MB of activations and scratch (every layer's output: %.0f MB)",
                                   largest, Double(planBytes[largest] ?? 0) / 1048576, Double(everyOutput) / 1048576)
            } else {
                forward = { x in withoutGradient { net.forward(x) } }
            }
            for _ in 0..<warmup { _ = try forward(one) }
            var latencies = try (0..<calls).map { _ in try seconds { _ = try forward(one) } * 1e3 }
            latencies.sort()
            let p50 = latencies[latencies.count / 2]
            let p99 = latencies[min(latencies.count - 1, Int((Double(latencies.count) * 0.99).rounded(.up)) - 1)]
            for _ in 0..<max(1, warmup / 5) { _ = try forward(many) }
            let batchMs = median(try (0..<batches).map { _ in try seconds { _ = try forward(many) } }) * 1e3
            let throughput = Double(batchSize) / batchMs * 1e3
            results[e] = ["latency_ms_p50": round3(p50), "latency_ms_p99": round3(p99), "batch1_img_s": round3(1e3 / p50),
                          "batch_ms": round3(batchMs), "batch_img_s": round3(throughput)]
            lines.append(e.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "  batch 1: %7.3f ms median, %7.3f ms p99 (%7.1f img/s)   batch %d: %8.1f img/s%@",
                                p50, p99, 1e3 / p50, batchSize, throughput, planNote as NSString))
        }
        if json {
            results["model"] = name
            results["input"] = shape
            results["threads"] = Threading.count
            results["batch"] = batchSize
            results["calls"] = calls
            let data = try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(name), input \(shape), \(Threading.count) threads, \(calls) batch-1 calls, median of \(batches) batches of \(batchSize)")
        lines.forEach { print($0) }
    }
}

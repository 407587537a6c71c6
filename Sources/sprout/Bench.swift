import ArgumentParser
import Foundation
import Sprout

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure speed on this machine: a zoo model's training and inference img/s, or the kernels (bench ops).",
        discussion: """
        Examples:
          sprout bench --model tf-cifar10 --batch-size 128
          sprout bench --model resnet9 --width 0.5 --threads 2 --json
          sprout bench ops
        """,
        subcommands: [BenchModel.self, BenchInfer.self, BenchOps.self, BenchData.self],
        defaultSubcommand: BenchModel.self)
}

struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Training img/s (forward + backward + SGD step) and inference img/s of a zoo model on random data.")

    @Option(help: "Zoo model.") var model = "tf-cifar10"
    @Option(help: "Batch size.") var batchSize = 128
    @Option(help: "Inference batch size (default: the training batch size).") var inferBatchSize: Int?
    @Option(help: "Width multiplier.") var width: Float = 1
    @Option(help: "Input shape C,H,W (default: the model's own).") var input: String?
    @Option(help: "Timed steps (the median is reported).") var steps = 10
    @Option(help: "Untimed warm-up steps.") var warmup = 2
    @Option(help: "What to time: train, infer or both (separate processes give separate peak RSS).") var mode = "both"
    @Flag(help: "Print one JSON object.") var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        guard ["train", "infer", "both"].contains(mode) else { throw ValidationError("--mode must be train, infer or both") }
        guard let entry = Zoo.entries.first(where: { $0.name == model }) else {
            throw CLIError("\(ModelError.unknownModel(model, known: Zoo.names))")
        }
        guard batchSize > 0, steps > 0 else { throw ValidationError("--batch-size and --steps must be positive") }
        let shape = try input.map(parseShape) ?? entry.defaultInput
        seedEverything(0)
        let net = try Zoo.build(model, inputShape: shape, classes: 10, width: width)
        let flopsPerImage = Double(summary(net, inputShape: shape).totalFlops)
        var g = SeededGenerator(seed: 1)
        let x = Tensor.normal([batchSize] + shape, generator: &g)
        let labels = (0..<batchSize).map { $0 % 10 }
        // As a training run does (airbench's whitening): zero filters would make its batch norms
        // divide by √ε and the step overflow.
        (net as? any TrainingDataInitializable)?.initialize(fromTrainingImages: x)
        let optimizer = SGD(for: net, learningRate: 0.01, momentum: 0.9, nesterov: true, weightDecay: 5e-4)
        let trainer = Trainer(model: net, optimizer: optimizer)
        var batch = Batch(images: x, labels: labels, indices: Array(0..<batchSize))
        if withoutGradient({ net(Tensor.zeros([1] + shape)) }).rank == 3 {
            // A line reader ([N, T, classes]): CTC on 5-label targets, blank = class 9.
            trainer.objective = SequenceRecognition(blank: 9, classNames: (0..<9).map(String.init))
            batch = Batch(images: x, targets: .sequences((0..<batchSize).map { i in (0..<5).map { (i + $0) % 9 } }),
                          indices: Array(0..<batchSize))
        }
        var trainSeconds = Double.nan, inferSeconds = Double.nan
        if mode != "infer" {
            for _ in 0..<warmup { _ = try trainer.trainStep(batch) }
            trainSeconds = try median((0..<steps).map { _ in try seconds { _ = try trainer.trainStep(batch) } })
        }
        net.eval()
        let inferBatch = inferBatchSize ?? batchSize
        if mode != "train" {
            let xi = Tensor.normal([inferBatch] + shape, generator: &g)
            for _ in 0..<warmup { _ = withoutGradient { net(xi) } }
            inferSeconds = median((0..<steps).map { _ in seconds { _ = withoutGradient { net(xi) } } })
        }
        let sgemm = 2 * pow(2048.0, 3) / timeSgemm(size: 2048, repetitions: 3) / 1e9
        let trainImgS = Double(batchSize) / trainSeconds, inferImgS = Double(inferBatch) / inferSeconds
        // Training ≈ 3× the forward FLOPs (forward, backward-data, backward-weights).
        let gflops = 3 * flopsPerImage * trainImgS / 1e9
        let peak = ResourceUsage.peakResidentBytes
        if json {
            var object: [String: Any] = [
                "model": model, "width": Double(width), "batch": batchSize, "infer_batch": inferBatch, "threads": Threading.count,
                "sgemm_gflops": round3(sgemm), "peak_rss_mb": round3(Double(peak) / 1048576), "forward_flops_per_image": flopsPerImage,
                "parameters": net.parameterCount, "mode": mode,
            ]
            if mode != "infer" {
                object["train_img_s"] = round3(trainImgS)
                object["gflops"] = round3(gflops)
                object["percent_of_sgemm"] = round3(100 * gflops / sgemm)
                object["train_step_ms"] = round3(trainSeconds * 1e3)
            }
            if mode != "train" {
                object["infer_img_s"] = round3(inferImgS)
                object["infer_gflops"] = round3(flopsPerImage * inferImgS / 1e9)
                object["infer_ms"] = round3(inferSeconds * 1e3)
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(model) (width \(width)), input \(shape), \(Threading.count) threads, median of \(steps) steps")
        if mode != "infer" {
            print(String(format: "train:     batch %d  %8.1f img/s  %7.1f ms/step  %6.1f GFLOP/s (%.0f%% of sgemm %.1f)",
                         batchSize, trainImgS, trainSeconds * 1e3, gflops, 100 * gflops / sgemm, sgemm))
        }
        if mode != "train" {
            print(String(format: "inference: batch %d  %8.1f img/s  %7.2f ms/batch", inferBatch, inferImgS, inferSeconds * 1e3))
        }
        print(String(format: "peak RSS:  %.0f MB", Double(peak) / 1048576))
    }
}

func parseShape(_ text: String) throws -> [Int] {
    let parts = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard parts.count == 3, parts.allSatisfy({ $0 > 0 }) else { throw ValidationError("shape must be C,H,W with positive numbers, got '\(text)'") }
    return parts
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.isEmpty ? .nan : s[s.count / 2]
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
            // airbench-muon's six 3x3 layers (cifar10-fast): the maps after the 2x2 whitening conv and each pool.
            ConvolutionPasses(name: "airbench-muon 3x3 24->64 31x31", batch: n, inChannels: 24, height: 31, width: 31, outChannels: 64, kernel: 3),
            ConvolutionPasses(name: "airbench-muon 3x3 64->64 15x15", batch: n, inChannels: 64, height: 15, width: 15, outChannels: 64, kernel: 3),
            ConvolutionPasses(name: "airbench-muon 3x3 64->256 15x15", batch: n, inChannels: 64, height: 15, width: 15, outChannels: 256, kernel: 3),
            ConvolutionPasses(name: "airbench-muon 3x3 256->256 7x7", batch: n, inChannels: 256, height: 7, width: 7, outChannels: 256, kernel: 3),
            ConvolutionPasses(name: "airbench-muon 3x3 256->256 3x3", batch: n, inChannels: 256, height: 3, width: 3, outChannels: 256, kernel: 3),
        ]
    }

    func run() throws {
        try threadOptions.apply()
        guard repetitions > 0, batch > 0 else { throw ValidationError("--repetitions and --batch must be positive") }
        let sgemmSeconds = timeSgemm(size: 2048, repetitions: repetitions)
        let sgemm = 2 * pow(2048.0, 3) / sgemmSeconds / 1e9
        var rows: [(name: String, pass: String, ms: Double, gflops: Double, impl: String, error: Double)] = []
        for shape in Self.shapes(batch: batch) {
            let passes: [(String, () -> Void)] = [
                ("forward", shape.forward), ("backward_data", shape.backwardData), ("backward_weights", shape.backwardWeights),
            ]
            let seconds = passes.map { medianSeconds(repetitions: repetitions, $0.1) }
            let impl = shape.implementations  // after the first calls: what autotuning kept
            let errors = shape.relativeErrors()
            for (i, s) in seconds.enumerated() {
                rows.append((shape.name, passes[i].0, s * 1e3, shape.flops / s / 1e9, impl[i], errors[i]))
            }
        }
        if json {
            let ops: [[String: Any]] = rows.map {
                ["name": $0.name, "pass": $0.pass, "ms": round3($0.ms), "gflops": round3($0.gflops),
                 "ratio_to_sgemm": round3($0.gflops / sgemm), "implementation": $0.impl, "relative_error": $0.error]
            }
            let object: [String: Any] = ["sgemm_gflops": round3(sgemm), "threads": Threading.count, "batch": batch, "ops": ops]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("threads \(Threading.count), batch \(batch), median of \(repetitions); sgemm 2048³: \(String(format: "%.1f", sgemm)) GFLOP/s")
        print("GFLOP/s counts direct-convolution FLOPs; error: max |result - im2col+GEMM| / max |im2col+GEMM|")
        print(pad("shape", 40) + pad("pass", 18) + lpad("ms", 9) + lpad("GFLOP/s", 9) + lpad("×sgemm", 8) + lpad("error", 9) + "  implementation")
        for r in rows {
            print(pad(r.name, 40) + pad(r.pass, 18) + lpad(String(format: "%.2f", r.ms), 9)
                  + lpad(String(format: "%.1f", r.gflops), 9) + lpad(String(format: "%.2f", r.gflops / sgemm), 8)
                  + lpad(String(format: "%.1e", r.error), 9) + "  " + r.impl)
        }
    }
}

func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? " " + s : String(repeating: " ", count: n - s.count) + s }

struct BenchData: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Images per second the data loader delivers (decode, shuffle, augment, normalise, batch), without a model.",
        discussion: "Example: sprout bench data --dataset cifar10 --data-dir ../shared/data/cifar-10-batches-bin --model tf-cifar10")

    @Option(help: "Dataset (as for sprout train).") var dataset = DatasetKind.fashionMNIST
    @Option(help: "Dataset directory.") var dataDir: String?
    @Option(help: "Model whose preprocessing to use.") var model: String?
    @Option(help: "Batch size.") var batchSize = 128
    @Option(help: "Batches to time (at most one epoch).") var batches = 200
    @Option(help: "Threads building batches (photos decode there).") var workers = 1
    @Option(help: "Photo models: the side photos are resampled to.") var imageSize: Int?
    @Flag(help: "The evaluation view (resize + centre crop) instead of training augmentation.") var eval = false
    @Option(help: "Timed passes; the median is reported (each after one untimed pass that warms the file cache).") var repeats = 3
    @Flag(help: "One JSON object instead of text.") var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func run() throws {
        try threadOptions.apply()
        var config = RunConfiguration()
        config.dataset = dataset
        config.dataDir = dataDir
        config.model = model
        config.augment = !eval
        config.imageSize = imageSize
        config.validationSplit = nil
        let data = try RunData.load(config)
        // The whole folder (training split plus held-out part) when streaming photos.
        let all: any Dataset = data.streams ? (data.train as! PhotoDataset).merged(with: data.validation as! PhotoDataset) : data.train
        let loader = DataLoader(dataset: all, batchSize: batchSize, shuffle: true, dropLast: true, seed: 1,
                                augmentation: data.augmentation, normalization: data.normalization, cropSize: data.cropSize,
                                prefetch: max(2, workers), workers: workers)
        let n = min(batches, loader.batchesPerEpoch)
        func pass() -> Double {
            seconds {
                var seen = 0
                for batch in loader.epoch(0) {
                    seen += batch.count
                    if seen >= n * batchSize { break }
                }
            }
        }
        _ = pass()
        let times = (0..<max(1, repeats)).map { _ in pass() }.sorted()
        let rate = Double(n * batchSize) / times[times.count / 2]
        if json {
            let object: [String: Any] = ["dataset": dataset.rawValue, "model": config.modelName, "images_per_second": rate,
                                         "batches": n, "batch_size": batchSize, "workers": workers, "augmented": data.augmentation != .none,
                                         "input": data.modelInput, "failures": loader.failures.count]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "%@ (%@ preprocessing, input %@, augmentation %@, %d workers): %.0f img/s over %d batches of %d (median of %d)",
                         dataset.rawValue, config.modelName, "\(data.modelInput)", "\(data.augmentation != .none)", workers, rate, n, batchSize,
                         times.count))
        }
    }
}

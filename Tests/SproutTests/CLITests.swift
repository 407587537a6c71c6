import Foundation
import Testing
import SproutData

/// The `sprout` executable end to end, on a small folder of generated photos.
@Suite(.serialized, .tags(.slow)) struct CLITests {
    /// The `sprout` built beside this test binary: the configuration under test (debug or
    /// release), wherever the build directory is.
    static let binary: String = {
        let tests = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return tests.deletingLastPathComponent().appendingPathComponent("sprout").path
    }()
    static let binaryBuilt = FileManager.default.isExecutableFile(atPath: binary)
    static let notBuilt: Comment = "the sprout binary is not built beside the tests (swift build --build-tests builds it)"

    struct Result { let status: Int32; let stdout: String; let stderr: String }

    func sprout(_ arguments: [String]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["SPROUT_NUM_THREADS"] = "1"
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // A command that hangs fails the test (killed after 2 minutes) instead of stalling the suite.
        let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    /// ROOT/<class>/: `perClass` noisy images per class, class k bright in channel k (PNG, or JPEG
    /// named with a space).
    func photoFolder(_ dir: TemporaryDirectory, name: String = "photos", classes: [String] = ["red", "green", "blue"],
                     perClass: Int = 12, width: Int = 20, height: Int = 20, jpeg: Bool = false, seed: UInt64 = 4) throws -> String {
        let root = dir.file(name)
        var g = SeededGeneratorShim(seed: seed)
        for (c, name) in classes.enumerated() {
            try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
            for i in 0..<perClass {
                var px = [UInt8](repeating: 0, count: width * height * 3)   // interleaved
                for j in 0..<(width * height) { for ch in 0..<3 { px[3 * j + ch] = UInt8(ch == c ? 150 + Int(g.next() % 100) : Int(g.next() % 90)) } }
                if jpeg {
                    let bytes = try ImageWriter.encodeJPEG(interleaved: px, width: width, height: height, pixels: .rgb)
                    _ = FileManager.default.createFile(atPath: "\(root)/\(name)/leaf \(i).jpg", contents: Data(bytes))
                } else {
                    let planar = (0..<(3 * width * height)).map { px[3 * ($0 % (width * height)) + $0 / (width * height)] }
                    try ImageWriter.writePNG(planar: planar, channels: 3, height: height, width: width, to: "\(root)/\(name)/\(i).png")
                }
            }
        }
        return root
    }

    @Test(.enabled(if: binaryBuilt, notBuilt)) func trainEvaluatePredictResume() throws {
        let dir = TemporaryDirectory()
        let photos = try photoFolder(dir)
        let run = dir.file("run")
        let train = try sprout(["train", "--dataset", "folder", "--data-dir", photos, "--model", "mlp", "--epochs", "2",
                                "--batch-size", "8", "--optimizer", "adam", "--lr", "0.003", "--run-dir", run, "--seed", "3"])
        #expect(train.status == 0, "train failed: \(train.stderr)")
        #expect(train.stdout.contains("epoch 2/2 done"))
        #expect(FileManager.default.fileExists(atPath: run + "/metrics.jsonl"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: run).contains { $0.hasPrefix("events.out.tfevents.") })

        let eval = try sprout(["eval", run, "--split", "train", "--json"])
        #expect(eval.status == 0, "eval failed: \(eval.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        for key in ["top1", "top5", "loss", "count", "per_class"] { #expect(object[key] != nil, "eval --json lacks \(key)") }
        #expect((object["top1"] as? Double ?? 0) > 0.8, "colours are easy: \(object["top1"] ?? "")")
        #expect(try FileManager.default.contentsOfDirectory(atPath: run + "/eval").contains { $0.hasSuffix(".svg") })

        let predict = try sprout(["predict", run, photos + "/green/0.png", "--top-k", "2"])
        #expect(predict.status == 0, "predict failed: \(predict.stderr)")
        #expect(predict.stdout.split(separator: "\n").dropFirst().first?.contains("green") == true, "\(predict.stdout)")

        // The evaluator polls, evaluates each checkpoint once and logs eval/* for TensorBoard.
        let watch = try sprout(["eval", run, "--split", "val", "--watch", "--interval", "0.2", "--until-step", "8"])
        #expect(watch.status == 0, "eval --watch failed: \(watch.stderr)")
        #expect(watch.stdout.components(separatedBy: "top-1").count - 1 == 2, "two checkpoints, each evaluated once")
        #expect(try FileManager.default.contentsOfDirectory(atPath: run + "/eval").contains { $0.hasPrefix("events.out.tfevents") })

        let resumed = try sprout(["train", "--resume", "--run-dir", run, "--epochs", "3"])
        #expect(resumed.status == 0, "resume failed: \(resumed.stderr)")
        #expect(resumed.stdout.contains("resumed from") && resumed.stdout.contains("epoch 3/3 done"))

        // Bad input: one line on stderr, non-zero exit.
        _ = FileManager.default.createFile(atPath: dir.file("notes.png"), contents: Data("hello".utf8))
        let undecodable = try sprout(["predict", run, dir.file("notes.png")])
        #expect(undecodable.status != 0 && undecodable.stderr.contains("cannot decode image"))
    }

    /// A photo model on a JPEG folder with a truncated file: streamed training, the bad file
    /// named and counted (or, with --skip-bad-images false, an error naming it), the photo
    /// view in predict, a pack trained on as a folder is.
    @Test(.enabled(if: binaryBuilt, notBuilt)) func photoModelsStreamAFolderAndAPack() throws {
        let dir = TemporaryDirectory()
        let root = try photoFolder(dir, name: "plants", classes: ["fern", "ivy", "moss"], perClass: 8, width: 80, height: 60,
                                   jpeg: true, seed: 7)
        let good = try Data(contentsOf: URL(fileURLWithPath: root + "/ivy/leaf 0.jpg"))
        _ = FileManager.default.createFile(atPath: root + "/ivy/broken.jpg", contents: good.prefix(good.count / 2))
        let common = ["--dataset", "folder", "--model", "mobilenet-v2", "--width", "0.25", "--image-size", "32", "--steps", "3",
                      "--batch-size", "4", "--val-split", "6", "--seed", "2"]
        let run = dir.file("run")
        let train = try sprout(["train", "--data-dir", root, "--run-dir", run] + common)
        #expect(train.status == 0, "train failed: \(train.stderr)")
        #expect(train.stdout.contains("input [3, 32, 32]") && train.stdout.contains("skipped 1 images") && train.stdout.contains("broken.jpg"),
                "\(train.stdout)")
        let predict = try sprout(["predict", run, root + "/moss/leaf 1.jpg", "--json"])
        #expect(predict.status == 0 && predict.stdout.contains("predictions"), "predict failed: \(predict.stderr)")
        let strict = try sprout(["train", "--data-dir", root, "--run-dir", dir.file("strict"), "--skip-bad-images", "false"] + common)
        #expect(strict.status != 0 && strict.stderr.contains("broken.jpg"), "\(strict.stderr)")

        let info = try sprout(["data", "info", root])
        #expect(info.status == 0 && info.stdout.contains("fern 8, ivy 9, moss 8") && info.stdout.contains("unreadable: 1"), "\(info.stdout)")
        let pack = dir.file("plants.pack")
        let packed = try sprout(["data", "pack", root, "--size", "40", "-o", pack])
        #expect(packed.status == 0 && packed.stdout.contains("24 photos") && packed.stdout.contains("left out 1"), "\(packed.stdout)")
        let fromPack = try sprout(["train", "--data-dir", pack, "--run-dir", dir.file("packed")] + common)
        #expect(fromPack.status == 0 && fromPack.stdout.contains("train 18 images"), "\(fromPack.stdout) \(fromPack.stderr)")
    }

    @Test(.enabled(if: binaryBuilt, notBuilt)) func userErrorsExitNonZeroWithOneClearLine() throws {
        let missing = try sprout(["train", "--dataset", "cifar10", "--data-dir", "/nonexistent/cifar"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/cifar/data_batch_1.bin: no such file"))
        let model = try sprout(["train", "--model", "vgg99", "--dataset", "mnist", "--data-dir", "/nonexistent"])
        #expect(model.status != 0)
        let device = try sprout(["info", "--device", "cuda"])
        #expect(device.status != 0 && device.stderr.contains("no GPU backend"))
        let notARun = try sprout(["eval", "/nonexistent/run"])
        #expect(notARun.status != 0 && notARun.stderr.contains("run directory"))
        let memory = try sprout(["info", "--max-memory", "lots"])
        #expect(memory.status != 0 && memory.stderr.contains("not a size"))
        // No server (a closed loopback port): fails at once, naming the URL and the manual steps.
        let dir = TemporaryDirectory()
        let started = Date()
        let get = try sprout(["data", "get", "cifar10", "--dir", dir.path, "--mirror", "http://127.0.0.1:9/", "--timeout", "5"])
        #expect(get.status != 0 && Date().timeIntervalSince(started) < 10)
        #expect(get.stderr.contains("http://127.0.0.1:9/cifar-10-binary.tar.gz") && get.stderr.contains("Manual steps"))
        let capped = try sprout(["bench", "--model", "mlp", "--batch-size", "64", "--steps", "1", "--max-memory", "1M"])
        #expect(capped.status != 0 && capped.stderr.contains("tensor memory limit of 1.0 MiB exceeded"))
        #expect(!capped.stderr.contains("Backtrace"))
    }

    /// Every recipe resolves; flags override it; an unknown one is a clear error.
    @Test(.enabled(if: binaryBuilt, notBuilt)) func recipesPrintTheirConfiguration() throws {
        for name in ["mnist", "fashion-mnist", "cifar10-tutorial", "cifar10-tutorial-modern", "cifar10-fast", "cifar10-fast-short",
                     "cifar10-airbench", "photos-frozen", "photos-finetune"] {
            let r = try sprout(["train", "--recipe", name, "--data-dir", "/data", "--print-config"])
            #expect(r.status == 0, "\(name): \(r.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            #expect(object?["recipe"] as? String == name)
        }
        let fast = try sprout(["train", "--recipe", "cifar10-fast", "--data-dir", "/data", "--epochs", "3", "--tta", "flip", "--print-config"])
        let object = try JSONSerialization.jsonObject(with: Data(fast.stdout.utf8)) as? [String: Any]
        #expect(object?["model"] as? String == "airbench-muon" && object?["epochs"] as? Int == 3)
        #expect(object?["testTimeAugmentation"] as? String == "flip" && object?["validationSplit"] as? Int == 5000)
        let fashion = try sprout(["train", "--recipe", "fashion-mnist", "--flip", "false", "--lr-start", "0.3", "--lr-end", "0.05", "--print-config"])
        let f = try JSONSerialization.jsonObject(with: Data(fashion.stdout.utf8)) as? [String: Any]
        #expect(f?["flip"] as? Bool == false && f?["model"] as? String == "mnist-bn")
        #expect((f?["scheduleStart"] as? Double).map { abs($0 - 0.3) < 1e-6 } == true)
        #expect((f?["scheduleEnd"] as? Double).map { abs($0 - 0.05) < 1e-6 } == true)
        let unknown = try sprout(["train", "--recipe", "imagenet-in-a-minute", "--print-config"])
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown recipe 'imagenet-in-a-minute'"))
    }
}

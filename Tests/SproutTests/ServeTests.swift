import Foundation
import Hummingbird
import Logging
import Testing
import SproutData
import SproutNN
import SproutServe
import SproutTensor
@testable import SproutTrain

/// A run directory with an `mlp` checkpoint on 8×8 colour images of three classes.
/// With `photo`, a mobilenet-v2 ×0.25 on 32-px photo views (resize 37, ImageNet statistics).
/// With `line`, a crnn ×0.125 reading 32 × 40 lines of the three "characters" (4 outputs with the blank).
func servedRun(_ dir: TemporaryDirectory, name: String = "shapes", steps: [Int] = [10], photo: Bool = false, line: Bool = false) throws -> String {
    let run = dir.file(name)
    var spec = photo ? ModelSpec(name: "mobilenet-v2", inputShape: [3, 32, 32], classes: 3, width: 0.25)
                     : ModelSpec(name: "mlp", inputShape: [3, 8, 8], classes: 3)
    var prep = photo ? PreprocessingSpec(normalization: .meanStd, mean: Zoo.InputPreparation.imageNetMean,
                                         std: Zoo.InputPreparation.imageNetStd, resize: 37, channels: 3, photo: true)
                     : PreprocessingSpec(normalization: .unit, resize: 8, channels: 3)
    if line {
        spec = ModelSpec(name: "crnn", inputShape: [1, 32, 40], classes: 4, width: 0.125)
        prep = PreprocessingSpec(normalization: .meanStd, mean: [0.1], std: [0.3], resize: 32, channels: 1, lineWidth: 40)
    }
    let ckpts = CheckpointDirectory((run as NSString).appendingPathComponent("checkpoints"))
    for step in steps {
        try ckpts.save(model: try spec.build(), optimizer: nil, ema: nil, manifest: CheckpointManifest(
            step: step, epoch: 0, batchInEpoch: 0, model: spec, classNames: ["circle", "square", "star"], preprocessing: prep,
            metrics: [:], hasEMA: false, weightsFile: "", stateFile: "", config: [:]))
    }
    return run
}

func testImage(_ format: ImageWriter.Format, size: Int = 12, seed: UInt64 = 1) -> [UInt8] {
    var g = SeededGenerator(seed: seed)
    let pixels = (0..<(3 * size * size)).map { _ in UInt8.random(in: 0...255, using: &g) }
    return ImageWriter.encode(planar: pixels, channels: 3, height: size, width: size, format: format)
}

@Suite struct ServeTests {
    /// Runs the real server on an ephemeral loopback port, calls `body` with a plain HTTP
    /// client for it (on a thread of its own: the client blocks), then shuts the server down.
    func withServer(_ run: String, apiKey: String? = nil, maxBody: Int = 10 << 20,
                    _ body: @escaping @Sendable (LoopbackHTTP) throws -> Void) async throws {
        let service = try InferenceService(slots: [try ModelSlot(runDirectory: run)], maxBatch: 8, maxWaitMilliseconds: 20)
        defer { service.batcher.stop() }
        var options = ServeOptions()
        options.apiKey = apiKey
        options.maxBodyBytes = maxBody
        options.port = 0
        options.reloadIntervalSeconds = 3600
        let (ports, announce) = AsyncStream<Int>.makeStream()
        let app = SproutHTTPServer.application(service: service, options: options, logger: Logger(label: "test")) { channel in
            announce.yield(channel.localAddress?.port ?? 0)
            announce.finish()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next(), port > 0 else { throw LoopbackHTTP.Failure(description: "server did not start") }
            try await onOwnThread { try body(LoopbackHTTP(port: port)) }
            group.cancelAll()
        }
    }

    /// A line reader answers NAME:recognize with its text and one confidence per character
    /// (what the library's recogniser reads from the same bytes), and refuses :classify.
    @Test func aLineReaderRecognizes() async throws {
        let dir = TemporaryDirectory()
        let run = try servedRun(dir, name: "lines", line: true)
        let picture = testImage(.png, size: 30, seed: 4)
        let (loaded, _) = try RunDirectory(run).load(.latest, useEMA: true)
        let expected = try ImageClassifier(checkpoint: loaded).recognize(bytes: picture, beamWidth: 3)
        try await withServer(run) { client in
            let models = try client.get("/v1/models").json["models"] as? [[String: Any]]
            #expect(models?.first?["task"] as? String == "recognize")
            let r = try client.post("/v1/models/lines:recognize?beam=3", body: picture)
            #expect(r.status == 200)
            let characters = r.json["characters"] as? [[String: Any]] ?? []
            #expect(r.json["text"] as? String == expected.text && characters.count == expected.labels.count)
            #expect(characters.allSatisfy { ($0["confidence"] as? Double).map { (0...1).contains($0) } ?? false })
            #expect(characters.map { $0["character"] as? String ?? "" } == expected.characters)
            let classify = try client.post("/v1/models/lines:classify", body: picture)
            #expect(classify.status == 400 && (classify.json["error"] as? String ?? "").contains(":recognize"))
            #expect(try client.post("/v1/models/lines:recognize?beam=0", body: picture).status == 400)
            #expect(try client.post("/v1/models/lines:recognize", body: Array("not an image".utf8)).status == 400)
        }
        let shapes = try servedRun(dir)
        try await withServer(shapes) { client in
            let r = try client.post("/v1/models/shapes:recognize", body: testImage(.png))
            #expect(r.status == 400)
        }
    }

    @Test func endpointsAnswerAndBadInputGetsClearErrors() async throws {
        let dir = TemporaryDirectory()
        try await withServer(try servedRun(dir), maxBody: 64 << 10) { client in
            #expect(try client.get("/healthz").status == 200)
            let models = try client.get("/v1/models").json["models"] as? [[String: Any]]
            #expect(models?.first?["name"] as? String == "shapes" && models?.first?["version"] as? Int == 10)
            #expect(try client.get("/v1/models/shapes").json["classes"] as? [String] == ["circle", "square", "star"])
            // A PNG and a JPEG body, any size: top-k labels with probabilities summing to one.
            for format in [ImageWriter.Format.png, .jpeg(quality: 90)] {
                let r = try client.post("/v1/models/shapes:classify?k=3", body: testImage(format))
                #expect(r.status == 200)
                let object = r.json
                let predictions = object["predictions"] as? [[String: Any]] ?? []
                #expect(predictions.count == 3 && object["version"] as? Int == 10 && object["model"] as? String == "shapes")
                let total = predictions.compactMap { $0["probability"] as? Double }.reduce(0, +)
                #expect(Swift.abs(total - 1) < 1e-4)
            }
            // Multipart upload, as the web page sends it.
            let boundary = "XyZ"
            var form = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
            form += testImage(.png) + Array("\r\n--\(boundary)--\r\n".utf8)
            let multipart = try client.post("/v1/models/shapes:classify", headers: ["Content-Type": "multipart/form-data; boundary=\(boundary)"], body: form)
            #expect(multipart.status == 200 && (multipart.json["predictions"] as? [Any])?.count == 3)
            // TensorFlow Serving's shape: [H][W][C] pixels.
            let instance = (0..<8).map { _ in (0..<8).map { _ in [10, 200, 30] } }
            let body = try JSONSerialization.data(withJSONObject: ["instances": [instance, instance]])
            let predicted = try client.post("/v1/models/shapes:predict", body: [UInt8](body))
            #expect(predicted.status == 200)
            let rows = predicted.json["predictions"] as? [[Double]]
            #expect(rows?.count == 2 && rows?[0].count == 3)
            // Bad input: clear JSON errors with the right status.
            let garbage = try client.post("/v1/models/shapes:classify", body: Array("not an image".utf8))
            #expect(garbage.status == 400 && (garbage.json["error"] as? String) != nil)
            let unknown = try client.post("/v1/models/nope:classify", body: testImage(.png))
            #expect(unknown.status == 404 && (unknown.json["error"] as? String)?.contains("unknown model 'nope'") == true)
            let wrongShape = try client.post("/v1/models/shapes:predict", body: Array("{\"instances\": [[1, 2]]}".utf8))
            #expect(wrongShape.status == 400 && (wrongShape.json["error"] as? String)?.contains("[8][8][3]") == true)
            #expect(try client.post("/v1/models/shapes:classify", body: [UInt8](repeating: 1, count: 100 << 10)).status == 413)
            let text = try client.get("/metrics").text
            #expect(text.contains("sprout_requests_total{endpoint=\"/v1/models/{name}:classify\",status=\"200\"} 3"))
            #expect(text.contains("sprout_model_version{model=\"shapes\"} 10") && text.contains("sprout_batch_size_count"))
            let page = try client.get("/")
            #expect(page.status == 200 && page.headers["content-type"]?.hasPrefix("text/html") == true)
        }
    }

    /// A 224-px-style photo model behind the API: the request is decoded to the same view as
    /// evaluation (the classifier's own), batched and answered like any other.
    @Test func aPhotoModelIsServedWithItsPhotoView() async throws {
        let dir = TemporaryDirectory()
        let run = try servedRun(dir, name: "plants", photo: true)
        let classifier = ImageClassifier(checkpoint: try RunDirectory(run).load().checkpoint)
        let jpeg = try ImageWriter.encodeJPEG(interleaved: (0..<(90 * 60 * 3)).map { UInt8($0 % 251) }, width: 90, height: 60, pixels: .rgb)
        let direct = try classifier.classify(bytes: jpeg, topK: 3)
        try await withServer(run) { client in
            let r = try client.post("/v1/models/plants:classify?k=3", headers: ["Content-Type": "image/jpeg"], body: jpeg)
            #expect(r.status == 200, "\(r.text)")
            let object = try JSONSerialization.jsonObject(with: Data(r.text.utf8)) as? [String: Any]
            let predictions = object?["predictions"] as? [[String: Any]] ?? []
            #expect(predictions.map { $0["label"] as? String ?? "" } == direct.map(\.label), "\(r.text)")
        }
    }

    /// Hostile requests get clear 4xx answers and the server keeps serving: a decompression bomb
    /// (refused from its header), model names with path tricks, a body that stops short of its
    /// declared length.
    @Test func hostileRequestsAreRefusedAndServingGoesOn() async throws {
        let dir = TemporaryDirectory()
        try await withServer(try servedRun(dir)) { client in
            let bomb = try client.post("/v1/models/shapes:classify", body: ImageDecoderTests.png(declaring: 18_000, 18_000))
            #expect(bomb.status == 400 && (bomb.json["error"] as? String)?.contains("18000×18000") == true, "\(bomb.text)")
            for path in ["/v1/models/..%2F..%2Fetc%2Fpasswd:classify", "/v1/models/../../etc/passwd:classify",
                         "/v1/models/shapes%00:classify", "/v1/models/%2e%2e:classify"] {
                let r = try client.post(path, body: testImage(.png))
                #expect((400..<500).contains(r.status), "\(path): \(r.status)")
            }
            // Declares 1,000 bytes, sends 10, hangs up.
            let fd = try client.connectedSocket(receiveTimeoutSeconds: 30)
            let liar = Array("POST /v1/models/shapes:classify HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789".utf8)
            _ = liar.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            close(fd)
            #expect(try client.post("/v1/models/shapes:classify", body: testImage(.png)).status == 200)
            // Declares more than --max-body-bytes (or more than Int holds) and sends nothing: a 413
            // at once, not a connection held until the idle timeout (found by scripts/hostile_load.py).
            for declared in ["1073741824", "9223372036854775808"] {
                let big = try client.connectedSocket(receiveTimeoutSeconds: 5)
                defer { close(big) }
                let head = Array("POST /v1/models/shapes:classify HTTP/1.1\r\nHost: x\r\nContent-Length: \(declared)\r\n\r\n".utf8)
                _ = head.withUnsafeBytes { send(big, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
                var reply = [UInt8](repeating: 0, count: 512)
                let n = reply.withUnsafeMutableBytes { recv(big, $0.baseAddress!, $0.count, 0) }
                let text = String(decoding: reply.prefix(max(n, 0)), as: UTF8.self)
                #expect(text.hasPrefix("HTTP/1.1 413"), "Content-Length \(declared): \(text.prefix(80))")
            }
            #expect(try client.post("/v1/models/shapes:classify", body: testImage(.png)).status == 200)
        }
    }

    @Test func apiKeyGuardsEverythingButHealth() async throws {
        let dir = TemporaryDirectory()
        try await withServer(try servedRun(dir), apiKey: "s3cret") { client in
            #expect(try client.get("/healthz").status == 200)
            let refused = try client.get("/v1/models")
            #expect(refused.status == 401 && refused.headers["www-authenticate"] == "Bearer")
            // Near misses too (the comparison runs over whole strings, in time independent of where they differ).
            for wrong in ["Bearer wrong", "Bearer s3cre", "Bearer s3cret2", "Bearer S3cret", "bearer s3cret", "s3cret", ""] {
                #expect(try client.get("/v1/models", headers: ["Authorization": wrong]).status == 401, "\(wrong)")
            }
            #expect(try client.get("/v1/models", headers: ["Authorization": "Bearer s3cret"]).status == 200)
        }
    }

    @Test func concurrentRequestsShareForwardPasses() async throws {
        let dir = TemporaryDirectory()
        let slot = try ModelSlot(runDirectory: try servedRun(dir))
        let service = try InferenceService(slots: [slot], maxBatch: 8, maxWaitMilliseconds: 50)
        let pixels = [UInt8](repeating: 128, count: 3 * 8 * 8)
        let sizes = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<8 { group.addTask { try await service.batcher.classify(pixels, on: slot).batchSize } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(sizes.max()! > 1, "8 simultaneous requests ran in batches of \(sizes)")
        service.batcher.stop()
    }

    @Test func hotReloadSwapsAndSurvivesABadCheckpoint() throws {
        let dir = TemporaryDirectory()
        let run = try servedRun(dir, steps: [10])
        let slot = try ModelSlot(runDirectory: run)
        #expect(slot.current.step == 10)
        #expect(try slot.reloadIfNewer() == nil)
        _ = try servedRun(dir, steps: [20])
        #expect(try slot.reloadIfNewer() == 20 && slot.current.step == 20)
        // A newer checkpoint whose weights are damaged: the error is kept, step 20 keeps serving.
        _ = try servedRun(dir, steps: [30])
        let weights = (run as NSString).appendingPathComponent("checkpoints/ckpt-00000030.safetensors")
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: weights))
        #expect(throws: (any Error).self) { try slot.reloadIfNewer() }
        #expect(slot.current.step == 20 && slot.lastReloadError?.contains("ckpt-00000030") == true)
    }

    /// An image already at the model's size reaches it pixel for pixel (no resampling blur),
    /// so `predict`, the server and an exported ONNX file see what evaluation sees.
    @Test func nativeSizeImagesDecodeExactly() throws {
        var g = SeededGenerator(seed: 9)
        let pixels = (0..<(3 * 10 * 10)).map { _ in UInt8.random(in: 0...255, using: &g) }
        let png = ImageWriter.encode(planar: pixels, channels: 3, height: 10, width: 10, format: .png)
        #expect(try ImageFolder.decodeImage(bytes: png, size: 10, channels: 3) == pixels)
    }

    /// Thousands of mutated PNG and JPEG bodies through the decoder: errors, never a crash.
    /// Then three rounds of 700 good 256×256 bodies: a decode that leaked its 192 KiB image would
    /// grow resident memory by 131 MiB in each round.
    @Test(.tags(.slow)) func mutatedImagesNeverCrashTheDecoder() throws {
        var g = SeededGenerator(seed: 42)
        let seeds = [testImage(.png, size: 64), testImage(.jpeg(quality: 80), size: 64)]
        var decoded = 0, rejected = 0
        for i in 0..<3000 {
            var body = seeds[i % 2]
            for _ in 0..<(1 + g.nextInt(below: 8)) {
                switch g.nextInt(below: 4) {
                case 0: body[g.nextInt(below: body.count)] = UInt8.random(in: 0...255, using: &g)
                case 1: body = Array(body.prefix(g.nextInt(below: body.count) + 1))
                case 2: body.insert(UInt8.random(in: 0...255, using: &g), at: g.nextInt(below: body.count))
                default: let at = g.nextInt(below: body.count); body[at] = body[at] ^ 0xFF
                }
            }
            if (try? ImageFolder.decodeImage(bytes: body, size: 8, channels: 3)) != nil { decoded += 1 } else { rejected += 1 }
        }
        #expect(decoded + rejected == 3000 && rejected > 0 && decoded > 0)
        let good = [testImage(.png, size: 256), testImage(.jpeg(quality: 80), size: 256)]
        // Other tests share this process and move its memory both ways; a leak would add its
        // 700 × 192 KiB = 131 MiB in every round, so the smallest round's growth tells.
        var growth: [Int] = []
        for _ in 0..<3 {
            let before = ResourceUsage.currentResidentBytes
            for i in 0..<700 { _ = try ImageFolder.decodeImage(bytes: good[i % 2], size: 8, channels: 3) }
            growth.append(ResourceUsage.currentResidentBytes - before)
        }
        #expect(growth.min()! < 64 << 20, "RSS grew by \(growth.map { $0 >> 20 }) MB per round of 700 decodes")
    }
}

/// Runs blocking work on a thread of its own, off Swift's cooperative pool.
func onOwnThread(_ work: @escaping @Sendable () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
        Thread { continuation.resume(with: Result { try work() }) }.start()
    }
}

@Suite struct InferenceThreadTests {
    /// Two inference threads, each with its own execution context: every request of a burst
    /// is answered with the probabilities one thread alone gives.
    @Test func twoInferenceThreadsAnswerEveryRequest() async throws {
        let dir = TemporaryDirectory()
        let run = try servedRun(dir)
        let single = try InferenceService(slots: [try ModelSlot(runDirectory: run)], maxBatch: 1, maxWaitMilliseconds: 1)
        let double = try InferenceService(slots: [try ModelSlot(runDirectory: run)], maxBatch: 2, maxWaitMilliseconds: 1,
                                          inferenceThreads: 2)
        defer { single.batcher.stop(); double.batcher.stop() }
        let images: [[UInt8]] = (0..<16).map { (i: Int) -> [UInt8] in
            (0..<192).map { (j: Int) -> UInt8 in UInt8((j * 7 + i * 31) % 256) }
        }
        let slot = double.slots["shapes"]!, reference = single.slots["shapes"]!
        let results = try await withThrowingTaskGroup(of: (Int, [Float]).self) { group in
            for (i, pixels) in images.enumerated() {
                group.addTask { (i, try await double.batcher.classify(pixels, on: slot).probabilities) }
            }
            return try await group.reduce(into: [Int: [Float]]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == 16 && double.batcher.inferenceThreads == 2)
        for (i, pixels) in images.enumerated() {
            let alone = try await single.batcher.classify(pixels, on: reference).probabilities
            #expect(zip(alone, results[i]!).allSatisfy { abs($0 - $1) < 1e-6 }, "image \(i)")
        }
    }
}

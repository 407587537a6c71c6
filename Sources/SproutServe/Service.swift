import Foundation
import SproutData
import SproutTensor
import SproutTrain

/// A response before it meets HTTP: status, content type and body.
public struct APIResponse: Sendable {
    public let status: Int
    public let contentType: String
    public let body: [UInt8]

    static func json(_ status: Int, _ object: Any) -> APIResponse {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return APIResponse(status: status, contentType: "application/json", body: [UInt8](data))
    }

    static func error(_ status: Int, _ message: String) -> APIResponse { json(status, ["error": message]) }
}

/// The inference API, independent of the HTTP server: what each endpoint answers.
public final class InferenceService: @unchecked Sendable {
    public let slots: [String: ModelSlot]
    public let order: [String]
    public let batcher: Batcher
    public let metrics: ServeMetrics

    public init(slots: [ModelSlot], maxBatch: Int = 16, maxWaitMilliseconds: Double = 5, inferenceThreads: Int = 1) throws {
        var byName: [String: ModelSlot] = [:]
        for s in slots {
            guard byName[s.name] == nil else { throw ServeError.duplicateName(s.name) }
            byName[s.name] = s
        }
        self.slots = byName
        order = slots.map(\.name)
        let metrics = ServeMetrics()
        self.metrics = metrics
        batcher = Batcher(maxBatch: maxBatch, maxWait: maxWaitMilliseconds / 1000, inferenceThreads: inferenceThreads) {
            metrics.recordBatch(size: $0)
        }
        for s in slots { metrics.setVersion(model: s.name, step: s.current.step) }
    }

    func describe(_ slot: ModelSlot) -> [String: Any] {
        let v = slot.current
        let m = v.manifest
        var object: [String: Any] = [
            "name": slot.name, "version": v.step, "model": m.model.name, "classes": m.classNames,
            "input_size": ["channels": v.classifier.preprocessedShape[0], "height": v.classifier.preprocessedShape[1],
                           "width": v.classifier.preprocessedShape[2]],
            "model_input": m.model.inputShape, "preprocessing": m.preprocessing.normalization.rawValue,
            "task": m.preprocessing.isLineRecognizer ? "recognize" : "classify",
        ]
        if let e = slot.lastReloadError { object["last_reload_error"] = e }
        return object
    }

    public func models() -> APIResponse { .json(200, ["models": order.map { describe(slots[$0]!) }]) }

    public func model(_ name: String) -> APIResponse {
        guard let slot = slots[name] else { return unknown(name) }
        return .json(200, describe(slot))
    }

    func unknown(_ name: String) -> APIResponse {
        .error(404, "unknown model '\(name)' (serving: \(order.joined(separator: ", ")))")
    }

    /// POST …:classify — a PNG/JPEG body, raw or as a multipart/form-data upload.
    public func classify(_ name: String, body: [UInt8], contentType: String?, topK: Int?) async -> APIResponse {
        let started = Date()
        guard let slot = slots[name] else { return unknown(name) }
        if slot.current.manifest.preprocessing.isLineRecognizer {
            return .error(400, "model '\(name)' reads lines of text: POST /v1/models/\(name):recognize")
        }
        let image: [UInt8]
        switch Self.uploadedImage(body, contentType: contentType) {
        case .success(let bytes): image = bytes
        case .failure(let response): return response.response
        }
        let pixels: [UInt8]
        do {
            // The classifier's own preprocessing: the view the model was evaluated on.
            pixels = try slot.current.classifier.preprocess(bytes: image, name: "request body").pixels
        } catch {
            return .error(400, "\(error)")
        }
        do {
            let r = try await batcher.classify(pixels, on: slot)
            let classes = slot.current.manifest.classNames
            let k = max(1, min(topK ?? 5, r.probabilities.count))
            let top = r.probabilities.enumerated().sorted { $0.element > $1.element }.prefix(k)
            let names = classes.count == r.probabilities.count ? classes : r.probabilities.indices.map { "\($0)" }
            return .json(200, ["model": name, "version": r.version, "batch_size": r.batchSize,
                               "predictions": top.map { ["label": names[$0.offset], "probability": Double($0.element)] },
                               "latency_ms": Date().timeIntervalSince(started) * 1000])
        } catch let error as TensorMemoryError {
            return .error(503, "\(error)")
        } catch {
            return .error(500, "inference failed: \(error)")
        }
    }

    /// POST …:recognize — a PNG/JPEG picture of one line (raw or multipart): the text read,
    /// each character's confidence and the reading's probability (greedy CTC decoding, or
    /// beam search of `beam`).
    public func recognize(_ name: String, body: [UInt8], contentType: String?, beam: Int?) async -> APIResponse {
        let started = Date()
        guard let slot = slots[name] else { return unknown(name) }
        let version = slot.current
        guard version.manifest.preprocessing.isLineRecognizer else {
            return .error(400, "model '\(name)' classifies whole images: POST /v1/models/\(name):classify")
        }
        let width = beam ?? 1
        guard (1...64).contains(width) else { return .error(400, "beam must be between 1 and 64, got \(width)") }
        let image: [UInt8]
        switch Self.uploadedImage(body, contentType: contentType) {
        case .success(let bytes): image = bytes
        case .failure(let response): return response.response
        }
        let lines: ImageDataset
        do { lines = try version.classifier.preprocess(bytes: image, name: "request body") } catch { return .error(400, "\(error)") }
        do {
            try TensorMemory.checkLimit()
            let r = version.classifier.recognize(lines, beamWidth: width)[0]
            return .json(200, ["model": name, "version": version.step, "text": r.text,
                               "characters": zip(r.characters, r.confidences).map { ["character": $0, "confidence": Double($1)] },
                               "probability": Double(r.probability), "beam": width,
                               "latency_ms": Date().timeIntervalSince(started) * 1000])
        } catch let error as TensorMemoryError {
            return .error(503, "\(error)")
        } catch {
            return .error(500, "inference failed: \(error)")
        }
    }

    /// POST …:explain — a PNG/JPEG body (raw or multipart): the top class (or `className`)
    /// and a Grad-CAM (or saliency) heat map over the preprocessed image, as base64 PNG.
    public func explain(_ name: String, body: [UInt8], contentType: String?, method: String?, className: String?) async -> APIResponse {
        guard let slot = slots[name] else { return unknown(name) }
        if slot.current.manifest.preprocessing.isLineRecognizer {
            return .error(400, "model '\(name)' reads lines of text; Grad-CAM explains image classifiers")
        }
        let image: [UInt8]
        switch Self.uploadedImage(body, contentType: contentType) {
        case .success(let bytes): image = bytes
        case .failure(let response): return response.response
        }
        guard let chosen = Explanation.Method(rawValue: method ?? "gradcam") else {
            return .error(400, "method must be gradcam or saliency, got '\(method ?? "")'")
        }
        let classifier = slot.current.classifier
        let names = slot.current.manifest.classNames
        var target: Int?
        if let className {
            guard let i = names.firstIndex(of: className) else { return .error(400, "unknown class '\(className)'") }
            target = i
        }
        do {
            let images = try classifier.preprocess(bytes: image, name: "request body")
            let heat = try Explanation.heatMap(chosen, model: classifier.model, input: classifier.inputs(images), classIndex: target)
            let picture = Explanation.overlay(heat, on: images.pixels, channels: images.channels)
            let png = ImageWriter.encode(planar: picture, channels: 3, height: heat.height, width: heat.width, format: .png)
            let label = heat.classIndex < names.count ? names[heat.classIndex] : "\(heat.classIndex)"
            return .json(200, ["model": name, "version": slot.current.step, "label": label,
                               "probability": Double(heat.probabilities[heat.classIndex]), "method": chosen.rawValue,
                               "location": heat.location, "png_base64": Data(png).base64EncodedString()])
        } catch let error as TensorMemoryError {
            return .error(503, "\(error)")
        } catch {
            return .error(400, "\(error)")
        }
    }

    /// POST …:predict — TensorFlow Serving's REST shape. Each instance is an image at the
    /// model's input size as pixel values 0…255, [height][width][channels] (or
    /// [height][width] for one channel), or {"b64": base64 PNG/JPEG bytes}.
    public func predict(_ name: String, body: [UInt8]) async -> APIResponse {
        guard let slot = slots[name] else { return unknown(name) }
        let classifier = slot.current.classifier
        let (c, h, w) = (classifier.preprocessedShape[0], classifier.preprocessedShape[1], classifier.preprocessedShape[2])
        let images: [[UInt8]]
        switch Self.predictInstances(body, channels: c, height: h, width: w,
                                     decode: { try classifier.preprocess(bytes: $0, name: $1).pixels }) {
        case .success(let decoded): images = decoded
        case .failure(let refusal): return refusal.response
        }
        do {
            // Submitted together, so the batcher can group them into one forward pass.
            let results = try await withThrowingTaskGroup(of: (Int, Batcher.Result).self) { group in
                for (i, pixels) in images.enumerated() {
                    group.addTask { (i, try await self.batcher.classify(pixels, on: slot)) }
                }
                var out = [Batcher.Result?](repeating: nil, count: images.count)
                for try await (i, r) in group { out[i] = r }
                return out.compactMap { $0 }
            }
            return .json(200, ["predictions": results.map { $0.probabilities.map(Double.init) },
                               "model_version": results.map(\.version).max() ?? 0])
        } catch let error as TensorMemoryError {
            return .error(503, "\(error)")
        } catch {
            return .error(500, "inference failed: \(error)")
        }
    }

    struct Refusal: Error { let response: APIResponse }

    /// The image of a request: the body itself, or the first file of a multipart/form-data upload.
    static func uploadedImage(_ body: [UInt8], contentType: String?) -> Result<[UInt8], Refusal> {
        var image = body
        if let contentType, contentType.lowercased().hasPrefix("multipart/form-data") {
            guard let boundary = Multipart.boundary(contentType: contentType),
                  let file = Multipart.firstFile(body, boundary: boundary) else {
                return .failure(Refusal(response: .error(400, "multipart/form-data body without a readable part (boundary missing or malformed)")))
            }
            image = file
        }
        if image.isEmpty { return .failure(Refusal(response: .error(400, "empty body: send PNG or JPEG bytes, or a multipart/form-data upload"))) }
        return .success(image)
    }

    /// [H][W][C] (or [H][W]) numbers in 0…255 → planar C×H×W bytes; nil on any mismatch.
    /// The images of a `:predict` body, each as planar pixels [C][H][W]; `decode` turns an
    /// instance's base64 bytes (named "instance i") into them. A refusal says what was expected.
    static func predictInstances(_ body: [UInt8], channels c: Int, height h: Int, width w: Int,
                                 decode: ([UInt8], String) throws -> [UInt8]) -> Result<[[UInt8]], Refusal> {
        let expected = "{\"instances\": [...]} with each instance [\(h)][\(w)]\(c > 1 ? "[\(c)]" : "") pixel values 0-255, or {\"b64\": \"<base64 PNG/JPEG>\"}"
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let instances = object["instances"] as? [Any], !instances.isEmpty else {
            return .failure(Refusal(response: .error(400, "expected \(expected)")))
        }
        var images: [[UInt8]] = []
        for (i, instance) in instances.enumerated() {
            if let dict = instance as? [String: Any], let b64 = dict["b64"] as? String {
                guard let bytes = Data(base64Encoded: b64) else { return .failure(Refusal(response: .error(400, "instance \(i): b64 is not base64"))) }
                do { images.append(try decode([UInt8](bytes), "instance \(i)")) }
                catch { return .failure(Refusal(response: .error(400, "instance \(i): \(error)"))) }
            } else if let planar = pixels(instance, height: h, width: w, channels: c) {
                images.append(planar)
            } else {
                return .failure(Refusal(response: .error(400, "instance \(i) has the wrong shape or values; expected \(expected)")))
            }
        }
        return .success(images)
    }

    static func pixels(_ instance: Any, height: Int, width: Int, channels: Int) -> [UInt8]? {
        guard let rows = instance as? [Any], rows.count == height else { return nil }
        var out = [UInt8](repeating: 0, count: channels * height * width)
        for (y, row) in rows.enumerated() {
            guard let cols = row as? [Any], cols.count == width else { return nil }
            for (x, px) in cols.enumerated() {
                let values: [Any]
                if channels == 1, let n = px as? NSNumber { values = [n] } else if let v = px as? [Any], v.count == channels { values = v } else { return nil }
                for (ch, v) in values.enumerated() {
                    guard let n = v as? NSNumber, !n.isBoolean else { return nil }
                    let d = n.doubleValue
                    guard d.isFinite, d >= 0, d <= 255 else { return nil }
                    out[(ch * height + y) * width + x] = UInt8(d.rounded())
                }
            }
        }
        return out
    }
}

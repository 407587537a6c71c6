import Foundation
import Testing
import SproutTensor
import SproutTrain

/// docs/learn.md cannot rot: every Swift block in it is one of the snippets below, word for
/// word (between `// learn: NAME` and `// end`), and the text block after it is what the
/// snippet prints.
@Suite struct LearnGuideTests {
    /// What a snippet printed, one line per `show`.
    final class Output {
        var lines: [String] = []
        func record(_ items: [Any]) { lines.append(items.map(Self.format).joined(separator: " ")) }

        /// Numbers to 4 significant digits (what a reader checks by hand), -0 as 0.
        static func format(_ item: Any) -> String {
            func number(_ v: Double) -> String {
                let r = (v * 1e4).rounded() / 1e4
                return String(format: "%.4g", r == 0 ? 0 : r)
            }
            switch item {
            case let v as Float: return number(Double(v))
            case let v as Double: return number(v)
            case let v as [Float]: return "[" + v.map { number(Double($0)) }.joined(separator: ", ") + "]"
            case let v as [Int]: return "[" + v.map(String.init).joined(separator: ", ") + "]"
            default: return "\(item)"
            }
        }
    }

    static func snippets() throws -> [String: (code: String, output: String)] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/learn.md"), encoding: .utf8)
        var result: [String: (String, String)] = [:]
        let lines = text.components(separatedBy: "\n")
        var i = 0
        while i < lines.count {
            if lines[i] == "```swift", i + 1 < lines.count, lines[i + 1].hasPrefix("// learn: ") {
                let name = String(lines[i + 1].dropFirst("// learn: ".count))
                var code: [String] = []
                i += 2
                while i < lines.count && lines[i] != "```" { code.append(lines[i]); i += 1 }
                // The printed output: the next ```text block.
                while i < lines.count && lines[i] != "```text" { i += 1 }
                var output: [String] = []
                i += 1
                while i < lines.count && lines[i] != "```" { output.append(lines[i]); i += 1 }
                result[name] = (code.joined(separator: "\n"), output.joined(separator: "\n"))
            }
            i += 1
        }
        return result
    }

    /// The snippet NAME as written in this file, indentation removed.
    static func source(_ name: String) throws -> String {
        let text = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "// learn: \(name)" }),
              let end = lines[start...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "// end" }) else { return "" }
        let body = lines[(start + 1)..<end]
        let indent = body.filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            .map { $0.prefix { $0 == " " }.count }.min() ?? 0
        return body.map { String($0.dropFirst(min(indent, $0.prefix { $0 == " " }.count))) }.joined(separator: "\n")
    }

    func check(_ name: String, _ run: (Output) -> Void) throws {
        let doc = try #require(try Self.snippets()[name], "docs/learn.md has no snippet '\(name)'")
        #expect(doc.code == (try Self.source(name)), "docs/learn.md's '\(name)' differs from the tested code")
        let out = Output()
        run(out)
        #expect(out.lines.joined(separator: "\n") == doc.output, "'\(name)' prints:\n\(out.lines.joined(separator: "\n"))")
    }

    @Test func everySnippetOfTheGuideIsTested() throws {
        let tested: Set = ["matrix-product", "derivative", "gradient", "convolution", "pooling", "loss", "backpropagation",
                           "precision-recall"]
        #expect(Set(try Self.snippets().keys) == tested)
    }

    @Test func snippetMatrixProduct() throws {
        try check("matrix-product") { out in
            func show(_ items: Any...) { out.record(items) }
            // learn: matrix-product
            let a = Tensor(shape: [3, 4], scalars: (1...12).map(Float.init))  // rows 1 2 3 4 | 5 6 7 8 | 9 10 11 12
            let b = Tensor(shape: [4, 3], scalars: (1...12).map(Float.init))  // rows 1 2 3 | 4 5 6 | 7 8 9 | 10 11 12
            let c = matmul(a, b)                                              // c[i][j] = Σ_k a[i][k] · b[k][j]
            show("shape", c.shape)
            show("row 0", Array(c.scalars[0..<3]))
            show("row 2", Array(c.scalars[6..<9]))
            // end
        }
    }

    @Test func snippetDerivative() throws {
        try check("derivative") { out in
            func show(_ items: Any...) { out.record(items) }
            // learn: derivative
            // f(x) = x³ − 2x, so f′(x) = 3x² − 2: at x = 3, f = 21 and f′ = 25
            let (value, slope) = valueWithGradient(at: Tensor(3)) { x in x * x * x - x * 2 }
            show("f(3) =", value.scalar, "f'(3) =", slope.scalar)
            // end
        }
    }

    @Test func snippetGradient() throws {
        try check("gradient") { out in
            func show(_ items: Any...) { out.record(items) }
            // learn: gradient
            // One example x with target y; the loss L(w) = (w·x − y)² and its gradient 2 (w·x − y) x
            let x = Tensor(shape: [3], scalars: [1, 2, 3]), y: Float = 10
            let w = Tensor(shape: [3], scalars: [1, 1, 1])
            let (loss, g) = valueWithGradient(at: w) { w in
                let error = (w * x).sum() - y
                return error * error
            }
            show("loss", loss.scalar, "gradient", g.scalars)
            // end
        }
    }

    @Test func snippetConvolution() throws {
        try check("convolution") { out in
            func show(_ items: Any...) { out.record(items) }
            // learn: convolution
            // A 3×5 image, dark on the left and bright on the right, and a filter that
            // answers "darker left, brighter right" (a vertical-edge detector)
            let image = Tensor(shape: [1, 1, 3, 5], scalars: [0, 0, 0, 1, 1,
                                                              0, 0, 0, 1, 1,
                                                              0, 0, 0, 1, 1])
            let filter = Tensor(shape: [1, 1, 3, 3], scalars: [-1, 0, 1,
                                                               -1, 0, 1,
                                                               -1, 0, 1])
            let response = conv2d(image, weight: filter)  // no padding: 5 − 3 + 1 = 3 positions
            show("shape", response.shape, "response", response.scalars)
            // end
        }
    }

    @Test func snippetPooling() throws {
        try check("pooling") { out in
            func show(_ items: Any...) { out.record(items) }
            // learn: pooling
            let x = Tensor(shape: [1, 1, 4, 4], scalars: [1, 3, 2, 0,
                                                          4, 2, 1, 1,
                                                          0, 1, 5, 6,
                                                          2, 2, 7, 0])
            show("max", maxPool2d(x, kernelSize: (2, 2)).scalars)      // the largest of each 2×2 block
            show("average", avgPool2d(x, kernelSize: (2, 2)).scalars)  // the mean of each 2×2 block
            // end
        }
    }

    @Test func snippetLoss() throws {
        try check("loss") { out in
            func show(_ items: Any...) { out.record(items) }
            // learn: loss
            // Scores (logits) for three classes; the image's true class is 0
            let logits = Tensor(shape: [1, 3], scalars: [2, 1, 0])
            show("probabilities", softmax(logits, alongAxis: 1).scalars)  // e^s / Σ e^s
            show("cross-entropy", crossEntropy(logits: logits, labels: [0]).scalar)  // −log p(true class)
            show("if the truth were class 2", crossEntropy(logits: logits, labels: [2]).scalar)
            // end
        }
    }

    @Test func snippetBackpropagation() throws {
        try check("backpropagation") { out in
            func show(_ items: Any...) { out.record(items) }
            // learn: backpropagation
            // y = relu(x · W1) · W2: the chain rule gives ∂y/∂W1[0][0] = x[0] · relu′(h[0]) · W2[0] = 1 · 1 · 2
            let x = Tensor(shape: [1, 2], scalars: [1, -2])
            let w1 = Tensor(shape: [2, 2], scalars: [0.5, -1, -1, 0.25])
            let w2 = Tensor(shape: [2, 1], scalars: [2, -3])
            func y(_ w1: Tensor) -> Tensor { matmul(relu(matmul(x, w1)), w2).sum() }
            let backprop = gradient(at: w1, of: y)
            var nudged = w1.scalars
            nudged[0] += 0.01
            let finiteDifference = (y(Tensor(shape: [2, 2], scalars: nudged)).scalar - y(w1).scalar) / 0.01
            show("y =", y(w1).scalar)
            show("backpropagation", backprop.scalars)
            show("finite difference for W1[0][0]", finiteDifference)
            // end
        }
    }

    @Test func snippetPrecisionAndRecall() throws {
        try check("precision-recall") { out in
            func show(_ items: Any...) { out.record(items) }
            // learn: precision-recall
            // 10 photos: 4 roses, 6 tulips. The model says "rose" 5 times, 3 of them rightly.
            let truth = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
            let predicted = [0, 0, 0, 1, 0, 0, 1, 1, 1, 1]
            let logits = Tensor(shape: [10, 2], scalars: predicted.flatMap { $0 == 0 ? [Float(1), 0] : [0, 1] })
            var evaluation = EvaluationAccumulator(classNames: ["rose", "tulip"])
            evaluation.add(logits: logits, labels: truth, loss: 0)
            for m in evaluation.result.perClass {
                show(m.name, "precision", m.precision, "recall", m.recall, "F1", m.f1)
            }
            // end
        }
    }
}

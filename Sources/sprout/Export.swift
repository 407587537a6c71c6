import ArgumentParser
import Foundation
import Sprout
import SproutExport

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run's checkpoint as ONNX (ONNX Runtime, OpenVINO, TensorRT), TensorFlow Lite (LiteRT: Android, iOS) or safetensors weights.",
        discussion: """
        Examples:
          sprout export runs/demo --format onnx -o model.onnx
          sprout export runs/cifar --format onnx --fold-bn --checkpoint 4000 -o cifar.onnx
          sprout export runs/demo --format tflite -o model.tflite
          sprout export runs/demo --format safetensors -o weights.safetensors
        The ONNX graph (opset \(ONNXExport.opset)) takes the preprocessed batch `input` [N, C, H, W] and gives
        `logits` and `probabilities`; metadata holds the class names and the preprocessing
        (sprout.classes, sprout.preprocessing, sprout.input_shape as JSON). EMA weights are used
        when the checkpoint has them (unless --no-ema).
        The TFLite flatbuffer (float32, for the LiteRT interpreter) takes `input` [N, H, W, C]
        (channels last, preprocessed as for ONNX) with batch norms folded, and carries the same
        metadata; conv nets only (no recurrent layers).
        """)

    @Argument(help: "Run directory written by sprout train.") var runDir: String
    @Option(help: "onnx, tflite or safetensors.") var format = "onnx"
    @Option(name: [.short, .customLong("output")], help: "File to write.") var output: String
    @Option(help: "A checkpoint: a manifest (ckpt-….json), a step, best or latest (the default).") var checkpoint: String?
    @Flag(help: "Fold each batch norm that follows a convolution into it (ONNX).") var foldBn = false
    @Flag(help: "Use the live weights even when the checkpoint has EMA weights.") var noEma = false

    func run() throws {
        let (loaded, usesEMA) = try RunDirectory(runDir).load(.init(checkpoint), useEMA: !noEma)
        let m = loaded.manifest
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let metadata: [String: String] = [
            "sprout.model": m.model.name,
            "sprout.step": "\(m.step)",
            "sprout.ema": "\(usesEMA)",
            "sprout.classes": String(decoding: try encoder.encode(m.classNames), as: UTF8.self),
            "sprout.preprocessing": String(decoding: try encoder.encode(m.preprocessing), as: UTF8.self),
            "sprout.input_shape": String(decoding: try encoder.encode(m.model.inputShape), as: UTF8.self),
        ]
        let bytes: [UInt8]
        switch format {
        case "onnx":
            do {
                bytes = try ONNXExport.export(loaded.model, inputShape: m.model.inputShape,
                                              options: .init(foldBatchNorm: foldBn, metadata: metadata))
            } catch let e as UnsupportedLayerError {
                throw CLIError(e.description)
            }
        case "tflite":
            do {
                bytes = try TFLiteExport.export(loaded.model, inputShape: m.model.inputShape, metadata: metadata,
                                                description: "sprout \(m.model.name) step \(m.step)")
            } catch let e as UnsupportedLayerError {
                throw CLIError(e.description)
            }
        case "safetensors":
            // The names of `sprout summary` and of the checkpoint (PyTorch's dotted keys).
            let tensors = loaded.model.namedParameters.map { (name: $0.name, tensor: $0.parameter.value) }
            bytes = try SafeTensors.encode(tensors, metadata: metadata)
        default:
            throw ValidationError("--format must be onnx, tflite or safetensors, got '\(format)'")
        }
        try writeAtomically(bytes, to: output)
        print("wrote \(output): \(format), \(bytes.count) bytes, \(m.model.name) step \(m.step)\(usesEMA ? " (EMA weights)" : "")")
    }
}

import Foundation
import Testing
import SproutExport
import SproutNN
import SproutTensor

/// The TFLite writer's flatbuffer read back by a reader written from the format's rules
/// (root offset, vtables, forward offsets), independent of the writer's code. The LiteRT
/// interpreter itself checks the files in scripts/test_onnx.sh (`make test`).
@Suite struct TFLiteExportTests {
    /// A read-only view of a flatbuffer table.
    struct Table {
        let bytes: [UInt8], position: Int
        func u32(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24 }
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        /// The field's position, or nil when the vtable says it is absent.
        func field(_ slot: Int) -> Int? {
            let soffset = Int(Int32(truncatingIfNeeded: u32(position)))
            let vtable = position - soffset
            guard 4 + 2 * slot < u16(vtable) else { return nil }
            let offset = u16(vtable + 4 + 2 * slot)
            return offset == 0 ? nil : position + offset
        }
        func scalar(_ slot: Int) -> Int? { field(slot).map { u32($0) } }
        func byte(_ slot: Int) -> UInt8? { field(slot).map { bytes[$0] } }
        func reference(_ slot: Int) -> Int? { field(slot).map { $0 + u32($0) } }
        func table(_ slot: Int) -> Table? { reference(slot).map { Table(bytes: bytes, position: $0) } }
        func tables(_ slot: Int) -> [Table] {
            guard let v = reference(slot) else { return [] }
            return (0..<u32(v)).map { i in let at = v + 4 + 4 * i; return Table(bytes: bytes, position: at + u32(at)) }
        }
        func ints(_ slot: Int) -> [Int] {
            guard let v = reference(slot) else { return [] }
            return (0..<u32(v)).map { Int(Int32(truncatingIfNeeded: u32(v + 4 + 4 * $0))) }
        }
        func string(_ slot: Int) -> String? {
            reference(slot).map { String(decoding: bytes[($0 + 4)..<($0 + 4 + u32($0))], as: UTF8.self) }
        }
    }

    @Test func mnistCNNIsAFlatbufferWithFusedActivations() throws {
        seedEverything(1)
        let model = try Zoo.build("mnist-cnn", inputShape: [1, 28, 28], classes: 10)
        let bytes = try TFLiteExport.export(model, inputShape: [1, 28, 28], metadata: ["sprout.classes": "[\"a\"]"])
        #expect(String(decoding: bytes[4..<8], as: UTF8.self) == "TFL3")
        let root = Table(bytes: bytes, position: Table(bytes: bytes, position: 0).u32(0))
        #expect(root.scalar(0) == 3)  // schema version
        let codes = root.tables(1).map { $0.scalar(3) ?? -1 }
        let subgraph = try #require(root.tables(2).first)
        let ops = subgraph.tables(3).map { codes[$0.scalar(0) ?? 0] }
        // conv+ReLU, conv+ReLU, max-pool, fully connected+ReLU, fully connected, reshape, softmax
        #expect(ops == [3, 3, 17, 9, 9, 22, 25])
        // fused_activation_function: Conv2DOptions' field 3, FullyConnectedOptions' 0, Pool2DOptions' 5 (1 = RELU)
        let fused = subgraph.tables(3).map { op -> UInt8 in
            let slot = [3: 3, 9: 0, 17: 5][codes[op.scalar(0) ?? 0]]
            return slot.flatMap { op.table(4)?.byte($0) } ?? 0
        }
        #expect(fused == [1, 1, 0, 1, 0, 0, 0])
        let tensors = subgraph.tables(0)
        let input = tensors[subgraph.ints(1)[0]]
        #expect(input.string(3) == "input" && input.ints(0) == [1, 28, 28, 1] && input.ints(7) == [-1, 28, 28, 1])
        #expect(subgraph.ints(2).map { tensors[$0].string(3) } == ["logits", "probabilities"])
        // Every weight tensor's buffer holds its shape's worth of float32s, 16-byte aligned.
        let buffers = root.tables(4)
        for t in tensors where (t.scalar(2) ?? 0) != 0 {
            let data = try #require(buffers[t.scalar(2)!].reference(0))
            #expect((data + 4) % 16 == 0)
            #expect(Table(bytes: bytes, position: 0).u32(data) == t.ints(0).reduce(1, *) * 4, "\(t.string(3) ?? "")")  // float32 / int32
        }
        let metadata = root.tables(6)
        #expect(metadata.map { $0.string(0) } == ["sprout.classes"])
    }

    @Test func convolutionWeightsAreChannelsLast() throws {
        // One 2×2 convolution 1 → 2 channels: OIHW [2, 1, 2, 2] becomes OHWI [2, 2, 2, 1] — the same order here —
        // and a 2-channel input permutes: OIHW [1, 2, 1, 1] → OHWI [1, 1, 1, 2].
        let conv = Conv2D(inChannels: 2, outChannels: 1, kernelSize: 1, bias: false)
        conv.weight.value = Tensor(shape: [1, 2, 1, 1], scalars: [5, 7])
        let model = Sequential { conv; Flatten(); Linear(inFeatures: 4, outFeatures: 1, bias: false) }
        let fc = model.layers[2] as! Linear
        fc.weight.value = Tensor(shape: [1, 4], scalars: [1, 2, 3, 4])  // CHW order over a 1×2×2 map
        let bytes = try TFLiteExport.export(model, inputShape: [2, 2, 2])
        let root = Table(bytes: bytes, position: Table(bytes: bytes, position: 0).u32(0))
        let subgraph = try #require(root.tables(2).first)
        func floats(_ name: String) throws -> [Float] {
            let t = try #require(subgraph.tables(0).first { $0.string(3)?.hasPrefix(name) == true })
            let data = try #require(root.tables(4)[t.scalar(2)!].reference(0))
            let view = Table(bytes: bytes, position: 0)
            return (0..<view.u32(data) / 4).map { Float(bitPattern: UInt32(view.u32(data + 4 + 4 * $0))) }
        }
        #expect(try floats("conv_weight") == [5, 7])
        // A [1, 2, 2] (C, H, W) map flattened channels-last is still [1, 2, 3, 4] with one channel.
        #expect(try floats("fc_weight") == [1, 2, 3, 4])
    }

    @Test func flattenedMultiChannelMapsPermuteTheLinearColumns() throws {
        let model = Sequential { Flatten(); Linear(inFeatures: 8, outFeatures: 1, bias: false) }
        let fc = model.layers[1] as! Linear
        // Columns in PyTorch's C·H·W order over a [2, 2, 2] map: c0 (h0w0 h0w1 h1w0 h1w1), c1 (…)
        fc.weight.value = Tensor(shape: [1, 8], scalars: [0, 1, 2, 3, 10, 11, 12, 13])
        let bytes = try TFLiteExport.export(model, inputShape: [2, 2, 2])
        let root = Table(bytes: bytes, position: Table(bytes: bytes, position: 0).u32(0))
        let subgraph = try #require(root.tables(2).first)
        let t = try #require(subgraph.tables(0).first { $0.string(3)?.hasPrefix("fc_weight") == true })
        let data = try #require(root.tables(4)[t.scalar(2)!].reference(0))
        let view = Table(bytes: bytes, position: 0)
        let w = (0..<8).map { Float(bitPattern: UInt32(view.u32(data + 4 + 4 * $0))) }
        // H·W·C order: h0w0 (c0 c1), h0w1 (c0 c1), …
        #expect(w == [0, 10, 1, 11, 2, 12, 3, 13])
    }

    @Test func recurrentModelsAreRefusedNamingTheLayer() throws {
        let model = try Zoo.build("crnn", inputShape: [1, 32, 64], classes: 10)
        #expect { try TFLiteExport.export(model, inputShape: [1, 32, 64]) } throws: { error in
            "\(error)".contains("CRNN") && "\(error)".contains("TFLite")
        }
    }
}

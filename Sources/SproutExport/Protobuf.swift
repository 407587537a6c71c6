/// A minimal protocol-buffers encoder: the wire format (varints, fixed32, length-delimited
/// fields) for the handful of ONNX messages the exporter writes. Chosen over generated
/// swift-protobuf code because the messages used are few and write-only: this is ~60 lines
/// with no dependency, where swift-protobuf adds a package and ~14,000 lines of generated
/// onnx.pb.swift to compile (see docs/onnx.md for the measurement).
struct ProtoWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    mutating func int(_ field: Int, _ value: Int) {
        key(field, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
        var inner = ProtoWriter()
        build(&inner)
        bytes(field, inner.bytes)
    }

    /// A repeated int64 field, one entry per value (onnx.proto is proto2: not packed).
    mutating func ints(_ field: Int, _ values: [Int]) {
        for v in values { int(field, v) }
    }
}

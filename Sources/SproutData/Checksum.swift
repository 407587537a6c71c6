import Foundation

/// MD5 (RFC 1321), for checking dataset files against their published checksums.
public func md5(_ message: [UInt8]) -> String {
    let s: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                       5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                       4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                       6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    let k: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64(abs(sin(Double($0 + 1))) * 4_294_967_296)) }
    var a0: UInt32 = 0x6745_2301, b0: UInt32 = 0xEFCD_AB89, c0: UInt32 = 0x98BA_DCFE, d0: UInt32 = 0x1032_5476
    var data = message
    let bitLength = UInt64(message.count) * 8
    data.append(0x80)
    while data.count % 64 != 56 { data.append(0) }
    withUnsafeBytes(of: bitLength.littleEndian) { data += $0 }
    data.withUnsafeBytes { raw in
        for chunk in stride(from: 0, to: raw.count, by: 64) {
            var m = [UInt32](repeating: 0, count: 16)
            for i in 0..<16 { m[i] = raw.loadUnaligned(fromByteOffset: chunk + 4 * i, as: UInt32.self).littleEndian }
            var (a, b, c, d) = (a0, b0, c0, d0)
            for i in 0..<64 {
                var f: UInt32, g: Int
                switch i {
                case 0..<16: f = (b & c) | (~b & d); g = i
                case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
                case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) % 16
                default: f = c ^ (b | ~d); g = (7 * i) % 16
                }
                f = f &+ a &+ k[i] &+ m[g]
                a = d; d = c; c = b
                b = b &+ (f << s[i] | f >> (32 - s[i]))
            }
            a0 = a0 &+ a; b0 = b0 &+ b; c0 = c0 &+ c; d0 = d0 &+ d
        }
    }
    return [a0, b0, c0, d0].map { v in (0..<4).map { String(format: "%02x", (v >> (8 * $0)) & 0xff) }.joined() }.joined()
}

/// Known checksums of the official dataset files. For the IDX files the MD5 is of the
/// uncompressed content, so a re-compressed copy of the same data still verifies.
public enum KnownChecksums {
    public static let files: [String: String] = [
        // MNIST (IDX content)
        "train-images-idx3-ubyte#mnist": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte#mnist": "a25bea736e30d166cdddb491f175f624",
        // Fashion-MNIST (IDX content)
        "train-images-idx3-ubyte#fashion": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte#fashion": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte#fashion": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte#fashion": "15d484375f8d13e6eb1aabb0c3f46965",
        // CIFAR-10 binary version
        "batches.meta.txt": "728051cd483f366e254dddb25bead8b3",
        "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
        "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
        "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
        "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
        "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    ]
}

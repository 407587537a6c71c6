/// A minimal FlatBuffers writer: enough for the TensorFlow Lite schema (tables of scalars,
/// strings, vectors of scalars, bytes and tables; unions as a type byte plus a table).
///
/// Objects are described as a tree and written front to back: a table's vtable, then the
/// table, then the objects it refers to, so every offset points forward as the format wants
/// (uoffset_t is unsigned), and each reference is patched once its target's position is known.
enum FlatBuffer {
    indirect enum Field {
        case u8(UInt8), bool(Bool), i32(Int32), u32(UInt32), f32(Float)
        case object(Object)
    }

    indirect enum Object {
        /// Fields by slot (the schema's field order, 0-based); absent slots take their defaults.
        case table([(slot: Int, field: Field)])
        case string(String)
        case int32s([Int32])
        /// Raw bytes, the data starting at a multiple of `alignment` (TFLite's buffers: 16).
        case bytes([UInt8], alignment: Int)
        case tables([Object])
    }

    /// The whole buffer: the root offset, the file identifier (4 ASCII bytes), then `root`.
    static func serialize(_ root: Object, identifier: String) -> [UInt8] {
        var w = Writer()
        w.append(UInt32(0))
        w.bytes.append(contentsOf: Array(identifier.utf8.prefix(4)))
        let position = w.write(root)
        w.patch(at: 0, to: position)
        return w.bytes
    }

    struct Writer {
        var bytes: [UInt8] = []

        mutating func align(_ n: Int) {
            while bytes.count % n != 0 { bytes.append(0) }
        }

        mutating func append<T: FixedWidthInteger>(_ v: T) {
            withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
        }

        /// Writes at `at` the forward offset from `at` to `target`.
        mutating func patch(at: Int, to target: Int) {
            precondition(target > at, "FlatBuffer: references must point forward")
            let v = UInt32(target - at).littleEndian
            withUnsafeBytes(of: v) { for (i, b) in $0.enumerated() { bytes[at + i] = b } }
        }

        /// Appends `object`; returns its position (what offsets to it point at).
        mutating func write(_ object: Object) -> Int {
            switch object {
            case let .string(s):
                align(4)
                let p = bytes.count
                append(UInt32(s.utf8.count))
                bytes.append(contentsOf: Array(s.utf8))
                bytes.append(0)
                return p
            case let .int32s(values):
                align(4)
                let p = bytes.count
                append(UInt32(values.count))
                for v in values { append(v) }
                return p
            case let .bytes(data, alignment):
                // The length sits right before the data, which must be aligned.
                while (bytes.count + 4) % max(alignment, 4) != 0 { bytes.append(0) }
                let p = bytes.count
                append(UInt32(data.count))
                bytes.append(contentsOf: data)
                return p
            case let .tables(items):
                align(4)
                let p = bytes.count
                append(UInt32(items.count))
                let slots = (0..<items.count).map { p + 4 + 4 * $0 }
                for _ in items { append(UInt32(0)) }
                for (slot, item) in zip(slots, items) { patch(at: slot, to: write(item)) }
                return p
            case let .table(fields):
                return writeTable(fields)
            }
        }

        private static func size(_ f: Field) -> Int {
            switch f {
            case .u8, .bool: return 1
            case .i32, .u32, .f32, .object: return 4
            }
        }

        private mutating func writeTable(_ fields: [(slot: Int, field: Field)]) -> Int {
            // Inline layout: the soffset to the vtable, then the fields, largest first (no padding).
            let ordered = fields.sorted { Self.size($0.field) > Self.size($1.field) }
            var offsets: [Int: Int] = [:]
            var inline = 4
            for f in ordered {
                offsets[f.slot] = inline
                inline += Self.size(f.field)
            }
            let slotCount = (fields.map(\.slot).max() ?? -1) + 1
            let vtableSize = 4 + 2 * slotCount
            // vtable: [vtable size, table size, field offsets…] (u16), placed so the table after it is 4-aligned.
            while (bytes.count + vtableSize) % 4 != 0 { bytes.append(0) }
            let vtable = bytes.count
            append(UInt16(vtableSize))
            append(UInt16(inline))
            for slot in 0..<slotCount { append(UInt16(offsets[slot] ?? 0)) }
            let table = bytes.count
            append(Int32(table - vtable))
            var references: [(Int, Object)] = []
            for f in ordered {
                switch f.field {
                case let .u8(v): bytes.append(v)
                case let .bool(v): bytes.append(v ? 1 : 0)
                case let .i32(v): append(v)
                case let .u32(v): append(v)
                case let .f32(v): append(v.bitPattern)
                case let .object(o):
                    references.append((bytes.count, o))
                    append(UInt32(0))
                }
            }
            for (at, o) in references { patch(at: at, to: write(o)) }
            return table
        }
    }
}

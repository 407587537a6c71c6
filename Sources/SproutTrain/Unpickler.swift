import Foundation

/// A pickle interpreter for state dicts only (protocols 2–5 as torch.save writes them). It
/// builds values; it never imports or calls anything. Globals are checked against the short
/// list a state dict needs when they are named (GLOBAL / STACK_GLOBAL), and calls (REDUCE)
/// are interpreted for those globals alone; any other global or opcode is refused, naming it.
struct Unpickler {
    final class ListBox { var items: [Value] = [] }
    final class DictBox { var items: [(Value, Value)] = [] }

    indirect enum Value {
        case none, bool(Bool), int(Int), bigInt([UInt8]), float(Double), string(String), bytes([UInt8])
        case tuple([Value]), list(ListBox), dict(DictBox)
        case global(String)               // "module.name", already allowed
        case tensor(TorchTensorRef), storage(TorchTensorRef.Storage)
        case mark
    }

    /// What a state dict may name: PyTorch's weights_only allow-list, reduced to what
    /// state dicts of float tensors use.
    static let allowedGlobals: Set<String> = Set(["collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                                                  "torch._utils._rebuild_parameter"]
        + TorchWeights.DType.allCases.map { "torch.\($0.rawValue)" })

    let bytes: [UInt8]
    let file: String
    private(set) var position: Int
    private var stack: [Value] = []
    private var memo: [Int: Value] = [:]

    init(bytes: [UInt8], file: String, start: Int = 0) {
        (self.bytes, self.file, self.position) = (bytes, file, start)
    }

    private func refuse(_ reason: String) -> TorchWeights.Failure { .refused(file, reason: reason) }
    private func malformed(_ reason: String) -> TorchWeights.Failure { .malformed(file, reason: reason) }

    private mutating func read(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, position + n <= bytes.count else { throw malformed("pickle truncated at byte \(position)") }
        defer { position += n }
        return bytes[position..<(position + n)]
    }
    private mutating func uint(_ n: Int) throws -> Int {
        var v = 0
        for (i, b) in try read(n).enumerated() { v |= Int(b) << (8 * i) }
        return v
    }
    private mutating func line() throws -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw malformed("unterminated line at byte \(position)") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }
    private mutating func pop() throws -> Value {
        guard let v = stack.popLast() else { throw malformed("stack underflow at byte \(position)") }
        return v
    }
    /// Everything above the topmost mark (the mark removed).
    private mutating func popToMark() throws -> [Value] {
        guard let i = stack.lastIndex(where: { if case .mark = $0 { return true }; return false }) else {
            throw malformed("no mark at byte \(position)")
        }
        let items = Array(stack[(i + 1)...])
        stack.removeSubrange(i...)
        return items
    }
    private mutating func global(_ module: String, _ name: String) throws -> Value {
        let full = "\(module).\(name)"
        guard Self.allowedGlobals.contains(full) else { throw refuse("global \(full) is not allowed") }
        return .global(full)
    }

    /// Runs to STOP and returns the pickled object; `position` is then just past it.
    mutating func run() throws -> Value {
        while true {
            let op = try read(1).first!
            switch op {
            case 0x80: _ = try read(1)                                   // PROTO
            case 0x95: _ = try read(8)                                   // FRAME
            case 0x2E: return try pop()                                   // STOP
            case 0x28: stack.append(.mark)                                // MARK
            case 0x4E: stack.append(.none)                                // NONE
            case 0x88: stack.append(.bool(true))                          // NEWTRUE
            case 0x89: stack.append(.bool(false))                         // NEWFALSE
            case 0x4A: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4)))))  // BININT
            case 0x4B: stack.append(.int(try uint(1)))                   // BININT1
            case 0x4D: stack.append(.int(try uint(2)))                   // BININT2
            case 0x8A:                                                    // LONG1
                let raw = Array(try read(try uint(1)))
                if raw.count <= 8 {
                    var v: Int64 = 0
                    for (i, b) in raw.enumerated() { v |= Int64(b) << (8 * Int64(i)) }
                    if let last = raw.last, last & 0x80 != 0, raw.count < 8 { v -= Int64(1) << (8 * Int64(raw.count)) }
                    stack.append(.int(Int(v)))
                } else {
                    stack.append(.bigInt(raw))
                }
            case 0x47:                                                    // BINFLOAT (big-endian)
                var v: UInt64 = 0
                for b in try read(8) { v = v << 8 | UInt64(b) }
                stack.append(.float(Double(bitPattern: v)))
            case 0x58: stack.append(.string(String(decoding: try read(try uint(4)), as: UTF8.self)))   // BINUNICODE
            case 0x8C: stack.append(.string(String(decoding: try read(try uint(1)), as: UTF8.self)))   // SHORT_BINUNICODE
            case 0x54: stack.append(.string(String(decoding: try read(try uint(4)), as: UTF8.self)))   // BINSTRING
            case 0x55: stack.append(.string(String(decoding: try read(try uint(1)), as: UTF8.self)))   // SHORT_BINSTRING
            case 0x42: stack.append(.bytes(Array(try read(try uint(4)))))                              // BINBYTES
            case 0x43: stack.append(.bytes(Array(try read(try uint(1)))))                              // SHORT_BINBYTES
            case 0x29: stack.append(.tuple([]))                           // EMPTY_TUPLE
            case 0x85: stack.append(.tuple([try pop()]))                  // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple([a, b]))                  // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple([a, b, c])) // TUPLE3
            case 0x74: stack.append(.tuple(try popToMark()))              // TUPLE
            case 0x5D: stack.append(.list(ListBox()))                     // EMPTY_LIST
            case 0x7D: stack.append(.dict(DictBox()))                     // EMPTY_DICT
            case 0x61:                                                    // APPEND
                let v = try pop()
                guard case .list(let l) = stack.last else { throw malformed("APPEND to a non-list") }
                l.items.append(v)
            case 0x65:                                                    // APPENDS
                let items = try popToMark()
                guard case .list(let l) = stack.last else { throw malformed("APPENDS to a non-list") }
                l.items += items
            case 0x73:                                                    // SETITEM
                let v = try pop(), k = try pop()
                guard case .dict(let d) = stack.last else { throw malformed("SETITEM on a non-dict") }
                d.items.append((k, v))
            case 0x75:                                                    // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0, case .dict(let d) = stack.last else { throw malformed("SETITEMS on a non-dict") }
                for i in stride(from: 0, to: items.count, by: 2) { d.items.append((items[i], items[i + 1])) }
            case 0x71: memo[try uint(1)] = stack.last                     // BINPUT
            case 0x72: memo[try uint(4)] = stack.last                     // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                      // MEMOIZE
            case 0x68, 0x6A:                                              // BINGET, LONG_BINGET
                let k = try uint(op == 0x68 ? 1 : 4)
                guard let v = memo[k] else { throw malformed("memo \(k) is not set") }
                stack.append(v)
            case 0x63:                                                    // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93:                                                    // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw malformed("STACK_GLOBAL without names") }
                stack.append(try global(module, name))
            case 0x51:                                                    // BINPERSID
                stack.append(try persistent(try pop()))
            case 0x52:                                                    // REDUCE
                let args = try pop(), callable = try pop()
                stack.append(try reduce(callable, args))
            case 0x62:                                                    // BUILD
                let state = try pop()
                // An OrderedDict's _metadata (module versions) is the one state a state dict sets.
                guard case .dict = stack.last, case .dict = state else { throw refuse("BUILD on anything but a dict") }
            default:
                throw refuse(String(format: "pickle opcode 0x%02x at byte %d", op, position - 1))
            }
        }
    }

    /// ('storage', torch.FloatStorage, key, location, count[, view metadata]).
    private func persistent(_ pid: Value) throws -> Value {
        guard case .tuple(let t) = pid, t.count >= 5, case .string("storage") = t[0], case .global(let type) = t[1],
              case .string(let key) = t[2], case .int(let count) = t[4] else {
            throw refuse("a persistent id that is not a tensor storage")
        }
        guard let dtype = TorchWeights.DType(rawValue: String(type.dropFirst("torch.".count))) else { throw refuse("storage type \(type)") }
        return .storage(.init(key: key, dtype: dtype, count: count))
    }

    private func ints(_ v: Value, _ what: String) throws -> [Int] {
        guard case .tuple(let items) = v else { throw malformed("\(what) is not a tuple") }
        return try items.map { guard case .int(let i) = $0 else { throw malformed("\(what) holds a non-integer") }; return i }
    }

    private func reduce(_ callable: Value, _ args: Value) throws -> Value {
        guard case .global(let name) = callable, case .tuple(let a) = args else { throw refuse("a call of something that is not an allowed global") }
        switch name {
        case "collections.OrderedDict":
            guard a.isEmpty else { throw refuse("OrderedDict with arguments") }
            return .dict(DictBox())
        case "torch._utils._rebuild_tensor_v2":
            guard a.count >= 4, case .storage(let s) = a[0], case .int(let offset) = a[1] else { throw malformed("_rebuild_tensor_v2 arguments") }
            let shape = try ints(a[2], "size"), strides = try ints(a[3], "stride")
            guard shape.count == strides.count, offset >= 0, shape.allSatisfy({ $0 >= 0 }) else { throw malformed("tensor view of \(s.key)") }
            return .tensor(TorchTensorRef(storage: s, offset: offset, shape: shape, strides: strides))
        case "torch._utils._rebuild_parameter":
            guard let first = a.first, case .tensor = first else { throw malformed("_rebuild_parameter arguments") }
            return first
        default:
            throw refuse("calling \(name)")
        }
    }
}


/// The first file (or, failing that, the first part) of a multipart/form-data body.
///   boundary: from `Content-Type: multipart/form-data; boundary=…`
enum Multipart {
    static func boundary(contentType: String) -> String? {
        for part in contentType.split(separator: ";") {
            let kv = part.trimmingSpaces().split(separator: "=", maxSplits: 1)
            if kv.count == 2 && kv[0].lowercased() == "boundary" {
                var v = String(kv[1])
                if v.hasPrefix("\"") && v.hasSuffix("\"") && v.count >= 2 { v = String(v.dropFirst().dropLast()) }
                return v.isEmpty ? nil : v
            }
        }
        return nil
    }

    /// Body bytes of the first part with a filename, else of the first part; nil if malformed.
    static func firstFile(_ body: [UInt8], boundary: String) -> [UInt8]? {
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [(headers: String, content: ArraySlice<UInt8>)] = []
        var positions: [Int] = []
        var i = 0
        while let p = find(delimiter, in: body, from: i) {
            positions.append(p)
            i = p + delimiter.count
        }
        guard positions.count >= 2 else { return nil }
        for (start, end) in zip(positions, positions.dropFirst()) {
            var s = start + delimiter.count
            if s + 1 < body.count && body[s] == 13 && body[s + 1] == 10 { s += 2 }
            guard let headerEnd = find([13, 10, 13, 10], in: body, from: s), headerEnd < end else { continue }
            var e = end
            if e >= 2 && body[e - 2] == 13 && body[e - 1] == 10 { e -= 2 }
            guard headerEnd + 4 <= e else { continue }
            parts.append((String(decoding: body[s..<headerEnd], as: UTF8.self), body[(headerEnd + 4)..<e]))
        }
        let file = parts.first { $0.headers.lowercased().contains("filename=") } ?? parts.first
        return file.map { Array($0.content) }
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        var i = from
        while i <= hay.count - needle.count {
            if hay[i] == needle[0] {
                var j = 1
                while j < needle.count && hay[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}

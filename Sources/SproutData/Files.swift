import CZlib
import Foundation

/// Reads a whole file; gzip-wrapped files (magic 1f 8b) are inflated.
func readFile(_ path: String, gunzip: Bool = true) throws -> [UInt8] {
    let bytes = try readWholeFile(path)
    if gunzip && bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b { return try inflateGzip(bytes, path: path) }
    return bytes
}

/// A file's bytes with one open, fstat and read (the loader reads thousands a second).
func readWholeFile(_ path: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else {
        throw errno == ENOENT ? DatasetError.fileNotFound(path) : DatasetError.unreadable(path, reason: String(cString: strerror(errno)))
    }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw DatasetError.unreadable(path, reason: String(cString: strerror(errno))) }
    let size = Int(st.st_size)
    var failure: Int32 = 0
    let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
        var done = 0
        while done < size {
            let n = read(fd, buffer.baseAddress! + done, size - done)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failure = n < 0 ? errno : 0; break }
            done += n
        }
        count = done
    }
    if failure != 0 { throw DatasetError.unreadable(path, reason: String(cString: strerror(failure))) }
    return bytes
}

/// Inflates gzip data with zlib, refusing truncated or corrupt streams.
func inflateGzip(_ input: [UInt8], path: String) throws -> [UInt8] {
    try inflateStream(input, path: path, raw: false)
}

/// Inflates a gzip stream or (`raw`) a bare deflate stream, as zip entries hold them.
func inflateStream(_ input: [UInt8], path: String, raw: Bool, expectedSize: Int? = nil) throws -> [UInt8] {
    var stream = z_stream()
    let initialised = raw ? sprout_inflate_init_raw(&stream) : sprout_inflate_init_gzip(&stream)
    guard initialised == Z_OK else { throw DatasetError.corruptCompressedData(path, reason: "zlib init failed") }
    defer { inflateEnd(&stream) }
    var output = [UInt8]()
    output.reserveCapacity(expectedSize ?? input.count * 4)
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    var status: Int32 = Z_OK
    try input.withUnsafeBufferPointer { inBuf in
        stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress)
        stream.avail_in = uInt(inBuf.count)
        repeat {
            let produced: Int = chunk.withUnsafeMutableBufferPointer { out in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                status = inflate(&stream, Z_NO_FLUSH)
                return out.count - Int(stream.avail_out)
            }
            if status == Z_BUF_ERROR && stream.avail_in == 0 {
                throw DatasetError.corruptCompressedData(path, reason: "stream ends before its end marker (truncated file)")
            }
            if status != Z_OK && status != Z_STREAM_END {
                let message = stream.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw DatasetError.corruptCompressedData(path, reason: message)
            }
            output.append(contentsOf: chunk[0..<produced])
            if status == Z_OK && produced == 0 && stream.avail_in == 0 {
                throw DatasetError.corruptCompressedData(path, reason: "stream ends before its end marker (truncated file)")
            }
        } while status != Z_STREAM_END
    }
    return output
}

/// The uncompressed content of a gzip file.
public func gunzipFile(_ path: String) throws -> [UInt8] {
    let bytes = try readFile(path, gunzip: false)
    return try inflateGzip(bytes, path: path)
}

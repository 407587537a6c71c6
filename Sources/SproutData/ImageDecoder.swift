import CSTB
import CTurboJPEG

/// A decoded image, upright: interleaved bytes, height × width × channels (1 or 3).
public struct DecodedImage: Sendable, Equatable {
    public var width: Int, height: Int, channels: Int
    public var pixels: [UInt8]
}

/// Image file formats, told apart by their first bytes.
public enum ImageFormat: String, Sendable {
    case jpeg, png, gif, bmp, webp, unknown

    public init(sniffing b: [UInt8]) {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            b.count >= offset + prefix.count && Array(b[offset..<(offset + prefix.count)]) == prefix
        }
        if starts([0xFF, 0xD8, 0xFF]) { self = .jpeg }
        else if starts([0x89, 0x50, 0x4E, 0x47]) { self = .png }
        else if starts(Array("GIF8".utf8)) { self = .gif }
        else if starts(Array("BM".utf8)) { self = .bmp }
        else if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { self = .webp }
        else { self = .unknown }
    }
}

/// Decoding with the libraries made for it: JPEG through libjpeg-turbo (grey, colour, CMYK,
/// progressive; DCT-domain downscaling when the target is half the source or smaller; EXIF
/// orientation honoured), PNG, GIF (first frame) and BMP through stb_image. WebP is refused
/// with a message naming the file; a truncated or corrupt file is an error naming it.
public enum ImageDecoder {
    /// Decodes `bytes` to `channels` (1: grey, 3: RGB), turned upright. With `atLeast`, a JPEG
    /// may be decoded at 1/2, 1/4 or 1/8 scale as long as its shorter side stays ≥ `atLeast`
    /// (the IDCT then computes only the pixels needed).
    public static func decode(_ bytes: [UInt8], channels: Int, atLeast minimumSide: Int? = nil, name: String = "image") throws -> DecodedImage {
        precondition(channels == 1 || channels == 3, "ImageDecoder: channels must be 1 or 3")
        guard !bytes.isEmpty else { throw DatasetError.undecodableImage(name, reason: "empty file") }
        switch ImageFormat(sniffing: bytes) {
        case .jpeg:
            let markers = JPEGMarkers(bytes)
            let image = try decodeJPEG(bytes, channels: channels, atLeast: minimumSide, adobe: markers.adobe, name: name)
            return oriented(image, markers.orientation)
        case .webp:
            throw DatasetError.undecodableImage(name, reason: "WebP is not supported; convert it to JPEG or PNG")
        case .png, .gif, .bmp:
            return try decodeWithSTB(bytes, channels: channels, name: name)
        case .unknown:
            // stb_image would also try TGA (no magic number: almost any bytes pass), PSD, HDR, PIC
            // and PNM; fuzzing found 159 bytes read as a 6,168 × 6,168 run-length TGA. Only the
            // formats Sprout names are decoded.
            let start = bytes.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")
            throw DatasetError.undecodableImage(name, reason: "not a JPEG, PNG, GIF or BMP file (it starts with \(start))")
        }
    }

    /// The side lengths a JPEG decode at the chosen scale gives, without decoding (for tests
    /// and the loader's planning).
    public static func jpegDecodeSize(_ bytes: [UInt8], atLeast minimumSide: Int?) -> (width: Int, height: Int)? {
        guard let handle = tjInitDecompress() else { return nil }
        defer { tjDestroy(handle) }
        var w: Int32 = 0, h: Int32 = 0, sub: Int32 = 0, space: Int32 = 0
        let ok = bytes.withUnsafeBufferPointer { tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &w, &h, &sub, &space) }
        guard ok == 0 else { return nil }
        return scaled(width: Int(w), height: Int(h), atLeast: minimumSide)
    }

    /// Width and height from the header alone (JPEG, PNG, GIF, BMP), or nil.
    public static func dimensions(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        if ImageFormat(sniffing: bytes) == .jpeg { return jpegDecodeSize(bytes, atLeast: nil) }
        var w: Int32 = 0, h: Int32 = 0, n: Int32 = 0
        let ok = bytes.withUnsafeBufferPointer { stbi_info_from_memory($0.baseAddress, Int32($0.count), &w, &h, &n) }
        return ok != 0 ? (Int(w), Int(h)) : nil
    }

    /// The smallest of libjpeg-turbo's 1/2, 1/4 and 1/8 scales whose shorter side is still
    /// ≥ `minimumSide` (or full size): the DCT-domain reduction is used only when the target is
    /// half the source or smaller.
    static func scaled(width: Int, height: Int, atLeast minimumSide: Int?) -> (width: Int, height: Int) {
        guard let minimumSide else { return (width, height) }
        var count: Int32 = 0
        guard let factors = tjGetScalingFactors(&count) else { return (width, height) }
        var best = (width, height)
        for i in 0..<Int(count) {
            let f = factors[i]
            guard f.num == 1, [2, 4, 8].contains(f.denom) else { continue }
            let sw = (width * Int(f.num) + Int(f.denom) - 1) / Int(f.denom)
            let sh = (height * Int(f.num) + Int(f.denom) - 1) / Int(f.denom)
            if min(sw, sh) >= minimumSide && sw * sh < best.0 * best.1 { best = (sw, sh) }
        }
        return best
    }

    static func decodeJPEG(_ bytes: [UInt8], channels: Int, atLeast minimumSide: Int?, adobe: Bool, name: String) throws -> DecodedImage {
        guard let handle = tjInitDecompress() else { throw DatasetError.undecodableImage(name, reason: "libjpeg-turbo: out of memory") }
        defer { tjDestroy(handle) }
        func failure() -> DatasetError {
            .undecodableImage(name, reason: "JPEG: " + (tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown error"))
        }
        var w: Int32 = 0, h: Int32 = 0, sub: Int32 = 0, space: Int32 = 0
        let header = bytes.withUnsafeBufferPointer { tjDecompressHeader3(handle, $0.baseAddress, UInt($0.count), &w, &h, &sub, &space) }
        guard header == 0 else { throw failure() }
        guard w > 0, h > 0, Int(w) * Int(h) <= maximumPixels else {
            throw DatasetError.undecodableImage(name, reason: "unsupported size \(w)×\(h) (at most \(maximumPixels) pixels)")
        }
        let (sw, sh) = scaled(width: Int(w), height: Int(h), atLeast: minimumSide)
        let cmyk = space == Int32(TJCS_CMYK.rawValue) || space == Int32(TJCS_YCCK.rawValue)
        let format = cmyk ? TJPF_CMYK : (channels == 1 ? TJPF_GRAY : TJPF_RGB)
        let size = cmyk ? 4 : channels
        var out = [UInt8](repeating: 0, count: sw * sh * size)
        // Warnings (a truncated file, corrupt data) stop the decode: such a file is refused,
        // not half-decoded into grey.
        let rc = bytes.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                tjDecompress2(handle, src.baseAddress, UInt(src.count), dst.baseAddress, Int32(sw), 0, Int32(sh),
                              Int32(format.rawValue), TJFLAG_STOPONWARNING)
            }
        }
        guard rc == 0 else { throw failure() }
        guard cmyk else { return DecodedImage(width: sw, height: sh, channels: channels, pixels: out) }
        return DecodedImage(width: sw, height: sh, channels: channels, pixels: rgb(fromCMYK: out, count: sw * sh, inverted: adobe, channels: channels))
    }

    /// CMYK → RGB (or grey). Adobe's files (APP14 marker) store the inks inverted.
    static func rgb(fromCMYK p: [UInt8], count: Int, inverted: Bool, channels: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count * channels)
        for i in 0..<count {
            let k = Int(p[4 * i + 3])
            var rgb = [0, 1, 2].map { j -> Int in
                let c = Int(p[4 * i + j])
                return inverted ? c * k / 255 : (255 - c) * (255 - k) / 255
            }
            if channels == 1 { rgb = [(299 * rgb[0] + 587 * rgb[1] + 114 * rgb[2]) / 1000] }
            for j in 0..<channels { out[i * channels + j] = UInt8(rgb[j]) }
        }
        return out
    }

    /// The largest image decoded, in pixels (a 10,000 × 10,000 photo).
    public static let maximumPixels = 100_000_000

    static func decodeWithSTB(_ bytes: [UInt8], channels: Int, name: String) throws -> DecodedImage {
        var w: Int32 = 0, h: Int32 = 0, n: Int32 = 0
        // The header's size is checked before anything is allocated: a 100-byte PNG can declare
        // 50,000 × 50,000 pixels (7.5 GB) and a compressed stream that fills them.
        if bytes.withUnsafeBufferPointer({ stbi_info_from_memory($0.baseAddress, Int32($0.count), &w, &h, &n) }) != 0,
           w <= 0 || h <= 0 || Int(w) * Int(h) > maximumPixels {
            throw DatasetError.undecodableImage(name, reason: "unsupported size \(w)×\(h) (at most \(maximumPixels) pixels)")
        }
        guard let data = bytes.withUnsafeBufferPointer({ stbi_load_from_memory($0.baseAddress, Int32($0.count), &w, &h, &n, Int32(channels)) }) else {
            let reason = stbi_failure_reason().map { String(cString: $0) } ?? "unknown format"
            throw DatasetError.undecodableImage(name, reason: reason)
        }
        defer { stbi_image_free(data) }
        guard w > 0, h > 0, Int(w) * Int(h) <= maximumPixels else {
            throw DatasetError.undecodableImage(name, reason: "unsupported size \(w)×\(h) (at most \(maximumPixels) pixels)")
        }
        return DecodedImage(width: Int(w), height: Int(h), channels: channels,
                            pixels: Array(UnsafeBufferPointer(start: data, count: Int(w) * Int(h) * channels)))
    }

    /// The image as it is meant to be seen, for EXIF orientation 1–8 (TIFF/EXIF tag 0x0112:
    /// 2 mirrored, 3 rotated 180°, 4 flipped, 5 mirrored + rotated 270° CW, 6 rotated 90° CW,
    /// 7 mirrored + rotated 90° CW, 8 rotated 270° CW to display).
    public static func oriented(_ image: DecodedImage, _ orientation: Int) -> DecodedImage {
        guard (2...8).contains(orientation) else { return image }
        let (w, h, c) = (image.width, image.height, image.channels)
        let swaps = orientation >= 5
        let (ow, oh) = swaps ? (h, w) : (w, h)
        var out = [UInt8](repeating: 0, count: image.pixels.count)
        image.pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<oh {
                    for x in 0..<ow {
                        // The stored pixel shown at (x, y).
                        let (sx, sy): (Int, Int)
                        switch orientation {
                        case 2: (sx, sy) = (w - 1 - x, y)
                        case 3: (sx, sy) = (w - 1 - x, h - 1 - y)
                        case 4: (sx, sy) = (x, h - 1 - y)
                        case 5: (sx, sy) = (y, x)
                        case 6: (sx, sy) = (y, h - 1 - x)
                        case 7: (sx, sy) = (w - 1 - y, h - 1 - x)
                        default: (sx, sy) = (w - 1 - y, x)
                        }
                        let s = (sy * w + sx) * c, d = (y * ow + x) * c
                        for k in 0..<c { dst[d + k] = src[s + k] }
                    }
                }
            }
        }
        return DecodedImage(width: ow, height: oh, channels: c, pixels: out)
    }
}

/// What the JPEG header segments say beyond the image itself: the EXIF orientation (APP1)
/// and whether an Adobe APP14 marker is present (inverted CMYK).
struct JPEGMarkers {
    var orientation = 1
    var adobe = false

    init(_ b: [UInt8]) {
        var i = 2
        while i + 4 <= b.count, b[i] == 0xFF {
            let marker = b[i + 1]
            if marker == 0xDA || marker == 0xD9 { break }          // start of scan, end of image
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            guard length >= 2, i + 2 + length <= b.count else { break }
            let body = (i + 4)..<(i + 2 + length)
            if marker == 0xE1 { orientation = Self.exifOrientation(b, body) ?? orientation }
            if marker == 0xEE, body.count >= 5, Array(b[body.lowerBound..<(body.lowerBound + 5)]) == Array("Adobe".utf8) { adobe = true }
            i += 2 + length
        }
    }

    /// Tag 0x0112 of IFD0 in an APP1 "Exif\0\0" segment, if present and in 1…8.
    static func exifOrientation(_ b: [UInt8], _ body: Range<Int>) -> Int? {
        guard body.count >= 14, Array(b[body.lowerBound..<(body.lowerBound + 6)]) == [0x45, 0x78, 0x69, 0x66, 0, 0] else { return nil }
        let tiff = body.lowerBound + 6
        let little: Bool
        switch (b[tiff], b[tiff + 1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ at: Int) -> Int? {
            guard at + 2 <= body.upperBound else { return nil }
            return little ? Int(b[at]) | Int(b[at + 1]) << 8 : Int(b[at]) << 8 | Int(b[at + 1])
        }
        func u32(_ at: Int) -> Int? {
            guard let hi = u16(little ? at + 2 : at), let lo = u16(little ? at : at + 2) else { return nil }
            return hi << 16 | lo
        }
        guard u16(tiff + 2) == 42, let ifd = u32(tiff + 4), let entries = u16(tiff + ifd) else { return nil }
        for e in 0..<min(entries, 512) {
            let at = tiff + ifd + 2 + 12 * e
            guard let tag = u16(at) else { return nil }
            if tag == 0x0112, let type = u16(at + 2), type == 3, let value = u16(at + 8), (1...8).contains(value) { return value }
        }
        return nil
    }
}

extension ImageWriter {
    /// Pixel layouts libjpeg-turbo can compress.
    public enum JPEGPixels: Sendable { case grey, rgb, cmyk }

    /// Interleaved pixels → a baseline or progressive JPEG through libjpeg-turbo (CMYK is
    /// written with Adobe's APP14 marker, inks as given). Test photos and packed caches.
    public static func encodeJPEG(interleaved: [UInt8], width: Int, height: Int, pixels: JPEGPixels,
                                  quality: Int = 90, progressive: Bool = false) throws -> [UInt8] {
        let (format, size, subsampling): (TJPF, Int, TJSAMP) = {
            switch pixels {
            case .grey: return (TJPF_GRAY, 1, TJSAMP_GRAY)
            case .rgb: return (TJPF_RGB, 3, TJSAMP_420)
            case .cmyk: return (TJPF_CMYK, 4, TJSAMP_444)
            }
        }()
        precondition(interleaved.count == width * height * size, "encodeJPEG: \(interleaved.count) bytes for \(width)×\(height)×\(size)")
        guard let handle = tjInitCompress() else { throw DatasetError.unreadable("JPEG encoder", reason: "out of memory") }
        defer { tjDestroy(handle) }
        var out: UnsafeMutablePointer<UInt8>? = nil
        var length: UInt = 0
        let rc = interleaved.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(width), 0, Int32(height), Int32(format.rawValue), &out, &length,
                        Int32(subsampling.rawValue), Int32(quality), progressive ? TJFLAG_PROGRESSIVE : 0)
        }
        defer { tjFree(out) }
        guard rc == 0, let out else {
            throw DatasetError.unreadable("JPEG encoder", reason: tjGetErrorStr2(handle).map { String(cString: $0) } ?? "failed")
        }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    /// `jpeg` with an EXIF APP1 segment carrying `orientation` inserted after its SOI marker.
    public static func taggingOrientation(_ jpeg: [UInt8], _ orientation: Int) -> [UInt8] {
        // TIFF, little-endian: header, IFD0 with one SHORT entry (0x0112), no next IFD.
        let tiff: [UInt8] = [0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
                             UInt8(orientation), 0, 0, 0, 0, 0, 0, 0]
        let body = Array("Exif".utf8) + [0, 0] + tiff
        let length = body.count + 2
        return [0xFF, 0xD8, 0xFF, 0xE1, UInt8(length >> 8), UInt8(length & 0xFF)] + body + jpeg.dropFirst(2)
    }
}

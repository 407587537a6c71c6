import Foundation
import Testing
@testable import SproutData
import SproutTensor

/// JPEG through libjpeg-turbo: EXIF orientation (all eight), grey, CMYK, progressive, DCT
/// downscaling, truncated and unsupported files; on generated images and, when present, on a
/// real flower photo rotated and tagged here.
@Suite struct ImageDecoderTests {
    /// An upright test image: every quadrant different, so any wrong turn or mirror shows.
    static func upright(width: Int = 48, height: Int = 32) -> DecodedImage {
        var p = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                p[i] = UInt8(x * 255 / (width - 1))
                p[i + 1] = UInt8(y * 255 / (height - 1))
                p[i + 2] = (x < width / 2) == (y < height / 3) ? 230 : 20
            }
        }
        return DecodedImage(width: width, height: height, channels: 3, pixels: p)
    }

    // Plain turns and mirrors, written out independently of the decoder's own table.
    static func pixel(_ m: DecodedImage, _ x: Int, _ y: Int) -> ArraySlice<UInt8> {
        m.pixels[((y * m.width + x) * 3)..<((y * m.width + x) * 3 + 3)]
    }
    static func build(_ w: Int, _ h: Int, _ at: (Int, Int) -> ArraySlice<UInt8>) -> DecodedImage {
        var p: [UInt8] = []
        for y in 0..<h { for x in 0..<w { p += at(x, y) } }
        return DecodedImage(width: w, height: h, channels: 3, pixels: p)
    }
    static func mirror(_ m: DecodedImage) -> DecodedImage { build(m.width, m.height) { x, y in pixel(m, m.width - 1 - x, y) } }
    static func rotateClockwise(_ m: DecodedImage) -> DecodedImage { build(m.height, m.width) { x, y in pixel(m, y, m.height - 1 - x) } }
    static func rotateCounterClockwise(_ m: DecodedImage) -> DecodedImage { build(m.height, m.width) { x, y in pixel(m, m.width - 1 - y, x) } }

    /// What a camera stores for orientation `o` so that displaying it per EXIF gives `u`.
    static func stored(_ u: DecodedImage, orientation o: Int) -> DecodedImage {
        switch o {
        case 2: return mirror(u)                                                // mirrored
        case 3: return rotateClockwise(rotateClockwise(u))                      // rotated 180°
        case 4: return mirror(rotateClockwise(rotateClockwise(u)))              // flipped vertically
        case 5: return mirror(rotateClockwise(u))                               // display: mirror, then 270° CW
        case 6: return rotateCounterClockwise(u)                                // display: 90° CW
        case 7: return mirror(rotateCounterClockwise(u))                        // display: mirror, then 90° CW
        case 8: return rotateClockwise(u)                                       // display: 270° CW
        default: return u
        }
    }

    static func meanDifference(_ a: DecodedImage, _ b: DecodedImage) -> Double {
        guard a.width == b.width && a.height == b.height else { return .infinity }
        return zip(a.pixels, b.pixels).reduce(0.0) { $0 + abs(Double($1.0) - Double($1.1)) } / Double(a.pixels.count)
    }

    func tagged(_ u: DecodedImage, _ o: Int) throws -> [UInt8] {
        let s = Self.stored(u, orientation: o)
        let jpeg = try ImageWriter.encodeJPEG(interleaved: s.pixels, width: s.width, height: s.height, pixels: .rgb, quality: 95)
        return ImageWriter.taggingOrientation(jpeg, o)
    }

    /// A PNG whose header says `width` × `height` (8-bit RGB) over one tiny IDAT chunk.
    static func png(declaring width: UInt32, _ height: UInt32) -> [UInt8] {
        func crc(_ bytes: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in bytes {
                c ^= UInt32(b)
                for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            }
            return ~c
        }
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ kind: String, _ body: [UInt8]) -> [UInt8] {
            let typed = Array(kind.utf8) + body
            return be(UInt32(body.count)) + typed + be(crc(typed))
        }
        // zlib: header, one final stored block of a filter byte and one pixel, Adler-32 of those 4 bytes.
        let idat: [UInt8] = [0x78, 0x01, 0x01, 4, 0, 0xFB, 0xFF, 0, 1, 2, 3, 0x00, 0x18, 0x00, 0x07]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be(width) + be(height) + [8, 2, 0, 0, 0])
            + chunk("IDAT", idat) + chunk("IEND", [])
    }

    /// Decompression bombs: 88-byte PNGs that declare 50,000 × 50,000 pixels (7.5 GB as RGB; stb_image
    /// itself refuses anything over 1 GiB) or 18,000 × 18,000 (972 MB, which stb would allocate) are
    /// refused from the header, before anything of that size is allocated.
    @Test func aPNGDeclaringAHugeImageIsRefusedBeforeAllocating() {
        let before = ResourceUsage.peakResidentBytes
        #expect { try ImageDecoder.decode(Self.png(declaring: 50_000, 50_000), channels: 3, name: "bomb.png") } throws: { error in
            "\(error)".contains("bomb.png") && "\(error)".contains("too large")
        }
        #expect { try ImageDecoder.decode(Self.png(declaring: 18_000, 18_000), channels: 3, name: "bomb.png") } throws: { error in
            "\(error)".contains("unsupported size 18000×18000") && "\(error)".contains("bomb.png")
        }
        #expect(ResourceUsage.peakResidentBytes - before < 256 << 20)
        // The same construction at a size that is allowed gets past the header check (and then fails on the missing rows).
        #expect { try ImageDecoder.decode(Self.png(declaring: 2, 2), channels: 3) } throws: { !"\($0)".contains("unsupported size") }
    }

    @Test(arguments: 1...8)
    func everyExifOrientationComesOutUpright(orientation: Int) throws {
        let u = Self.upright()
        let decoded = try ImageDecoder.decode(try tagged(u, orientation), channels: 3)
        #expect(decoded.width == 48 && decoded.height == 32)
        #expect(Self.meanDifference(decoded, u) < 4, "orientation \(orientation): mean difference \(Self.meanDifference(decoded, u))")
        // And the tag is what made it upright: read without it, a turned or mirrored image is far off.
        if orientation != 1 {
            // SOI, then the stored JPEG without the APP1 segment (2 marker + 2 length + 32 bytes).
            let untagged = try ImageDecoder.decode([0xFF, 0xD8] + Array(try tagged(u, orientation).dropFirst(2 + 2 + 2 + 32)), channels: 3)
            #expect(Self.meanDifference(untagged, u) > 30)
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: RealData.shared + "/flowers/daisy"), "../shared/data/flowers is absent"))
    func aRealPhotoRotatedAndTaggedHereComesOutUpright() throws {
        let dir = RealData.shared + "/flowers/daisy"
        let file = try #require(try FileManager.default.contentsOfDirectory(atPath: dir).sorted().first { $0.hasSuffix(".jpg") })
        let photo = try ImageDecoder.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file))), channels: 3)
        for o in [3, 6, 8] {
            let decoded = try ImageDecoder.decode(try tagged(photo, o), channels: 3)
            #expect(Self.meanDifference(decoded, photo) < 4, "\(file), orientation \(o)")
        }
    }

    @Test func greyCMYKAndProgressiveJPEGs() throws {
        let u = Self.upright()
        let grey = u.pixels.enumerated().filter { $0.offset % 3 == 0 }.map(\.element)
        let g = try ImageDecoder.decode(try ImageWriter.encodeJPEG(interleaved: grey, width: 48, height: 32, pixels: .grey), channels: 1)
        #expect(g.channels == 1 && zip(g.pixels, grey).map { abs(Int($0) - Int($1)) }.max()! < 12)
        // As colour: grey spread to three equal channels.
        let g3 = try ImageDecoder.decode(try ImageWriter.encodeJPEG(interleaved: grey, width: 48, height: 32, pixels: .grey), channels: 3)
        #expect(g3.pixels[0] == g3.pixels[1] && g3.pixels[1] == g3.pixels[2])
        // CMYK the way Adobe writes it (inks inverted): K = 255 − max(R,G,B), C = (255 − R − K)/(255 − K)…
        var cmyk: [UInt8] = []
        for i in 0..<(48 * 32) {
            let (r, gg, b) = (Int(u.pixels[3 * i]), Int(u.pixels[3 * i + 1]), Int(u.pixels[3 * i + 2]))
            let k = 255 - max(r, gg, b)
            let ink = { (v: Int) -> Int in k == 255 ? 0 : (255 - v - k) * 255 / (255 - k) }
            cmyk += [255 - ink(r), 255 - ink(gg), 255 - ink(b), 255 - k].map { UInt8($0) }
        }
        let c = try ImageDecoder.decode(try ImageWriter.encodeJPEG(interleaved: cmyk, width: 48, height: 32, pixels: .cmyk, quality: 95), channels: 3)
        #expect(Self.meanDifference(c, u) < 6, "CMYK: \(Self.meanDifference(c, u))")
        let progressive = try ImageWriter.encodeJPEG(interleaved: u.pixels, width: 48, height: 32, pixels: .rgb, quality: 95, progressive: true)
        #expect(progressive.contains(0xC2), "a progressive frame marker (SOF2)")
        #expect(Self.meanDifference(try ImageDecoder.decode(progressive, channels: 3), u) < 4)
    }

    @Test func largeJPEGsDecodeAtTheSmallestScaleStillBigEnough() throws {
        var p = [UInt8](repeating: 0, count: 640 * 480 * 3)
        for i in p.indices { p[i] = UInt8((i * 7) % 251) }
        let jpeg = try ImageWriter.encodeJPEG(interleaved: p, width: 640, height: 480, pixels: .rgb)
        #expect(ImageDecoder.jpegDecodeSize(jpeg, atLeast: 224)! == (320, 240))   // 1/2: 240 ≥ 224
        #expect(ImageDecoder.jpegDecodeSize(jpeg, atLeast: 32)! == (80, 60))      // 1/8
        #expect(ImageDecoder.jpegDecodeSize(jpeg, atLeast: 300)! == (640, 480))   // no smaller scale fits
        #expect(ImageDecoder.jpegDecodeSize(jpeg, atLeast: nil)! == (640, 480))
        let decoded = try ImageDecoder.decode(jpeg, channels: 3, atLeast: 224)
        #expect(decoded.width == 320 && decoded.height == 240)
        #expect(try ImageFolder.decodeImage(bytes: jpeg, size: 224).count == 3 * 224 * 224)
    }

    @Test func truncatedCorruptAndUnsupportedFilesAreErrorsNamingTheFile() throws {
        let u = Self.upright()
        let jpeg = try ImageWriter.encodeJPEG(interleaved: u.pixels, width: 48, height: 32, pixels: .rgb)
        #expect(throws: DatasetError.self) { try ImageDecoder.decode(Array(jpeg.prefix(jpeg.count / 2)), channels: 3, name: "half.jpg") }
        do {
            _ = try ImageDecoder.decode(Array(jpeg.prefix(jpeg.count / 2)), channels: 3, name: "half.jpg")
        } catch {
            #expect("\(error)".hasPrefix("half.jpg: cannot decode image: JPEG:"), "\(error)")
        }
        let webp = Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WEBPVP8 ".utf8)
        #expect(throws: DatasetError.undecodableImage("a.webp", reason: "WebP is not supported; convert it to JPEG or PNG")) {
            try ImageDecoder.decode(webp, channels: 3, name: "a.webp")
        }
        #expect(ImageFormat(sniffing: Array("GIF89a".utf8)) == .gif && ImageFormat(sniffing: Array("BM".utf8)) == .bmp)
        #expect(throws: DatasetError.self) { try ImageDecoder.decode(Array("not an image".utf8), channels: 3) }
    }
}

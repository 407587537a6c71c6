import CSTB
import Foundation
import SproutTensor

/// A TrueType font read once and rasterised with stb_truetype (read-only after loading, so
/// loader threads share it).
public final class Font: @unchecked Sendable {
    public let path: String
    let data: UnsafeMutablePointer<UInt8>
    var info = stbtt_fontinfo()

    public init(path: String) throws {
        guard let bytes = FileManager.default.contents(atPath: path), !bytes.isEmpty else { throw DatasetError.fileNotFound(path) }
        data = .allocate(capacity: bytes.count)
        bytes.copyBytes(to: data, count: bytes.count)
        self.path = path
        // (A throw after this point still runs deinit, which frees `data`.)
        guard stbtt_InitFont(&info, data, stbtt_GetFontOffsetForIndex(data, 0)) != 0 else {
            throw DatasetError.malformed(path, reason: "not a TrueType font stb_truetype can read")
        }
    }

    deinit { data.deallocate() }

    /// Whether the font has a glyph for `c` (glyph 0 is "missing").
    public func hasGlyph(_ c: Character) -> Bool {
        guard let scalar = c.unicodeScalars.first else { return false }
        return c == " " || withUnsafePointer(to: info) { stbtt_FindGlyphIndex($0, Int32(scalar.value)) } != 0
    }

    /// The .ttf files at `path` (a file, or a directory searched one level deep), sorted.
    public static func load(_ path: String) throws -> [Font] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw DatasetError.fileNotFound(path) }
        guard isDirectory.boolValue else { return [try Font(path: path)] }
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.lowercased().hasSuffix(".ttf") }.sorted()
        guard !files.isEmpty else { throw DatasetError.malformed(path, reason: "no .ttf fonts in this directory") }
        return try files.map { try Font(path: (path as NSString).appendingPathComponent($0)) }
    }
}

/// Rendered text lines for a captcha- or plate-style reader: words from a word list drawn
/// with real fonts through stb_truetype at a random size, spacing and baseline jitter, then
/// noise, blur and an occasional stroke across (light text on black, as the digit lines).
/// Sample `index` is a fixed word in a fixed font; with `freshLayout` augmentation its
/// rendering is drawn anew each epoch. The classes are the alphabet's characters, in order.
public struct TextLines: Dataset {
    public static let lineHeight = 32
    public let fonts: [Font]
    public let words: [String]
    public let alphabet: [Character]
    /// Each character's class (its position in `alphabet`).
    let classIndex: [Character: Int]
    public let count: Int
    public let width: Int
    public let seed: UInt64
    /// Each line's word (an index into `words`) and font (into `fonts`).
    public let lines: [(word: Int, font: Int)]
    public var channels: Int { 1 }
    public var height: Int { Self.lineHeight }
    public var classNames: [String] { alphabet.map(String.init) }

    public static func width(forLength maxLength: Int) -> Int { 18 * maxLength + 16 }

    /// `alphabet` (nil: every character of `words`, sorted) must cover the words; words
    /// longer than `maxLength` are left out.
    public init(fonts: [Font], words: [String], alphabet: [Character]? = nil, count: Int, maxLength: Int, width: Int? = nil,
                seed: UInt64) throws {
        let kept = words.filter { !$0.isEmpty && $0.count <= maxLength }
        guard !kept.isEmpty else { throw DatasetError.invalid("text lines: no word of 1-\(maxLength) characters in the word list") }
        guard !fonts.isEmpty else { throw DatasetError.invalid("text lines: no font") }
        let letters = alphabet ?? Array(Set(kept.joined())).sorted()
        let known = Set(letters)
        if let word = kept.first(where: { !$0.allSatisfy(known.contains) }) {
            throw DatasetError.invalid("text lines: '\(word)' has a character outside the alphabet \(String(letters))")
        }
        for font in fonts {
            if let missing = letters.first(where: { !font.hasGlyph($0) }) {
                throw DatasetError.invalid("\(font.path): no glyph for '\(missing)'")
            }
        }
        (self.fonts, self.words, self.alphabet, self.count, self.seed) = (fonts, kept, letters, count, seed)
        classIndex = Dictionary(uniqueKeysWithValues: letters.enumerated().map { ($1, $0) })
        self.width = width ?? Self.width(forLength: maxLength)
        var g = SeededGenerator(seed: seed)
        lines = (0..<count).map { _ in (g.nextInt(below: kept.count), g.nextInt(below: fonts.count)) }
    }

    public func text(of index: Int) -> String { words[lines[index].word] }

    public func labels(of index: Int) -> [Int] { text(of: index).map { classIndex[$0]! } }

    public func targets(_ indices: [Int]) -> Targets { .sequences(indices.map(labels(of:))) }

    /// Draws line `index` into `out` (height × width floats in 0...1) with the layout `g` draws.
    func render(_ index: Int, generator g: inout SeededGenerator, into out: UnsafeMutablePointer<Float>) {
        out.initialize(repeating: 0, count: height * width)
        let font = fonts[lines[index].font]
        let word = Array(text(of: index).unicodeScalars).map { Int32($0.value) }
        var pixels = Float(20 + g.nextInt(below: 9))
        var info = font.info
        var scale: Float = 0, advances: [Float] = []
        // The size drawn, shrunk until the word fits the line.
        while true {
            scale = stbtt_ScaleForPixelHeight(&info, pixels)
            advances = word.indices.map { k -> Float in
                var advance: Int32 = 0, bearing: Int32 = 0
                stbtt_GetCodepointHMetrics(&info, word[k], &advance, &bearing)
                let kern = k + 1 < word.count ? stbtt_GetCodepointKernAdvance(&info, word[k], word[k + 1]) : 0
                return Float(advance + kern) * scale
            }
            if advances.reduce(0, +) + Float(2 * word.count) + 4 <= Float(width) || pixels <= 10 { break }
            pixels -= 1
        }
        var ascent: Int32 = 0, descent: Int32 = 0, gap: Int32 = 0
        stbtt_GetFontVMetrics(&info, &ascent, &descent, &gap)
        let baseline = (Float(height) + Float(ascent + descent) * scale) / 2
        var x = Float(g.nextInt(below: 9))
        var glyph = [UInt8](repeating: 0, count: 64 * 64)
        for (k, c) in word.enumerated() {
            var x0: Int32 = 0, y0: Int32 = 0, x1: Int32 = 0, y1: Int32 = 0
            stbtt_GetCodepointBitmapBox(&info, c, scale, scale, &x0, &y0, &x1, &y1)
            let (gw, gh) = (Int(x1 - x0), Int(y1 - y0))
            let jitter = g.nextInt(below: 5) - 2
            if gw > 0 && gh > 0 && gw <= 64 && gh <= 64 {
                glyph.withUnsafeMutableBufferPointer { stbtt_MakeCodepointBitmap(&info, $0.baseAddress, Int32(gw), Int32(gh), 64, scale, scale, c) }
                let left = Int(x.rounded()) + Int(x0), top = Int(baseline.rounded()) + Int(y0) + jitter
                for y in 0..<gh where (0..<height).contains(top + y) {
                    for xx in 0..<gw where (0..<width).contains(left + xx) {
                        let o = (top + y) * width + left + xx
                        out[o] = max(out[o], Float(glyph[y * 64 + xx]) / 255)
                    }
                }
            }
            x += advances[k] + Float(g.nextInt(below: 4) - 1)
        }
        // A stroke across the line, as captchas draw.
        if g.nextUniform() < 0.3 {
            let (y0, y1) = (Float(4 + g.nextInt(below: height - 8)), Float(4 + g.nextInt(below: height - 8)))
            for xx in 0..<width {
                let y = Int((y0 + (y1 - y0) * Float(xx) / Float(width)).rounded())
                out[y * width + xx] = max(out[y * width + xx], 0.8)
            }
        }
        // Blur (a 3-tap box across and down) on half of the lines, then noise.
        if g.nextUniform() < 0.5 {
            var copy = Array(UnsafeBufferPointer(start: out, count: height * width))
            for y in 0..<height { for xx in 1..<(width - 1) { out[y * width + xx] = (copy[y * width + xx - 1] + copy[y * width + xx] + copy[y * width + xx + 1]) / 3 } }
            copy = Array(UnsafeBufferPointer(start: out, count: height * width))
            for y in 1..<(height - 1) { for xx in 0..<width { out[y * width + xx] = (copy[(y - 1) * width + xx] + copy[y * width + xx] + copy[(y + 1) * width + xx]) / 3 } }
        }
        let sigma = 0.12 * g.nextUniform()
        for i in 0..<(height * width) { out[i] = min(1, max(0, out[i] + sigma * g.nextNormal())) }
    }

    func canonicalGenerator(_ index: Int) -> SeededGenerator { SeededGenerator(seed: mix(seed, 0x5445_5854, UInt64(index))) }

    public func withPixels<R>(ofSample index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        var floats = [Float](repeating: 0, count: height * width)
        var g = canonicalGenerator(index)
        floats.withUnsafeMutableBufferPointer { render(index, generator: &g, into: $0.baseAddress!) }
        return try floats.map { UInt8(($0 * 255).rounded()) }.withUnsafeBufferPointer(body)
    }

    public func renderSample(_ index: Int, augmentation: Augmentation, generator: inout SeededGenerator,
                             into out: UnsafeMutablePointer<Float>) throws -> Bool {
        if augmentation.freshLayout {
            render(index, generator: &generator, into: out)
        } else {
            var g = canonicalGenerator(index)
            render(index, generator: &g, into: out)
        }
        return true
    }

    /// Reads a word list: one word per line, blank lines and surrounding spaces dropped.
    public static func readWords(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw DatasetError.fileNotFound(path) }
        return String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// A built-in list of common English words (lower case), for when no list is given.
    public static let defaultWords: [String] = """
    able about above accept across act add afraid after again against age ago agree air all allow almost alone along already \
    also always among amount angry animal answer any appear apple area arm army around arrive art ask attack aunt autumn away \
    baby back bad bag ball bank base basket bath bear beat beauty become bed beer before begin behind believe bell belt bench \
    best better between bird birth black blade blood blow blue board boat body bone book border born borrow both bottle bottom \
    bowl box boy brain branch brave bread break breath brick bridge bright bring broad brother brown brush build burn bus busy \
    butter button buy cable cake call calm camera camp candle cap car card care carry case cat catch cause cell chain chair \
    chalk chance change charge cheap check cheese chest chief child choice church circle city claim class clean clear climb \
    clock close cloth cloud coast coat coffee cold collar colour comb come common copy corn corner cost cotton cough count \
    country cover cow crack cream crime crowd cry cup curve cushion cut damage dance danger dark date daughter day dead deal \
    dear death debt decide deep degree desert design desk detail develop differ dinner dirty dish doctor dog door double down \
    drain draw dream dress drink drive drop dry duck dust duty each eager early earth east easy eat edge effect egg eight \
    either elbow empty end enemy energy engine enjoy enough enter equal error escape even event ever every exact example \
    expert eye face fact fail fair fall family famous far farm fast father fault fear feather feel fence fever few field \
    fight figure fill film final find fine finger fire first fish five flag flame flat floor flower fly fold food foot force \
    forest forget fork form four frame free fresh friend front fruit full fun future game garden gate general gentle gift \
    girl give glad glass glove goat gold good grain grass great green grey grip ground group grow guard guess guide habit \
    hair half hall hammer hand happy harbour hard hat have head health heart heat heavy help hill history hole holiday home \
    honest hook hope horn horse hospital hot hour house human humour hunger hurry idea ill image inch ink insect iron island \
    jacket jelly jewel join joke journey judge juice jump just keep kettle key kick kind king kiss kitchen knee knife knot \
    know ladder lake lamp land language large last late laugh lead leaf learn leather left leg lemon letter level library \
    light like limit line linen lip liquid list little live lock long look loose loss loud love low lunch machine magic make \
    male man manager map mark market mass match meal measure meat medical meet memory metal middle milk mind mine minute \
    mirror mist mix model money monkey month moon morning mother motion mountain mouth move music nail name narrow nation \
    near neck needle nerve net new news night nine noise normal north nose note number nut ocean offer office oil old one \
    open orange order oven owner page pain paint paper parcel park part party past paste path peace pen pencil people pepper \
    person piano picture piece pig pin pipe place plane plant plate play pocket point poison polish pool poor porter potato \
    powder power price print prison private prize profit proof public pull pump punch pupil push quality queen question \
    quick quiet quite rabbit race rail rain range rat rate reach read ready reason record red regret relation rent reply rest \
    reward rhythm rice right ring river road rock roll roof room root rope rough round rub rule run safe sail salt same sand \
    say scale school science score screw sea seat second seed self send sense seven shade shake shape share sharp sheep shelf \
    shell ship shirt shock shoe short shut side sign silk silver simple sister size skin skirt sky sleep slip slow small \
    smash smell smile smoke snake sneeze snow soap society sock soft son song sort sound soup south space spade special \
    sponge spoon spring square stage stamp star start station steam steel stem step stick still stitch stock stomach stone \
    stop store story straight strange street stretch strong sugar summer sun support swim system table tail talk tall taste \
    tax tea teach team tell ten test thick thin thing thought three thread throat thumb thunder ticket tight time tin tired \
    toe tomorrow tongue tooth top touch town trade train tray tree trick trouble true turn twist two umbrella uncle under \
    unit up use value verse very vessel view violent voice wait walk wall want war warm wash waste watch water wave wax way \
    weather week weight well west wet wheel whip whistle white wide wind window wine wing winter wire wise woman wood wool \
    word work worm wound writer year yellow young zebra zero
    """.split(separator: " ").map(String.init)
}

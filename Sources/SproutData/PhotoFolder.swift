import Foundation
import SproutTensor
#if canImport(Glibc)
import Glibc
#endif

/// Photos of any size, decoded one at a time on demand (a folder of files, or a pack).
public protocol PhotoSource: Sendable {
    var count: Int { get }
    var classNames: [String] { get }
    var labels: [Int32] { get }
    /// Where sample `index` comes from, for messages.
    func name(of index: Int) -> String
    /// The raw file of sample `index` (an encoded image) …
    func encoded(_ index: Int) throws -> [UInt8]
    /// … or, for sources that hold decoded pixels, those (upright RGB); nil for encoded sources.
    func decoded(_ index: Int) throws -> DecodedImage?
    /// The samples `indices`, in that order.
    func subset(indices: [Int]) -> any PhotoSource
}

extension PhotoSource {
    public var classCount: Int { classNames.count }

    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for l in labels where Int(l) < counts.count { counts[Int(l)] += 1 }
        return counts
    }
}

/// The file list of a photo folder, ROOT/<class>/<file>: only names are read, nothing is
/// decoded (a folder of 200,000 photos is listed in about a second), so start-up does not
/// grow with the images' sizes. Paths are kept as one class directory plus a file name.
public struct PhotoFolder: PhotoSource {
    public let root: String
    public let classNames: [String]
    public private(set) var labels: [Int32]
    /// File names, relative to their class folder.
    public private(set) var files: [String]

    public var count: Int { files.count }

    /// Lists `root`'s class folders (sorted; or `classNames`, as a validation folder must use
    /// the training folder's classes) and their image files (sorted; hidden and non-image
    /// files ignored). A class folder without an image file is an error naming it.
    public static func index(root: String, classNames fixed: [String]? = nil) throws -> PhotoFolder {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw DatasetError.fileNotFound(root)
        }
        let classes = fixed ?? ImageFolder.directories(in: root)
        var labels: [Int32] = [], files: [String] = []
        for (label, name) in classes.enumerated() {
            let dir = (root as NSString).appendingPathComponent(name)
            let images = ImageFolder.imageNames(in: dir)
            // A class that cannot be learned is an error, not a silently smaller problem; a
            // validation folder may lack a class the training folder has.
            if images.isEmpty && (fixed == nil || FileManager.default.fileExists(atPath: dir)) {
                throw DatasetError.emptyClass(dir)
            }
            files += images
            labels += [Int32](repeating: Int32(label), count: images.count)
        }
        guard !files.isEmpty else { throw DatasetError.emptyFolder(root) }
        return PhotoFolder(root: root, classNames: classes, labels: labels, files: files)
    }

    public func path(of index: Int) -> String {
        root + "/" + classNames[Int(labels[index])] + "/" + files[index]
    }

    public func name(of index: Int) -> String { path(of: index) }

    public func encoded(_ index: Int) throws -> [UInt8] { try readFile(path(of: index), gunzip: false) }

    public func decoded(_ index: Int) throws -> DecodedImage? { nil }

    public func subset(indices: [Int]) -> any PhotoSource {
        PhotoFolder(root: root, classNames: classNames, labels: indices.map { labels[$0] }, files: indices.map { files[$0] })
    }

    /// Bytes held per file in the index: the name, its label and the array slots.
    public var bytesPerFile: Double {
        let names = files.reduce(0) { $0 + max(16, $1.utf8.count) }
        return Double(names + files.count * (MemoryLayout<String>.stride + MemoryLayout<Int32>.stride)) / Double(max(1, count))
    }
}

/// Encoded images held in memory (a request's body, a test's files).
public struct EncodedPhotos: PhotoSource {
    public let items: [(name: String, bytes: [UInt8])]
    public let labels: [Int32]
    public let classNames: [String]

    public init(_ items: [(name: String, bytes: [UInt8])], labels: [Int32]? = nil, classNames: [String]) {
        self.items = items
        self.labels = labels ?? [Int32](repeating: 0, count: items.count)
        self.classNames = classNames
    }

    public var count: Int { items.count }
    public func name(of index: Int) -> String { items[index].name }
    public func encoded(_ index: Int) throws -> [UInt8] { items[index].bytes }
    public func decoded(_ index: Int) throws -> DecodedImage? { nil }
    public func subset(indices: [Int]) -> any PhotoSource {
        EncodedPhotos(indices.map { items[$0] }, labels: indices.map { labels[$0] }, classNames: classNames)
    }
}

/// Visible entries of a directory, sorted by name: subdirectories or regular files (links
/// followed). readdir's file types avoid a stat per file, which is what makes listing
/// hundreds of thousands of files fast.
func listDirectory(_ path: String, directories: Bool) -> [String] {
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
        }
        if name.hasPrefix(".") { continue }
        var kind = Int32(entry.pointee.d_type)
        if kind == Int32(DT_UNKNOWN) || kind == Int32(DT_LNK) {
            var st = stat()
            guard stat(path + "/" + name, &st) == 0 else { continue }
            kind = (st.st_mode & S_IFMT) == S_IFDIR ? Int32(DT_DIR) : (st.st_mode & S_IFMT) == S_IFREG ? Int32(DT_REG) : kind
        }
        if directories ? kind == Int32(DT_DIR) : kind == Int32(DT_REG) { names.append(name) }
    }
    return names.sorted()
}

/// A seeded split of `labels` in which every class keeps its share: `validationCount`
/// samples (spread over the classes in proportion to their sizes, largest remainders
/// first) validate, the rest train; each class with two or more samples keeps at least one
/// on each side. Both index lists are in ascending order.
public func stratifiedSplitIndices(labels: [Int32], classCount: Int, validationCount: Int, seed: UInt64)
    -> (train: [Int], validation: [Int]) {
    let count = labels.count
    precondition(validationCount > 0 && validationCount < count, "stratifiedSplit: \(validationCount) validation samples out of \(count)")
    var byClass = [[Int]](repeating: [], count: classCount)
    for (i, l) in labels.enumerated() { byClass[Int(l)].append(i) }
    let exact = byClass.map { Double($0.count) * Double(validationCount) / Double(count) }
    var shares = exact.enumerated().map { c, e in byClass[c].count >= 2 ? min(max(Int(e), 1), byClass[c].count - 1) : 0 }
    // Largest remainders take what is left (or give back what the minimum of one added).
    let order = exact.indices.sorted { (exact[$0] - Double(Int(exact[$0]))) > (exact[$1] - Double(Int(exact[$1]))) || $0 < $1 && exact[$0] == exact[$1] }
    var missing = validationCount - shares.reduce(0, +), turn = 0
    while missing != 0 && turn < 4 * max(1, order.count) {
        let c = order[turn % order.count]
        if missing > 0 && shares[c] < byClass[c].count - 1 { shares[c] += 1; missing -= 1 }
        else if missing < 0 && shares[c] > 1 { shares[c] -= 1; missing += 1 }
        turn += 1
    }
    var validation: [Int] = []
    for (c, members) in byClass.enumerated() {
        var g = SeededGenerator(seed: seed &+ UInt64(c) &* 0x9E37_79B9)
        var shuffled = members
        for i in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(i, g.nextInt(below: i + 1)) }
        validation += shuffled.prefix(shares[c])
    }
    let held = Set(validation)
    return ((0..<count).filter { !held.contains($0) }, validation.sorted())
}

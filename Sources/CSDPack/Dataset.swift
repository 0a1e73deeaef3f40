import CZlib
import Foundation

/// Test images for `csdpack verify`: IDX data sets (Fashion-MNIST, MNIST), gzipped or not.
public struct Dataset {
    public var images: [UInt8]  // [N][C][H][W]
    public var labels: [Int]
    public var shape: [Int]  // C, H, W
    public var count: Int { labels.count }

    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    /// Loads the test split of `name` ("fashion-mnist" or "mnist").
    public static func loadTest(_ name: String, directory: String?) throws(PackError) -> Dataset {
        let dir: String
        switch name {
        case "fashion-mnist": dir = directory ?? fashionMNISTDirectory
        case "mnist":
            guard let d = directory else { throw PackError("--data mnist needs --data-dir (it is not bundled)") }
            dir = d
        default:
            throw PackError("--data \(name): verify reads the IDX data sets fashion-mnist and mnist")
        }
        guard FileManager.default.fileExists(atPath: dir) else {
            throw PackError("\(dir): no such directory" + (directory == nil ? " (install the Debian package dataset-fashion-mnist)" : ""))
        }
        let images = try readIDX(dir, "t10k-images-idx3-ubyte", dimensions: 3)
        let labels = try readIDX(dir, "t10k-labels-idx1-ubyte", dimensions: 1)
        guard images.shape[0] == labels.shape[0] else {
            throw PackError("\(dir): \(images.shape[0]) test images but \(labels.shape[0]) labels")
        }
        return Dataset(images: images.data, labels: labels.data.map { Int($0) }, shape: [1, images.shape[1], images.shape[2]])
    }

    static func readIDX(_ dir: String, _ stem: String, dimensions: Int) throws(PackError) -> (shape: [Int], data: [UInt8]) {
        let candidates = [stem + ".gz", stem]
        guard let path = candidates.map({ (dir as NSString).appendingPathComponent($0) })
            .first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw PackError("\(dir): missing \(stem).gz (or \(stem))")
        }
        guard let file = gzopen(path, "rb") else { throw PackError("\(path): cannot read the file: \(Files.reason())") }
        defer { gzclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw PackError("\(path): corrupt gzip data") }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<Int(n)])
        }
        let headerBytes = 4 + 4 * dimensions
        guard bytes.count >= headerBytes, bytes[0] == 0, bytes[1] == 0, bytes[2] == 8, Int(bytes[3]) == dimensions else {
            throw PackError("\(path): not an IDX uint8 file of \(dimensions) dimension(s)")
        }
        var shape: [Int] = []
        for d in 0..<dimensions {
            let o = 4 + 4 * d
            shape.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
        }
        let expected = shape.reduce(1, *)
        guard bytes.count - headerBytes == expected else {
            throw PackError("\(path): \(bytes.count - headerBytes) data bytes for shape \(shape) (need \(expected))")
        }
        return (shape, Array(bytes[headerBytes...]))
    }
}

/// Reads a 1-D NumPy .npy array of integers (the export's predictions).
public enum Npy {
    public static func readIntegers(path: String) throws(PackError) -> [Int] {
        let data = try Files.read(path)
        let b = [UInt8](data)
        guard b.count >= 10, b[0] == 0x93, Array(b[1...5]) == Array("NUMPY".utf8) else {
            throw PackError("\(path): not a .npy file")
        }
        let major = b[6]
        let headerLength = major == 1 ? Int(b[8]) | Int(b[9]) << 8 : (b.count >= 12 ? Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24 : -1)
        let start = major == 1 ? 10 : 12
        guard headerLength >= 0, start + headerLength <= b.count else { throw PackError("\(path): truncated .npy header") }
        let header = String(decoding: b[start..<(start + headerLength)], as: UTF8.self)
        let widths = ["'<i1'": 1, "'|i1'": 1, "'|u1'": 1, "'<u1'": 1, "'<i2'": 2, "'<i4'": 4, "'<i8'": 8]
        guard let (descr, width) = widths.first(where: { header.contains("'descr': \($0.key)") }) else {
            throw PackError("\(path): unsupported dtype in \(header) (need a little-endian integer)")
        }
        guard header.contains("'fortran_order': False") else { throw PackError("\(path): Fortran order not supported") }
        let body = b[(start + headerLength)...]
        guard body.count % width == 0 else { throw PackError("\(path): data length \(body.count) not a multiple of \(width)") }
        let signed = !descr.contains("u")
        var out: [Int] = []
        out.reserveCapacity(body.count / width)
        var i = body.startIndex
        while i < body.endIndex {
            var v: UInt64 = 0
            for k in 0..<width { v |= UInt64(body[i + k]) << (8 * UInt64(k)) }
            if signed && width < 8 && v & (1 << (8 * UInt64(width) - 1)) != 0 { v |= ~((1 << (8 * UInt64(width))) - 1) }
            out.append(Int(Int64(bitPattern: v)))
            i += width
        }
        return out
    }
}

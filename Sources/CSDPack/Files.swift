import Foundation

/// Whole-file reads and writes whose errors name the path and the operating system's reason
/// ("model.csd: cannot read the file: Permission denied").
public enum Files {
    /// The OS's text for the current `errno`.
    static func reason(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }

    public static func read(_ path: String) throws(PackError) -> Data {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw PackError("\(path): cannot read the file: it is a directory")
        }
        guard let file = fopen(path, "rb") else { throw PackError("\(path): cannot read the file: \(reason())") }
        defer { fclose(file) }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            if n > 0 { data.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(file) != 0 { throw PackError("\(path): cannot read the file: \(reason())") }
                return data
            }
        }
    }

    /// Creates (or truncates) `path` and writes `data` to it; errors name `name` (default: `path`).
    public static func write(_ path: String, _ data: Data, reportingAs name: String? = nil) throws(PackError) {
        let name = name ?? path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw PackError("\(name): cannot write: \(reason())") }
        var failure: Int32 = 0
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var offset = 0
            while offset < bytes.count {
                let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += n
            }
        }
        if close(fd) != 0, failure == 0 { failure = errno }
        if failure != 0 { throw PackError("\(name): cannot write: \(reason(failure))") }
    }
}

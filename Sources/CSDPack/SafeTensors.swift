import Foundation

/// A float32 tensor read from a safetensors file.
public struct FloatTensor {
    public var name: String
    public var shape: [Int]
    public var values: [Float]
    public var count: Int { values.count }
}

/// Reader for the safetensors format: an 8-byte little-endian header length,
/// a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`,
/// then the raw little-endian data. Only F32 tensors are accepted (the export
/// contract, docs/MODEL_EXPORT.md).
public enum SafeTensors {
    /// The largest header we accept (the format's own limit is 100 MB).
    public static let maxHeaderBytes = 100_000_000

    public static func read(path: String) throws(PackError) -> [String: FloatTensor] {
        return try parse(try Files.read(path), name: path)
    }

    public static func parse(_ data: Data, name: String) throws(PackError) -> [String: FloatTensor] {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw PackError("\(name): truncated safetensors file (\(bytes.count) bytes, no header length)") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(maxHeaderBytes), headerLength <= UInt64(bytes.count - 8) else {
            throw PackError("\(name): malformed safetensors header length \(headerLength) for a file of \(bytes.count) bytes")
        }
        let headerEnd = 8 + Int(headerLength)
        let json = try JSONText.parse(Data(bytes[8..<headerEnd]), name: "\(name): the safetensors header")
        guard let entries = json as? [String: Any] else { throw PackError("\(name): safetensors header is not a JSON object") }
        let payload = bytes.count - headerEnd
        var tensors: [String: FloatTensor] = [:]
        for (key, value) in entries where key != "__metadata__" {
            guard let entry = value as? [String: Any],
                  let dtype = entry["dtype"] as? String,
                  let shapeAny = entry["shape"] as? [Any],
                  let offsetsAny = entry["data_offsets"] as? [Any], offsetsAny.count == 2 else {
                throw PackError("\(name): tensor \(key): malformed entry (need dtype, shape, data_offsets)")
            }
            guard dtype == "F32" else { throw PackError("\(name): tensor \(key): dtype \(dtype), expected F32") }
            var shape: [Int] = []
            var elements = 1
            for dim in shapeAny {
                guard let d = (dim as? NSNumber)?.intValue, d >= 0, d <= 1 << 24 else {
                    throw PackError("\(name): tensor \(key): bad shape \(shapeAny)")
                }
                shape.append(d)
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o, p <= 1 << 28 else { throw PackError("\(name): tensor \(key): absurd shape \(shapeAny)") }
                elements = p
            }
            guard let begin = (offsetsAny[0] as? NSNumber)?.intValue, let end = (offsetsAny[1] as? NSNumber)?.intValue,
                  begin >= 0, begin <= end, end <= payload else {
                throw PackError("\(name): tensor \(key): data_offsets \(offsetsAny) outside the \(payload)-byte payload")
            }
            guard end - begin == elements * 4 else {
                throw PackError("\(name): tensor \(key): \(end - begin) bytes for shape \(shape) of F32 (need \(elements * 4))")
            }
            var values = [Float](repeating: 0, count: elements)
            let start = headerEnd + begin
            for i in 0..<elements {
                let o = start + 4 * i
                let bits = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
                values[i] = Float(bitPattern: bits)
            }
            tensors[key] = FloatTensor(name: key, shape: shape, values: values)
        }
        return tensors
    }
}

#if !hasFeature(Embedded)
/// Assembles an image (host only: it allocates). The packer fills the header's
/// model metadata and arena sizes, adds tensors and op records in execution
/// order; `build()` lays out the data section, computes MACs, tensor bytes and
/// the CRC, and returns the bytes. The result passes `ModelImage(validating:)`
/// when the inputs describe a valid model (the packer checks it does).
public struct ImageBuilder {
    public var header = ImageHeader()
    public private(set) var ops: [OpRecord] = []
    private var data: [UInt8] = []
    private var tensorBytes = 0

    public init() {}

    /// Appends a tensor at the next 16-byte aligned data offset and returns that offset.
    public mutating func addTensor(bytes: [UInt8]) -> UInt32 {
        while data.count % 16 != 0 { data.append(0) }
        let offset = UInt32(data.count)
        data.append(contentsOf: bytes)
        tensorBytes += bytes.count
        return offset
    }

    public mutating func addTensor(int8 values: [Int8]) -> UInt32 {
        addTensor(bytes: values.map { UInt8(bitPattern: $0) })
    }

    public mutating func addTensor(int16 values: [Int16]) -> UInt32 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 2)
        for v in values { let u = UInt16(bitPattern: v); bytes.append(UInt8(u & 0xFF)); bytes.append(UInt8(u >> 8)) }
        return addTensor(bytes: bytes)
    }

    public mutating func addTensor(int32 values: [Int32]) -> UInt32 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(values.count * 4)
        for v in values {
            let u = UInt32(bitPattern: v)
            for s in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8((u >> UInt32(s)) & 0xFF)) }
        }
        return addTensor(bytes: bytes)
    }

    public mutating func append(_ op: OpRecord) { ops.append(op) }

    /// The finished image.
    public func build() -> [UInt8] {
        var h = header
        let tableEnd = ImageHeader.size + ops.count * OpRecord.size
        let dataOffset = (tableEnd + 15) & ~15
        var paddedData = data
        while paddedData.count % 16 != 0 { paddedData.append(0) }
        h.opCount = UInt32(ops.count)
        h.opRecordBytes = UInt32(OpRecord.size)
        h.dataOffset = UInt32(dataOffset)
        h.dataBytes = UInt32(paddedData.count)
        h.imageBytes = UInt32(dataOffset + paddedData.count)
        h.tensorBytes = UInt32(tensorBytes)
        var macs = 0
        for op in ops { macs += (try? op.macs()) ?? 0 }
        h.macs = UInt32(truncatingIfNeeded: macs)
        h.crc32 = 0
        var image = [UInt8](repeating: 0, count: Int(h.imageBytes))
        image.withUnsafeMutableBytes { raw in
            h.write(to: raw)
            for (i, op) in ops.enumerated() { op.write(to: raw, at: ImageHeader.size + i * OpRecord.size) }
            for (i, b) in paddedData.enumerated() { raw[dataOffset + i] = b }
            let crc = CRC32.image(UnsafeRawBufferPointer(raw))
            raw.setU32(ImageHeader.crcOffset, crc)
        }
        return image
    }
}
#endif

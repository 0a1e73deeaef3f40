/// The 128-byte image header (docs/FORMAT.md, `struct csd_header`).
public struct ImageHeader {
    public static let size = 128
    public static let magicValue: UInt32 = 0x4644_5343  // "CSDF"
    public static let formatVersion: UInt16 = 5
    public static let mathVersion: UInt16 = 2
    public static let crcOffset = 16
    public static let reservedOffset = 68

    public var magic: UInt32 = ImageHeader.magicValue
    public var formatVersion: UInt16 = ImageHeader.formatVersion
    public var mathVersion: UInt16 = ImageHeader.mathVersion
    public var headerBytes: UInt32 = UInt32(ImageHeader.size)
    public var imageBytes: UInt32 = 0
    public var crc32: UInt32 = 0
    public var opCount: UInt32 = 0
    public var opRecordBytes: UInt32 = UInt32(OpRecord.size)
    public var dataOffset: UInt32 = 0
    public var dataBytes: UInt32 = 0
    public var inputChannels: UInt16 = 0
    public var inputHeight: UInt16 = 0
    public var inputWidth: UInt16 = 0
    public var classes: UInt16 = 0
    public var tokens: UInt16 = 0
    public var width: UInt16 = 0
    public var timeSteps: UInt8 = 0
    public var levels: UInt8 = 0
    public var delay: UInt8 = 0
    public var flags: UInt8 = 0
    /// Exact arena bytes: [0] fused, [1] spiking.
    public var arenaBytes: (UInt32, UInt32) = (0, 0)
    public var macs: UInt32 = 0
    public var tensorBytes: UInt32 = 0

    public init() {}

    /// Reads the fields of `bytes[0..<128]`; the caller has checked `bytes.count >= 128`.
    public init(reading bytes: UnsafeRawBufferPointer) {
        magic = bytes.u32(0)
        formatVersion = bytes.u16(4)
        mathVersion = bytes.u16(6)
        headerBytes = bytes.u32(8)
        imageBytes = bytes.u32(12)
        crc32 = bytes.u32(16)
        opCount = bytes.u32(20)
        opRecordBytes = bytes.u32(24)
        dataOffset = bytes.u32(28)
        dataBytes = bytes.u32(32)
        inputChannels = bytes.u16(36)
        inputHeight = bytes.u16(38)
        inputWidth = bytes.u16(40)
        classes = bytes.u16(42)
        tokens = bytes.u16(44)
        width = bytes.u16(46)
        timeSteps = bytes.u8(48)
        levels = bytes.u8(49)
        delay = bytes.u8(50)
        flags = bytes.u8(51)
        arenaBytes = (bytes.u32(52), bytes.u32(56))
        macs = bytes.u32(60)
        tensorBytes = bytes.u32(64)
    }

    /// Writes the 128 header bytes (reserved bytes zero) into `bytes[0..<128]`.
    public func write(to bytes: UnsafeMutableRawBufferPointer) {
        for i in 0..<ImageHeader.size { bytes[i] = 0 }
        bytes.setU32(0, magic)
        bytes.setU16(4, formatVersion)
        bytes.setU16(6, mathVersion)
        bytes.setU32(8, headerBytes)
        bytes.setU32(12, imageBytes)
        bytes.setU32(16, crc32)
        bytes.setU32(20, opCount)
        bytes.setU32(24, opRecordBytes)
        bytes.setU32(28, dataOffset)
        bytes.setU32(32, dataBytes)
        bytes.setU16(36, inputChannels)
        bytes.setU16(38, inputHeight)
        bytes.setU16(40, inputWidth)
        bytes.setU16(42, classes)
        bytes.setU16(44, tokens)
        bytes.setU16(46, width)
        bytes.setU8(48, timeSteps)
        bytes.setU8(49, levels)
        bytes.setU8(50, delay)
        bytes.setU8(51, flags)
        bytes.setU32(52, arenaBytes.0)
        bytes.setU32(56, arenaBytes.1)
        bytes.setU32(60, macs)
        bytes.setU32(64, tensorBytes)
    }

    /// Bytes per spike train in spiking mode: 1 when T <= 8, else 2.
    @inlinable public var trainBytes: Int { timeSteps <= 8 ? 1 : 2 }

    @inlinable public func arenaBytes(_ mode: ExecutionMode) -> UInt32 {
        mode == .fused ? arenaBytes.0 : arenaBytes.1
    }
}

/// The two ways to run an image (docs/SEMANTICS.md).
public enum ExecutionMode: UInt8 {
    /// Counts times weights, multiply-accumulate; exact equivalent of spiking at D = T.
    case fused = 0
    /// Time-stepped DIF neurons; every synaptic event is an addition; any delay 0...T.
    case spiking = 1
}

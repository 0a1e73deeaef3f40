/// The closed set of operations (docs/FORMAT.md, `CSD_OP_*`).
public enum OpKind: UInt8 {
    case conv3x3 = 1
    case linear = 2
    case maxPool = 3
    case streamNeuron = 4
    case attentionScores = 5
    case attentionValues = 6
    case classifier = 7
}

/// Op flags (`CSD_OPF_*`).
public enum OpFlag {
    public static let inputPixels: UInt8 = 1
    public static let streamOut: UInt8 = 2
    public static let streamSet: UInt8 = 4
    public static let tokenBias: UInt8 = 8
    /// LINEAR (no STREAM_OUT): the output is stored channel-major, [Dout][N] (the attention pair's v).
    public static let channelMajor: UInt8 = 16
    public static let all: UInt8 = 31
}

/// Three dimensions; unused trailing ones are 1.
public struct Dims: Equatable {
    public var d0: Int
    public var d1: Int
    public var d2: Int
    @inlinable public init(_ d0: Int, _ d1: Int, _ d2: Int) { self.d0 = d0; self.d1 = d1; self.d2 = d2 }
    /// Elements (wrapping: call on validated dims, whose products the validator bounded).
    @inlinable public var count: Int { d0 &* d1 &* d2 }
    @inlinable public static func == (a: Dims, b: Dims) -> Bool { a.d0 == b.d0 && a.d1 == b.d1 && a.d2 == b.d2 }
}

/// One 64-byte op record (docs/FORMAT.md, `struct csd_op`).
public struct OpRecord {
    public static let size = 64

    public var kindRaw: UInt8 = 0
    public var flags: UInt8 = 0
    public var shift: UInt8 = 0
    public var pool: UInt8 = 0
    public var inDims = Dims(1, 1, 1)
    public var outDims = Dims(1, 1, 1)
    public var heads: UInt16 = 0
    /// 0, or the rows of the op's fused-plan output band (docs/FORMAT.md, "Bands").
    public var band: UInt16 = 0
    /// Arena offsets per mode: index 0 fused, 1 spiking.
    public var input: (UInt32, UInt32) = (0, 0)
    public var input2: (UInt32, UInt32) = (0, 0)
    public var output: (UInt32, UInt32) = (0, 0)
    public var weights: UInt32 = 0
    public var thresholds: UInt32 = 0
    public var biases: UInt32 = 0
    /// Arena offset of the op's kernel scratch per mode (0 where it needs none; docs/FORMAT.md, "Kernel scratch").
    public var scratch: (UInt32, UInt32) = (0, 0)

    public init() {}

    public var kind: OpKind? { OpKind(rawValue: kindRaw) }
    @inlinable public func has(_ flag: UInt8) -> Bool { flags & flag != 0 }

    // Truncating: on a 32-bit target an offset >= 2^31 becomes negative and the
    // validator refuses it, instead of trapping in the conversion.
    @inlinable public func input(_ mode: ExecutionMode) -> Int { Int(truncatingIfNeeded: mode == .fused ? input.0 : input.1) }
    @inlinable public func input2(_ mode: ExecutionMode) -> Int { Int(truncatingIfNeeded: mode == .fused ? input2.0 : input2.1) }
    @inlinable public func output(_ mode: ExecutionMode) -> Int { Int(truncatingIfNeeded: mode == .fused ? output.0 : output.1) }
    @inlinable public func scratch(_ mode: ExecutionMode) -> Int { Int(truncatingIfNeeded: mode == .fused ? scratch.0 : scratch.1) }

    /// Reads a record from `bytes[offset..<offset+64]` (bounds checked by the caller, so the offsets
    /// cannot overflow: wrapping adds, without trap paths).
    public init(reading bytes: UnsafeRawBufferPointer, at o: Int) {
        kindRaw = bytes.u8(o)
        flags = bytes.u8(o &+ 1)
        shift = bytes.u8(o &+ 2)
        pool = bytes.u8(o &+ 3)
        inDims = Dims(Int(bytes.u16(o &+ 4)), Int(bytes.u16(o &+ 6)), Int(bytes.u16(o &+ 8)))
        outDims = Dims(Int(bytes.u16(o &+ 10)), Int(bytes.u16(o &+ 12)), Int(bytes.u16(o &+ 14)))
        heads = bytes.u16(o &+ 16)
        band = bytes.u16(o &+ 18)
        input = (bytes.u32(o &+ 20), bytes.u32(o &+ 24))
        input2 = (bytes.u32(o &+ 28), bytes.u32(o &+ 32))
        output = (bytes.u32(o &+ 36), bytes.u32(o &+ 40))
        weights = bytes.u32(o &+ 44)
        thresholds = bytes.u32(o &+ 48)
        biases = bytes.u32(o &+ 52)
        scratch = (bytes.u32(o &+ 56), bytes.u32(o &+ 60))
    }

    /// Writes the record into `bytes[offset..<offset+64]`. Dims must fit UInt16.
    public func write(to bytes: UnsafeMutableRawBufferPointer, at o: Int) {
        bytes.setU8(o, kindRaw)
        bytes.setU8(o + 1, flags)
        bytes.setU8(o + 2, shift)
        bytes.setU8(o + 3, pool)
        bytes.setU16(o + 4, UInt16(truncatingIfNeeded: inDims.d0))
        bytes.setU16(o + 6, UInt16(truncatingIfNeeded: inDims.d1))
        bytes.setU16(o + 8, UInt16(truncatingIfNeeded: inDims.d2))
        bytes.setU16(o + 10, UInt16(truncatingIfNeeded: outDims.d0))
        bytes.setU16(o + 12, UInt16(truncatingIfNeeded: outDims.d1))
        bytes.setU16(o + 14, UInt16(truncatingIfNeeded: outDims.d2))
        bytes.setU16(o + 16, heads)
        bytes.setU16(o + 18, band)
        bytes.setU32(o + 20, input.0)
        bytes.setU32(o + 24, input.1)
        bytes.setU32(o + 28, input2.0)
        bytes.setU32(o + 32, input2.1)
        bytes.setU32(o + 36, output.0)
        bytes.setU32(o + 40, output.1)
        bytes.setU32(o + 44, weights)
        bytes.setU32(o + 48, thresholds)
        bytes.setU32(o + 52, biases)
        bytes.setU32(o + 56, scratch.0)
        bytes.setU32(o + 60, scratch.1)
    }
}

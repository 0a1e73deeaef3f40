/// A specific reason an image, an arena or a call is refused.
///
/// `rawValue` is the `int32_t` status the C API returns (0 is OK, errors are
/// negative); `Include/csd.h` defines the same numbers as `CSD_E_*` macros.
/// A struct rather than an enum: an `Error` enum synthesizes Hashable, which
/// pulls a random-number dependency into Embedded builds.
public struct CSDStatus: Error {
    public var rawValue: Int32
    @inlinable public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static let ok = CSDStatus(0)
    /// A required pointer argument is NULL (`CSD_E_NULL_ARGUMENT`).
    public static let nullArgument = CSDStatus(-1)
    /// Fewer bytes than a header (`CSD_E_TOO_SMALL`).
    public static let tooSmall = CSDStatus(-2)
    /// The first four bytes are not "CSDF" (`CSD_E_BAD_MAGIC`).
    public static let badMagic = CSDStatus(-3)
    /// A format version this runtime does not read (`CSD_E_FORMAT_VERSION`).
    public static let formatVersion = CSDStatus(-4)
    /// A math version this runtime does not implement (`CSD_E_MATH_VERSION`).
    public static let mathVersion = CSDStatus(-5)
    /// header_bytes is not 128 (`CSD_E_HEADER_SIZE`).
    public static let headerSize = CSDStatus(-6)
    /// image_bytes exceeds the bytes given, or is smaller than the layout needs (`CSD_E_TRUNCATED`).
    public static let truncated = CSDStatus(-7)
    /// The CRC-32 does not match (`CSD_E_CRC`).
    public static let crc = CSDStatus(-8)
    /// op_record_bytes, op_count, data_offset or data_bytes are inconsistent (`CSD_E_OP_TABLE`).
    public static let opTable = CSDStatus(-9)
    /// A reserved field or padding byte is not zero (`CSD_E_RESERVED`).
    public static let reserved = CSDStatus(-10)
    /// T, L, D, input shape, classes, tokens or width out of range (`CSD_E_METADATA`).
    public static let metadata = CSDStatus(-11)
    /// An op kind this runtime does not know (`CSD_E_OP_KIND`).
    public static let opKind = CSDStatus(-12)
    /// Flags, shift, pool or heads not allowed for the op (`CSD_E_OP_FIELDS`).
    public static let opFields = CSDStatus(-13)
    /// Shapes that do not fit the op or do not chain with the op before (`CSD_E_SHAPE`).
    public static let shape = CSDStatus(-14)
    /// A tensor offset unaligned or outside the data section (`CSD_E_TENSOR_BOUNDS`).
    public static let tensorBounds = CSDStatus(-15)
    /// An arena offset unaligned, out of the arena, overlapping, or not chained (`CSD_E_ARENA_PLAN`).
    public static let arenaPlan = CSDStatus(-16)
    /// arena_bytes in the header differs from the plan (`CSD_E_ARENA_BYTES`).
    public static let arenaBytes = CSDStatus(-17)
    /// macs in the header differs from the ops (`CSD_E_MACS`).
    public static let macs = CSDStatus(-18)
    /// A neuron threshold below 1 (`CSD_E_THRESHOLD`).
    public static let threshold = CSDStatus(-19)
    /// The image pointer is not 16-byte aligned (`CSD_E_IMAGE_ALIGNMENT`).
    public static let imageAlignment = CSDStatus(-20)
    /// The arena pointer is not 16-byte aligned (`CSD_E_ARENA_ALIGNMENT`).
    public static let arenaAlignment = CSDStatus(-21)
    /// The arena is smaller than the image's need for the mode (`CSD_E_ARENA_TOO_SMALL`).
    public static let arenaTooSmall = CSDStatus(-22)
    /// The mode is neither fused nor spiking (`CSD_E_MODE`).
    public static let mode = CSDStatus(-23)
    /// The delay exceeds T (`CSD_E_DELAY`).
    public static let delay = CSDStatus(-24)
    /// The input length is not C * H * W (`CSD_E_INPUT_LENGTH`).
    public static let inputLength = CSDStatus(-25)
    /// Fewer logits than classes (`CSD_E_OUTPUT_LENGTH`).
    public static let outputLength = CSDStatus(-26)
    /// The session was not initialized by csd_session_init (`CSD_E_SESSION`).
    public static let session = CSDStatus(-27)
}

extension CSDStatus {
    /// A short constant description as a C string (never NULL): what `csd_status_str` returns.
    /// One string literal, NUL-separated in the order 0, -1, -2, ...: a table without code per entry.
    public var text: UnsafePointer<CChar> {
        let all: StaticString = """
            ok\0null argument\0image smaller than a header\0bad magic (not a .csd image)\0\
            unsupported format version\0unsupported math version\0bad header size\0\
            image truncated or sizes inconsistent\0CRC-32 mismatch\0bad op table layout\0\
            reserved field not zero\0bad model metadata\0unknown op kind\0bad op fields\0\
            bad or unchained shape\0tensor out of bounds or unaligned\0bad arena plan\0arena size mismatch\0\
            MAC count mismatch\0threshold below 1\0image not 16-byte aligned\0arena not 16-byte aligned\0\
            arena too small\0unknown execution mode\0delay exceeds T\0input length is not C*H*W\0\
            logits buffer smaller than classes\0session not initialized\0unknown status
            """
        var p = all.utf8Start, n = -Int(rawValue)
        if n < 0 || n > 27 { n = 28 }  // "unknown status"
        while n > 0 {
            if p.pointee == 0 { n &-= 1 }
            p += 1
        }
        return UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self)
    }
}

#if !hasFeature(Embedded)
extension CSDStatus {
    /// `text` as a String (host tools).
    public var message: String { String(cString: text) }
}
#endif

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
    /// A short constant description, the text `csd_status_str` returns.
    public var message: StaticString {
        switch rawValue {
        case 0: return "ok"
        case -1: return "null argument"
        case -2: return "image smaller than a header"
        case -3: return "bad magic (not a .csd image)"
        case -4: return "unsupported format version"
        case -5: return "unsupported math version"
        case -6: return "bad header size"
        case -7: return "image truncated or sizes inconsistent"
        case -8: return "CRC-32 mismatch"
        case -9: return "bad op table layout"
        case -10: return "reserved field not zero"
        case -11: return "bad model metadata"
        case -12: return "unknown op kind"
        case -13: return "bad op fields"
        case -14: return "bad or unchained shape"
        case -15: return "tensor out of bounds or unaligned"
        case -16: return "bad arena plan"
        case -17: return "arena size mismatch"
        case -18: return "MAC count mismatch"
        case -19: return "threshold below 1"
        case -20: return "image not 16-byte aligned"
        case -21: return "arena not 16-byte aligned"
        case -22: return "arena too small"
        case -23: return "unknown execution mode"
        case -24: return "delay exceeds T"
        case -25: return "input length is not C*H*W"
        case -26: return "logits buffer smaller than classes"
        case -27: return "session not initialized"
        default: return "unknown status"
        }
    }
}

import CSDHeader

/// A specific reason an image, an arena or a call is refused.
///
/// `rawValue` is the `int32_t` status the C API returns (0 is OK, errors are
/// negative): the `CSD_E_*` macros of `Include/csd.h`, imported through the
/// `CSDHeader` module map, so the numbers are written once, in the header.
/// A struct rather than an enum: an `Error` enum synthesizes Hashable, which
/// pulls a random-number dependency into Embedded builds.
public struct CSDStatus: Error {
    public var rawValue: Int32
    @inlinable public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static let ok = CSDStatus(CSD_OK)
    /// A required pointer argument is NULL (`CSD_E_NULL_ARGUMENT`).
    public static let nullArgument = CSDStatus(CSD_E_NULL_ARGUMENT)
    /// Fewer bytes than a header (`CSD_E_TOO_SMALL`).
    public static let tooSmall = CSDStatus(CSD_E_TOO_SMALL)
    /// The first four bytes are not "CSDF" (`CSD_E_BAD_MAGIC`).
    public static let badMagic = CSDStatus(CSD_E_BAD_MAGIC)
    /// A format version this runtime does not read (`CSD_E_FORMAT_VERSION`).
    public static let formatVersion = CSDStatus(CSD_E_FORMAT_VERSION)
    /// A math version this runtime does not implement (`CSD_E_MATH_VERSION`).
    public static let mathVersion = CSDStatus(CSD_E_MATH_VERSION)
    /// header_bytes is not 128 (`CSD_E_HEADER_SIZE`).
    public static let headerSize = CSDStatus(CSD_E_HEADER_SIZE)
    /// image_bytes exceeds the bytes given, or is smaller than the layout needs (`CSD_E_TRUNCATED`).
    public static let truncated = CSDStatus(CSD_E_TRUNCATED)
    /// The CRC-32 does not match (`CSD_E_CRC`).
    public static let crc = CSDStatus(CSD_E_CRC)
    /// op_record_bytes, op_count, data_offset or data_bytes are inconsistent (`CSD_E_OP_TABLE`).
    public static let opTable = CSDStatus(CSD_E_OP_TABLE)
    /// A reserved field or padding byte is not zero (`CSD_E_RESERVED`).
    public static let reserved = CSDStatus(CSD_E_RESERVED)
    /// T, L, D, input shape, classes, tokens or width out of range (`CSD_E_METADATA`).
    public static let metadata = CSDStatus(CSD_E_METADATA)
    /// An op kind this runtime does not know (`CSD_E_OP_KIND`).
    public static let opKind = CSDStatus(CSD_E_OP_KIND)
    /// Flags, shift, pool or heads not allowed for the op (`CSD_E_OP_FIELDS`).
    public static let opFields = CSDStatus(CSD_E_OP_FIELDS)
    /// Shapes that do not fit the op or do not chain with the op before (`CSD_E_SHAPE`).
    public static let shape = CSDStatus(CSD_E_SHAPE)
    /// A tensor offset unaligned or outside the data section (`CSD_E_TENSOR_BOUNDS`).
    public static let tensorBounds = CSDStatus(CSD_E_TENSOR_BOUNDS)
    /// An arena offset unaligned or not inside the arena, buffers overlapping, or not chained (`CSD_E_ARENA_PLAN`).
    public static let arenaPlan = CSDStatus(CSD_E_ARENA_PLAN)
    /// arena_bytes in the header differs from the plan (`CSD_E_ARENA_BYTES`).
    public static let arenaBytes = CSDStatus(CSD_E_ARENA_BYTES)
    /// macs in the header differs from the ops (`CSD_E_MACS`).
    public static let macs = CSDStatus(CSD_E_MACS)
    /// A neuron threshold below 1 (`CSD_E_THRESHOLD`).
    public static let threshold = CSDStatus(CSD_E_THRESHOLD)
    /// The image pointer is not 16-byte aligned (`CSD_E_IMAGE_ALIGNMENT`).
    public static let imageAlignment = CSDStatus(CSD_E_IMAGE_ALIGNMENT)
    /// The arena pointer is not 16-byte aligned (`CSD_E_ARENA_ALIGNMENT`).
    public static let arenaAlignment = CSDStatus(CSD_E_ARENA_ALIGNMENT)
    /// The arena is smaller than the image's need for the mode, or for the delay and path asked for
    /// (`CSD_E_ARENA_TOO_SMALL`).
    public static let arenaTooSmall = CSDStatus(CSD_E_ARENA_TOO_SMALL)
    /// The mode is neither fused nor spiking (`CSD_E_MODE`).
    public static let mode = CSDStatus(CSD_E_MODE)
    /// The delay exceeds T (`CSD_E_DELAY`).
    public static let delay = CSDStatus(CSD_E_DELAY)
    /// The input length is not C * H * W (`CSD_E_INPUT_LENGTH`).
    public static let inputLength = CSDStatus(CSD_E_INPUT_LENGTH)
    /// Fewer logits than classes (`CSD_E_OUTPUT_LENGTH`).
    public static let outputLength = CSDStatus(CSD_E_OUTPUT_LENGTH)
    /// The session was not initialized by csd_session_init (`CSD_E_SESSION`).
    public static let session = CSDStatus(CSD_E_SESSION)
    /// A buffer starts inside the arena but ends past its end (`CSD_E_ARENA_END`).
    public static let arenaEnd = CSDStatus(CSD_E_ARENA_END)
    /// The statistics array is not 4-byte aligned (`CSD_E_STATS_ALIGNMENT`).
    public static let statsAlignment = CSDStatus(CSD_E_STATS_ALIGNMENT)
    /// The spiking path is neither CSD_PATH_AUTO nor CSD_PATH_EVENT (`CSD_E_PATH`).
    public static let path = CSDStatus(CSD_E_PATH)
}

extension CSDStatus: Equatable {
    @inlinable public static func == (a: CSDStatus, b: CSDStatus) -> Bool { a.rawValue == b.rawValue }

    /// Whether this is `.ok` (CSD_OK, 0); every error is negative.
    @inlinable public var isOK: Bool { rawValue == 0 }
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
            logits buffer smaller than classes\0session not initialized\0buffer ends past the arena\0\
            stats array not 4-byte aligned\0unknown spiking path\0unknown status
            """
        var p = all.utf8Start, n = -Int(rawValue)
        let last = -Int(CSD_E_PATH)  // the header's last code: one string per code 0 ... last
        if n < 0 || n > last { n = last + 1 }  // "unknown status"
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

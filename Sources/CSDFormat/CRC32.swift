/// CRC-32/ISO-HDLC (zlib, Ethernet): reflected polynomial 0xEDB88320, initial
/// value and final XOR 0xFFFFFFFF. Bitwise, table-free: the image is checked
/// once per session, and 1 KB of table would cost more flash than the time saved.
public enum CRC32 {
    public static let polynomial: UInt32 = 0xEDB8_8320

    /// Continue a CRC over `bytes` (start with `state = 0xFFFFFFFF`, finish with `~state`).
    @inlinable
    public static func update(_ state: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = state
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = (crc >> 1) ^ (polynomial & (0 &- (crc & 1)))
            }
        }
        return crc
    }

    /// The CRC of an image: bytes [0, count) with the 4 CRC bytes at `ImageHeader.crcOffset` read as zero.
    public static func image(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        let crcAt = ImageHeader.crcOffset
        var state: UInt32 = 0xFFFF_FFFF
        state = update(state, UnsafeRawBufferPointer(rebasing: bytes[0..<crcAt]))
        var zero: UInt32 = 0
        state = withUnsafeBytes(of: &zero) { update(state, $0) }
        state = update(state, UnsafeRawBufferPointer(rebasing: bytes[(crcAt + 4)..<bytes.count]))
        return ~state
    }
}

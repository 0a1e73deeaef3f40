/// Little-endian loads and stores on raw buffers; every access is bounds-checked
/// by the caller's validation before it happens, so these never trap on a
/// validated image.
extension UnsafeRawBufferPointer {
    @inlinable public func u8(_ offset: Int) -> UInt8 { self[offset] }
    @inlinable public func u16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
    @inlinable public func u32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
    @inlinable public func i32(_ offset: Int) -> Int32 {
        Int32(littleEndian: loadUnaligned(fromByteOffset: offset, as: Int32.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    @inlinable public func setU8(_ offset: Int, _ value: UInt8) { self[offset] = value }
    // Through the base pointer: the buffer's own storeBytes pulls an allocating
    // diagnostic path into Embedded builds.
    @inlinable public func setU16(_ offset: Int, _ value: UInt16) {
        precondition(offset >= 0 && offset <= count - 2)
        baseAddress!.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
    }
    @inlinable public func setU32(_ offset: Int, _ value: UInt32) {
        precondition(offset >= 0 && offset <= count - 4)
        baseAddress!.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }
}

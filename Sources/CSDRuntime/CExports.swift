import CSDFormat

// The C boundary (Include/csd.h). Every @_cdecl export of the runtime is in
// this file and takes only C types; statuses are int32_t (CSD_OK or a negative
// CSD_E_* from CSDStatus). No function allocates or touches global state.

/// Layout of the caller's `csd_session_t` (96 bytes, 8-aligned); slots are 8 bytes wide on every target.
enum SessionLayout {
    static let tag: UInt32 = 0x5344_5343  // "CSDS"
    static let tagOffset = 0
    static let modeOffset = 4
    static let delayOffset = 5
    static let imageOffset = 8
    static let imageSizeOffset = 16
    static let arenaOffset = 24
    static let arenaSizeOffset = 32
    static let statsOffset = 40
    static let statsCapacityOffset = 48
    static let observerOffset = 56
    static let observerUserOffset = 64
    static let bytes = 96
}

@inline(__always) func loadWord(_ p: UnsafeMutableRawPointer, _ offset: Int) -> UInt {
    p.load(fromByteOffset: offset, as: UInt.self)
}

@inline(__always) func storeWord(_ p: UnsafeMutableRawPointer, _ offset: Int, _ value: UInt) {
    p.storeBytes(of: value, toByteOffset: offset, as: UInt.self)
}

/// Validates an image the caller hands in: non-null, 16-byte aligned, every check of docs/FORMAT.md.
func checkedImage(_ image: UnsafeRawPointer?, _ size: UInt) throws(CSDStatus) -> ModelImage {
    guard let image = image else { throw CSDStatus.nullArgument }
    guard UInt(bitPattern: image) & 15 == 0 else { throw CSDStatus.imageAlignment }
    guard size <= UInt(Int.max) else { throw CSDStatus.truncated }
    return try ModelImage(validating: UnsafeRawBufferPointer(start: image, count: Int(size)))
}

func mode(_ raw: Int32) throws(CSDStatus) -> ExecutionMode {
    switch raw {
    case 0: return .fused
    case 1: return .spiking
    default: throw CSDStatus.mode
    }
}

/// `int32_t csd_model_check(const void *image, size_t size, csd_model_info_t *info)`
@_cdecl("csd_model_check")
public func csd_model_check(_ image: UnsafeRawPointer?, _ size: UInt, _ info: UnsafeMutableRawPointer?) -> Int32 {
    do throws(CSDStatus) {
        let m = try checkedImage(image, size)
        if let info = info {
            let h = m.header
            info.storeBytes(of: h.imageBytes, toByteOffset: 0, as: UInt32.self)
            info.storeBytes(of: h.tensorBytes, toByteOffset: 4, as: UInt32.self)
            info.storeBytes(of: h.arenaBytes.0, toByteOffset: 8, as: UInt32.self)
            info.storeBytes(of: h.arenaBytes.1, toByteOffset: 12, as: UInt32.self)
            info.storeBytes(of: h.macs, toByteOffset: 16, as: UInt32.self)
            info.storeBytes(of: h.opCount, toByteOffset: 20, as: UInt32.self)
            info.storeBytes(of: h.inputChannels, toByteOffset: 24, as: UInt16.self)
            info.storeBytes(of: h.inputHeight, toByteOffset: 26, as: UInt16.self)
            info.storeBytes(of: h.inputWidth, toByteOffset: 28, as: UInt16.self)
            info.storeBytes(of: h.classes, toByteOffset: 30, as: UInt16.self)
            info.storeBytes(of: h.tokens, toByteOffset: 32, as: UInt16.self)
            info.storeBytes(of: h.width, toByteOffset: 34, as: UInt16.self)
            info.storeBytes(of: h.timeSteps, toByteOffset: 36, as: UInt8.self)
            info.storeBytes(of: h.levels, toByteOffset: 37, as: UInt8.self)
            info.storeBytes(of: h.delay, toByteOffset: 38, as: UInt8.self)
            info.storeBytes(of: UInt8(0), toByteOffset: 39, as: UInt8.self)
        }
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `int32_t csd_arena_bytes(const void *image, size_t size, int32_t mode, size_t *bytes)`
@_cdecl("csd_arena_bytes")
public func csd_arena_bytes(_ image: UnsafeRawPointer?, _ size: UInt, _ rawMode: Int32,
                            _ bytes: UnsafeMutablePointer<UInt>?) -> Int32 {
    do throws(CSDStatus) {
        guard let bytes = bytes else { throw CSDStatus.nullArgument }
        let m = try checkedImage(image, size)
        bytes.pointee = UInt(m.header.arenaBytes(try mode(rawMode)))
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `int32_t csd_session_init(csd_session_t *s, const void *image, size_t size, void *arena, size_t arena_size, int32_t mode)`
@_cdecl("csd_session_init")
public func csd_session_init(_ session: UnsafeMutableRawPointer?, _ image: UnsafeRawPointer?, _ size: UInt,
                             _ arena: UnsafeMutableRawPointer?, _ arenaSize: UInt, _ rawMode: Int32) -> Int32 {
    do throws(CSDStatus) {
        guard let s = session else { throw CSDStatus.nullArgument }
        storeWord(s, SessionLayout.tagOffset, 0)  // not usable unless everything below succeeds
        let m = try checkedImage(image, size)
        let md = try mode(rawMode)
        guard let arena = arena else { throw CSDStatus.nullArgument }
        guard arenaSize <= UInt(Int.max) else { throw CSDStatus.arenaTooSmall }
        _ = try Engine(image: m, arena: UnsafeMutableRawBufferPointer(start: arena, count: Int(arenaSize)), mode: md)
        for offset in stride(from: 0, to: SessionLayout.bytes, by: 8) { storeWord(s, offset, 0) }
        s.storeBytes(of: SessionLayout.tag, toByteOffset: SessionLayout.tagOffset, as: UInt32.self)
        s.storeBytes(of: md.rawValue, toByteOffset: SessionLayout.modeOffset, as: UInt8.self)
        s.storeBytes(of: m.header.delay, toByteOffset: SessionLayout.delayOffset, as: UInt8.self)
        storeWord(s, SessionLayout.imageOffset, UInt(bitPattern: image!))
        storeWord(s, SessionLayout.imageSizeOffset, UInt(m.header.imageBytes))
        storeWord(s, SessionLayout.arenaOffset, UInt(bitPattern: arena))
        storeWord(s, SessionLayout.arenaSizeOffset, arenaSize)
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// The session's engine, rebuilt from its fields (the image was validated by csd_session_init).
func engine(_ session: UnsafeMutableRawPointer?) throws(CSDStatus) -> (UnsafeMutableRawPointer, Engine) {
    guard let s = session else { throw CSDStatus.nullArgument }
    guard s.load(fromByteOffset: SessionLayout.tagOffset, as: UInt32.self) == SessionLayout.tag,
          let image = UnsafeRawPointer(bitPattern: loadWord(s, SessionLayout.imageOffset)),
          let arena = UnsafeMutableRawPointer(bitPattern: loadWord(s, SessionLayout.arenaOffset)) else {
        throw CSDStatus.session
    }
    let m = ModelImage(alreadyValidated: UnsafeRawBufferPointer(start: image, count: Int(loadWord(s, SessionLayout.imageSizeOffset))))
    let md = try mode(Int32(s.load(fromByteOffset: SessionLayout.modeOffset, as: UInt8.self)))
    var e = try Engine(image: m, arena: UnsafeMutableRawBufferPointer(start: arena, count: Int(loadWord(s, SessionLayout.arenaSizeOffset))), mode: md)
    try e.setDelay(Int(s.load(fromByteOffset: SessionLayout.delayOffset, as: UInt8.self)))
    return (s, e)
}

/// `int32_t csd_session_set_delay(csd_session_t *s, uint32_t delay)`
@_cdecl("csd_session_set_delay")
public func csd_session_set_delay(_ session: UnsafeMutableRawPointer?, _ delay: UInt32) -> Int32 {
    do throws(CSDStatus) {
        var (s, e) = try engine(session)
        guard delay <= 255 else { throw CSDStatus.delay }
        try e.setDelay(Int(delay))
        s.storeBytes(of: UInt8(delay), toByteOffset: SessionLayout.delayOffset, as: UInt8.self)
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `int32_t csd_session_set_stats(csd_session_t *s, csd_op_stats_t *stats, uint32_t capacity)`
@_cdecl("csd_session_set_stats")
public func csd_session_set_stats(_ session: UnsafeMutableRawPointer?, _ stats: UnsafeMutableRawPointer?,
                                  _ capacity: UInt32) -> Int32 {
    do throws(CSDStatus) {
        let (s, _) = try engine(session)
        guard stats != nil || capacity == 0 else { throw CSDStatus.nullArgument }
        if let p = stats, UInt(bitPattern: p) & 3 != 0 { throw CSDStatus.nullArgument }
        storeWord(s, SessionLayout.statsOffset, stats.map { UInt(bitPattern: $0) } ?? 0)
        storeWord(s, SessionLayout.statsCapacityOffset, stats == nil ? 0 : UInt(capacity))
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `void (*csd_op_observer_t)(void *user, uint32_t op_index, const csd_op_stats_t *stats)`
typealias OpObserver = @convention(c) (UnsafeMutableRawPointer?, UInt32, UnsafeRawPointer?) -> Void

/// `int32_t csd_session_set_observer(csd_session_t *s, csd_op_observer_t observer, void *user)`
@_cdecl("csd_session_set_observer")
public func csd_session_set_observer(_ session: UnsafeMutableRawPointer?, _ observer: UnsafeRawPointer?,
                                     _ user: UnsafeMutableRawPointer?) -> Int32 {
    do throws(CSDStatus) {
        let (s, _) = try engine(session)
        storeWord(s, SessionLayout.observerOffset, observer.map { UInt(bitPattern: $0) } ?? 0)
        storeWord(s, SessionLayout.observerUserOffset, observer == nil ? 0 : user.map { UInt(bitPattern: $0) } ?? 0)
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// Writes one op's statistics as a `csd_op_stats_t` (uint32 kind, neurons, spikes, synaptic_ops, macs).
@inline(__always) func storeStats(_ stats: OpStats, _ p: UnsafeMutableRawPointer) {
    p.storeBytes(of: stats.kind, toByteOffset: 0, as: UInt32.self)
    p.storeBytes(of: stats.neurons, toByteOffset: 4, as: UInt32.self)
    p.storeBytes(of: stats.spikes, toByteOffset: 8, as: UInt32.self)
    p.storeBytes(of: stats.synapticOps, toByteOffset: 12, as: UInt32.self)
    p.storeBytes(of: stats.macs, toByteOffset: 16, as: UInt32.self)
}

/// `int32_t csd_session_run(csd_session_t *s, const uint8_t *input, size_t input_len, int32_t *logits, size_t logits_len)`
@_cdecl("csd_session_run")
public func csd_session_run(_ session: UnsafeMutableRawPointer?, _ input: UnsafePointer<UInt8>?, _ inputLength: UInt,
                            _ logits: UnsafeMutablePointer<Int32>?, _ logitsLength: UInt) -> Int32 {
    do throws(CSDStatus) {
        let (s, e) = try engine(session)
        guard let input = input, let logits = logits else { throw CSDStatus.nullArgument }
        let h = e.image.header
        guard inputLength == UInt(h.inputChannels) * UInt(h.inputHeight) * UInt(h.inputWidth) else {
            throw CSDStatus.inputLength
        }
        guard logitsLength >= UInt(h.classes) else { throw CSDStatus.outputLength }
        let statsBase = UnsafeMutableRawPointer(bitPattern: loadWord(s, SessionLayout.statsOffset))
        let capacity = Int(loadWord(s, SessionLayout.statsCapacityOffset))
        let observerRaw = UnsafeRawPointer(bitPattern: loadWord(s, SessionLayout.observerOffset))
        let user = UnsafeMutableRawPointer(bitPattern: loadWord(s, SessionLayout.observerUserOffset))
        e.run(pixels: input, logits: logits, observe: { index, stats in
            if let base = statsBase, index < capacity { storeStats(stats, base + index * 20) }
            if let raw = observerRaw {
                var record = (UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0))  // a csd_op_stats_t
                withUnsafeMutableBytes(of: &record) { storeStats(stats, $0.baseAddress!) }
                let observer = unsafeBitCast(raw, to: OpObserver.self)
                withUnsafeBytes(of: &record) { observer(user, UInt32(truncatingIfNeeded: index), $0.baseAddress) }
            }
        })
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `const char *csd_status_str(int32_t status)`: a constant string, never NULL.
@_cdecl("csd_status_str")
public func csd_status_str(_ status: Int32) -> UnsafePointer<CChar> {
    CSDStatus(status).text
}

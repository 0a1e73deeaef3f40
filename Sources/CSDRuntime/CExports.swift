import CSDFormat
import CSDHeader

// The C boundary (Include/csd.h, imported through the CSDHeader module map: the
// structs and CSD_E_* numbers come from the header, none is restated here).
// Every @_cdecl export of the runtime is in this file and takes only C types;
// statuses are int32_t (CSD_OK or a negative CSD_E_* from CSDStatus). No
// function allocates or touches global state. The Swift names differ from the
// C names (export...) so they do not shadow the header's declarations.
// Each export is a thin layer over the Swift API (SwiftAPI.swift, docs/SWIFT_API.md):
// it checks for NULL, turns C pointers and size_t lengths into buffers, and keeps a
// session's fields in the caller's csd_session_t; the checks themselves are the Swift API's.

/// What a session keeps, in the caller's opaque `csd_session_t` (uint64_t[12]) rebound to this type.
/// The 32-bit fields come first so no padding sits between the words: 72 bytes on 64-bit
/// targets, 40 on 32-bit ones, 8-aligned at most; `SessionStateTests` checks it fits.
struct SessionState {
    static let validTag: UInt32 = 0x5344_5343  // "CSDS"
    /// `validTag` once csd_session_init succeeded; 0 after a failed one.
    var tag: UInt32 = 0
    /// Entries of `stats` that runs fill (0 without a stats array).
    var statsCapacity: UInt32 = 0
    /// `ExecutionMode.rawValue`.
    var mode: UInt8 = 0
    /// The DIF delay, 0 ... T <= 16.
    var delay: UInt8 = 0
    /// CSD_PATH_AUTO or CSD_PATH_EVENT.
    var path: UInt8 = 0
    var image: UnsafeRawPointer? = nil
    var imageSize: UInt = 0
    var arena: UnsafeMutableRawPointer? = nil
    var arenaSize: UInt = 0
    var stats: UnsafeMutablePointer<csd_op_stats_t>? = nil
    var observer: csd_op_observer_t? = nil
    var observerUser: UnsafeMutableRawPointer? = nil

    /// The caller's storage as a `SessionState` (csd_session_t is opaque to C, so it may be rebound).
    static func bound(_ s: UnsafeMutablePointer<csd_session_t>) -> UnsafeMutablePointer<SessionState> {
        UnsafeMutableRawPointer(s).bindMemory(to: SessionState.self, capacity: 1)
    }
}

/// Validates an image the caller hands in: non-null, then `ModelImage(checking:)` (16-byte aligned,
/// every check of docs/FORMAT.md).
func checkedImage(_ image: UnsafeRawPointer?, _ size: UInt) throws(CSDStatus) -> ModelImage {
    guard let image = image else { throw CSDStatus.nullArgument }
    guard size <= UInt(Int.max) else {
        // longer than any buffer can be (a 32-bit target's size_t): truncated, after the alignment
        // status that any size gets first
        throw UInt(bitPattern: image) & 15 == 0 ? CSDStatus.truncated : CSDStatus.imageAlignment
    }
    return try ModelImage(checking: UnsafeRawBufferPointer(start: image, count: Int(size)))
}

func mode(_ raw: Int32) throws(CSDStatus) -> ExecutionMode {
    switch raw {
    case CSD_MODE_FUSED: return .fused
    case CSD_MODE_SPIKING: return .spiking
    default: throw CSDStatus.mode
    }
}

/// `int32_t csd_model_check(const void *image, size_t size, csd_model_info_t *info)`
@_cdecl("csd_model_check")
public func exportModelCheck(_ image: UnsafeRawPointer?, _ size: UInt, _ info: UnsafeMutablePointer<csd_model_info_t>?) -> Int32 {
    do throws(CSDStatus) {
        let m = try checkedImage(image, size)
        if let info = info {
            let h = m.header
            info.pointee = csd_model_info_t(
                image_bytes: h.imageBytes, tensor_bytes: h.tensorBytes,
                arena_bytes_fused: h.arenaBytes.0, arena_bytes_spiking: h.arenaBytes.1,
                macs: h.macs, op_count: h.opCount,
                input_channels: h.inputChannels, input_height: h.inputHeight, input_width: h.inputWidth,
                classes: h.classes, tokens: h.tokens, width: h.width,
                time_steps: h.timeSteps, levels: h.levels, delay: h.delay, reserved: 0)
        }
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `int32_t csd_arena_bytes(const void *image, size_t size, int32_t mode, size_t *bytes)`
@_cdecl("csd_arena_bytes")
public func exportArenaBytes(_ image: UnsafeRawPointer?, _ size: UInt, _ rawMode: Int32,
                             _ bytes: UnsafeMutablePointer<UInt>?) -> Int32 {
    do throws(CSDStatus) {
        guard let bytes = bytes else { throw CSDStatus.nullArgument }
        let m = try checkedImage(image, size)
        bytes.pointee = UInt(bitPattern: m.arenaBytes(try mode(rawMode)))
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `int32_t csd_session_init(csd_session_t *s, const void *image, size_t size, void *arena, size_t arena_size, int32_t mode)`
@_cdecl("csd_session_init")
public func exportSessionInit(_ session: UnsafeMutablePointer<csd_session_t>?, _ image: UnsafeRawPointer?, _ size: UInt,
                              _ arena: UnsafeMutableRawPointer?, _ arenaSize: UInt, _ rawMode: Int32) -> Int32 {
    do throws(CSDStatus) {
        guard let s = session else { throw CSDStatus.nullArgument }
        let state = SessionState.bound(s)
        state.pointee = SessionState()  // tag 0: not usable unless everything below succeeds
        let m = try checkedImage(image, size)
        let md = try mode(rawMode)
        guard let arena = arena else { throw CSDStatus.nullArgument }
        guard arenaSize <= UInt(Int.max) else { throw CSDStatus.arenaTooSmall }
        _ = try Engine(image: m, arena: UnsafeMutableRawBufferPointer(start: arena, count: Int(arenaSize)), mode: md)
        state.pointee = SessionState(tag: SessionState.validTag, mode: md.rawValue, delay: m.header.delay,
                                     image: image, imageSize: UInt(m.header.imageBytes), arena: arena, arenaSize: arenaSize)
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// The session's state and engine, rebuilt from its fields (the image was validated by csd_session_init).
/// One copy for every export (Cortex-M4 .text).
@inline(never)
func engine(_ session: UnsafeMutablePointer<csd_session_t>?) throws(CSDStatus)
    -> (UnsafeMutablePointer<SessionState>, Engine) {
    guard let s = session else { throw CSDStatus.nullArgument }
    let p = SessionState.bound(s)
    guard p.pointee.tag == SessionState.validTag, let image = p.pointee.image, let arena = p.pointee.arena else {
        throw CSDStatus.session
    }
    let m = ModelImage(alreadyValidated: UnsafeRawBufferPointer(start: image, count: Int(p.pointee.imageSize)))
    let md = try mode(Int32(p.pointee.mode))
    // the settings were checked against the arena when they were set (csd_session_init, _set_delay, _set_path)
    let e = Engine(restoring: m, arena: UnsafeMutableRawBufferPointer(start: arena, count: Int(p.pointee.arenaSize)), mode: md,
                   delay: Int(p.pointee.delay), countPath: Int32(p.pointee.path) == CSD_PATH_AUTO)
    return (p, e)
}

/// `int32_t csd_session_set_delay(csd_session_t *s, uint32_t delay)`
@_cdecl("csd_session_set_delay")
public func exportSessionSetDelay(_ session: UnsafeMutablePointer<csd_session_t>?, _ delay: UInt32) -> Int32 {
    do throws(CSDStatus) {
        let (state, e) = try engine(session)
        guard delay <= 255 else { throw CSDStatus.delay }
        try e.check(delay: Int(delay))
        state.pointee.delay = UInt8(delay)
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `int32_t csd_session_set_path(csd_session_t *s, int32_t path)`
@_cdecl("csd_session_set_path")
public func exportSessionSetPath(_ session: UnsafeMutablePointer<csd_session_t>?, _ path: Int32) -> Int32 {
    do throws(CSDStatus) {
        let (state, e) = try engine(session)
        guard path == CSD_PATH_AUTO || path == CSD_PATH_EVENT else { throw CSDStatus.path }
        try e.fits(delay: e.delay, countPath: path == CSD_PATH_AUTO)
        state.pointee.path = UInt8(path)
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `int32_t csd_session_set_stats(csd_session_t *s, csd_op_stats_t *stats, uint32_t capacity)`
@_cdecl("csd_session_set_stats")
public func exportSessionSetStats(_ session: UnsafeMutablePointer<csd_session_t>?, _ stats: UnsafeMutablePointer<csd_op_stats_t>?,
                                  _ capacity: UInt32) -> Int32 {
    do throws(CSDStatus) {
        let (state, _) = try engine(session)
        guard stats != nil || capacity == 0 else { throw CSDStatus.nullArgument }
        if let p = stats, UInt(bitPattern: p) & 3 != 0 { throw CSDStatus.statsAlignment }
        state.pointee.stats = stats
        state.pointee.statsCapacity = stats == nil ? 0 : capacity
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `int32_t csd_session_set_observer(csd_session_t *s, csd_op_observer_t observer, void *user)`
@_cdecl("csd_session_set_observer")
public func exportSessionSetObserver(_ session: UnsafeMutablePointer<csd_session_t>?, _ observer: csd_op_observer_t?,
                                     _ user: UnsafeMutableRawPointer?) -> Int32 {
    do throws(CSDStatus) {
        let (state, _) = try engine(session)
        state.pointee.observer = observer
        state.pointee.observerUser = observer == nil ? nil : user
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// One op's statistics as the C struct.
@inline(__always) func cStats(_ stats: OpStats) -> csd_op_stats_t {
    csd_op_stats_t(kind: stats.kind, neurons: stats.neurons, spikes: stats.spikes,
                   synaptic_ops: stats.synapticOps, macs: stats.macs)
}

/// `int32_t csd_session_run(csd_session_t *s, const uint8_t *input, size_t input_len, int32_t *logits, size_t logits_len)`
@_cdecl("csd_session_run")
public func exportSessionRun(_ session: UnsafeMutablePointer<csd_session_t>?, _ input: UnsafePointer<UInt8>?, _ inputLength: UInt,
                             _ logits: UnsafeMutablePointer<Int32>?, _ logitsLength: UInt) -> Int32 {
    do throws(CSDStatus) {
        let (p, e) = try engine(session)
        guard let input = input, let logits = logits else { throw CSDStatus.nullArgument }
        // a length past Int.max is no image's C * H * W (checked after this, as the header says)
        guard inputLength <= UInt(Int.max) else { throw CSDStatus.inputLength }
        let statsBase = p.pointee.stats, capacity = Int(p.pointee.statsCapacity)
        let observer = p.pointee.observer, user = p.pointee.observerUser
        try e.run(input: UnsafeBufferPointer(start: input, count: Int(inputLength)),
                  logits: UnsafeMutableBufferPointer(start: logits, count: Int(clamping: logitsLength)),
                  observe: { index, stats in
            if let base = statsBase, index < capacity { base[index] = cStats(stats) }
            if let observer = observer {
                var record = cStats(stats)
                observer(user, UInt32(truncatingIfNeeded: index), &record)
            }
        })
        return CSDStatus.ok.rawValue
    } catch {
        return error.rawValue
    }
}

/// `const char *csd_status_str(int32_t status)`: a constant string, never NULL.
@_cdecl("csd_status_str")
public func exportStatusStr(_ status: Int32) -> UnsafePointer<CChar> {
    CSDStatus(status).text
}

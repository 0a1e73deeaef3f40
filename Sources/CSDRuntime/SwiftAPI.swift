// The Swift API of the runtime (docs/SWIFT_API.md): what `import CSDRuntime` gives a Swift
// caller, host or Embedded. The C API (CExports.swift, Include/csd.h) is a thin layer over these
// same calls: it only converts C pointers and lengths to buffers and keeps a session's fields in
// the caller's csd_session_t. Nothing here allocates (the Embedded build is -no-allocations).
//
//   ModelImage(checking:)        csd_model_check: a caller-owned image, every check of docs/FORMAT.md
//   image.arenaBytes(mode)       csd_arena_bytes: the exact arena a mode needs (spiking: any delay and path;
//                                the count path alone, D >= T and T <= 8: the fused need)
//   Engine(image:arena:mode:)    csd_session_init: image + caller-owned arena + mode
//   engine.setDelay(d)           csd_session_set_delay
//   engine.setCountPath(false)   csd_session_set_path(CSD_PATH_EVENT): the per-spike event path
//   engine.run(input:logits:)    csd_session_run: uint8 pixels in, int32 logits out
//   CSDStatus                    the CSD_E_* codes; `text` is csd_status_str

// The image format's types (ModelImage, ImageHeader, ExecutionMode, CSDStatus) are part of this
// API: a client imports CSDRuntime alone.
@_exported import CSDFormat

extension ModelImage {
    /// Opens an image the caller owns (flash or RAM, read in place, never written): the checks of
    /// `csd_model_check`, in its order.
    ///
    /// - Parameter bytes: the image, 16-byte aligned; it may be longer than the image. The bytes
    ///   must stay valid and unchanged while the image or an engine over it is used.
    /// - Throws: `.nullArgument` (no base address), `.imageAlignment` (not 16-byte aligned), or
    ///   the first failed check of docs/FORMAT.md ("Validation order and status codes").
    public init(checking bytes: UnsafeRawBufferPointer) throws(CSDStatus) {
        guard let base = bytes.baseAddress else { throw CSDStatus.nullArgument }
        guard UInt(bitPattern: base) & 15 == 0 else { throw CSDStatus.imageAlignment }
        try self.init(validating: bytes)
    }

    /// The exact arena bytes `mode` needs (`csd_arena_bytes`): the buffers of the image's arena
    /// plan and the kernels' scratch. Spiking mode needs these bytes to run at every delay and on
    /// either path; a spiking engine whose runs all take the count path (D >= T, T <= 8) needs only
    /// `arenaBytes(.fused)` (it runs in the fused plan's buffers; `Engine.init`).
    public func arenaBytes(_ mode: ExecutionMode) -> Int {
        // validated: equal to the plan's sum, computed in Int, so no conversion check is needed
        Int(truncatingIfNeeded: header.arenaBytes(mode))
    }

    /// The input bytes of one inference: uint8 pixels [C][H][W], C * H * W. `Int.max` if the
    /// product does not fit in an Int (only possible on a 32-bit target, for an image no such
    /// device could run: no input buffer is that long).
    public var inputBytes: Int {
        let (ch, o1) = Int(header.inputChannels).multipliedReportingOverflow(by: Int(header.inputHeight))
        let (n, o2) = ch.multipliedReportingOverflow(by: Int(header.inputWidth))
        return o1 || o2 ? Int.max : n
    }

    /// The number of logits an inference writes (one per class).
    public var classes: Int { Int(header.classes) }
}

extension Engine {
    /// Runs one inference, after checking the lengths (`csd_session_run`). The logits share one
    /// unit: the prediction is the index of the largest (the first on ties).
    ///
    /// - Parameters:
    ///   - input: uint8 pixels [C][H][W], exactly `image.inputBytes` of them.
    ///   - logits: room for at least `image.classes` int32 values; the first `classes` are written.
    ///   - observe: called after each op, in order, with its index and statistics.
    /// - Throws: `.inputLength` or `.outputLength`; once those hold, the run cannot fail.
    @inline(__always)  // into the C export: no second copy of the run loop
    public func run(input: UnsafeBufferPointer<UInt8>, logits: UnsafeMutableBufferPointer<Int32>,
                    observe: (Int, OpStats) -> Void = { _, _ in }) throws(CSDStatus) {
        guard input.count == image.inputBytes else { throw CSDStatus.inputLength }
        guard logits.count >= image.classes else { throw CSDStatus.outputLength }
        // C * H * W >= 1 and classes >= 1 (validated): buffers that passed have base addresses
        run(pixels: input.baseAddress.unsafelyUnwrapped, logits: logits.baseAddress.unsafelyUnwrapped, observe: observe)
    }
}

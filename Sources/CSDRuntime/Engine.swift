import CSDFormat

/// Per-op statistics of the last run (C: `csd_op_stats_t`).
public struct OpStats {
    /// The op kind (`CSD_OP_*`).
    public var kind: UInt32 = 0
    /// Output neurons (counts or trains written); 0 for ops without neurons.
    public var neurons: UInt32 = 0
    /// Output spikes: the sum of counts (fused) or of spike-train bits (spiking).
    public var spikes: UInt32 = 0
    /// Additions selected by a spike (spiking mode).
    public var synapticOps: UInt32 = 0
    /// Multiply-accumulates (fused mode; in spiking mode only the encoding layer multiplies).
    /// 32-bit counters like the header's `macs`: widening to UInt64 pulls an allocating
    /// generic path into 32-bit Embedded builds, and one op of an MCU model stays far below 2^32.
    public var macs: UInt32 = 0
    public init() {}
}

/// Runs a validated image on a caller-owned arena. Holds no state between runs
/// except the buffers inside the arena; never allocates; reads the image in place.
public struct Engine {
    public let image: ModelImage
    public let arena: UnsafeMutableRawPointer
    public let mode: ExecutionMode
    /// DIF delay D (spiking mode), 0 ... T. Defaults to the image's.
    public private(set) var delay: Int
    /// Spiking mode with D >= T and T <= 8: run the ops with neuron outputs on spike counts (the count
    /// path, docs/SEMANTICS.md "Prefix trains"), which multiplies counts by weights. The same trains,
    /// stats and logits as the event path; false forces the per-spike event path at every delay
    /// (`csd_session_set_path(CSD_PATH_EVENT)`), to measure event-driven execution.
    public var countPath = true

    /// Whether `run` takes the count path: spiking mode, `countPath`, D >= T and uint8 trains (T <= 8).
    public var usesCountPath: Bool {
        countPath && mode == .spiking && delay >= Int(image.header.timeSteps) && image.header.trainBytes == 1
    }

    /// - Throws: `.imageAlignment`, `.arenaAlignment`, `.arenaTooSmall`.
    public init(image: ModelImage, arena: UnsafeMutableRawBufferPointer, mode: ExecutionMode) throws(CSDStatus) {
        guard let imageBase = image.bytes.baseAddress, UInt(bitPattern: imageBase) & 15 == 0 else {
            throw CSDStatus.imageAlignment
        }
        guard let base = arena.baseAddress else { throw CSDStatus.nullArgument }
        guard UInt(bitPattern: base) & 15 == 0 else { throw CSDStatus.arenaAlignment }
        guard UInt(bitPattern: arena.count) >= UInt(image.header.arenaBytes(mode)) else { throw CSDStatus.arenaTooSmall }
        self.image = image
        self.arena = base
        self.mode = mode
        self.delay = Int(image.header.delay)
    }

    /// - Throws: `.delay` when `delay` exceeds T.
    public mutating func setDelay(_ delay: Int) throws(CSDStatus) {
        guard delay >= 0, delay <= Int(image.header.timeSteps) else { throw CSDStatus.delay }
        self.delay = delay
    }

    /// The arena bytes op `index` writes in this mode (nil for the classifier, whose output is the
    /// caller's logits). Valid inside `run`'s `observe` for that op, until a later op reuses the bytes.
    public func outputBuffer(of index: Int) -> UnsafeRawBufferPointer? {
        let op = image.op(index)
        guard let use = op.outputUse else { return nil }
        let size: Int
        do throws(CSDStatus) { size = try bufferBytes(use, mode: mode, timeSteps: Int(image.header.timeSteps)) } catch { return nil }
        return UnsafeRawBufferPointer(start: arena + op.output(mode), count: size)
    }

    /// Runs one inference.
    /// - Parameters:
    ///   - pixels: uint8 [C][H][W], exactly C*H*W bytes (checked by the caller).
    ///   - logits: room for `classes` int32 values.
    ///   - observe: called after each op with its index and statistics.
    public func run(pixels: UnsafePointer<UInt8>, logits: UnsafeMutablePointer<Int32>,
                    observe: (Int, OpStats) -> Void = { _, _ in }) {
        let data = image.data.baseAddress!
        let scratch = (arena + Int(image.header.arenaBytes(mode)) - image.scratchBytes(mode)).assumingMemoryBound(to: UInt32.self)
        var context = Context(image: image, data: data, arena: arena, scratch: scratch, pixels: pixels, logits: logits,
                              steps: Int(image.header.timeSteps), levels: Int32(image.header.levels),
                              delay: delay, wideTrains: image.header.trainBytes == 2, plan: mode,
                              countPath: usesCountPath)
        for i in 0..<image.opCount {
            let op = image.op(i)
            var s = OpStats()
            s.kind = UInt32(op.kindRaw)
            if mode == .fused { context.runFused(op, &s) } else { context.runSpiking(op, index: i, &s) }
            observe(i, s)
        }
    }
}

/// Pointers and constants shared by the kernels of one run.
@usableFromInline struct Context {
    /// The image (its op records decide which later op reads a value: `nextSpikingUse`).
    @usableFromInline let image: ModelImage
    @usableFromInline let data: UnsafeRawPointer
    @usableFromInline let arena: UnsafeMutableRawPointer
    /// The kernels' scratch at the arena's end (docs/FORMAT.md, "Kernel scratch").
    @usableFromInline let scratch: UnsafeMutablePointer<UInt32>
    @usableFromInline let pixels: UnsafePointer<UInt8>
    @usableFromInline let logits: UnsafeMutablePointer<Int32>
    @usableFromInline let steps: Int
    @usableFromInline let levels: Int32
    @usableFromInline let delay: Int
    @usableFromInline let wideTrains: Bool
    @inlinable var trainWidth: TrainWidth { wideTrains ? .bits16 : .bits8 }
    /// Whose buffer offsets the fused kernels use: the fused plan, or the spiking one on the count path.
    @usableFromInline let plan: ExecutionMode
    /// Spiking, D >= T, uint8 trains: ops with neuron outputs run on counts (`runCounts`).
    @usableFromInline let countPath: Bool
    /// The count path's input left as counts for its next reader (-1: none), and the sum of its counts.
    @usableFromInline var countsAt = -1
    @usableFromInline var countsSum: UInt32 = 0

    @inlinable func int8s(_ offset: UInt32) -> UnsafePointer<Int8> {
        (data + Int(offset)).assumingMemoryBound(to: Int8.self)
    }
    @inlinable func int32s(_ offset: UInt32) -> UnsafePointer<Int32> {
        (data + Int(offset)).assumingMemoryBound(to: Int32.self)
    }
    @inlinable func counts(_ offset: Int) -> UnsafeMutablePointer<UInt8> {
        (arena + offset).assumingMemoryBound(to: UInt8.self)
    }
    @inlinable func stream(_ offset: Int) -> UnsafeMutablePointer<Int32> {
        (arena + offset).assumingMemoryBound(to: Int32.self)
    }
}

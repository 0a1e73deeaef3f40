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
    /// Bytes of the caller's arena.
    public let arenaBytes: Int
    /// Spiking mode with D >= T and T <= 8: run the ops on spike counts (the count path, docs/SEMANTICS.md
    /// "Prefix trains"), which multiplies counts by weights, in the fused plan's buffers. The same trains,
    /// stats and logits as the event path; false forces the per-spike event path at every delay
    /// (`setCountPath(false)`, `csd_session_set_path(CSD_PATH_EVENT)`), to measure event-driven execution.
    public private(set) var countPath = true

    /// Whether `run` takes the count path: spiking mode, `countPath`, D >= T and uint8 trains (T <= 8).
    public var usesCountPath: Bool { takesCountPath(delay: delay, countPath: countPath) }

    @inlinable func takesCountPath(delay: Int, countPath: Bool) -> Bool {
        countPath && mode == .spiking && delay >= Int(image.header.timeSteps) && image.header.trainBytes == 1
    }

    /// The buffer plan a run with these settings uses (the count path: the fused one), and so its arena need.
    @inlinable func plan(delay: Int, countPath: Bool) -> ExecutionMode {
        takesCountPath(delay: delay, countPath: countPath) ? .fused : mode
    }

    /// A spiking engine whose runs all take the count path (D >= T, T <= 8) needs only the fused arena,
    /// `image.arenaBytes(.fused)`; one that may take the event path, the spiking arena. The settings must
    /// fit the arena at every moment: the image's default delay (or `delay`) and `countPath` at `init`,
    /// then every `setDelay` and `setCountPath`.
    /// - Throws: `.imageAlignment`, `.arenaAlignment`, `.arenaTooSmall`, `.delay`.
    public init(image: ModelImage, arena: UnsafeMutableRawBufferPointer, mode: ExecutionMode, delay: Int? = nil,
                countPath: Bool = true) throws(CSDStatus) {
        guard let imageBase = image.bytes.baseAddress, UInt(bitPattern: imageBase) & 15 == 0 else {
            throw CSDStatus.imageAlignment
        }
        guard let base = arena.baseAddress else { throw CSDStatus.nullArgument }
        guard UInt(bitPattern: base) & 15 == 0 else { throw CSDStatus.arenaAlignment }
        self.image = image
        self.arena = base
        self.arenaBytes = arena.count
        self.mode = mode
        self.delay = Int(image.header.delay)
        self.countPath = countPath
        if let d = delay {
            guard d >= 0, d <= Int(image.header.timeSteps) else { throw CSDStatus.delay }
            self.delay = d
        }
        try fits(delay: self.delay, countPath: countPath)
    }

    /// An engine with settings checked before (the C exports rebuild a session's engine on every call).
    init(restoring image: ModelImage, arena: UnsafeMutableRawBufferPointer, mode: ExecutionMode, delay: Int, countPath: Bool) {
        self.image = image
        self.arena = arena.baseAddress.unsafelyUnwrapped
        self.arenaBytes = arena.count
        self.mode = mode
        self.delay = delay
        self.countPath = countPath
    }

    /// - Throws: `.arenaTooSmall` unless runs with these settings fit the arena.
    @inline(__always) @usableFromInline func fits(delay: Int, countPath: Bool) throws(CSDStatus) {
        let need = image.header.arenaBytes(plan(delay: delay, countPath: countPath))
        guard UInt(bitPattern: arenaBytes) >= UInt(need) else { throw CSDStatus.arenaTooSmall }
    }

    /// `setDelay`'s checks without the change (the C exports keep the delay in the session).
    @inline(__always) @usableFromInline func check(delay: Int) throws(CSDStatus) {
        guard delay >= 0, delay <= Int(image.header.timeSteps) else { throw CSDStatus.delay }
        try fits(delay: delay, countPath: countPath)
    }

    /// - Throws: `.delay` when `delay` exceeds T; `.arenaTooSmall` when the arena holds only the count
    ///   path's buffers and `delay` is below T (the event path's).
    public mutating func setDelay(_ delay: Int) throws(CSDStatus) {
        try check(delay: delay)
        self.delay = delay
    }

    /// The count path on (the default) or off (the event path at every delay).
    /// - Throws: `.arenaTooSmall` when turning it off needs the spiking arena this engine lacks.
    public mutating func setCountPath(_ on: Bool) throws(CSDStatus) {
        try fits(delay: delay, countPath: on)
        countPath = on
    }

    /// The arena bytes op `index` writes with the current settings (nil for the classifier, whose output is
    /// the caller's logits, and for ATTN_SCORES, whose scores stay in the kernel scratch): in the mode's plan, or on the count path in the fused plan (trains as bytes,
    /// the stream as [N][D] sums over the steps). Valid inside `run`'s `observe` for that op, until a
    /// later op reuses the bytes. A band producer's in the fused plan is its band buffer, which holds the
    /// last band (docs/FORMAT.md, "Bands"), and the consumer has consumed it by the time both are observed;
    /// an attention unit's u, v, k and q buffers hold the last head (u and q its last band of tokens), as counts
    /// on the count path too ("Attention units").
    public func outputBuffer(of index: Int) -> UnsafeRawBufferPointer? {
        let op = image.op(index), plan = plan(delay: delay, countPath: countPath)
        guard let use = op.outputUse, use.inArena else { return nil }
        let size: Int
        do throws(CSDStatus) { size = try bufferBytes(use, mode: plan, timeSteps: Int(image.header.timeSteps)) } catch { return nil }
        return UnsafeRawBufferPointer(start: arena + op.output(plan), count: size)
    }

    /// Runs one inference.
    /// - Parameters:
    ///   - pixels: uint8 [C][H][W], exactly C*H*W bytes (checked by the caller).
    ///   - logits: room for `classes` int32 values.
    ///   - observe: called after each op with its index and statistics.
    public func run(pixels: UnsafePointer<UInt8>, logits: UnsafeMutablePointer<Int32>,
                    observe: (Int, OpStats) -> Void = { _, _ in }) {
        let data = image.data.baseAddress!, plan = plan(delay: delay, countPath: countPath)
        var context = Context(image: image, data: data, arena: arena, scratch: arena.assumingMemoryBound(to: UInt32.self),
                              pixels: pixels, logits: logits,
                              steps: Int(image.header.timeSteps), levels: Int32(image.header.levels),
                              delay: delay, wideTrains: image.header.trainBytes == 2, plan: plan,
                              spiking: mode == .spiking, countPath: usesCountPath)
        #if arch(x86_64)
        if Kernels.useX86Twins {  // one stack buffer for the run's pairs of blocks (`Kernels.pairBlocks`)
            var pair = Kernels.PairBlocks(repeating: .zero)
            withUnsafeMutableBytes(of: &pair) { buffer in
                context.pairBlocks = buffer.baseAddress
                runOps(&context, plan, observe)
            }
            return
        }
        #endif
        runOps(&context, plan, observe)
    }

    /// `run`'s op loop. In the fused plan a band unit's two ops run together (`Context.runBands`), then
    /// both are observed; an attention unit's six likewise (`Context.runAttentionUnit`).
    @inline(__always) func runOps(_ context: inout Context, _ plan: ExecutionMode, _ observe: (Int, OpStats) -> Void) {
        var i = 0
        while i < image.opCount {
            let op = image.op(i)
            var s = OpStats()
            s.kind = UInt32(op.kindRaw)
            if plan == .fused && op.band != 0 && op.kind == .streamNeuron {  // an attention unit: six ops
                context.runAttentionUnit(index: i, observe)
                i &+= 6
                continue
            }
            if plan == .fused && op.band != 0 {
                var s2 = OpStats()
                context.runBands(index: i, &s, &s2)
                observe(i, s)
                observe(i &+ 1, s2)
                i &+= 2
                continue
            }
            context.scratch = (arena + op.scratch(plan)).assumingMemoryBound(to: UInt32.self)  // the op's own
            if mode == .fused { context.runFused(op, index: i, &s) } else { context.runSpiking(op, index: i, &s) }
            observe(i, s)
            i &+= 1
        }
    }
}

/// Pointers and constants shared by the kernels of one run.
@usableFromInline struct Context {
    /// The image (its op records decide which later op reads a value: `nextSpikingUse`).
    @usableFromInline let image: ModelImage
    @usableFromInline let data: UnsafeRawPointer
    @usableFromInline let arena: UnsafeMutableRawPointer
    /// The running op's kernel scratch, placed by the packer (docs/FORMAT.md, "Kernel scratch").
    @usableFromInline var scratch: UnsafeMutablePointer<UInt32>
    #if arch(x86_64)
    /// The run's stack buffer for pairs of blocks, `Kernels.pairBlockBytes` (x86-64 twins; nil without them);
    /// an op also puts there what its twins lay out besides (the pixel conv's bordered input and weight pairs,
    /// a conv's bordered input after its pair, the attention values' per-key stats, the window counts).
    /// Each op's use ends with the op.
    @usableFromInline var pairBlocks: UnsafeMutableRawPointer? = nil
    #endif
    @usableFromInline let pixels: UnsafePointer<UInt8>
    @usableFromInline let logits: UnsafeMutablePointer<Int32>
    @usableFromInline let steps: Int
    @usableFromInline let levels: Int32
    @usableFromInline let delay: Int
    @usableFromInline let wideTrains: Bool
    @inlinable var trainWidth: TrainWidth { wideTrains ? .bits16 : .bits8 }
    /// Whose buffer offsets the ops use: the mode's plan, or the fused one on the count path.
    @usableFromInline let plan: ExecutionMode
    /// Spiking mode: neurons write trains (on the count path prefix trains; `neuronOutput`).
    @usableFromInline let spiking: Bool
    /// Spiking, D >= T, uint8 trains: every op but the classifier runs on counts (`runCounts`).
    @usableFromInline let countPath: Bool
    /// The count path's input left as counts for its next reader (-1: none), and the sum of its counts.
    @usableFromInline var countsAt = -1
    @usableFromInline var countsSum: UInt32 = 0
    /// The attention pair runs at its ATTN_SCORES record (docs/FORMAT.md, "The attention pair"); the
    /// statistics of its ATTN_VALUES record wait here for that record's turn.
    @usableFromInline var valuesStats = OpStats()

    @inlinable func int8s(_ offset: UInt32) -> UnsafePointer<Int8> {
        (data + Int(offset)).assumingMemoryBound(to: Int8.self)
    }
    @inlinable func int32s(_ offset: UInt32) -> UnsafePointer<Int32> {
        (data + Int(offset)).assumingMemoryBound(to: Int32.self)
    }
    @inlinable func counts(_ offset: Int) -> UnsafeMutablePointer<UInt8> {
        (arena + offset).assumingMemoryBound(to: UInt8.self)
    }
    /// The residual stream, int16 (docs/SEMANTICS.md, "Stream sinks").
    @inlinable func stream(_ offset: Int) -> UnsafeMutablePointer<Int16> {
        (arena + offset).assumingMemoryBound(to: Int16.self)
    }
}

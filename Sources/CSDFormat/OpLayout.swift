/// What an op reads and writes, derived from its record: value kinds, shapes,
/// tensor sizes and MAC counts. The validator, the runtime and the packer's
/// planner all use these, so they agree by construction.

/// The kind of value a buffer holds.
public enum ValueKind: UInt8 {
    /// uint8 pixels, the caller's input (not in the arena).
    case pixels = 0
    /// Neuron outputs: uint8 counts (fused) or spike trains (spiking).
    case counts = 1
    /// The residual stream: int16 [N][D] (fused) or [N][D][T] (spiking).
    case stream = 2
    /// The attention scores [heads][N][N], passed from ATTN_SCORES to ATTN_VALUES through the kernel
    /// scratch a block of query rows at a time (docs/FORMAT.md, "The attention pair"): not in the arena.
    case scores = 3
    /// Neuron outputs stored channel-major: [D][N] for the value's dims [N, D, 1] (a LINEAR with
    /// CHANNEL_MAJOR, read as the attention pair's v; docs/FORMAT.md, "The attention pair").
    case channelMajor = 4
}

/// A buffer an op reads or writes: its kind and shape. A stream's dims are [N, D, 1].
public struct ValueUse: Equatable {
    public var kind: ValueKind
    public var dims: Dims
    /// 0 for the whole value; else the fused plan's buffer holds a band of `band` rows of axis `bandAxis`
    /// (0: the tokens of [N, D, 1]; 1: the rows of a map [C, H, W]; docs/FORMAT.md, "Bands"). The spiking
    /// plan's buffer is whole.
    public var band: Int
    public var bandAxis: Int
    /// 0 for all channels; else the fused plan's buffer holds one head's channels, `dims.d1 / heads` of
    /// them (an attention unit's v, k and q; docs/FORMAT.md, "Attention units"). `heads` divides `dims.d1`.
    public var heads: Int
    @inlinable public init(_ kind: ValueKind, _ dims: Dims, band: Int = 0, bandAxis: Int = 0, heads: Int = 0) {
        self.kind = kind; self.dims = dims; self.band = band; self.bandAxis = bandAxis; self.heads = heads
    }
    @inlinable public static func == (a: ValueUse, b: ValueUse) -> Bool {
        a.kind == b.kind && a.dims == b.dims && a.band == b.band && (a.band == 0 || a.bandAxis == b.bandAxis) && a.heads == b.heads
    }
    /// The dims the buffer holds in `mode`: the band's (and head's) in the fused plan, else the whole value's.
    @inlinable public func heldDims(_ mode: ExecutionMode) -> Dims {
        guard band > 0 || heads > 0, mode == .fused else { return dims }
        let d = bandAxis == 0 ? Dims(band > 0 ? band : dims.d0, dims.d1, dims.d2) : Dims(dims.d0, band, dims.d2)
        return heads > 0 ? Dims(d.d0, d.d1 / heads, d.d2) : d
    }
    /// True for a buffer in the arena (not the caller's pixels, not the attention scores in the scratch).
    @inlinable public var inArena: Bool { kind == .counts || kind == .stream || kind == .channelMajor }
}

/// Overflow-checked arithmetic for sizes computed from untrusted fields.
@inlinable func checkedMul(_ a: Int, _ b: Int) throws(CSDStatus) -> Int {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    if o { throw CSDStatus.shape }
    return r
}

@inlinable func checkedAdd(_ a: Int, _ b: Int, _ error: CSDStatus) throws(CSDStatus) -> Int {
    let (r, o) = a.addingReportingOverflow(b)
    if o { throw error }
    return r
}

/// Output size of one pooled dimension (pool 2: 2x2 stride 2, floor; pool 3: 3x3 stride 2 pad 1).
@inlinable public func pooledSize(_ n: Int, pool: Int) -> Int {
    pool == 2 ? n / 2 : (n - 1) / 2 + 1
}

/// Bytes of a buffer holding `use` in `mode`, given T (checked).
@inlinable public func bufferBytes(_ use: ValueUse, mode: ExecutionMode, timeSteps: Int) throws(CSDStatus) -> Int {
    let held = use.heldDims(mode)
    let elements = try checkedMul(try checkedMul(held.d0, held.d1), held.d2)
    switch (use.kind, mode) {
    case (.pixels, _): return elements
    case (.scores, _): return 0
    case (.counts, .fused), (.channelMajor, .fused): return elements
    case (.counts, .spiking), (.channelMajor, .spiking): return try checkedMul(elements, timeSteps <= 8 ? 1 : 2)
    case (.stream, .fused): return try checkedMul(elements, 2)
    case (.stream, .spiking): return try checkedMul(try checkedMul(elements, 2), timeSteps)
    }
}

extension OpRecord {
    /// The value of the first input.
    @inlinable public var inputUse: ValueUse {
        switch kind {
        case .conv3x3?: return ValueUse(has(OpFlag.inputPixels) ? .pixels : .counts, inDims)
        case .streamNeuron?: return ValueUse(.stream, inDims)
        case .attentionValues?: return ValueUse(.scores, inDims)
        default: return ValueUse(.counts, inDims)
        }
    }

    /// The value of the second input (attention ops only).
    @inlinable public var input2Use: ValueUse? {
        switch kind {
        case .attentionScores?: return ValueUse(.counts, inDims)
        case .attentionValues?: return ValueUse(.channelMajor, outDims)  // v, [D][N]
        default: return nil
        }
    }

    /// True when the op writes the residual stream.
    @inlinable public var writesStream: Bool {
        (kind == .conv3x3 || kind == .linear) && has(OpFlag.streamOut)
    }

    /// True when the op adds into a stream that must already exist (a stream add).
    @inlinable public var readsOutputStream: Bool { writesStream && !has(OpFlag.streamSet) }

    /// True when the op's output may be its first input's buffer (docs/FORMAT.md, "In place"): a LINEAR
    /// neuron layer with Din == Dout, whose kernels read a block of tokens before writing their rows.
    /// (A stream add writes its stream in place, and ATTN_VALUES may write over the pair's q.)
    @inlinable public var mayWriteOverInput: Bool {
        kind == .linear && !writesStream && !has(OpFlag.channelMajor) && inDims.d1 == outDims.d1
    }

    /// The value written, or nil for the classifier (whose output is the caller's logits).
    @inlinable public var outputUse: ValueUse? {
        switch kind {
        case .classifier?: return nil
        case .attentionScores?: return ValueUse(.scores, outDims)
        case .conv3x3?:
            if writesStream { return ValueUse(.stream, Dims(outDims.d1 * outDims.d2, outDims.d0, 1)) }
            return ValueUse(.counts, outDims, band: Int(band), bandAxis: 1)  // a band of map rows
        case .linear?:  // a band of tokens; an attention unit's: one head's channels (docs/FORMAT.md, "Attention units")
            return ValueUse(writesStream ? .stream : has(OpFlag.channelMajor) ? .channelMajor : .counts, outDims,
                            band: Int(band), bandAxis: 0, heads: Int(heads))
        case .streamNeuron?: return ValueUse(.counts, outDims, band: Int(band), bandAxis: 0)  // an attention unit's u
        default: return ValueUse(.counts, outDims)
        }
    }

    /// Bytes per weight element: 2 for stream writers (int16), 1 otherwise (int8), 0 without weights.
    @inlinable public var weightElementBytes: Int {
        switch kind {
        case .conv3x3?, .linear?: return writesStream ? 2 : 1
        case .classifier?: return 1
        default: return 0
        }
    }

    /// Number of weight elements.
    public func weightCount() throws(CSDStatus) -> Int {
        switch kind {
        case .conv3x3?: return try checkedMul(try checkedMul(outDims.d0, inDims.d0), 9)
        case .linear?: return try checkedMul(outDims.d1, inDims.d1)
        case .classifier?: return try checkedMul(outDims.d0, inDims.d1)
        default: return 0
        }
    }

    /// Number of int32 thresholds (0 for ops without neurons).
    @inlinable public var thresholdCount: Int {
        switch kind {
        case .conv3x3?: return writesStream ? 0 : outDims.d0
        case .linear?: return writesStream ? 0 : outDims.d1
        case .streamNeuron?, .attentionValues?: return outDims.d1
        case .attentionScores?: return Int(heads)
        default: return 0
        }
    }

    /// Number of int32 biases.
    public func biasCount() throws(CSDStatus) -> Int {
        switch kind {
        case .conv3x3?:
            if writesStream && has(OpFlag.tokenBias) { return try checkedMul(outDims.d1 * outDims.d2, outDims.d0) }
            return outDims.d0
        case .linear?, .streamNeuron?, .attentionValues?: return outDims.d1
        case .attentionScores?: return Int(heads)
        case .classifier?: return outDims.d0
        default: return 0
        }
    }

    /// `macs()` for an op of a validated image (where it cannot overflow); wrapping, never throws.
    /// (Calling the throwing `macs()` from another module pulls an allocating path into Embedded builds.)
    @inlinable public var validatedMacs: Int {
        switch kind {
        case .conv3x3?: return outDims.d0 &* inDims.d0 &* (3 &* inDims.d1 &- 2) &* (3 &* inDims.d2 &- 2)
        case .linear?: return inDims.d0 &* inDims.d1 &* outDims.d1
        case .attentionScores?: return inDims.d0 &* inDims.d0 &* inDims.d1
        case .attentionValues?: return outDims.d0 &* outDims.d0 &* outDims.d1
        case .classifier?: return outDims.d0 &* inDims.d1
        default: return 0
        }
    }

    /// Multiply-accumulates of the op in fused mode (in-bounds taps only).
    public func macs() throws(CSDStatus) -> Int {
        switch kind {
        case .conv3x3?:
            let taps = try checkedMul(3 * inDims.d1 - 2, 3 * inDims.d2 - 2)
            return try checkedMul(try checkedMul(outDims.d0, inDims.d0), taps)
        case .linear?: return try checkedMul(try checkedMul(inDims.d0, inDims.d1), outDims.d1)
        case .attentionScores?: return try checkedMul(try checkedMul(inDims.d0, inDims.d0), inDims.d1)
        case .attentionValues?: return try checkedMul(try checkedMul(outDims.d0, outDims.d0), outDims.d1)
        case .classifier?: return try checkedMul(outDims.d0, inDims.d1)
        default: return 0
        }
    }
}

extension OpRecord {
    /// Bytes of kernel scratch this op needs in `mode` (docs/FORMAT.md, "Kernel scratch"). Fused: the
    /// conv and linear kernels expand four rows of their K inputs into 16-bit lanes, 32 bytes per group
    /// of four inputs. Spiking: conv and linear list their active inputs (16 bytes per group of four)
    /// and keep the per-step currents of every output channel (T x outputs int32, rounded up to 16);
    /// and never less than the fused need, as the spiking count path (D >= T) runs the fused kernels.
    /// The attention pair (both records the same need): fused, four queries' scores rows, then a block of
    /// four queries' head channels or of their scores (one at a time); spiking, one
    /// neuron's 16 currents, a list of active inputs and one query's scores row of trains. A stream
    /// neuron, spiking: a token's [D][T] steps as int32. Other ops need none. Call on a validated op.
    @inlinable public func scratchBytes(_ mode: ExecutionMode, timeSteps: Int) -> Int {
        let k: Int, outputs: Int
        switch kind {
        case .conv3x3?: k = inDims.d0 &* 9; outputs = outDims.d0
        case .linear?: k = inDims.d1; outputs = outDims.d1
        case .streamNeuron?:  // spiking: one token's int16 steps widened to int32
            return mode == .fused ? 0 : (timeSteps &* inDims.d1 &* 4 &+ 15) & ~15
        case .attentionScores?, .attentionValues?:
            let qkv = kind == .attentionScores ? inDims : outDims  // [N, D, 1]
            return Self.attentionScratch(mode, tokens: qkv.d0, headWidth: heads > 0 ? qkv.d1 / Int(heads) : 0,
                                         timeSteps: timeSteps)
        default: return 0
        }
        let groups = (k &+ 3) >> 2, fused = groups &* 32
        if mode == .fused { return fused }
        // spiking: the event path's need, and the fused one for the count path (D >= T)
        return max(fused, groups &* 16 &+ ((timeSteps &* outputs &* 4 &+ 15) & ~15))
    }

    /// The attention pair's scratch (docs/FORMAT.md, "Kernel scratch"): fused
    /// `align16(4 N) + 32 max(Gq, Gn)`, spiking `max(fused, 64 + 16 max(Gq, Gn) + align16(N b))`.
    @inlinable public static func attentionScratch(_ mode: ExecutionMode, tokens n: Int, headWidth hd: Int,
                                                   timeSteps: Int) -> Int {
        let gq = (hd &+ 3) >> 2, gn = (n &+ 3) >> 2
        let fused = ((4 &* n &+ 15) & ~15) &+ 32 &* max(gq, gn)
        if mode == .fused { return fused }
        let b = timeSteps <= 8 ? 1 : 2
        return max(fused, 64 &+ 16 &* max(gq, gn) &+ ((n &* b &+ 15) & ~15))
    }
}

/// How the spiking execution next uses a value in the arena (docs/SEMANTICS.md "Prefix trains").
public enum NextUse {
    /// No op reads it before one overwrites it (or none at all): the value is dead.
    case none
    /// First read as the first input of an op the count path runs on counts (a conv, a linear, the
    /// attention pair's q).
    case counts
    /// First read otherwise, as spike trains.
    case trains
}

extension ModelImage {
    /// How the spiking run of ops `first ..< opCount` next uses the value at arena offset `offset` of
    /// `plan`'s buffers (the count path runs in the fused plan's, docs/FORMAT.md "Arena"), decoded from
    /// their records: the first op that reads it (as input 2: trains; as input: see `NextUse`) or
    /// writes it decides. An op's unused input2 field of 0 can give a needless `.trains`: harmless.
    public func nextSpikingUse(ofValueAt offset: Int, from first: Int, plan: ExecutionMode) -> NextUse {
        var j = first
        while j < opCount {
            let op = self.op(j)
            if op.input2(plan) == offset { return .trains }
            if op.inputUse.inArena && op.input(plan) == offset {
                switch op.kind {
                case .attentionScores?, .conv3x3?, .linear?: return .counts  // ATTN_VALUES' input is not in the arena
                default: return .trains
                }
            }
            if op.outputUse?.inArena == true && op.output(plan) == offset { return .none }
            j &+= 1
        }
        return .none
    }
}

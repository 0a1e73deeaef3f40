/// A validated, read-only view of a `.csd` image in place (flash or RAM).
///
/// `init(validating:)` performs every check of docs/FORMAT.md in its stated
/// order and throws the first failure's specific status; after it succeeds,
/// every offset the runtime derives from the image lies inside the image or
/// the arena, so kernels may index without further checks.
public struct ModelImage {
    /// Exactly `header.imageBytes` bytes.
    public let bytes: UnsafeRawBufferPointer
    public let header: ImageHeader

    public static let maxOps = 256
    public static let maxShift: UInt8 = 24
    public static let maxTimeSteps: UInt8 = 16

    public var opCount: Int { Int(header.opCount) }

    /// The data section (tensor offsets are relative to its start).
    public var data: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[Int(header.dataOffset)..<bytes.count])
    }

    /// The op record at `index` (0 ..< opCount).
    public func op(_ index: Int) -> OpRecord {
        OpRecord(reading: bytes, at: ImageHeader.size + index * OpRecord.size)
    }

    /// The value op `index` reads as its first input: `op(index).inputUse`, or for the consumer of a band
    /// (docs/FORMAT.md, "Bands") the producer's band.
    /// In an attention unit (docs/FORMAT.md, "Attention units") the linears read u and the scores q, at the
    /// fused plan's sizes.
    public func inputUse(_ index: Int) -> ValueUse {
        if let a = attentionUnit(containing: index), index > a {
            if index &- a <= 3, let u = op(a).outputUse { return u }
            if index &- a == 4, let q = op(a &+ 3).outputUse { return q }
        } else if consumesBand(index), let band = op(index &- 1).outputUse {
            return band
        }
        return op(index).inputUse
    }

    /// The value op `index` reads as its second input: `op(index).input2Use`, or in an attention unit the k
    /// (the scores) or v (the values) linear's output.
    public func input2Use(_ index: Int) -> ValueUse? {
        if let a = attentionUnit(containing: index), index &- a >= 4 {
            return op(index &- a == 4 ? a &+ 2 : a &+ 1).outputUse
        }
        return op(index).input2Use
    }

    /// True when `r` produces a band (docs/FORMAT.md, "Bands"): `band` nonzero on a conv, or on a linear
    /// outside an attention unit (whose q linear has a band too).
    @inlinable public static func producesBand(_ r: OpRecord) -> Bool {
        r.band != 0 && (r.kind == .conv3x3 || (r.kind == .linear && r.heads == 0))
    }

    /// True when op `index` is a band producer's consumer (docs/FORMAT.md, "Bands").
    @inlinable public func consumesBand(_ index: Int) -> Bool {
        index > 0 && ModelImage.producesBand(op(index &- 1))
    }

    /// The first op (its STREAM_NEURON with `band` nonzero) of the attention unit that holds op `index`
    /// (docs/FORMAT.md, "Attention units"; six ops), or nil.
    public func attentionUnit(containing index: Int) -> Int? {
        var a = index
        while a >= 0 && index &- a < 6 {
            let r = op(a)
            if r.kind == .streamNeuron { return r.band != 0 ? a : nil }
            a &-= 1
        }
        return nil
    }

    /// Views an image that `init(validating:)` has already accepted, without checking
    /// it again (the runtime validates once per session; the caller guarantees the
    /// bytes stay unchanged while the session lives).
    public init(alreadyValidated buffer: UnsafeRawBufferPointer) {
        let h = ImageHeader(reading: buffer)
        self.bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<Int(h.imageBytes)])
        self.header = h
    }

    /// Validates `buffer` as an image (it may be longer than the image).
    public init(validating buffer: UnsafeRawBufferPointer) throws(CSDStatus) {
        guard buffer.count >= ImageHeader.size, buffer.baseAddress != nil else { throw CSDStatus.tooSmall }
        let h = ImageHeader(reading: buffer)
        guard h.magic == ImageHeader.magicValue else { throw CSDStatus.badMagic }
        guard h.formatVersion == ImageHeader.formatVersion else { throw CSDStatus.formatVersion }
        guard h.mathVersion == ImageHeader.mathVersion else { throw CSDStatus.mathVersion }
        guard h.headerBytes == UInt32(ImageHeader.size) else { throw CSDStatus.headerSize }
        guard h.imageBytes >= UInt32(ImageHeader.size), UInt(h.imageBytes) <= UInt(bitPattern: buffer.count) else {
            throw CSDStatus.truncated
        }
        let image = UnsafeRawBufferPointer(rebasing: buffer[0..<Int(h.imageBytes)])
        guard CRC32.image(image) == h.crc32 else { throw CSDStatus.crc }
        guard h.opRecordBytes == UInt32(OpRecord.size), h.opCount >= 1, h.opCount <= UInt32(ModelImage.maxOps) else {
            throw CSDStatus.opTable
        }
        let tableEnd = ImageHeader.size + Int(h.opCount) * OpRecord.size
        let expectedData = (tableEnd + 15) & ~15
        guard h.dataOffset == UInt32(expectedData), h.dataOffset <= h.imageBytes,
              h.dataBytes == h.imageBytes - h.dataOffset else { throw CSDStatus.opTable }
        for i in ImageHeader.reservedOffset..<ImageHeader.size where image[i] != 0 { throw CSDStatus.reserved }
        for i in tableEnd..<expectedData where image[i] != 0 { throw CSDStatus.reserved }
        guard h.flags == 0 else { throw CSDStatus.reserved }
        guard h.timeSteps >= 1, h.timeSteps <= ModelImage.maxTimeSteps, h.levels >= 1, h.levels <= h.timeSteps,
              h.delay <= h.timeSteps, h.inputChannels >= 1, h.inputHeight >= 1, h.inputWidth >= 1,
              h.classes >= 1, h.tokens >= 1, h.width >= 1 else { throw CSDStatus.metadata }
        self.bytes = image
        self.header = h
        try validateOps()
    }

    // MARK: - ops

    private func validateOps() throws(CSDStatus) {
        var macs = 0
        var tensorBytes = 0
        var arenaNeed = (0, 0)
        for i in 0..<opCount {
            let op = self.op(i)
            try validateFields(op, index: i)
            tensorBytes = try checkedAdd(tensorBytes, try validateTensors(op), .tensorBounds)
            macs = try checkedAdd(macs, try op.macs(), .macs)
            arenaNeed.0 = max(arenaNeed.0, try validateArena(op, index: i, mode: .fused))
            arenaNeed.1 = max(arenaNeed.1, try validateArena(op, index: i, mode: .spiking))
        }
        guard UInt(bitPattern: macs) == UInt(header.macs) else { throw CSDStatus.macs }
        guard UInt(bitPattern: tensorBytes) == UInt(header.tensorBytes) else { throw CSDStatus.tensorBounds }
        // the furthest byte of any buffer or kernel scratch, rounded up to 16: the exact need; spiking, at least the
        // fused one (a spiking session at D >= T runs in the fused plan; docs/FORMAT.md, "Arena plan")
        let fused = (arenaNeed.0 + 15) & ~15, spiking = max((arenaNeed.1 + 15) & ~15, fused)
        guard UInt(bitPattern: fused) == UInt(header.arenaBytes.0), UInt(bitPattern: spiking) == UInt(header.arenaBytes.1) else {
            throw CSDStatus.arenaBytes
        }
    }

    /// Kind, flags, shift, pool, heads and shapes of one op.
    private func validateFields(_ op: OpRecord, index: Int) throws(CSDStatus) {
        guard let kind = op.kind else { throw CSDStatus.opKind }
        guard op.flags & ~OpFlag.all == 0, op.shift <= ModelImage.maxShift else { throw CSDStatus.opFields }
        let i = op.inDims, o = op.outDims
        guard i.d0 >= 1, i.d1 >= 1, i.d2 >= 1, o.d0 >= 1, o.d1 >= 1, o.d2 >= 1 else { throw CSDStatus.shape }
        let n = Int(header.tokens), d = Int(header.width)
        let isFirst = index == 0, isLast = index == opCount - 1
        // Only the first op reads pixels, and it must; only the last op is the classifier, and it must be.
        guard op.has(OpFlag.inputPixels) == isFirst, (kind == .classifier) == isLast else { throw CSDStatus.opFields }
        if kind != .attentionScores && kind != .attentionValues && !(kind == .linear && attentionUnit(containing: index) != nil) {
            guard op.heads == 0 else { throw CSDStatus.opFields }
        }
        if kind != .maxPool { guard op.pool == 0 else { throw CSDStatus.opFields } }
        try validateBand(op, kind, index: index)

        switch kind {
        case .conv3x3:
            let streamFlags = OpFlag.streamSet | OpFlag.tokenBias
            if !op.has(OpFlag.streamOut) { guard op.flags & streamFlags == 0 else { throw CSDStatus.opFields } }
            guard o.d1 == i.d1, o.d2 == i.d2, i.d0 * 9 <= 65535 else { throw CSDStatus.shape }  // fan-in fits 16 bits
            if isFirst {
                guard i == Dims(Int(header.inputChannels), Int(header.inputHeight), Int(header.inputWidth)) else {
                    throw CSDStatus.shape
                }
            }
            // checked: 65,535 x 65,535 overflows a 32-bit Int (the MCU's), where a plain * would trap
            if op.writesStream { guard try checkedMul(o.d1, o.d2) == n, o.d0 == d else { throw CSDStatus.shape } }
        case .linear:
            guard op.flags & ~(OpFlag.streamOut | OpFlag.channelMajor) == 0,
                  !(op.has(OpFlag.streamOut) && op.has(OpFlag.channelMajor)) else { throw CSDStatus.opFields }
            if op.writesStream { guard o.d0 == n, o.d1 == d else { throw CSDStatus.shape } }
            guard i.d2 == 1, o.d2 == 1, i.d0 == o.d0 else { throw CSDStatus.shape }
        case .maxPool:
            guard op.flags == 0, op.shift == 0, op.pool == 2 || op.pool == 3 else { throw CSDStatus.opFields }
            guard o.d0 == i.d0, o.d1 == pooledSize(i.d1, pool: Int(op.pool)), o.d2 == pooledSize(i.d2, pool: Int(op.pool)) else {
                throw CSDStatus.shape
            }
        case .streamNeuron:
            guard op.flags == 0 else { throw CSDStatus.opFields }
            guard i == Dims(n, d, 1), o == i else { throw CSDStatus.shape }
        case .attentionScores:
            guard op.flags == 0, op.heads >= 1 else { throw CSDStatus.opFields }
            // the pair (docs/FORMAT.md, "The attention pair"): the values op follows (its checks compare the rest)
            guard index + 1 < opCount, bytes.u8(ImageHeader.size &+ (index &+ 1) &* OpRecord.size) == OpKind.attentionValues.rawValue else {
                throw CSDStatus.opFields
            }
            guard i.d2 == 1, i.d1 % Int(op.heads) == 0, o == Dims(Int(op.heads), i.d0, i.d0) else { throw CSDStatus.shape }
        case .attentionValues:
            guard op.flags == 0, op.heads >= 1 else { throw CSDStatus.opFields }
            let scores = self.op(index - 1)  // index >= 1: op 0 reads pixels
            guard scores.kind == .attentionScores else { throw CSDStatus.opFields }
            // the scores' dims: their heads are i.d0, so equal to ours
            guard i.d0 == Int(op.heads), i == scores.outDims, o == scores.inDims else { throw CSDStatus.shape }
        case .classifier:
            guard op.flags == 0, op.shift == 0 else { throw CSDStatus.opFields }
            guard i.d2 == 1, o == Dims(Int(header.classes), 1, 1) else { throw CSDStatus.shape }
        }
    }

    /// The band rules (docs/FORMAT.md, "Bands"): a producer is a CONV3X3 without STREAM_OUT before a MAXPOOL
    /// with pool 2 (an even band of its rows), or a LINEAR without STREAM_OUT or CHANNEL_MAJOR before a LINEAR
    /// (a band of its tokens); neither the op before it nor its consumer has a band. A consumer reads the
    /// producer's dims.
    private func validateBand(_ op: OpRecord, _ kind: OpKind, index: Int) throws(CSDStatus) {
        if let a = attentionUnit(containing: index) {  // its rules cover the bands and heads of its six ops
            if a == index { try validateAttentionUnit(index) }
            return
        }
        if consumesBand(index) {
            guard op.band == 0 else { throw CSDStatus.opFields }
            guard op.inDims == self.op(index - 1).outDims else { throw CSDStatus.shape }
        }
        guard op.band != 0 else { return }
        guard index + 1 < opCount else { throw CSDStatus.opFields }
        let next = self.op(index + 1), band = Int(op.band)
        switch kind {
        case .conv3x3 where !op.writesStream:
            guard next.kind == .maxPool, next.pool == 2, band & 1 == 0, band <= op.outDims.d1 else { throw CSDStatus.opFields }
        case .linear where !op.writesStream && !op.has(OpFlag.channelMajor):
            guard next.kind == .linear, band <= op.outDims.d0 else { throw CSDStatus.opFields }
        default: throw CSDStatus.opFields
        }
    }

    /// The attention unit rules (docs/FORMAT.md, "Attention units"), at its STREAM_NEURON `a` (band nonzero):
    /// then the v (channel-major), k and q linears of [N, D, 1], with the pair's heads (q also the band), and
    /// the pair.
    private func validateAttentionUnit(_ a: Int) throws(CSDStatus) {
        guard a + 5 < opCount else { throw CSDStatus.opFields }
        let u = op(a), heads = op(a + 4).heads, d = u.outDims
        var i = 1
        while i <= 5 {  // kinds, flags, heads and bands: v, k, q, the scores, the values
            let r = op(a + i)
            let kind: OpKind = i <= 3 ? .linear : i == 4 ? .attentionScores : .attentionValues
            guard r.kind == kind, r.flags == (i == 1 ? OpFlag.channelMajor : 0), r.heads == heads, heads >= 1,
                  r.band == (i == 3 ? u.band : 0) else { throw CSDStatus.opFields }
            i += 1
        }
        guard Int(u.band) <= d.d0 else { throw CSDStatus.opFields }
        guard d.d1 % Int(heads) == 0 else { throw CSDStatus.shape }
        i = 1
        while i <= 4 {  // the linears [N, D, 1] -> [N, D, 1], the scores' q [N, D, 1]
            let r = op(a + i)
            guard r.inDims == d, i == 4 || r.outDims == d else { throw CSDStatus.shape }
            i += 1
        }
    }

    /// Tensor offsets: 16-aligned, inside the data section; zero where the op has none. Returns the tensor bytes.
    private func validateTensors(_ op: OpRecord) throws(CSDStatus) -> Int {
        let weightBytes = try checkedMul(try op.weightCount(), op.weightElementBytes)
        let thresholdBytes = try checkedMul(op.thresholdCount, 4)
        let biasBytes = try checkedMul(try op.biasCount(), 4)
        try checkTensor(op.weights, bytes: weightBytes)
        try checkTensor(op.thresholds, bytes: thresholdBytes)
        try checkTensor(op.biases, bytes: biasBytes)
        if thresholdBytes > 0 {
            let base = Int(op.thresholds)
            for j in 0..<op.thresholdCount where data.i32(base + 4 * j) < 1 { throw CSDStatus.threshold }
        }
        return weightBytes + thresholdBytes + biasBytes
    }

    private func checkTensor(_ offset: UInt32, bytes count: Int) throws(CSDStatus) {
        if count == 0 {
            guard offset == 0 else { throw CSDStatus.tensorBounds }
            return
        }
        guard offset & 15 == 0, count <= data.count, UInt(offset) <= UInt(data.count - count) else {
            throw CSDStatus.tensorBounds
        }
    }

    // MARK: - arena plan

    /// Checks one op's buffers in `mode`; returns the furthest byte it touches.
    private func validateArena(_ op: OpRecord, index: Int, mode: ExecutionMode) throws(CSDStatus) -> Int {
        // (offset, bytes) of each buffer the op touches; (0, 0), which overlaps nothing, where it has none
        var in1 = (0, 0), in2 = (0, 0), out = (0, 0), pairQ = (0, 0), pairK = (0, 0)
        let use1 = inputUse(index), band = consumesBand(index), unit = attentionUnit(containing: index) ?? -1
        if unit >= 0 { try validateUnitReads(op, index: index, unit: unit, mode: mode) }
        let unitFused = unit >= 0 && mode == .fused
        if !use1.inArena {  // pixels, or the scores of the pair's first op
            guard op.input.0 == 0, op.input.1 == 0 else { throw CSDStatus.arenaPlan }
        } else {
            // a band's consumer reads the producer's output in both plans (docs/FORMAT.md, "Bands")
            if band { guard op.input(mode) == self.op(index - 1).output(mode) else { throw CSDStatus.arenaPlan } }
            in1 = try region(op.input(mode), use1, mode)
            try checkChained(in1, use1, before: index, mode: mode)
        }
        if let use2 = input2Use(index) {
            in2 = try region(op.input2(mode), use2, mode)
            try checkChained(in2, use2, before: index, mode: mode)
        } else {
            guard op.input2.0 == 0, op.input2.1 == 0 else { throw CSDStatus.arenaPlan }
        }
        if let outUse = op.outputUse, outUse.inArena {
            out = try region(op.output(mode), outUse, mode)
            if op.readsOutputStream { try checkChained(out, outUse, before: index, mode: mode) }
            // in place (docs/FORMAT.md): a square LINEAR over its input, ATTN_VALUES over the pair's q
            // (never over a band: the fused plan's consumer; the spiking plan ignores bands)
            if overlaps(in1, out), !(op.mayWriteOverInput && !(band && mode == .fused) && in1.0 == out.0) { throw CSDStatus.arenaPlan }
            if overlaps(in2, out) { throw CSDStatus.arenaPlan }
            if op.kind == .attentionValues && !unitFused {  // the pair reads k and q (the output's size, placed) for every query block
                let scores = self.op(index - 1)
                pairQ = (scores.input(mode), out.1); pairK = (scores.input2(mode), out.1)
                if overlaps(pairK, out) || (overlaps(pairQ, out) && pairQ.0 != out.0) { throw CSDStatus.arenaPlan }
            }
        } else {
            guard op.output.0 == 0, op.output.1 == 0 else { throw CSDStatus.arenaPlan }
        }
        // the kernel scratch (docs/FORMAT.md, "Kernel scratch"): offset 0 without a need, else placed like a
        // buffer, apart from every buffer the op touches; the pair's two records at one offset
        let need = op.scratchBytes(mode, timeSteps: Int(header.timeSteps)), offset = op.scratch(mode)
        var scratch = (0, 0)
        if need == 0 {
            guard offset == 0 else { throw CSDStatus.arenaPlan }
        } else {
            let arena = Int(truncatingIfNeeded: header.arenaBytes(mode))
            guard offset >= 0, arena >= 0, offset & 15 == 0, offset < arena else { throw CSDStatus.arenaPlan }
            guard need <= arena - offset else { throw CSDStatus.arenaEnd }
            scratch = (offset, need)
            guard !overlaps(scratch, in1), !overlaps(scratch, in2), !overlaps(scratch, out), !overlaps(scratch, pairQ),
                  !overlaps(scratch, pairK), op.kind != .attentionValues || offset == self.op(index - 1).scratch(mode)
            else { throw CSDStatus.arenaPlan }
        }
        if unitFused { try validateUnitBuffers(index: index, unit: unit, scratch: scratch) }
        if band && mode == .fused {  // the unit runs band by band: the producer's input and scratch stay live
            let producer = self.op(index - 1), producerUse = inputUse(index - 1)
            let producerIn = producerUse.inArena ? try region(producer.input(mode), producerUse, mode) : (0, 0)
            let producerScratch = (producer.scratch(mode), producer.scratchBytes(mode, timeSteps: Int(header.timeSteps)))
            guard !overlaps(producerIn, out), !overlaps(producerIn, scratch), !overlaps(producerScratch, out),
                  !overlaps(producerScratch, scratch) else { throw CSDStatus.arenaPlan }
        }
        return max(max(in1.0 + in1.1, in2.0 + in2.1), max(out.0 + out.1, scratch.0 + scratch.1))
    }

    /// An attention unit's reads (docs/FORMAT.md, "Attention units"), in both plans: the linears read u, the
    /// scores q and k, the values v.
    @inline(never) private func validateUnitReads(_ op: OpRecord, index: Int, unit: Int, mode: ExecutionMode) throws(CSDStatus) {
        let step = index - unit
        guard step > 0 else { return }
        if step <= 4 { guard op.input(mode) == self.op(step <= 3 ? unit : unit + 3).output(mode) else { throw CSDStatus.arenaPlan } }
        if step >= 4 {
            guard op.input2(mode) == self.op(step == 4 ? unit + 2 : unit + 1).output(mode) else { throw CSDStatus.arenaPlan }
        }
    }

    /// In the fused plan an attention unit's six buffers stay live through it: apart from op `index`'s scratch,
    /// and each apart from the unit's earlier ones as its op places it (the stream and u at the neuron, v, k
    /// and q at their linears, o at the values).
    @inline(never) private func validateUnitBuffers(index: Int, unit: Int, scratch: (Int, Int)) throws(CSDStatus) {
        let step = index - unit, placed = step == 0 ? 0 : step <= 3 ? step + 1 : step == 5 ? 5 : 6
        var i = 0
        while i < 6 {
            let r = try unitRegion(unit, i)
            guard !overlaps(r, scratch) else { throw CSDStatus.arenaPlan }
            var j = 0
            while (i == placed || (step == 0 && i == 1)) && j < i {
                guard !overlaps(r, try unitRegion(unit, j)) else { throw CSDStatus.arenaPlan }
                j += 1
            }
            i += 1
        }
    }

    /// Buffer `i` of the attention unit at `a` in the fused plan: 0 the stream it reads, 1 u, 2 v, 3 k, 4 q,
    /// 5 o (docs/FORMAT.md, "Attention units"); (0, 0) for one not in the arena.
    @inline(never) private func unitRegion(_ a: Int, _ i: Int) throws(CSDStatus) -> (Int, Int) {
        let r = op(i == 0 ? a : i == 5 ? a + 5 : a + i - 1)
        guard let use = i == 0 ? r.inputUse : r.outputUse else { return (0, 0) }
        return try region(i == 0 ? r.input(.fused) : r.output(.fused), use, .fused)
    }

    /// The (offset, size) of a buffer holding `use`: 16-aligned and inside the arena of `mode`.
    /// A buffer that does not start inside the arena is CSD_E_ARENA_PLAN; one that starts inside
    /// it but ends past its end, CSD_E_ARENA_END (checked here, before the plan's end is compared
    /// with arena_bytes).
    private func region(_ offset: Int, _ use: ValueUse, _ mode: ExecutionMode) throws(CSDStatus) -> (Int, Int) {
        let arena = Int(truncatingIfNeeded: header.arenaBytes(mode))
        let size = try bufferBytes(use, mode: mode, timeSteps: Int(header.timeSteps))
        guard offset >= 0, arena >= 0, offset & 15 == 0, offset < arena else { throw CSDStatus.arenaPlan }
        guard size <= arena - offset else { throw CSDStatus.arenaEnd }  // no overflow: 0 <= offset < arena
        return (offset, size)
    }

    /// The buffer `r` holding `use` must be the output of an earlier op, not overwritten since (by another
    /// op's output or kernel scratch).
    private func checkChained(_ r: (Int, Int), _ use: ValueUse, before index: Int, mode: ExecutionMode) throws(CSDStatus) {
        var j = index - 1
        while j >= 0 {
            let prev = op(j)
            if let outUse = prev.outputUse {
                let size = try bufferBytes(outUse, mode: mode, timeSteps: Int(header.timeSteps))
                let w = (prev.output(mode), size)
                if overlaps(w, r) {
                    guard w.0 == r.0 else { throw CSDStatus.arenaPlan }
                    guard outUse == use else { throw CSDStatus.shape }  // shape chaining
                    return
                }
            }
            if overlaps((prev.scratch(mode), prev.scratchBytes(mode, timeSteps: Int(header.timeSteps))), r) {
                throw CSDStatus.arenaPlan
            }
            j -= 1
        }
        throw CSDStatus.arenaPlan
    }
}

@inlinable func overlaps(_ a: (Int, Int), _ b: (Int, Int)) -> Bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

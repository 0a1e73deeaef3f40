import CSDFormat
@testable import CSDPack

/// A small deterministic generator (SplitMix64) so failures reproduce from the seed.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
    }
    mutating func pick<T>(_ values: [T]) -> T { values[int(0...(values.count - 1))] }
}

/// Random small models covering every op, through the packer's planner, builder and validator.
/// Values are small enough that no int32 can overflow, and the stream shift keeps the stream in int16; thresholds are random, so counts reach
/// both 0 and L, currents go negative, and T covers 1 and both train widths (T <= 8 and T > 8).
enum RandomModel {
    /// - Parameter wideFields: encoding conv outputs 33...40 channels, so the next conv's receptive
    ///   field (Cin x 9) exceeds the runtime's stack patch and takes its tap-by-tap path.
    /// - Parameter attentionUnits: pack with attention units (`csdpack convert --low-ram`; docs/FORMAT.md,
    ///   "Attention units"), which the attention blocks of the converter's shape become.
    static func make(seed: UInt64, wideFields: Bool = false, attentionUnits: Bool = false) throws -> PackResult {
        var r = SplitMix(state: seed)
        var c = Conversion()
        let t = r.int(1...12), l = r.int(1...t)
        let cin = r.int(1...2), h = r.int(2...5), w = r.int(2...5)
        c.header.inputChannels = UInt16(cin); c.header.inputHeight = UInt16(h); c.header.inputWidth = UInt16(w)
        c.header.timeSteps = UInt8(t); c.header.levels = UInt8(l); c.header.delay = UInt8(t)

        func value(_ kind: ValueKind, _ d: Dims) -> Int {
            c.values.append(PlannedValue(use: ValueUse(kind, d), first: c.ops.count, last: c.ops.count))
            return c.values.count - 1
        }
        func read(_ v: Int) { c.values[v].last = c.ops.count }
        func neurons(_ op: inout ConvertedOp, _ n: Int) {
            op.record.shift = UInt8(r.int(0...3))
            op.thresholds = (0..<n).map { _ in Int32(r.int(1...300)) }
            op.biases = (0..<n).map { _ in Int32(r.int(-200...200)) }
        }
        func int8s(_ n: Int) -> [Int8] { (0..<n).map { _ in Int8(r.int(-127...127)) } }
        func int16s(_ n: Int) -> [Int16] { (0..<n).map { _ in Int16(r.int(-3000...3000)) } }

        // Encoding conv: pixels -> counts.
        let c1 = wideFields ? r.int(33...40) : r.int(1...3)
        var op = ConvertedOp(name: "conv0")
        op.record.kindRaw = OpKind.conv3x3.rawValue
        op.record.flags = OpFlag.inputPixels
        op.record.inDims = Dims(cin, h, w); op.record.outDims = Dims(c1, h, w)
        op.weights8 = int8s(c1 * cin * 9)
        neurons(&op, c1)
        // Pixels are up to 255: lift thresholds so counts are not all L.
        op.thresholds = op.thresholds.map { $0 * 64 }
        // Every seventh seed: no encoding conv of its own, the tokenizer conv reads the pixels.
        let direct = seed % 7 == 0
        var cur = value(.counts, Dims(c1, h, w)); op.output = cur
        if !direct { c.ops.append(op) }
        var ch = h, cw = w
        let pool = direct ? 0 : r.pick([0, 2, 3])
        if pool != 0 && pooledSize(h, pool: pool) >= 1 && pooledSize(w, pool: pool) >= 1 && (pool == 3 || (h >= 2 && w >= 2)) {
            var p = ConvertedOp(name: "pool")
            p.record.kindRaw = OpKind.maxPool.rawValue
            p.record.pool = UInt8(pool)
            ch = pooledSize(h, pool: pool); cw = pooledSize(w, pool: pool)
            p.record.inDims = Dims(c1, h, w); p.record.outDims = Dims(c1, ch, cw)
            read(cur); p.input = cur
            cur = value(.counts, p.record.outDims); p.output = cur
            c.ops.append(p)
        }
        // Conv into the stream (set, per-token bias).
        let heads = r.pick([1, 2]), d = heads * r.int(1...3), n = ch * cw
        c.header.tokens = UInt16(n); c.header.width = UInt16(d)
        op = ConvertedOp(name: "tokenizer")
        op.record.kindRaw = OpKind.conv3x3.rawValue
        op.record.flags = OpFlag.streamOut | OpFlag.streamSet | OpFlag.tokenBias | (direct ? OpFlag.inputPixels : 0)
        let tin = direct ? cin : c1
        op.record.inDims = Dims(tin, ch, cw); op.record.outDims = Dims(d, ch, cw)
        op.weights16 = int16s(d * tin * 9)
        op.biases = (0..<(n * d)).map { _ in Int32(r.int(-5000...5000)) }
        if direct { c.values.removeLast() } else { read(cur); op.input = cur }
        let stream = value(.stream, Dims(n, d, 1)); op.output = stream
        c.ops.append(op)

        func streamNeuron() -> Int {
            var o = ConvertedOp(name: "reader")
            o.record.kindRaw = OpKind.streamNeuron.rawValue
            o.record.inDims = Dims(n, d, 1); o.record.outDims = Dims(n, d, 1)
            neurons(&o, d)
            o.thresholds = o.thresholds.map { $0 * 20 }
            read(stream); o.input = stream
            let v = value(.counts, Dims(n, d, 1)); o.output = v
            c.ops.append(o)
            return v
        }
        func linear(_ input: Int, _ din: Int, _ dout: Int, toStream: Bool, overInput: Bool = false, channelMajor: Bool = false) -> Int {
            var o = ConvertedOp(name: "linear")
            o.record.kindRaw = OpKind.linear.rawValue
            o.record.inDims = Dims(n, din, 1); o.record.outDims = Dims(n, dout, 1)
            read(input); o.input = input
            if toStream {
                o.record.flags = OpFlag.streamOut
                o.weights16 = int16s(dout * din)
                o.biases = (0..<dout).map { _ in Int32(r.int(-5000...5000)) }
                read(stream); o.output = stream
                c.ops.append(o)
                return stream
            }
            o.weights8 = int8s(dout * din)
            neurons(&o, dout)
            if channelMajor { o.record.flags = OpFlag.channelMajor }
            let v = overInput && din == dout && !channelMajor ? input : value(channelMajor ? .channelMajor : .counts, Dims(n, dout, 1))
            o.output = v
            c.ops.append(o)
            return v
        }
        for _ in 0..<r.int(0...2) {
            let u = streamNeuron()
            // v channel-major first (docs/FORMAT.md, "The attention pair"), then k; most seeds write q over u and
            // the attention output over q (docs/FORMAT.md, "In place")
            let v = linear(u, d, d, toStream: false, channelMajor: true), k = linear(u, d, d, toStream: false)
            let q = linear(u, d, d, toStream: false, overInput: seed % 3 != 0)
            var sc = ConvertedOp(name: "scores")
            sc.record.kindRaw = OpKind.attentionScores.rawValue
            sc.record.heads = UInt16(heads)
            sc.record.inDims = Dims(n, d, 1); sc.record.outDims = Dims(heads, n, n)
            neurons(&sc, heads)
            sc.thresholds = sc.thresholds.map { $0 / 10 + 1 }
            // every fifth seed: q against itself (a valid plan may pair a value with itself)
            let kk = seed % 5 == 3 ? q : k
            read(q); read(kk); sc.input = q; sc.input2 = kk
            c.ops.append(sc)  // the scores go through the kernel scratch (the pair)
            var va = ConvertedOp(name: "values")
            va.record.kindRaw = OpKind.attentionValues.rawValue
            va.record.heads = UInt16(heads)
            va.record.inDims = Dims(heads, n, n); va.record.outDims = Dims(n, d, 1)
            neurons(&va, d)
            va.thresholds = va.thresholds.map { $0 / 10 + 1 }
            read(q); read(kk); read(v); va.input2 = v
            let o = kk != q && seed % 4 != 1 ? q : value(.counts, Dims(n, d, 1)); va.output = o
            c.ops.append(va)
            _ = linear(o, d, d, toStream: true)
            let u2 = streamNeuron()
            let hidden = r.int(1...6)
            let hv = linear(u2, d, hidden, toStream: false)
            _ = linear(hv, hidden, d, toStream: true)
        }
        let u = streamNeuron()
        let classes = r.int(1...4)
        c.header.classes = UInt16(classes)
        var head = ConvertedOp(name: "head")
        head.record.kindRaw = OpKind.classifier.rawValue
        head.record.inDims = Dims(n, d, 1); head.record.outDims = Dims(classes, 1, 1)
        head.weights8 = int8s(classes * d)
        head.biases = (0..<classes).map { _ in Int32(r.int(-1000...1000)) }
        read(u); head.input = u
        c.ops.append(head)
        try streamShift(&c, levels: l)
        return try Packer.pack(c, attentionUnits: attentionUnits)
    }

    /// The random writers' stream shift by the packer's rule (`StreamBounds.streamShift`, docs/SEMANTICS.md
    /// section 4, step 5), the rounding half added to the biases.
    static func streamShift(_ c: inout Conversion, levels: Int) throws {
        let writers = c.ops.indices.filter { c.ops[$0].record.writesStream }
        let bounds = writers.map { i in
            StreamBounds(w16: c.ops[i].weights16, biases: c.ops[i].biases.map { Int64($0) }, channels: Int(c.header.width),
                         inputMax: c.ops[i].record.has(OpFlag.inputPixels) ? 255 : Int64(levels))
        }
        let s = try StreamBounds.streamShift(bounds, names: writers.map { c.ops[$0].name })
        for i in writers {
            c.ops[i].record.shift = UInt8(s)
            c.ops[i].biases = c.ops[i].biases.map { $0 + (s > 0 ? Int32(1 << (s - 1)) : 0) }
        }
    }

    static func pixels(count: Int, seed: UInt64) -> [UInt8] {
        var r = SplitMix(state: seed ^ 0xABCD)
        return (0..<count).map { _ in UInt8(r.int(0...255)) }
    }
}

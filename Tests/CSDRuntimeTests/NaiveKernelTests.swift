import CSDFormat
import CSDRuntime
import Testing

/// Every fused kernel against a naive re-implementation written here from docs/SEMANTICS.md
/// (64-bit arithmetic, explicit zero padding, floor division through rounding down), op by op:
/// each op's inputs are the outputs the runtime produced before it, so a mismatch names the kernel.
struct NaiveModel {
    let image: ModelImage

    func i8(_ offset: UInt32, _ i: Int) -> Int { Int(Int8(bitPattern: image.data.u8(Int(offset) + i))) }
    func i16(_ offset: UInt32, _ i: Int) -> Int { Int(Int16(bitPattern: image.data.u16(Int(offset) + 2 * i))) }
    func i32(_ offset: UInt32, _ i: Int) -> Int { Int(image.data.i32(Int(offset) + 4 * i)) }
    func weight(_ op: OpRecord, _ i: Int) -> Int { op.writesStream ? i16(op.weights, i) : i8(op.weights, i) }

    /// count = clip(floor((acc * 2^k + beta + floor(theta / 2)) / theta), 0, L)
    func count(_ op: OpRecord, _ j: Int, _ acc: Int) -> UInt8 {
        let theta = i32(op.thresholds, j), beta = i32(op.biases, j)
        let a = acc * (1 << Int(op.shift)) + beta + theta / 2
        let q = Int((Double(a) / Double(theta)).rounded(.down))
        return UInt8(min(Int(image.header.levels), max(0, q)))
    }

    static func int32Bytes(_ values: [Int]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in let u = UInt32(truncatingIfNeeded: v); return (0..<4).map { UInt8((u >> (8 * UInt32($0))) & 0xFF) } }
    }
    /// The int16 stream's bytes (little-endian, the low 16 bits of each value).
    static func int16Bytes(_ values: [Int]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in let u = UInt16(truncatingIfNeeded: v); return [UInt8(u & 0xFF), UInt8(u >> 8)] }
    }
    static func int16s(_ bytes: [UInt8]) -> [Int] {
        stride(from: 0, to: bytes.count, by: 2).map { Int(Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8)) }
    }
    static func int32s(_ bytes: [UInt8]) -> [Int] {
        stride(from: 0, to: bytes.count, by: 4).map {
            Int(Int32(bitPattern: UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24))
        }
    }

    /// The expected output bytes of op `index` (or the logits for the classifier), given the runtime's earlier outputs.
    func expected(_ index: Int, pixels: [UInt8], outputs: [[UInt8]?]) -> [UInt8] {
        let op = image.op(index)
        func produced(at offset: Int) -> [UInt8] {
            var j = index - 1
            while j >= 0 {
                if image.op(j).outputUse != nil && image.op(j).output(.fused) == offset, let o = outputs[j] { return o }
                j -= 1
            }
            return []
        }
        let input = op.has(OpFlag.inputPixels) ? pixels : produced(at: op.input(.fused))
        let i = op.inDims, o = op.outDims
        switch op.kind! {
        case .conv3x3:
            let (cin, h, w, cout) = (i.d0, i.d1, i.d2, o.d0)
            var padded = [Int](repeating: 0, count: cin * (h + 2) * (w + 2))
            for c in 0..<cin { for y in 0..<h { for x in 0..<w { padded[(c * (h + 2) + y + 1) * (w + 2) + x + 1] = Int(input[(c * h + y) * w + x]) } } }
            var counts = [UInt8](repeating: 0, count: cout * h * w)
            var stream = op.writesStream && !op.has(OpFlag.streamSet) ? NaiveModel.int16s(produced(at: op.output(.fused))) : [Int](repeating: 0, count: h * w * cout)
            for j in 0..<cout { for y in 0..<h { for x in 0..<w {
                var acc = 0
                for c in 0..<cin { for dy in 0..<3 { for dx in 0..<3 {
                    acc += weight(op, ((j * cin + c) * 3 + dy) * 3 + dx) * padded[(c * (h + 2) + y + dy) * (w + 2) + x + dx]
                } } }
                if op.writesStream {
                    let n = y * w + x
                    stream[n * cout + j] = (acc + i32(op.biases, op.has(OpFlag.tokenBias) ? n * cout + j : j)) >> Int(op.shift)
                } else {
                    counts[(j * h + y) * w + x] = count(op, j, acc)
                }
            } } }
            return op.writesStream ? NaiveModel.int16Bytes(stream) : counts
        case .linear:
            let (n, din, dout) = (i.d0, i.d1, o.d1)
            var counts = [UInt8](repeating: 0, count: n * dout)
            var stream = op.writesStream ? NaiveModel.int16s(produced(at: op.output(.fused))) : []
            for t in 0..<n { for j in 0..<dout {
                var acc = 0
                for c in 0..<din { acc += weight(op, j * din + c) * Int(input[t * din + c]) }
                if op.writesStream {
                    stream[t * dout + j] += (acc + i32(op.biases, j)) >> Int(op.shift)
                } else {
                    counts[op.has(OpFlag.channelMajor) ? j * n + t : t * dout + j] = count(op, j, acc)  // [Dout][N] or [N][Dout]
                }
            } }
            return op.writesStream ? NaiveModel.int16Bytes(stream) : counts
        case .maxPool:
            let (c, h, w, oh, ow) = (i.d0, i.d1, i.d2, o.d1, o.d2)
            let (k, pad) = op.pool == 2 ? (2, 0) : (3, 1)
            var out = [UInt8](repeating: 0, count: c * oh * ow)
            for ch in 0..<c { for oy in 0..<oh { for ox in 0..<ow {
                var m = 0
                for dy in 0..<k { for dx in 0..<k {
                    let y = oy * 2 + dy - pad, x = ox * 2 + dx - pad
                    if y >= 0 && y < h && x >= 0 && x < w { m = max(m, Int(input[(ch * h + y) * w + x])) }
                } }
                out[(ch * oh + oy) * ow + ox] = UInt8(m)
            } } }
            return out
        case .streamNeuron:
            let x = NaiveModel.int16s(input), d = i.d1
            return (0..<x.count).map { count(op, $0 % d, x[$0]) }
        case .attentionScores:
            return []  // the pair's scores stay in the kernel scratch: checked through the values
        case .attentionValues:
            // the pair: the scores from q and k (the scores op's inputs) as the runtime saw them, then the values
            let sc = image.op(index - 1), q = produced(at: sc.input(.fused)), k = produced(at: sc.input2(.fused))
            let v = produced(at: op.input2(.fused)), (n, d, heads) = (o.d0, o.d1, Int(op.heads)), hd = d / heads
            var a = [UInt8](repeating: 0, count: heads * n * n)
            for h in 0..<heads { for i in 0..<n { for j in 0..<n {
                var acc = 0
                for c in (h * hd)..<((h + 1) * hd) { acc += Int(q[i * d + c]) * Int(k[j * d + c]) }
                a[(h * n + i) * n + j] = count(sc, h, acc)
            } } }
            var out = [UInt8](repeating: 0, count: n * d)
            for i in 0..<n { for c in 0..<d {
                var acc = 0
                for j in 0..<n { acc += Int(a[((c / hd) * n + i) * n + j]) * Int(v[c * n + j]) }  // v channel-major
                out[i * d + c] = count(op, c, acc)
            } }
            return out
        case .classifier:
            let (n, d, classes) = (i.d0, i.d1, o.d0)
            return NaiveModel.int32Bytes((0..<classes).map { j in
                i32(op.biases, j) + (0..<d).reduce(0) { s, c in s + i8(op.weights, j * d + c) * (0..<n).reduce(0) { $0 + Int(input[$1 * d + c]) } }
            })
        }
    }
}

@Suite struct NaiveKernelTests {
    func check(_ bytes: [UInt8], pixels: [UInt8], label: String) throws -> Set<UInt8> {
        let harness = try Harness(bytes)
        let naive = NaiveModel(image: harness.image)
        let run = try harness.trace(pixels, mode: .fused)
        var kinds = Set<UInt8>(), outputs = run.outputs
        for k in 0..<harness.image.opCount {
            let op = harness.image.op(k)
            let expected = naive.expected(k, pixels: pixels, outputs: outputs)
            let actual = op.kind == .attentionScores ? [] : outputs[k] ?? NaiveModel.int32Bytes(run.logits.map { Int($0) })
            if holdsPart(harness, k) {  // a band producer's buffer holds its last band (docs/FORMAT.md, "Bands"), an
                // attention unit's its last head (and band; "Attention units")
                let got = lastBandRows(harness, k, actual, band: true), want = lastBandRows(harness, k, expected, band: false)
                #expect(got == want, "\(label): op \(k) (kind \(op.kindRaw)), its last band of \(op.band) rows or head")
                outputs[k] = expected  // the consumer's naive input: the whole output
                kinds.insert(harness.image.attentionUnit(containing: k) != nil ? 253 : op.kind == .conv3x3 ? 255 : 254)
            } else {
                #expect(actual == expected, "\(label): op \(k) (kind \(op.kindRaw))")
            }
            kinds.insert(op.kindRaw)
        }
        return kinds
    }

    @Test func everyFusedKernelMatchesNaiveLoopsOnRandomModels() throws {
        var kinds = Set<UInt8>()
        for seed in UInt64(1000)...1200 {
            let packed = try RandomModel.make(seed: seed, attentionUnits: seed % 2 == 0)
            let h = packed.conversion.header
            let px = RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: seed)
            kinds.formUnion(try check(packed.image, pixels: px, label: "seed \(seed)"))
        }
        // every op kind was exercised, both band units (254, 255) and attention units (253)
        #expect(kinds == Set(1...7).union([253, 254, 255]))
    }

    @Test func convolutionsWithFieldsLargerThanThePatchMatchNaiveLoops() throws {
        for seed in UInt64(2000)...2030 {
            let packed = try RandomModel.make(seed: seed, wideFields: true)
            let h = packed.conversion.header
            let px = RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: seed)
            _ = try check(packed.image, pixels: px, label: "wide seed \(seed)")
            // ... and the spiking path agrees at D = T.
            let harness = try Harness(packed.image)
            #expect(try harness.run(px, mode: .fused).logits == harness.run(px, mode: .spiking, delay: Int(h.timeSteps)).logits)
        }
    }

    @Test func everyFusedKernelMatchesNaiveLoopsOnTheReferenceModel() throws {
        let image = try GoldenTests.bytes("fmnist_tiny/model.csd")
        let inputs = try GoldenTests.bytes("fmnist_tiny/inputs.u8")
        let kinds = try check(image, pixels: Array(inputs[0..<784]), label: "fmnist_tiny image 0")
        #expect(kinds == Set(1...7).union([254, 255]))
        let units = try check(try GoldenTests.lowRAMImage(), pixels: Array(inputs[784..<1568]), label: "fmnist_tiny low-RAM image 1")
        #expect(units == Set(1...7).union([253, 254, 255]))
    }
}

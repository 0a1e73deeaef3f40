import CSDFormat
import CSDRuntime
import Testing

@Suite struct EquivalenceTests {
    /// DESIGN.md 3.3: spiking execution with D = T and fused execution give bit-identical logits.
    @Test func spikingAtDelayTEqualsFusedOnRandomModels() throws {
        var checked = 0, nonTrivial = 0, wide = 0
        for seed in UInt64(1)...600 {
            let packed = try RandomModel.make(seed: seed, attentionUnits: seed % 2 == 0)
            let harness = try Harness(packed.image)
            let h = harness.image.header
            let px = RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: seed)
            let fused = try harness.run(px, mode: .fused)
            let spiking = try harness.run(px, mode: .spiking, delay: Int(h.timeSteps))
            #expect(fused.logits == spiking.logits, "seed \(seed)")
            // The same spikes are emitted by every op.
            for (i, (a, b)) in zip(fused.stats, spiking.stats).enumerated() {
                #expect(a.spikes == b.spikes, "seed \(seed) op \(i)")
            }
            checked += 1
            if fused.stats.contains(where: { $0.spikes > 0 }) { nonTrivial += 1 }
            if h.timeSteps > 8 { wide += 1 }
        }
        #expect(checked == 600)
        #expect(nonTrivial > 500)  // the property is exercised, not vacuous
        #expect(wide > 50)
    }

    /// The count path (D >= T, T <= 8) against the event path it replaces: every op's output bytes
    /// (trains; streams by each value's sum over the steps), every statistic and the logits, on random models and on the reference model
    /// with the golden Fashion-MNIST images. The run at D = T - 1 (the event path) is checked against
    /// the naive per-step simulation, every op's output bytes and the logits.
    @Test func countPathEqualsEventPath() throws {
        var compared = 0, counted = 0, belowT = 0
        func check(_ harness: Harness, _ px: [UInt8], _ what: String) throws {
            let d = Int(harness.image.header.timeSteps)
            let fast = try harness.trace(px, mode: .spiking, delay: d, countPath: true)
            let events = try harness.trace(px, mode: .spiking, delay: d, countPath: false)
            #expect(fast.countPath == (harness.image.header.timeSteps <= 8) && !events.countPath, "\(what)")
            if d > 0 {  // D < T: events, with the values of the naive simulation
                let below = try harness.trace(px, mode: .spiking, delay: d - 1)
                #expect(!below.countPath, "\(what)")
                expectNaive(harness, px, delay: d - 1, below, "\(what) D=\(d - 1)")
                belowT += 1
            }
            #expect(fast.logits == events.logits, "\(what)")
            // every op's output bytes; the stream ([N][D][T] int16) by each value's sum over the steps, which the
            // count path keeps at step 0 (SEMANTICS.md, "Prefix trains")
            #expect(fast.outputs.count == events.outputs.count, "\(what)")
            for (k, (a, b)) in zip(fast.outputs, events.outputs).enumerated() {
                #expect(stepSums(harness, k, lastBandRows(harness, k, a, band: fast.countPath))
                        == stepSums(harness, k, lastBandRows(harness, k, b, band: false, counts: fast.countPath)), "\(what) op \(k) output")
            }
            #expect(fast.stats.count == harness.image.opCount)
            for (i, (a, b)) in zip(fast.stats, events.stats).enumerated() {
                #expect(a.kind == b.kind && a.neurons == b.neurons && a.spikes == b.spikes && a.macs == b.macs
                        && a.synapticOps == b.synapticOps, "\(what) op \(i): \(a) vs \(b)")
            }
            compared += 1
            if fast.countPath && fast.stats.contains(where: { $0.synapticOps > 0 }) { counted += 1 }
        }
        for seed in UInt64(1)...200 {
            let harness = try Harness(try RandomModel.make(seed: seed, attentionUnits: seed % 2 == 0).image)
            let h = harness.image.header
            try check(harness, RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: seed),
                      "seed \(seed)")
        }
        let reference = try Harness(try GoldenTests.bytes("fmnist_tiny/model.csd"))
        let lowRAM = try Harness(try GoldenTests.lowRAMImage())  // with attention units
        let inputs = try GoldenTests.bytes("fmnist_tiny/inputs.u8"), pixels = 28 * 28
        for i in 0..<(inputs.count / pixels) {
            try check(reference, Array(inputs[(i * pixels)..<((i + 1) * pixels)]), "fmnist image \(i)")
            try check(lowRAM, Array(inputs[(i * pixels)..<((i + 1) * pixels)]), "fmnist low-RAM image \(i)")
        }
        #expect(compared == 212)
        #expect(counted > 100)  // the count path ran with spikes, not only on silent models
        #expect(belowT > 150)   // every model with T > 1
    }

    /// A tokenizer conv on the pixels writes the spiking stream [N][D][T] with its whole current at
    /// t = 0 (DESIGN.md 3: the encoding layer's input arrives at once), at every delay; on the count
    /// path (D = T, T <= 8) the stream is the fused plan's [N][D], the fused values.
    @Test func pixelsIntoTheStreamHoldTheirCurrentAtStepZero() throws {
        var checked = 0
        for seed in stride(from: UInt64(7), through: 210, by: 7) {
            let harness = try Harness(try RandomModel.make(seed: seed).image)
            let h = harness.image.header, t = Int(h.timeSteps)
            #expect(harness.image.op(0).writesStream)
            let px = RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: seed)
            let fused = try harness.trace(px, mode: .fused).outputs[0]!.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
            for d in Set([0, t / 2, t]) {
                let run = try harness.trace(px, mode: .spiking, delay: d)
                let spiking = run.outputs[0]!.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
                if run.countPath {
                    #expect(d == t && spiking == fused, "seed \(seed) D \(d)")
                } else {
                    #expect(spiking.count == fused.count * t)
                    for (i, x) in spiking.enumerated() { #expect(x == (i % t == 0 ? fused[i / t] : 0), "seed \(seed) D \(d) \(i)") }
                }
                checked += 1
            }
        }
        #expect(checked >= 60)
    }

    /// The naive simulation itself reproduces the NumPy reference's committed spiking logits
    /// (Tests/TestData: every case and planned delay; every image of the synthetic cases, the first
    /// two of the reference model, whose naive run takes about a second in a debug build), so the
    /// comparisons with it rest on a second implementation of SEMANTICS.md that agrees with the first.
    @Test func naiveSimulationReproducesTheGoldenLogits() throws {
        var runs = 0
        for c in try GoldenTests.manifest().cases {
            let harness = try Harness(try GoldenTests.bytes("\(c.name)/model.csd"))
            let inputs = try GoldenTests.bytes("\(c.name)/inputs.u8")
            for run in c.runs where run.mode == "spiking" {
                let expected = try GoldenTests.bytes(run.file).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
                for i in 0..<(c.name == "fmnist_tiny" ? min(2, c.count) : c.count) {
                    let px = Array(inputs[(i * c.pixels)..<((i + 1) * c.pixels)])
                    let naive = NaiveSpiking(image: harness.image).run(px, delay: run.delay ?? Int(harness.image.header.delay))
                    #expect(naive.logits == Array(expected[(i * c.classes)..<((i + 1) * c.classes)]),
                            "\(c.name) D=\(run.delay ?? -1) image \(i)")
                }
                runs += 1
            }
        }
        #expect(runs >= 8)
    }

    /// Every delay 0 ... T on random models (T from 1 to 12, both train widths): every op's output
    /// bytes (at D = T on the count path, streams by their step sums) and the logits equal the naive per-step simulation (NaiveSpiking, from SEMANTICS.md), and
    /// at D < T the logits do differ from the fused ones on some models (the delay is exercised).
    @Test func everyDelayMatchesTheNaivePerStepSimulation() throws {
        var runs = 0, differFromFused = 0, wide = 0
        for seed in UInt64(1)...60 {
            let harness = try Harness(try RandomModel.make(seed: seed).image)
            let h = harness.image.header, t = Int(h.timeSteps)
            let px = RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: seed)
            let fused = try harness.run(px, mode: .fused).logits
            for d in 0...t {
                let run = try harness.trace(px, mode: .spiking, delay: d)
                #expect(run.logits.count == Int(h.classes))
                expectNaive(harness, px, delay: d, run, "seed \(seed) D=\(d)")
                if d == t { #expect(run.logits == fused, "seed \(seed)") }
                if d < t && run.logits != fused { differFromFused += 1 }
                runs += 1
            }
            if t > 8 { wide += 1 }
            #expect(throws: Harness.HarnessError.self) { try harness.run(px, mode: .spiking, delay: t + 1) }
        }
        #expect(runs > 300)
        #expect(differFromFused > 20)
        #expect(wide > 5)  // 16-bit trains
    }
}

/// Op k's spiking output bytes as values: a stream writer's int16 stream as each value's sum over the steps
/// (the event path's [N][D][T] summed; the count path's [N][D] holds the sums, SEMANTICS.md "Prefix
/// trains"), other outputs byte by byte.
func stepSums(_ harness: Harness, _ k: Int, _ bytes: [UInt8]?) -> [Int64]? {
    guard let bytes else { return nil }
    let op = harness.image.op(k)
    guard op.writesStream, let values = op.outputUse?.dims.count, values > 0 else { return bytes.map { Int64($0) } }
    let t = bytes.count / (2 * values)
    let words = stride(from: 0, to: bytes.count, by: 2).map { Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8) }
    return stride(from: 0, to: words.count, by: t).map { Int64(words[$0..<($0 + t)].reduce(Int16(0), &+)) }
}

/// The runtime's spiking run `run` (at `delay`) against NaiveSpiking: the first differing op's bytes (on the
/// count path a stream by its step sums), then the logits.
func expectNaive(_ harness: Harness, _ px: [UInt8], delay: Int,
                 _ run: (logits: [Int32], outputs: [[UInt8]?], stats: [OpStats], countPath: Bool), _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    let naive = NaiveSpiking(image: harness.image).run(px, delay: delay)
    #expect(run.outputs.count == naive.outputs.count, "\(what)", sourceLocation: sourceLocation)
    let same: (Int, [UInt8]?, [UInt8]?) -> Bool = { k, a, b in
        run.countPath ? stepSums(harness, k, lastBandRows(harness, k, a, band: true))
            == stepSums(harness, k, lastBandRows(harness, k, b, band: false, counts: true))
            : a == b
    }
    if let k = zip(run.outputs, naive.outputs).enumerated().first(where: { !same($0.offset, $0.element.0, $0.element.1) })?.offset {
        Issue.record("\(what): op \(k) (kind \(harness.image.op(k).kindRaw)) differs from the naive simulation",
                     sourceLocation: sourceLocation)
    }
    #expect(run.logits == naive.logits, "\(what)", sourceLocation: sourceLocation)
}

import CSDFormat
import CSDRuntime
import Testing

@Suite struct EquivalenceTests {
    /// DESIGN.md 3.3: spiking execution with D = T and fused execution give bit-identical logits.
    @Test func spikingAtDelayTEqualsFusedOnRandomModels() throws {
        var checked = 0, nonTrivial = 0, wide = 0
        for seed in UInt64(1)...600 {
            let packed = try RandomModel.make(seed: seed)
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
    /// (trains, streams), every statistic and the logits, on random models and on the reference model
    /// with the golden Fashion-MNIST images.
    @Test func countPathEqualsEventPath() throws {
        var compared = 0, counted = 0
        func check(_ harness: Harness, _ px: [UInt8], _ what: String) throws {
            let d = Int(harness.image.header.timeSteps)
            let fast = try harness.trace(px, mode: .spiking, delay: d, countPath: true)
            let events = try harness.trace(px, mode: .spiking, delay: d, countPath: false)
            #expect(fast.countPath == (harness.image.header.timeSteps <= 8) && !events.countPath, "\(what)")
            if d > 0 { #expect(try !harness.trace(px, mode: .spiking, delay: d - 1).countPath) }  // D < T: events
            #expect(fast.logits == events.logits, "\(what)")
            #expect(fast.outputs == events.outputs, "\(what)")
            #expect(fast.stats.count == harness.image.opCount)
            for (i, (a, b)) in zip(fast.stats, events.stats).enumerated() {
                #expect(a.kind == b.kind && a.neurons == b.neurons && a.spikes == b.spikes && a.macs == b.macs
                        && a.synapticOps == b.synapticOps, "\(what) op \(i): \(a) vs \(b)")
            }
            compared += 1
            if fast.countPath && fast.stats.contains(where: { $0.synapticOps > 0 }) { counted += 1 }
        }
        for seed in UInt64(1)...200 {
            let harness = try Harness(try RandomModel.make(seed: seed).image)
            let h = harness.image.header
            try check(harness, RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: seed),
                      "seed \(seed)")
        }
        let reference = try Harness(try GoldenTests.bytes("fmnist_tiny/model.csd"))
        let inputs = try GoldenTests.bytes("fmnist_tiny/inputs.u8"), pixels = 28 * 28
        for i in 0..<(inputs.count / pixels) {
            try check(reference, Array(inputs[(i * pixels)..<((i + 1) * pixels)]), "fmnist image \(i)")
        }
        #expect(compared == 206)
        #expect(counted > 100)  // the count path ran with spikes, not only on silent models
    }

    /// A tokenizer conv on the pixels writes the spiking stream [N][D][T] with its whole current at
    /// t = 0 (DESIGN.md 3: the encoding layer's input arrives at once), at every delay.
    @Test func pixelsIntoTheStreamHoldTheirCurrentAtStepZero() throws {
        var checked = 0
        for seed in stride(from: UInt64(7), through: 210, by: 7) {
            let harness = try Harness(try RandomModel.make(seed: seed).image)
            let h = harness.image.header, t = Int(h.timeSteps)
            #expect(harness.image.op(0).writesStream)
            let px = RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: seed)
            let fused = try harness.trace(px, mode: .fused).outputs[0]!.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            for d in Set([0, t / 2, t]) {
                let spiking = try harness.trace(px, mode: .spiking, delay: d).outputs[0]!
                    .withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
                #expect(spiking.count == fused.count * t)
                for (i, x) in spiking.enumerated() { #expect(x == (i % t == 0 ? fused[i / t] : 0), "seed \(seed) D \(d) \(i)") }
                checked += 1
            }
        }
        #expect(checked >= 60)
    }

    @Test func shorterDelaysRunAndMayDiffer() throws {
        let packed = try RandomModel.make(seed: 7)
        let harness = try Harness(packed.image)
        let h = harness.image.header
        let px = RandomModel.pixels(count: Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth), seed: 7)
        for d in 0...Int(h.timeSteps) {
            let out = try harness.run(px, mode: .spiking, delay: d)
            #expect(out.logits.count == Int(h.classes))
        }
        #expect(throws: Harness.HarnessError.self) { try harness.run(px, mode: .spiking, delay: Int(h.timeSteps) + 1) }
    }
}

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

import CSDFormat
import CSDPack
import Testing

/// docs/FORMAT.md, "Attention units": `csdpack convert --low-ram` makes both attention blocks of the reference
/// model units that run head by head in the fused plan, and the validator holds a unit to its rules.
@Suite struct AttentionUnitTests {
    static func packLowRAM() throws -> PackResult {
        try Packer.convert(weightsPath: ArenaPlanTests.export.appendingPathComponent("model.safetensors").path,
                           configPath: ArenaPlanTests.export.appendingPathComponent("model.json").path,
                           options: ConvertOptions(lowRAM: true))
    }

    /// The units' fields and the plan: u and q a band of 8 tokens, v and k one head (49 x 16 bytes), o whole,
    /// the stream live through the unit; the fused arena is its live set, the unit's peak.
    @Test func theReferenceModelsAttentionUnits() throws {
        let low = try Self.packLowRAM(), plain = try ArenaPlanTests.pack()
        let ops = (0..<27).map { i in low.image.withUnsafeBytes { OpRecord(reading: $0, at: ImageHeader.size + i * OpRecord.size) } }
        #expect(ops.indices.filter { ops[$0].kind == .streamNeuron && ops[$0].band != 0 } == [5, 15])
        for a in [5, 15] {
            #expect(ops[a].band == 8 && ops[a + 3].band == 8 && ops[a + 1].band == 0 && ops[a + 2].band == 0)
            #expect((a + 1...a + 3).allSatisfy { ops[$0].heads == 4 })
            let sizes = (a...a + 5).compactMap { ops[$0].outputUse }.compactMap { try? bufferBytes($0, mode: .fused, timeSteps: 7) }
            #expect(sizes == [8 * 64, 16 * 49, 49 * 16, 8 * 16, 0, 49 * 64])  // u, v, k, q, the scores (scratch), o
            #expect(ops[a].output.0 != ops[a + 3].output.0 && ops[a + 3].output.0 != ops[a + 5].output.0)
        }
        // the spiking plan ignores the units: q over u and o over q, as without them
        #expect(ops[8].output.1 == ops[5].output.1 && ops[10].output.1 == ops[8].output.1)
        #expect(low.spiking.arenaBytes == plain.spiking.arenaBytes)
        // stream 6,272 + o 3,136 + v and k 784 each + u 512 + q 128 + the largest scratch (the pair's 624)
        #expect(low.fused.arenaBytes == 12_240 && low.fused.liveBytes == 12_240)
        #expect(plain.fused.arenaBytes == 16_304)
        // the same integer network: every tensor and every other field as without units
        #expect(low.conversion.ops.map(\.weights8) == plain.conversion.ops.map(\.weights8))
        #expect(low.conversion.ops.map(\.thresholds) == plain.conversion.ops.map(\.thresholds))
    }

    /// Every unit rule refuses its violation with its status; each edit is one a plain image may carry
    /// (a stream neuron, a linear) or that the generic rules accept (q over u, o over q: in place).
    @Test func theValidatorHoldsAUnitToItsRules() throws {
        let image = try Self.packLowRAM().image
        #expect(ArenaPlanTests.status(image) == 0)
        func expect(_ status: CSDStatus, _ changes: [(Int, (inout OpRecord) -> Void)], _ what: String) {
            var edited = image
            for (index, change) in changes { edited = ArenaPlanTests.edited(edited, op: index, change) }
            #expect(ArenaPlanTests.status(edited) == status.rawValue, "\(what)")
        }
        let r = (0..<27).map { i in image.withUnsafeBytes { OpRecord(reading: $0, at: ImageHeader.size + i * OpRecord.size) } }
        expect(.opFields, [(5, { $0.band = 50 }), (8, { $0.band = 50 })], "a band beyond N")
        expect(.opFields, [(8, { $0.band = 4 })], "q's band differs from u's")
        expect(.opFields, [(6, { $0.heads = 2 })], "v's heads differ from the pair's")
        expect(.opFields, [(7, { $0.band = 8 })], "k with a band")
        expect(.opFields, [(7, { $0.flags = OpFlag.channelMajor })], "k channel-major")
        expect(.opFields, [(13, { $0.heads = 4 })], "an MLP linear with heads")
        expect(.opFields, [(12, { $0.band = 8 })], "a stream neuron before an MLP with a band")
        expect(.shape, [(7, { $0.outDims = Dims(49, 32, 1) })], "k of another width")
        // the fused plan: q over u, o over q (both allowed in place without units), the scores reading another q
        expect(.arenaPlan, [(8, { $0.output.0 = r[5].output.0 }), (9, { $0.input.0 = r[5].output.0 })], "q over u")
        expect(.arenaPlan, [(8, { $0.output.0 = r[10].output.0 }), (9, { $0.input.0 = r[10].output.0 })], "o over q")
        expect(.arenaPlan, [(9, { $0.input.0 = r[6].output.0 })], "the scores reading v as q")
        expect(.arenaPlan, [(8, { $0.scratch.0 = r[10].output.0 })], "q's scratch over o")
        expect(.arenaPlan, [(9, { $0.scratch.0 = r[5].input.0 }), (10, { $0.scratch.0 = r[5].input.0 })], "the pair's scratch over the stream")
    }
}

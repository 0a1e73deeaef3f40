import CSDFormat
import CSDPack
import Foundation
import Testing

/// The arena plan of the reference model (docs/FORMAT.md, "Arena plan", "Kernel scratch"): every op's
/// kernel scratch placed among the buffers, the plan's end the exact need, and the validator refusing a
/// scratch that overwrites a value before its reader.
@Suite struct ArenaPlanTests {
    static let export = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Toolchain/models/fmnist-tiny")

    static func pack() throws -> PackResult {
        try Packer.convert(weightsPath: export.appendingPathComponent("model.safetensors").path,
                           configPath: export.appendingPathComponent("model.json").path, options: ConvertOptions())
    }

    static func status(_ image: [UInt8]) -> Int32 {
        image.withUnsafeBytes { raw in
            do throws(CSDStatus) {
                _ = try ModelImage(validating: raw)
                return 0
            } catch {
                return error.rawValue
            }
        }
    }

    /// Rewrites op `index`'s record and the CRC.
    static func edited(_ image: [UInt8], op index: Int, _ edit: (inout OpRecord) -> Void) -> [UInt8] {
        var out = image
        out.withUnsafeMutableBytes { raw in
            let at = ImageHeader.size + index * OpRecord.size
            var r = OpRecord(reading: UnsafeRawBufferPointer(raw), at: at)
            edit(&r)
            r.write(to: raw, at: at)
            raw.setU32(ImageHeader.crcOffset, 0)
            raw.setU32(ImageHeader.crcOffset, CRC32.image(UnsafeRawBufferPointer(raw)))
        }
        return out
    }

    @Test func theArenaIsTheLargestLiveSetWithScratch() throws {
        let r = try Self.pack()
        // greedy first-fit reaches the lower bound here: the largest set of buffers and scratch live at one op
        #expect(r.fused.arenaBytes == r.fused.liveBytes && r.spiking.arenaBytes == r.spiking.liveBytes)
        #expect(r.fused.arenaBytes <= 16_384)  // issue target: the reference model in a 16 KB fused arena
        let live = r.image.withUnsafeBytes { raw in
            ArenaLiveness.liveBytes(ModelImage(alreadyValidated: raw), mode: .fused)
        }
        #expect(live.max() == r.fused.arenaBytes)
    }

    @Test func theAttentionPairsScratchAndTheChannelMajorV() throws {
        let image = try Self.pack().image
        image.withUnsafeBytes { raw in
            let m = ModelImage(alreadyValidated: raw)
            var pairs = 0
            for i in 0..<m.opCount where m.op(i).kind == .attentionScores {
                let sc = m.op(i), va = m.op(i + 1)
                #expect(sc.scratch.0 == va.scratch.0 && sc.scratch.1 == va.scratch.1)
                #expect(sc.scratchBytes(.fused, timeSteps: 7) == 208 + 32 * 13)  // align16(4 N) + 32 max(Gq, Gn)
                // v comes from a CHANNEL_MAJOR linear, which does not write in place
                let producer = (0..<i).last { m.op($0).output(.fused) == va.input2(.fused) }!
                #expect(m.op(producer).has(OpFlag.channelMajor) && m.op(producer).input(.fused) != va.input2(.fused))
                pairs += 1
            }
            #expect(pairs == 2)
        }
    }

    @Test func aScratchOverAValueBeforeItsReaderIsRefused() throws {
        let image = try Self.pack().image
        #expect(Self.status(image) == 0)
        let (pair, stream) = image.withUnsafeBytes { raw -> (Int, (UInt32, UInt32)) in
            let m = ModelImage(alreadyValidated: raw)
            let p = (0..<m.opCount).first { m.op($0).kind == .attentionScores }!
            return (p, m.op(p + 2).output)  // the stream add after the pair: the live stream, which the pair leaves alone
        }
        // the pair's scratch over the stream: the pair touches neither, but the stream add reads the stream after it
        var bad = Self.edited(image, op: pair) { $0.scratch.0 = stream.0 }
        bad = Self.edited(bad, op: pair + 1) { $0.scratch.0 = stream.0 }
        #expect(Self.status(bad) == CSDStatus.arenaPlan.rawValue)
        // the two records of the pair at different offsets
        let split = Self.edited(image, op: pair + 1) { $0.scratch.0 &-= 16 }
        #expect(Self.status(split) == CSDStatus.arenaPlan.rawValue)
        // v read as row-major counts (the flag taken off its producer): shape chaining
        let vProducer = image.withUnsafeBytes { raw -> Int in
            let m = ModelImage(alreadyValidated: raw)
            return (0..<pair).last { m.op($0).output(.fused) == m.op(pair + 1).input2(.fused) }!
        }
        let rowMajor = Self.edited(image, op: vProducer) { $0.flags &= ~OpFlag.channelMajor }
        #expect(Self.status(rowMajor) == CSDStatus.shape.rawValue)
    }

    /// docs/FORMAT.md, "Bands": the packer bands the reference model's two conv and pool pairs (2 rows of the
    /// 28-wide map, 4 of the 14-wide one: 56 positions, whole blocks) and both MLPs (8 tokens); a conv's band
    /// is the fewest pairs of rows whose positions are a multiple of 8.
    @Test func theReferenceModelsBands() throws {
        let result = try Self.pack()
        let bands = result.conversion.ops.enumerated().filter { $0.element.record.band != 0 }.map { [$0.offset, Int($0.element.record.band)] }
        #expect(bands == [[0, 2], [2, 4], [13, 8], [23, 8]])
        #expect([28, 14, 7, 5, 4, 1].map { Banding.mapRows(width: $0) } == [2, 4, 8, 8, 2, 8])
        // the band buffers are the plan's: the first conv's [16][2][28] and fc1's [8][128] bytes, fused
        #expect(result.conversion.ops[0].record.outputUse.map { try? bufferBytes($0, mode: .fused, timeSteps: 7) } == 896)
        #expect(result.conversion.ops[13].record.outputUse.map { try? bufferBytes($0, mode: .fused, timeSteps: 7) } == 1024)
    }
}

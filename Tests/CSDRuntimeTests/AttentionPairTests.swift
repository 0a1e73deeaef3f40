import CSDFormat
import Testing

/// The rules of format version 3 (docs/FORMAT.md, "The attention pair" and "In place"), each broken
/// once in a packed random model whose record is edited and the image resealed: the validator refuses
/// it with the rule's own status, so a plan that would let a kernel read what it already overwrote
/// never runs.
@Suite struct AttentionPairTests {
    /// A packed random model with an attention block over more than 16 bytes of [N][D] counts, the q
    /// projection (the last of v, k, q) over its input and the attention output over q; the indices of
    /// its scores op and of the q projection.
    func model() throws -> (bytes: [UInt8], scores: Int, q: Int) {
        for seed in UInt64(1)...400 where seed % 3 != 0 && seed % 5 != 3 && seed % 4 != 1 {
            let packed = try RandomModel.make(seed: seed)
            let image = packed.image, h = packed.conversion.header
            guard Int(h.tokens) * Int(h.width) > 16 else { continue }  // so a 16-byte shift overlaps
            let found: Int? = image.withUnsafeBytes { raw in
                let m = ModelImage(alreadyValidated: raw)
                return (0..<m.opCount).first { m.op($0).kind == .attentionScores }
            }
            if let s = found { return (image, s, s - 1) }
        }
        throw CSDStatus.opKind
    }

    /// Op `index` of `bytes` edited, the CRC recomputed, then validated: the status (0 when valid).
    func status(_ bytes: [UInt8], op index: Int, _ edit: (inout OpRecord) -> Void) -> Int32 {
        var out = bytes
        out.withUnsafeMutableBytes { raw in
            let at = ImageHeader.size + index * OpRecord.size
            var r = OpRecord(reading: UnsafeRawBufferPointer(raw), at: at)
            edit(&r)
            r.write(to: raw, at: at)
            let crc = CRC32.image(UnsafeRawBufferPointer(raw))
            for i in 0..<4 { raw[ImageHeader.crcOffset + i] = UInt8((crc >> (8 * UInt32(i))) & 0xFF) }
        }
        return out.withUnsafeBytes { raw in
            do throws(CSDStatus) {
                _ = try ModelImage(validating: raw)
                return 0
            } catch {
                return error.rawValue
            }
        }
    }

    @Test func theModelWritesInPlace() throws {
        let (bytes, s, qi) = try model()
        bytes.withUnsafeBytes { raw in
            let m = ModelImage(alreadyValidated: raw)
            let sc = m.op(s), va = m.op(s + 1), qp = m.op(qi), vp = m.op(qi - 2)
            #expect(sc.output == (0, 0) && va.input == (0, 0))  // the scores have no buffer
            #expect(va.output == sc.input)  // the attention output over q
            #expect(qp.output == qp.input && sc.input == qp.output)  // q over its input, read by the scores
            // v channel-major, apart from its input, read by the values
            #expect(vp.has(OpFlag.channelMajor) && vp.output != vp.input && va.input2 == vp.output)
        }
        #expect(status(bytes, op: s) { _ in } == 0)
    }

    @Test func thePairIsRefusedBroken() throws {
        let (bytes, s, _) = try model()
        let plan = CSDStatus.arenaPlan.rawValue, fields = CSDStatus.opFields.rawValue
        #expect(status(bytes, op: s) { $0.output = (16, 0) } == plan)  // scores into the arena
        #expect(status(bytes, op: s) { $0.output = (0, 16) } == plan)
        #expect(status(bytes, op: s + 1) { $0.input = (16, 0) } == plan)  // values reading the arena
        #expect(status(bytes, op: s + 1) { $0.heads &+= 1 } != 0)  // heads differ
        #expect(status(bytes, op: s) { $0.kindRaw = OpKind.attentionValues.rawValue } == fields)  // values without scores
        #expect(status(bytes, op: s + 1) { $0.kindRaw = OpKind.attentionScores.rawValue } != 0)  // scores without values
    }

    @Test func inPlaceOnlyWhereTheKernelsReadFirst() throws {
        let (bytes, s, qi) = try model()
        let plan = CSDStatus.arenaPlan.rawValue
        var k = (UInt32(0), UInt32(0)), q = k, qIn = k, vIn = k
        bytes.withUnsafeBytes { raw in
            let m = ModelImage(alreadyValidated: raw)
            k = m.op(s).input2; q = m.op(s).input; qIn = m.op(qi).input; vIn = m.op(qi - 2).input
        }
        #expect(status(bytes, op: s + 1) { $0.output = k } == plan)  // the output over k
        #expect(status(bytes, op: s + 1) { $0.output.0 = q.0 &+ 16 } != 0)  // over part of q
        #expect(status(bytes, op: qi) { $0.output.0 = qIn.0 &+ 16 } != 0)  // the q projection over part of its input
        #expect(status(bytes, op: qi - 2) { $0.output = vIn } == plan)  // a channel-major projection in place
    }
}

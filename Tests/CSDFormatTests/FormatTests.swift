import CSDFormat
import Testing

@Suite struct CRCTests {
    @Test func checkValue() {
        // The catalogued check value of CRC-32/ISO-HDLC over "123456789".
        let bytes = Array("123456789".utf8)
        let crc = bytes.withUnsafeBytes { ~CRC32.update(0xFFFF_FFFF, $0) }
        #expect(crc == 0xCBF4_3926)
    }

    @Test func imageCRCIgnoresItsOwnField() {
        var image = TinyImage.make()
        let before = image.withUnsafeBytes { CRC32.image($0) }
        image[ImageHeader.crcOffset] ^= 0xFF
        let after = image.withUnsafeBytes { CRC32.image($0) }
        #expect(before == after)
    }
}

@Suite struct RecordRoundTripTests {
    @Test func headerRoundTripsEveryField() {
        var h = ImageHeader()
        h.magic = 0x0102_0304; h.formatVersion = 0x0506; h.mathVersion = 0x0708; h.headerBytes = 0x090A_0B0C
        h.imageBytes = 0x0D0E_0F10; h.crc32 = 0x1112_1314; h.opCount = 0x1516_1718; h.opRecordBytes = 0x191A_1B1C
        h.dataOffset = 0x1D1E_1F20; h.dataBytes = 0x2122_2324; h.inputChannels = 0x2526; h.inputHeight = 0x2728
        h.inputWidth = 0x292A; h.classes = 0x2B2C; h.tokens = 0x2D2E; h.width = 0x2F30; h.timeSteps = 0x31
        h.levels = 0x32; h.delay = 0x33; h.flags = 0x34; h.arenaBytes = (0x3536_3738, 0x393A_3B3C)
        h.macs = 0x3D3E_3F40; h.tensorBytes = 0x4142_4344
        var bytes = [UInt8](repeating: 0xEE, count: ImageHeader.size)
        bytes.withUnsafeMutableBytes { h.write(to: $0) }
        let r = bytes.withUnsafeBytes { ImageHeader(reading: $0) }
        #expect(r.magic == h.magic && r.formatVersion == h.formatVersion && r.mathVersion == h.mathVersion)
        #expect(r.headerBytes == h.headerBytes && r.imageBytes == h.imageBytes && r.crc32 == h.crc32)
        #expect(r.opCount == h.opCount && r.opRecordBytes == h.opRecordBytes && r.dataOffset == h.dataOffset)
        #expect(r.dataBytes == h.dataBytes && r.inputChannels == h.inputChannels && r.inputHeight == h.inputHeight)
        #expect(r.inputWidth == h.inputWidth && r.classes == h.classes && r.tokens == h.tokens && r.width == h.width)
        #expect(r.timeSteps == h.timeSteps && r.levels == h.levels && r.delay == h.delay && r.flags == h.flags)
        #expect(r.arenaBytes.0 == h.arenaBytes.0 && r.arenaBytes.1 == h.arenaBytes.1)
        #expect(r.macs == h.macs && r.tensorBytes == h.tensorBytes)
        // Little-endian on the wire, reserved bytes zeroed.
        #expect(Array(bytes[0..<4]) == [0x04, 0x03, 0x02, 0x01])
        #expect(bytes[ImageHeader.reservedOffset..<ImageHeader.size].allSatisfy { $0 == 0 })
    }

    @Test func opRecordRoundTripsEveryField() {
        var op = OpRecord()
        op.kindRaw = 0x11; op.flags = 0x12; op.shift = 0x13; op.pool = 0x14
        op.inDims = Dims(0x1516, 0x1718, 0x191A); op.outDims = Dims(0x1B1C, 0x1D1E, 0x1F20)
        op.heads = 0x2122; op.band = 0x2324
        op.input = (0x2526_2728, 0x292A_2B2C); op.input2 = (0x2D2E_2F30, 0x3132_3334)
        op.output = (0x3536_3738, 0x393A_3B3C); op.weights = 0x3D3E_3F40; op.thresholds = 0x4142_4344
        op.biases = 0x4546_4748; op.scratch = (0x494A_4B4C, 0x4D4E_4F50)
        var bytes = [UInt8](repeating: 0, count: 8 + OpRecord.size)
        bytes.withUnsafeMutableBytes { op.write(to: $0, at: 8) }
        let r = bytes.withUnsafeBytes { OpRecord(reading: $0, at: 8) }
        #expect(r.kindRaw == op.kindRaw && r.flags == op.flags && r.shift == op.shift && r.pool == op.pool)
        #expect(r.inDims == op.inDims && r.outDims == op.outDims && r.heads == op.heads && r.band == op.band)
        #expect(r.input.0 == op.input.0 && r.input.1 == op.input.1 && r.input2.0 == op.input2.0 && r.input2.1 == op.input2.1)
        #expect(r.output.0 == op.output.0 && r.output.1 == op.output.1 && r.weights == op.weights)
        #expect(r.thresholds == op.thresholds && r.biases == op.biases)
        #expect(r.scratch.0 == op.scratch.0 && r.scratch.1 == op.scratch.1)
        #expect(bytes[0..<8].allSatisfy { $0 == 0 })
    }

    @Test func builtImageReadsBackItsRecordsAndTensors() throws {
        let image = TinyImage.make()
        #expect(TinyImage.status(image) == 0)
        image.withUnsafeBytes { raw in
            guard let m = try? ModelImage(validating: raw) else { Issue.record("tiny image invalid"); return }
            #expect(m.opCount == 5)
            #expect(m.header.imageBytes == UInt32(image.count))
            // 18 + 8 + 8 (conv) + 72 + 32 (stream conv) + 8 + 8 (reader) + 6 + 12 (head)
            #expect(m.header.tensorBytes == 172)
            // conv: 2*1*(3*4-2)^2 = 200; stream conv: 2*2*(3*2-2)^2 = 64; classifier 3*2 = 6
            #expect(m.header.macs == 270)
            let conv = m.op(0)
            #expect(conv.kind == .conv3x3 && conv.has(OpFlag.inputPixels))
            #expect(m.data.i32(Int(conv.thresholds)) == 40 && m.data.i32(Int(conv.thresholds) + 4) == 50)
            #expect(Int8(bitPattern: m.data.u8(Int(conv.weights))) == -9)
            let writer = m.op(2)
            #expect(writer.weightElementBytes == 2)
            #expect(Int16(bitPattern: m.data.u16(Int(writer.weights) + 2)) == -1700)
            #expect(m.data.i32(Int(m.op(4).biases) + 8) == 7)
        }
    }
}

@Suite struct ValidationTests {
    /// A byte edit to a valid image, optionally resealed, gives exactly `expected`.
    func expectStatus(_ expected: CSDStatus, reseal: Bool = true, _ edit: (inout [UInt8]) -> Void) {
        var image = TinyImage.make()
        edit(&image)
        if reseal { image = TinyImage.resealed(image) }
        #expect(TinyImage.status(image) == expected.rawValue)
    }

    func expectRecordStatus(_ expected: CSDStatus, _ edit: @escaping (inout ImageHeader, inout [OpRecord]) -> Void) {
        #expect(TinyImage.status(TinyImage.make(edit: edit)) == expected.rawValue)
    }

    @Test func tooSmall() {
        #expect(TinyImage.status(TinyImage.make(), count: 127) == CSDStatus.tooSmall.rawValue)
    }

    @Test func everyTruncationIsRefused() {
        let image = TinyImage.make()
        for n in 0..<image.count {
            let s = TinyImage.status(image, count: n)
            #expect(s == CSDStatus.tooSmall.rawValue || s == CSDStatus.truncated.rawValue, "length \(n) gave \(s)")
        }
    }

    @Test func headerFields() {
        expectStatus(.badMagic, reseal: false) { $0[0] ^= 1 }
        expectStatus(.formatVersion) { $0[4] = 1 }  // version 1 images (before the attention pair) are refused
        expectStatus(.formatVersion) { $0[4] = 2 }  // version 2 (the scratch at the arena's end, v row-major)
        expectStatus(.formatVersion) { $0[4] = 3 }  // version 3 (no bands; its reserved0 is band's field)
        expectStatus(.formatVersion) { $0[4] = 4 }  // version 4 (no attention units: a format 4 runtime reads them wrong)
        expectStatus(.formatVersion) { $0[4] = 6 }
        expectStatus(.mathVersion) { $0[6] = 1 }  // math version 1 (the int32 stream) is refused
        expectStatus(.mathVersion) { $0[6] = 3 }
        expectStatus(.headerSize) { $0[8] = 64 }
        expectStatus(.crc, reseal: false) { $0[$0.count - 1] ^= 0x80 }
        expectStatus(.opTable) { $0[24] = 32 }
        expectStatus(.opTable) { $0[28] &+= 16 }
        expectStatus(.reserved) { $0[100] = 1 }
        expectStatus(.reserved) { $0[51] = 1 }
        expectStatus(.metadata) { $0[48] = 0 }  // T = 0
        expectStatus(.metadata) { $0[49] = 5 }  // L > T
        expectStatus(.metadata) { $0[50] = 9 }  // D > T
        expectStatus(.arenaBytes) { $0[53] &+= 1 }  // 256 bytes more than the plan's end
        expectStatus(.macs) { $0[60] &+= 1 }
        expectStatus(.tensorBounds) { $0[64] &+= 1 }
    }

    @Test func withoutResealingEveryBitFlipIsRefused() {
        let image = TinyImage.make()
        for byte in 0..<image.count {
            for bit in 0..<8 {
                var bad = image
                bad[byte] ^= UInt8(1 << bit)
                #expect(TinyImage.status(bad) != 0, "flip of byte \(byte) bit \(bit) accepted")
            }
        }
    }

    @Test func opFields() {
        expectRecordStatus(.opKind) { _, ops in ops[1].kindRaw = 9 }
        expectRecordStatus(.opFields) { _, ops in ops[0].pool = 2 }
        expectRecordStatus(.opFields) { _, ops in ops[0].shift = 25 }
        expectRecordStatus(.opFields) { _, ops in ops[1].flags = OpFlag.streamOut }
        expectRecordStatus(.opFields) { _, ops in ops[2].flags |= OpFlag.inputPixels }
        expectRecordStatus(.opFields) { _, ops in ops[0].flags = 0 }  // the first op must read pixels
        expectRecordStatus(.opFields) { _, ops in ops.swapAt(3, 4) }   // the classifier must be last
        expectRecordStatus(.opFields) { _, ops in ops[1].flags = OpFlag.channelMajor }  // only a LINEAR may
    }

    /// docs/FORMAT.md, "Bands": the tiny image's conv and 2x2 max-pool may run as a unit with an even band of
    /// up to the map's 4 rows; no other op may have a band, and while the unit runs the conv's scratch is live.
    @Test func bands() {
        expectRecordStatus(.ok) { _, ops in ops[0].band = 2 }
        expectRecordStatus(.ok) { _, ops in ops[0].band = 4 }
        expectRecordStatus(.opFields) { _, ops in ops[0].band = 1 }  // odd
        expectRecordStatus(.opFields) { _, ops in ops[0].band = 6 }  // more rows than the map
        expectRecordStatus(.opFields) { _, ops in ops[1].band = 2 }  // a max-pool produces no band
        expectRecordStatus(.opFields) { _, ops in ops[2].band = 2 }  // a stream writer neither
        expectRecordStatus(.opFields) { _, ops in ops[3].band = 1 }
        expectRecordStatus(.opFields) { _, ops in ops[0].band = 2; ops[1].pool = 3; ops[1].outDims = Dims(2, 2, 2) }
        // the conv's scratch over the pool's output: fine op after op, not in a unit
        expectRecordStatus(.ok) { _, ops in ops[0].scratch.0 = 32 }
        expectRecordStatus(.arenaPlan) { _, ops in ops[0].scratch.0 = 32; ops[0].band = 2 }
        // the consumer reads the producer's band in both plans
        expectRecordStatus(.arenaPlan) { _, ops in ops[0].band = 2; ops[0].output.1 = 16; ops[1].input.1 = 0 }
    }

    @Test func shapes() {
        expectRecordStatus(.shape) { _, ops in ops[0].outDims = Dims(2, 4, 3) }
        expectRecordStatus(.shape) { _, ops in ops[0].inDims = Dims(2, 4, 4) }      // not the header's input
        expectRecordStatus(.shape) { _, ops in ops[1].outDims = Dims(2, 3, 2) }      // 4 pooled by 2 is 2
        expectRecordStatus(.shape) { _, ops in ops[3].inDims = Dims(4, 3, 1) }       // not tokens x width
        expectRecordStatus(.shape) { h, _ in h.classes = 4 }
        expectRecordStatus(.shape) { _, ops in ops[0].outDims = Dims(0, 4, 4) }
        expectRecordStatus(.shape) { _, ops in ops[2].inDims = Dims(7282, 2, 2) }    // fan-in 65,538 > 16 bits
    }

    @Test func tensors() {
        expectRecordStatus(.tensorBounds) { _, ops in ops[0].weights += 1 }            // unaligned
        expectRecordStatus(.tensorBounds) { _, ops in ops[4].biases = 0xFFFF_FFF0 }    // outside
        expectRecordStatus(.tensorBounds) { _, ops in ops[1].weights = 16 }           // max-pool has none
        expectRecordStatus(.threshold) { h, ops in
            // A zero threshold: rebuild the reader's thresholds as [0, 2000] in place of [1000, 2000].
            ops[3].thresholds = ops[0].biases  // [3, -4]: -4 < 1
        }
    }

    @Test func arenaPlan() {
        expectRecordStatus(.arenaPlan) { _, ops in ops[3].input = (16, 48) }      // not the stream's offset
        expectRecordStatus(.arenaPlan) { _, ops in ops[4].input = (0, 8) }        // spiking: reads mid-buffer
        expectRecordStatus(.arenaPlan) { _, ops in ops[1].output = (8, 32) }      // unaligned
        expectRecordStatus(.arenaPlan) { _, ops in ops[1].output = (0, 32) }      // overlaps its input
        expectRecordStatus(.arenaPlan) { _, ops in ops[2].output = (64, 48) }     // op 3 reads mid-buffer (and past the 64 bytes of buffers)
        expectRecordStatus(.arenaPlan) { _, ops in ops[0].input = (16, 0) }       // pixels are not in the arena
        expectRecordStatus(.arenaPlan) { _, ops in ops[4].output = (16, 0) }      // logits are not in the arena
        expectRecordStatus(.arenaPlan) { _, ops in ops[2].input = (16, 32) }      // inside the conv's output, not its start
        expectRecordStatus(.shape) { _, ops in ops[2].input = (0, 32) }           // the conv's [2,4,4], not the pool's [2,2,2]
    }

    /// A buffer that starts inside the arena (offset < arena_bytes) but ends past its end has its own
    /// status, given where the buffer is placed, before the plan's end is compared with arena_bytes.
    /// The arenas are 224 bytes fused and 272 spiking (buffers 64 / 112, then the kernel scratch);
    /// the stream is 16 bytes fused, 64 spiking (4 tokens x 2 channels x 2 bytes, x T = 4).
    @Test func bufferEndingPastTheArena() {
        // The stream conv's output and its reader's input moved together, so nothing else is wrong.
        expectRecordStatus(.arenaEnd) { _, ops in ops[2].output = (48, 224); ops[3].input = (48, 224) }  // spiking: 224 + 64 > 272
        expectRecordStatus(.arenaEnd) { _, ops in ops[0].output = (208, 0); ops[1].input = (208, 0) }  // fused counts [2,4,4]: 208 + 32 > 224
        expectRecordStatus(.arenaEnd) { _, ops in ops[2].output = (48, 256); ops[3].input = (48, 256) }  // the last 16 bytes
        expectRecordStatus(.arenaEnd) { _, ops in ops[3].input = (48, 224) }   // an input: placed before it is chained
        expectRecordStatus(.arenaEnd) { _, ops in ops[0].output = (0, 256) }   // spiking trains [2,4,4]: 256 + 32 > 272
        expectRecordStatus(.arenaPlan) { _, ops in ops[1].output = (32, 256) }  // the pool's 8 trains fit: then op 2 reads mid-buffer
        // The neighbours: a buffer at the arena's end does not start inside it, one that ends exactly
        // at the end lies inside it (and then overlaps the op's own kernel scratch).
        expectRecordStatus(.arenaPlan) { _, ops in ops[2].output = (48, 272); ops[3].input = (48, 272) }
        expectRecordStatus(.arenaPlan) { _, ops in ops[2].output = (48, 0xFFFF_FFF0); ops[3].input = (48, 0xFFFF_FFF0) }
        expectRecordStatus(.arenaPlan) { _, ops in ops[2].output = (48, 208); ops[3].input = (48, 208) }  // 208 + 64 = 272
        expectRecordStatus(.arenaPlan) { _, ops in ops[2].output = (48, 96); ops[3].input = (48, 96) }
        // Exactly one buffer changed, and the CRC is valid: nothing but the new check refuses it.
        let moved = TinyImage.make { _, ops in ops[2].output = (48, 224); ops[3].input = (48, 224) }
        #expect(TinyImage.resealed(moved) == moved)
    }

    /// Each op's kernel scratch (docs/FORMAT.md, "Kernel scratch"): at 0 without a need, else placed like a
    /// buffer, apart from the buffers the op reads and writes; the arena's end counts it.
    @Test func kernelScratch() {
        expectRecordStatus(.arenaPlan) { _, ops in ops[1].scratch = (16, 0) }      // the pool needs none
        expectRecordStatus(.arenaPlan) { _, ops in ops[3].scratch = (64, 112) }    // fused: the stream neuron needs none
        expectRecordStatus(.arenaPlan) { _, ops in ops[0].scratch = (72, 112) }    // unaligned
        expectRecordStatus(.arenaPlan) { _, ops in ops[0].scratch = (224, 112) }   // does not start inside the arena
        expectRecordStatus(.arenaEnd) { _, ops in ops[2].scratch = (80, 112) }     // 80 + 160 > 224
        expectRecordStatus(.arenaPlan) { _, ops in ops[2].scratch = (32, 112) }    // over its input, the pool's counts
        expectRecordStatus(.arenaPlan) { _, ops in ops[2].scratch = (48, 112) }    // over its output, the stream
        expectRecordStatus(.arenaPlan) { _, ops in ops[0].scratch = (0, 112) }     // over its output
        expectRecordStatus(.arenaPlan) { _, ops in ops[3].scratch = (0, 48) }      // spiking: over its input, the stream
        // apart from everything the op touches, anywhere in the arena: valid
        #expect(TinyImage.status(TinyImage.make { _, ops in ops[0].scratch = (64, 176) }) == 0)  // spiking 176 + 96 = 272
        // the arena's end is the furthest buffer or scratch: one 16 bytes short of the header's is refused
        #expect(TinyImage.status(TinyImage.make { h, ops in
            h.arenaBytes.1 = 288
            ops[2].scratch.1 = 128
        }) == 0)
        expectRecordStatus(.arenaBytes) { h, _ in h.arenaBytes.1 = 288 }           // the plan ends at 272
    }
}

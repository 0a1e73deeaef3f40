import CSDFormat

/// A hand-built five-op image (conv from pixels, max-pool, conv into the stream,
/// stream neuron, classifier) with a hand-made arena plan, for format tests
/// that must not depend on the packer.
enum TinyImage {
    /// Builds the image; `edit` may change the header or records before the CRC is computed.
    static func make(edit: (inout ImageHeader, inout [OpRecord]) -> Void = { _, _ in }) -> [UInt8] {
        var b = ImageBuilder()
        var h = ImageHeader()
        h.inputChannels = 1; h.inputHeight = 4; h.inputWidth = 4
        h.classes = 3; h.tokens = 4; h.width = 2
        h.timeSteps = 4; h.levels = 3; h.delay = 4
        // buffers, then every op's kernel scratch at one offset after them (the stream conv's is the largest:
        // K = 18, fused 5 groups x 32; spiking the largest of that, 5 x 16 + T 4 x 2 outputs x 4); the int16
        // stream is 16 bytes fused, 64 spiking
        h.arenaBytes = (64 + 160, 112 + 160)

        var conv = OpRecord()
        conv.kindRaw = OpKind.conv3x3.rawValue
        conv.flags = OpFlag.inputPixels
        conv.shift = 2
        conv.inDims = Dims(1, 4, 4); conv.outDims = Dims(2, 4, 4)
        conv.weights = b.addTensor(int8: (0..<18).map { Int8($0 - 9) })
        conv.thresholds = b.addTensor(int32: [40, 50])
        conv.biases = b.addTensor(int32: [3, -4])
        conv.output = (0, 0)
        conv.scratch = (64, 112)  // K = 9: 96 bytes in both modes

        var pool = OpRecord()
        pool.kindRaw = OpKind.maxPool.rawValue
        pool.pool = 2
        pool.inDims = Dims(2, 4, 4); pool.outDims = Dims(2, 2, 2)
        pool.input = (0, 0); pool.output = (32, 32)

        var toStream = OpRecord()
        toStream.kindRaw = OpKind.conv3x3.rawValue
        toStream.flags = OpFlag.streamOut | OpFlag.streamSet | OpFlag.tokenBias
        toStream.shift = 3  // the stream shift
        toStream.inDims = Dims(2, 2, 2); toStream.outDims = Dims(2, 2, 2)
        toStream.weights = b.addTensor(int16: (0..<36).map { Int16($0 * 100 - 1800) })
        toStream.biases = b.addTensor(int32: (0..<8).map { Int32($0) })
        toStream.input = (32, 32); toStream.output = (48, 48)
        toStream.scratch = (64, 112)

        var reader = OpRecord()
        reader.kindRaw = OpKind.streamNeuron.rawValue
        reader.inDims = Dims(4, 2, 1); reader.outDims = Dims(4, 2, 1)
        reader.thresholds = b.addTensor(int32: [1000, 2000])
        reader.biases = b.addTensor(int32: [0, 0])
        reader.input = (48, 48); reader.output = (0, 0)
        reader.scratch = (0, 112)  // spiking only: a token's 4 x 2 steps as int32

        var head = OpRecord()
        head.kindRaw = OpKind.classifier.rawValue
        head.inDims = Dims(4, 2, 1); head.outDims = Dims(3, 1, 1)
        head.weights = b.addTensor(int8: [1, -1, 2, -2, 3, -3])
        head.biases = b.addTensor(int32: [5, 6, 7])
        head.input = (0, 0)

        var ops = [conv, pool, toStream, reader, head]
        edit(&h, &ops)
        b.header = h
        for op in ops { b.append(op) }
        return b.build()
    }

    /// Recomputes the CRC after a deliberate edit of the bytes.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var out = bytes
        let crc = bytes.withUnsafeBytes { CRC32.image($0) }
        for i in 0..<4 { out[ImageHeader.crcOffset + i] = UInt8((crc >> (8 * UInt32(i))) & 0xFF) }
        return out
    }

    /// The status `ModelImage(validating:)` gives, 0 when valid.
    static func status(_ bytes: [UInt8], count: Int? = nil) -> Int32 {
        bytes.withUnsafeBytes { raw in
            let view = UnsafeRawBufferPointer(rebasing: raw[0..<(count ?? raw.count)])
            do throws(CSDStatus) {
                _ = try ModelImage(validating: view)
                return 0
            } catch {
                return error.rawValue
            }
        }
    }
}

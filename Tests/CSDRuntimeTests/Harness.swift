import CSDFormat
import CSDRuntime

/// Copies an image into 16-byte aligned storage and runs it in a mode; returns the logits and per-op stats.
struct Harness {
    let imageStorage: UnsafeMutableRawBufferPointer
    let image: ModelImage

    init(_ bytes: [UInt8]) throws {
        imageStorage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
        imageStorage.copyBytes(from: bytes)
        do throws(CSDStatus) {
            image = try ModelImage(validating: UnsafeRawBufferPointer(imageStorage))
        } catch {
            throw HarnessError.status(error.rawValue)
        }
    }

    enum HarnessError: Error { case status(Int32) }

    /// Runs and copies every op's output buffer right after the op (nil for the classifier).
    func trace(_ pixels: [UInt8], mode: ExecutionMode, delay: Int? = nil, countPath: Bool = true) throws
        -> (logits: [Int32], outputs: [[UInt8]?], stats: [OpStats], countPath: Bool) {
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(Int(image.header.arenaBytes(mode)), 16), alignment: 16)
        defer { arena.deallocate() }
        var logits = [Int32](repeating: 0, count: Int(image.header.classes))
        var outputs: [[UInt8]?] = [], stats: [OpStats] = [], counted = false
        do throws(CSDStatus) {
            var engine = try Engine(image: image, arena: arena, mode: mode)
            if let d = delay { try engine.setDelay(d) }
            try engine.setCountPath(countPath)
            counted = engine.usesCountPath
            pixels.withUnsafeBufferPointer { px in
                logits.withUnsafeMutableBufferPointer { out in
                    engine.run(pixels: px.baseAddress!, logits: out.baseAddress!, observe: { k, s in
                        outputs.append(engine.outputBuffer(of: k).map { Array($0) })
                        stats.append(s)
                    })
                }
            }
        } catch {
            throw HarnessError.status(error.rawValue)
        }
        return (logits, outputs, stats, counted)
    }

    func run(_ pixels: [UInt8], mode: ExecutionMode, delay: Int? = nil) throws -> (logits: [Int32], stats: [OpStats]) {
        let need = Int(image.header.arenaBytes(mode))
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(need, 16), alignment: 16)
        defer { arena.deallocate() }
        var logits = [Int32](repeating: 0, count: Int(image.header.classes))
        var stats = [OpStats](repeating: OpStats(), count: image.opCount)
        do throws(CSDStatus) {
            var engine = try Engine(image: image, arena: arena, mode: mode)
            if let d = delay { try engine.setDelay(d) }
            pixels.withUnsafeBufferPointer { px in
                logits.withUnsafeMutableBufferPointer { out in
                    stats.withUnsafeMutableBufferPointer { st in
                        engine.run(pixels: px.baseAddress!, logits: out.baseAddress!, observe: { k, s in st[k] = s })
                    }
                }
            }
        } catch {
            throw HarnessError.status(error.rawValue)
        }
        return (logits, stats)
    }
}

/// Op k's output that a run in the fused plan leaves to compare: a band producer's buffer holds only its
/// last band (docs/FORMAT.md, "Bands"), so for one its last band's rows; an attention unit's u, v, k and q
/// buffers (docs/FORMAT.md, "Attention units") hold the last head's channels (u and q: of the last band of
/// tokens). Taken from that buffer (`band`) or from the whole output (the spiking plan's, a naive model's),
/// whose trains become counts with `counts` (the count path leaves counts in those four); other outputs whole.
func lastBandRows(_ harness: Harness, _ k: Int, _ bytes: [UInt8]?, band: Bool, counts: Bool = false) -> [UInt8]? {
    let image = harness.image, op = image.op(k)
    guard let bytes else { return nil }
    if let a = image.attentionUnit(containing: k), k - a <= 3 {  // u, v, k, q of the last head
        let b = Int(image.op(a).band), (n, d) = (op.outDims.d0, op.outDims.d1), hd = d / Int(image.op(a + 4).heads)
        let c0 = d - hd, t0 = (n - 1) / b * b
        let whole = counts ? bytes.map { UInt8($0.nonzeroBitCount) } : bytes
        switch k - a {
        case 0: return band ? Array(bytes[0..<((n - t0) * d)]) : Array(whole[(t0 * d)..<(n * d)])
        case 1: return band ? Array(bytes[0..<(hd * n)]) : Array(whole[(c0 * n)..<(d * n)])  // channel-major
        default:
            let first = k - a == 3 ? t0 : 0
            return band ? Array(bytes[0..<((n - first) * hd)]) : (first..<n).flatMap { whole[($0 * d + c0)..<($0 * d + d)] }
        }
    }
    guard op.band != 0 else { return bytes }
    let b = Int(op.band), o = op.outDims
    if op.kind == .conv3x3 {  // [C][band][W] of [C][H][W]
        let (c, h, w) = (o.d0, o.d1, o.d2), y0 = (h - 1) / b * b, rows = h - y0
        var out: [UInt8] = []
        for ch in 0..<c {
            let start = band ? ch * b * w : (ch * h + y0) * w
            out += bytes[start..<(start + rows * w)]
        }
        return out
    }
    let (n, d) = (o.d0, o.d1), t0 = (n - 1) / b * b  // [band][D] of [N][D]
    return band ? Array(bytes[0..<((n - t0) * d)]) : Array(bytes[(t0 * d)..<(n * d)])
}

/// True when op k's fused-plan buffer holds part of its output (`lastBandRows`).
func holdsPart(_ harness: Harness, _ k: Int) -> Bool {
    let image = harness.image
    if let a = image.attentionUnit(containing: k) { return k - a <= 3 }
    return image.op(k).band != 0
}

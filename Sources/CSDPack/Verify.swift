import CSDFormat
import CSDRuntime
import Dispatch
import Foundation

/// Runs an image over a data set with the runtime's host build (`csdpack verify`).
public struct Verifier {
    public struct ModeResult {
        public var mode: ExecutionMode
        public var delay: Int
        public var predictions: [Int]
        public var logits: [Int32]  // [N][classes]
        public var correct: Int
        public var spikes: UInt64
        public var synapticOps: UInt64
        public var macs: UInt64
        /// Per op: total spikes over the run.
        public var opSpikes: [UInt64]
        /// Per op: total synaptic operations and MACs over the run.
        public var opSynapticOps: [UInt64]
        public var opMacs: [UInt64]
        /// Per image, per op: the op's output spikes ([N][ops]).
        public var imageOpSpikes: [UInt32]
    }

    let storage: UnsafeMutableRawBufferPointer
    public let image: ModelImage

    /// Copies the image into 16-byte aligned memory and validates it.
    public init(imageBytes: [UInt8]) throws(PackError) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(imageBytes.count, 16), alignment: 16)
        storage.copyBytes(from: imageBytes)
        do throws(CSDStatus) {
            image = try ModelImage(validating: UnsafeRawBufferPointer(rebasing: storage[0..<imageBytes.count]))
        } catch {
            throw PackError("the image is refused: \(error.message) (status \(error.rawValue))")
        }
    }

    /// Runs `count` images in `mode` on `threads` threads (default: one per core), each with its own arena
    /// over disjoint images (thread w runs images w, w + threads, ...); results do not depend on the thread
    /// count. `progress` is called with the number done.
    public func run(_ data: Dataset, count: Int, mode: ExecutionMode, delay: Int, threads: Int? = nil,
                    progress: (@Sendable (Int) -> Void)? = nil) throws(PackError) -> ModeResult {
        let h = image.header
        let pixelsPerImage = Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth)
        guard data.shape.reduce(1, *) == pixelsPerImage else {
            throw PackError("the data set's images are \(data.shape), the image expects \(h.inputChannels)x\(h.inputHeight)x\(h.inputWidth)")
        }
        guard delay >= 0 && delay <= Int(h.timeSteps) else { throw PackError("--delay \(delay): need 0...\(h.timeSteps)") }
        let classes = Int(h.classes), ops = image.opCount
        let lo = UnsafeMutableBufferPointer<Int32>.allocate(capacity: max(1, count * classes))
        let so = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, count * ops))
        let to = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: max(1, count * 3))
        // per worker, per op: synaptic operations and MACs
        if let n = threads, n < 1 { throw PackError("--threads \(n): need at least 1") }
        let workers = max(1, min(threads ?? ProcessInfo.processInfo.activeProcessorCount, max(1, count)))
        let wo = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: workers * ops * 2)
        wo.initialize(repeating: 0)
        defer { lo.deallocate(); so.deallocate(); to.deallocate(); wo.deallocate() }
        let done = Counter()
        let image = self.image
        data.images.withUnsafeBufferPointer { pixelBuffer in
            // Workers write disjoint rows of the output buffers.
            let shared = Shared(image: image, mode: mode, lo: lo, so: so, to: to, wo: wo.baseAddress!, pixels: pixelBuffer)
            onThreads(workers) { w in
                let image = shared.image, mode = shared.mode, lo = shared.lo, so = shared.so, to = shared.to
                let wo = shared.wo + w * ops * 2  // this worker's rows
                let pixels = shared.pixels, h = image.header
                let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(16, Int(h.arenaBytes(mode))), alignment: 16)
                defer { arena.deallocate() }
                let stats = UnsafeMutablePointer<OpStats>.allocate(capacity: ops)
                defer { stats.deallocate() }
                guard var engine = try? Engine(image: image, arena: arena, mode: mode) else { return }
                try? engine.setDelay(delay)
                var i = w
                while i < count {
                    engine.run(pixels: pixels.baseAddress! + i * pixelsPerImage, logits: lo.baseAddress! + i * classes,
                               observe: { k, st in stats[k] = st })
                    var t: (UInt64, UInt64, UInt64) = (0, 0, 0)
                    for k in 0..<ops {
                        t.0 &+= UInt64(stats[k].spikes); t.1 &+= UInt64(stats[k].synapticOps); t.2 &+= UInt64(stats[k].macs)
                        so[i * ops + k] = UInt64(stats[k].spikes)
                        wo[2 * k] &+= UInt64(stats[k].synapticOps); wo[2 * k + 1] &+= UInt64(stats[k].macs)
                    }
                    to[i * 3] = t.0; to[i * 3 + 1] = t.1; to[i * 3 + 2] = t.2
                    let n = done.increment()
                    if let p = progress, n % 250 == 0 || n == count { p(n) }
                    i += workers
                }
            }
        }
        let logits = Array(lo.prefix(count * classes))
        var predictions: [Int] = []
        var correct = 0
        for i in 0..<count {
            let row = logits[(i * classes)..<((i + 1) * classes)]
            var best = 0
            for (j, v) in row.enumerated() where v > row[row.startIndex + best] { best = j }
            predictions.append(best)
            if best == data.labels[i] { correct += 1 }
        }
        var perOp = [UInt64](repeating: 0, count: ops)
        var perOpSynapticOps = [UInt64](repeating: 0, count: ops), perOpMacs = [UInt64](repeating: 0, count: ops)
        var sums: (UInt64, UInt64, UInt64) = (0, 0, 0)
        for i in 0..<count {
            for k in 0..<ops { perOp[k] &+= so[i * ops + k] }
            sums.0 &+= to[i * 3]; sums.1 &+= to[i * 3 + 1]; sums.2 &+= to[i * 3 + 2]
        }
        for w in 0..<workers {
            for k in 0..<ops {
                perOpSynapticOps[k] &+= wo[(w * ops + k) * 2]
                perOpMacs[k] &+= wo[(w * ops + k) * 2 + 1]
            }
        }
        return ModeResult(mode: mode, delay: delay, predictions: predictions, logits: logits, correct: correct,
                          spikes: sums.0, synapticOps: sums.1, macs: sums.2, opSpikes: perOp,
                          opSynapticOps: perOpSynapticOps, opMacs: perOpMacs,
                          imageOpSpikes: so.prefix(count * ops).map { UInt32(truncatingIfNeeded: $0) })
    }
}

extension Verifier {
    /// One image's trace in the csd-trace line format (docs/VALIDATION.md).
    public func traceLines(_ data: Dataset, index: Int, mode: ExecutionMode, delay: Int, withData: Bool) throws(PackError) -> [String] {
        let h = image.header
        let pixelsPerImage = Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth)
        guard data.shape.reduce(1, *) == pixelsPerImage else { throw PackError("the data set's images do not fit the model's input") }
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(16, Int(h.arenaBytes(mode))), alignment: 16)
        defer { arena.deallocate() }
        var engine: Engine
        do throws(CSDStatus) {
            engine = try Engine(image: image, arena: arena, mode: mode)
            try engine.setDelay(delay)
        } catch { throw PackError("the runtime refuses: \(error.message)") }
        var lines = ["csd-trace 1 mode=\(mode == .fused ? "fused" : "spiking") delay=\(engine.delay) input=\(index)"]
        var logits = [Int32](repeating: 0, count: Int(h.classes))
        let e = engine
        data.images.withUnsafeBufferPointer { px in
            logits.withUnsafeMutableBufferPointer { out in
                e.run(pixels: px.baseAddress! + index * pixelsPerImage, logits: out.baseAddress!, observe: { k, _ in
                    let op = e.image.op(k)
                    guard let buffer = e.outputBuffer(of: k) else { return }
                    let crc = ~CRC32.update(0xFFFF_FFFF, buffer)
                    lines.append("op \(k) kind=\(op.kindRaw) bytes=\(buffer.count) crc32=\(String(format: "%08x", crc))")
                    if withData {
                        var offset = 0
                        while offset < buffer.count {
                            let end = min(buffer.count, offset + 64)
                            let hex = buffer[offset..<end].map { String(format: "%02x", $0) }.joined()
                            lines.append("op \(k) data@\(offset) \(hex)")
                            offset = end
                        }
                    }
                })
            }
        }
        lines.append("logits " + logits.map(String.init).joined(separator: " "))
        lines.append("end")
        return lines
    }
}

struct Shared: @unchecked Sendable {
    let image: ModelImage
    let mode: ExecutionMode
    let lo: UnsafeMutableBufferPointer<Int32>
    let so: UnsafeMutableBufferPointer<UInt64>
    let to: UnsafeMutableBufferPointer<UInt64>
    let wo: UnsafeMutablePointer<UInt64>
    let pixels: UnsafeBufferPointer<UInt8>
}

/// Runs `body(w)` for w in 0 ..< n, each on a thread of its own, and returns when all are done.
func onThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for w in 0..<n {
        group.enter()
        let thread = Thread {
            body(w)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}

/// A thread-safe counter for progress.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func increment() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value }
}

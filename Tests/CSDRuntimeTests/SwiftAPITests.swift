import CSDRuntime  // the public Swift API only: no @testable, no other module of the package
import Foundation
import Testing

// BEGIN docs/SWIFT_API.md example (Tests/Python/test_docs_swift_api.py keeps the doc's copy equal to this one)
/// One inference on a packed image: fused (`delay` nil) or spiking at `delay`; returns the prediction.
func classify(image bytes: UnsafeRawBufferPointer, pixels: UnsafeBufferPointer<UInt8>, delay: Int?,
              arena: UnsafeMutableRawBufferPointer, logits: UnsafeMutableBufferPointer<Int32>) throws(CSDStatus) -> Int {
    let image = try ModelImage(checking: bytes)  // 16-byte aligned, every check of docs/FORMAT.md
    let mode: ExecutionMode = delay == nil ? .fused : .spiking
    guard arena.count >= image.arenaBytes(mode) else { throw CSDStatus.arenaTooSmall }  // Engine checks it too
    var engine = try Engine(image: image, arena: arena, mode: mode)  // the arena: caller-owned, 16-byte aligned
    if let delay { try engine.setDelay(delay) }  // 0 ... T; without it, the image's default D
    try engine.run(input: pixels, logits: logits)  // C*H*W pixels in, at least `classes` logits out
    var best = 0  // the prediction: the largest logit, the first on ties
    for k in 1..<image.classes where logits[k] > logits[best] { best = k }
    return best
}
// END docs/SWIFT_API.md example

/// The Swift API (docs/SWIFT_API.md) on the committed reference image and its golden logits
/// (Tests/TestData/fmnist_tiny, from the NumPy reference), and every status it throws.
@Suite struct SwiftAPITests {
    static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("TestData/fmnist_tiny")

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: data.appendingPathComponent(name)))
    }

    /// 16-byte aligned copies, as firmware keeps them (flash, a CSD_ALIGN16 array).
    final class Aligned {
        let buffer: UnsafeMutableRawBufferPointer
        init(count: Int, copying bytes: [UInt8] = []) {
            buffer = .allocate(byteCount: max(count, 1) + 16, alignment: 16)
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            buffer.copyBytes(from: bytes)
        }
        deinit { buffer.deallocate() }
        /// `count` bytes from `offset` (offset 1: a misaligned view).
        func view(_ count: Int, offset: Int = 0) -> UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + count)])
        }
    }

    @Test func theReferenceImageGivesTheGoldenLogitsInEveryMode() throws {
        let packed = try Self.bytes("model.csd")
        let image = Aligned(count: packed.count, copying: packed)
        let inputs = try Self.bytes("inputs.u8")
        let arena = Aligned(count: 57_152)  // the spiking need, the larger one (fmnist_tiny.h)
        let runs: [(file: String, delay: Int?)] = [("fused.logits.i32", nil), ("spiking_D0.logits.i32", 0),
                                                   ("spiking_D3.logits.i32", 3), ("spiking_D7.logits.i32", 7)]
        let pixels = 784, classes = 10, count = inputs.count / pixels
        #expect(count == 6 && inputs.count == count * pixels)
        for run in runs {
            let expected = try Self.bytes(run.file).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            #expect(expected.count == count * classes)
            for i in 0..<count {
                var logits = [Int32](repeating: 0, count: classes)
                let predicted = try inputs.withUnsafeBufferPointer { all in
                    try logits.withUnsafeMutableBufferPointer { out in
                        try classify(image: UnsafeRawBufferPointer(image.view(packed.count)),
                                     pixels: UnsafeBufferPointer(rebasing: all[(i * pixels)..<((i + 1) * pixels)]),
                                     delay: run.delay, arena: arena.view(57_152), logits: out)
                    }
                }
                let golden = Array(expected[(i * classes)..<((i + 1) * classes)])
                #expect(logits == golden, "\(run.file) image \(i)")
                #expect(predicted == golden.indices.max(by: { golden[$0] < golden[$1] || (golden[$0] == golden[$1] && $0 > $1) }))
            }
        }
    }

    @Test func imageArenaAndRunStatuses() throws {
        let packed = try Self.bytes("model.csd")
        let storage = Aligned(count: packed.count + 1, copying: packed)
        let bytes = UnsafeRawBufferPointer(storage.view(packed.count))
        func status(_ body: () throws(CSDStatus) -> Void) -> CSDStatus {
            do throws(CSDStatus) { try body(); return .ok } catch { return error }
        }
        // the image: what csd_model_check returns, in its order
        #expect(status { () throws(CSDStatus) in _ = try ModelImage(checking: UnsafeRawBufferPointer(start: nil, count: 0)) } == .nullArgument)
        #expect(status { () throws(CSDStatus) in _ = try ModelImage(checking: UnsafeRawBufferPointer(storage.view(packed.count, offset: 1))) }
                == .imageAlignment)
        #expect(status { () throws(CSDStatus) in _ = try ModelImage(checking: UnsafeRawBufferPointer(rebasing: bytes[0..<100])) } == .tooSmall)
        #expect(status { () throws(CSDStatus) in _ = try ModelImage(checking: UnsafeRawBufferPointer(rebasing: bytes[0..<(packed.count - 1)])) }
                == .truncated)
        let image = try ModelImage(checking: bytes)
        #expect(image.arenaBytes(.fused) == 16_304 && image.arenaBytes(.spiking) == 57_152)  // fmnist_tiny.h
        #expect(image.inputBytes == 784 && image.classes == 10 && image.opCount == 27)
        #expect(image.header.timeSteps == 7 && image.header.delay == 7)
        storage.buffer[40] ^= 1  // inside the CRC's span
        #expect(status { () throws(CSDStatus) in _ = try ModelImage(checking: bytes) } == .crc)
        storage.buffer[40] ^= 1

        // the arena: the exact need is enough, a byte less is not; 16-byte aligned. A spiking engine at the
        // image's D = T takes the count path, in the fused plan's buffers: the fused need is its need.
        let arena = Aligned(count: 57_152 + 16)
        for mode in [ExecutionMode.fused, .spiking] {
            let need = image.arenaBytes(mode)
            #expect(status { () throws(CSDStatus) in
                _ = try Engine(image: image, arena: arena.view(image.arenaBytes(.fused) - 1), mode: mode)
            } == .arenaTooSmall)
            #expect(status { () throws(CSDStatus) in _ = try Engine(image: image, arena: arena.view(need - 1), mode: .spiking, delay: 6) }
                    == .arenaTooSmall)
            #expect(status { () throws(CSDStatus) in
                _ = try Engine(image: image, arena: arena.view(need - 1), mode: .spiking, countPath: false)
            } == .arenaTooSmall)
            #expect(status { () throws(CSDStatus) in _ = try Engine(image: image, arena: arena.view(need, offset: 8), mode: mode) } == .arenaAlignment)
            #expect(status { () throws(CSDStatus) in _ = try Engine(image: image, arena: UnsafeMutableRawBufferPointer(start: nil, count: 0), mode: mode) }
                    == .nullArgument)
            #expect(status { () throws(CSDStatus) in _ = try Engine(image: image, arena: arena.view(need), mode: mode) } == .ok)
        }

        // spiking in the fused arena: the count path runs (D = T), with the full arena's logits; the event
        // path's settings are refused and leave the engine as it was
        var small = try Engine(image: image, arena: arena.view(image.arenaBytes(.fused)), mode: .spiking)
        #expect(small.usesCountPath)
        #expect(status { () throws(CSDStatus) in try small.setDelay(6) } == .arenaTooSmall && small.delay == 7)
        #expect(status { () throws(CSDStatus) in try small.setCountPath(false) } == .arenaTooSmall && small.countPath)
        let full = Aligned(count: 57_152)
        let big = try Engine(image: image, arena: full.view(57_152), mode: .spiking)
        var fromSmall = [Int32](repeating: 0, count: 10), fromBig = fromSmall
        let input = (0..<784).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        try input.withUnsafeBufferPointer { px in
            try fromSmall.withUnsafeMutableBufferPointer { try small.run(input: px, logits: $0) }
            try fromBig.withUnsafeMutableBufferPointer { try big.run(input: px, logits: $0) }
        }
        #expect(fromSmall == fromBig && fromSmall.contains { $0 != 0 })

        // the delay and the run's lengths
        var engine = try Engine(image: image, arena: arena.view(57_152), mode: .spiking)
        #expect(engine.delay == 7)
        #expect(status { () throws(CSDStatus) in try engine.setDelay(8) } == .delay && engine.delay == 7)
        #expect(status { () throws(CSDStatus) in try engine.setDelay(0) } == .ok && engine.delay == 0)
        let pixels = [UInt8](repeating: 9, count: 785)
        var logits = [Int32](repeating: 0, count: 11)
        let run = { (p: Int, l: Int) -> CSDStatus in
            pixels.withUnsafeBufferPointer { px in
                logits.withUnsafeMutableBufferPointer { out in
                    status { () throws(CSDStatus) in try engine.run(input: UnsafeBufferPointer(rebasing: px[0..<p]),
                                            logits: UnsafeMutableBufferPointer(rebasing: out[0..<l])) }
                }
            }
        }
        #expect(run(783, 10) == .inputLength && run(785, 10) == .inputLength && run(0, 10) == .inputLength)
        #expect(run(784, 9) == .outputLength && run(784, 0) == .outputLength)
        #expect(run(784, 10) == .ok && run(784, 11) == .ok)
        var ops = 0
        try pixels.withUnsafeBufferPointer { px in
            try logits.withUnsafeMutableBufferPointer { out in
                try engine.run(input: UnsafeBufferPointer(rebasing: px[0..<784]), logits: out,
                               observe: { index, stats in
                                   #expect(index == ops && stats.kind >= 1 && stats.kind <= 7)
                                   ops += 1
                               })
            }
        }
        #expect(ops == image.opCount && logits[10] == 0)  // only `classes` logits are written
    }

    /// The statuses are csd.h's CSD_E_* numbers, each with its own description (csd_status_str's).
    @Test func everyStatusHasTheHeadersNumberAndADescription() {
        let table: [(CSDStatus, Int32, String)] = [
            (.ok, 0, "ok"), (.nullArgument, -1, "null argument"), (.tooSmall, -2, "image smaller than a header"),
            (.badMagic, -3, "bad magic (not a .csd image)"), (.formatVersion, -4, "unsupported format version"),
            (.mathVersion, -5, "unsupported math version"), (.headerSize, -6, "bad header size"),
            (.truncated, -7, "image truncated or sizes inconsistent"), (.crc, -8, "CRC-32 mismatch"),
            (.opTable, -9, "bad op table layout"), (.reserved, -10, "reserved field not zero"),
            (.metadata, -11, "bad model metadata"), (.opKind, -12, "unknown op kind"), (.opFields, -13, "bad op fields"),
            (.shape, -14, "bad or unchained shape"), (.tensorBounds, -15, "tensor out of bounds or unaligned"),
            (.arenaPlan, -16, "bad arena plan"), (.arenaBytes, -17, "arena size mismatch"),
            (.macs, -18, "MAC count mismatch"), (.threshold, -19, "threshold below 1"),
            (.imageAlignment, -20, "image not 16-byte aligned"), (.arenaAlignment, -21, "arena not 16-byte aligned"),
            (.arenaTooSmall, -22, "arena too small"), (.mode, -23, "unknown execution mode"),
            (.delay, -24, "delay exceeds T"), (.inputLength, -25, "input length is not C*H*W"),
            (.outputLength, -26, "logits buffer smaller than classes"), (.session, -27, "session not initialized"),
            (.arenaEnd, -28, "buffer ends past the arena"), (.statsAlignment, -29, "stats array not 4-byte aligned"),
            (.path, -30, "unknown spiking path"),
        ]
        for (i, (status, code, text)) in table.enumerated() {
            #expect(status.rawValue == code && code == -Int32(i))
            #expect(status.message == text && String(cString: status.text) == text)
            #expect(status.isOK == (code == 0) && status == CSDStatus(code))
        }
        #expect(CSDStatus(-31).message == "unknown status" && CSDStatus(1).message == "unknown status")
    }
}

import CSDFormat
import CSDRuntime

// libFuzzer target: image bytes -> model check -> session (small arena) -> run in both modes.
// Built with -sanitize=fuzzer,address by Tests/Fuzz/build.sh; a crash, an out-of-bounds access
// (AddressSanitizer), a leak or a hang is a finding.

/// Runs of images bigger than this are skipped (validation still runs): keeps executions fast.
let maxArena = 256 * 1024
let maxMacs: UInt32 = 2_000_000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    // A 16-byte aligned copy, as the runtime requires; exactly `size` bytes so ASan sees overreads.
    let image = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
    defer { image.deallocate() }
    if size > 0 { image.copyMemory(from: UnsafeRawBufferPointer(start: data, count: size)) }
    let view = UnsafeRawBufferPointer(rebasing: image[0..<size])
    let model: ModelImage
    do throws(CSDStatus) { model = try ModelImage(validating: view) } catch { return 0 }
    let h = model.header
    guard h.macs <= maxMacs else { return 0 }
    for mode in [ExecutionMode.fused, ExecutionMode.spiking] {
        let need = Int(h.arenaBytes(mode))
        guard need <= maxArena else { continue }
        let arena = UnsafeMutableRawBufferPointer.allocate(byteCount: max(need, 1), alignment: 16)
        defer { arena.deallocate() }
        let pixelCount = Int(h.inputChannels) * Int(h.inputHeight) * Int(h.inputWidth)
        let pixels = UnsafeMutablePointer<UInt8>.allocate(capacity: max(pixelCount, 1))
        defer { pixels.deallocate() }
        for i in 0..<pixelCount { pixels[i] = UInt8(truncatingIfNeeded: i &* 37 &+ size) }
        let logits = UnsafeMutablePointer<Int32>.allocate(capacity: Int(h.classes))
        defer { logits.deallocate() }
        do throws(CSDStatus) {
            var engine = try Engine(image: model, arena: UnsafeMutableRawBufferPointer(rebasing: arena[0..<need]), mode: mode)
            try engine.setDelay(size % (Int(h.timeSteps) + 1))
            engine.run(pixels: pixels, logits: logits)
        } catch {
            continue
        }
    }
    return 0
}

/// Mutates like libFuzzer, then (three times in four) recomputes the CRC so mutations reach past the CRC check.
@_cdecl("LLVMFuzzerCustomMutator")
public func mutate(_ data: UnsafeMutablePointer<UInt8>, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    let n = LLVMFuzzerMutate(data, size, maxSize)
    if n >= ImageHeader.size && seed % 4 != 0 {
        let buffer = UnsafeMutableRawBufferPointer(start: data, count: n)
        let crc = CRC32.image(UnsafeRawBufferPointer(buffer))
        buffer.setU32(ImageHeader.crcOffset, crc)
    }
    return n
}

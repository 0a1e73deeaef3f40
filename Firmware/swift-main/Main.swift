// Bare-metal firmware whose main is Swift: the packed model on the golden images through the
// runtime's Swift API (docs/SWIFT_API.md), in the four passes of the C firmware
// (Firmware/common/main.c): fused, spiking at the golden delay (D = T: the count path),
// spiking at the event delay (D < T: the per-spike event path) and spiking at the golden delay
// on the event path (`Engine.setCountPath(false)`). Every logit of every pass is
// compared with the NumPy reference's (golden.h, through data.c); the exit status (semihosting)
// is 0 only if all are equal.
//
// C supplies only the reset code and vector table (mps2-an386/startup.S), the board's UART and
// exit (mps2-an386/board.c), memset/memcpy (common/libc.c) and data (data.c: the model image,
// the arena, the golden data). Embedded Swift, built heap-free (-no-allocations) by
// Toolchain/cross/build-runtime.sh against the runtime's modules.
//
// The output is the C firmware's line format, so Firmware/common/run.py runs it under QEMU with
// the instruction-counting plugin: "result:" lines, the per-op statistics of image 0, and the
// counter's markers (csd_bench_begin / csd_bench_end around each measured run, csd_bench_mark
// before the statistics run of image 0 and after each of its ops), in main.c's order.

import CSDRuntime
import SwiftMainSupport

// MARK: - markers for the instruction counter

/// What the markers write: a public global that each call changes (never a dead store, never a
/// call that can be dropped), by a different amount per marker (three distinct bodies). The counter
/// watches their entry addresses, which run.py reads from the ELF by these symbol names.
nonisolated(unsafe) public var csdBenchPhase: UInt32 = 0
@_silgen_name("csd_bench_begin") @inline(never) public func benchBegin() { csdBenchPhase &+= 1 }
@_silgen_name("csd_bench_end") @inline(never) public func benchEnd() { csdBenchPhase &+= 2 }
@_silgen_name("csd_bench_mark") @inline(never) public func benchMark() { csdBenchPhase &+= 3 }

/// The observer of the statistics run: only a mark (its own cost is calibrated by two calls).
@inline(never) func markOp(_ index: Int, _ stats: OpStats) { benchMark() }

// MARK: - output (UART, no formatting library: nothing here allocates)

func put(_ s: StaticString) {
    var p = s.utf8Start
    let end = p + s.utf8CodeUnitCount
    while p != end {
        board_putc(CChar(truncatingIfNeeded: p.pointee))
        p += 1
    }
}

/// A NUL-terminated C string.
func putC(_ s: UnsafePointer<CChar>) {
    var p = s
    while p.pointee != 0 {
        board_putc(p.pointee)
        p += 1
    }
}

func put(_ v: UInt32) {
    if v >= 10 { put(v / 10) }
    board_putc(CChar(truncatingIfNeeded: 48 + v % 10))
}

func put(_ v: Int32) {
    if v < 0 { board_putc(45) }  // '-'
    put(v.magnitude)
}

func put(_ v: Int) { put(Int32(truncatingIfNeeded: v)) }

/// " key=value": the fields run.py parses.
func put(_ key: StaticString, _ v: UInt32) {
    board_putc(32)
    put(key)
    board_putc(61)  // '='
    put(v)
}

func put(_ key: StaticString, _ v: Int) { put(key, UInt32(truncatingIfNeeded: v)) }

func newline() { board_putc(10) }

func fail(_ what: StaticString, _ status: CSDStatus) -> Never {
    put("error: ")
    put(what)
    put(": ")
    putC(status.text)
    put(" (")
    put(status.rawValue)
    put(")")
    newline()
    board_exit(1)
}

func opName(_ kind: UInt32) -> StaticString {
    switch kind {
    case 1: return "conv3x3"
    case 2: return "linear"
    case 3: return "maxpool"
    case 4: return "stream_neuron"
    case 5: return "attn_scores"
    case 6: return "attn_values"
    case 7: return "classifier"
    default: return "?"
    }
}

func className(_ k: Int) -> StaticString {
    switch k {
    case 0: return "T-shirt/top"
    case 1: return "Trouser"
    case 2: return "Pullover"
    case 3: return "Dress"
    case 4: return "Coat"
    case 5: return "Sandal"
    case 6: return "Shirt"
    case 7: return "Sneaker"
    case 8: return "Bag"
    case 9: return "Ankle boot"
    default: return "?"
    }
}

// MARK: - the passes

/// The stack region's untouched paint (startup.S paints it before main): the bytes ever used.
func stackHighWater(_ data: fw_data_t) -> Int {
    var p = data.stack_bottom!
    let top = data.stack_top!
    while p < top && p.pointee == CSD_STACK_PAINT { p += 1 }
    return UnsafeRawPointer(top) - UnsafeRawPointer(p)
}

/// The most ops whose statistics the firmware keeps (a stack buffer; the reference model has 27).
let maxOps = 48
/// The most classes (the logits live in a stack buffer).
let maxClasses = 16

/// One pass over the golden images: an engine in `mode` (at `delay` when spiking; on the per-spike event
/// path at every delay when `eventPath`), the statistics
/// run of image 0 (per-op marks), then every image between the begin / end markers. Prints the
/// C firmware's lines; returns whether every logit (statistics run included) equals `expected`.
func runPass(_ name: StaticString, _ mode: ExecutionMode, delay: Int, eventPath: Bool = false,
             expected: UnsafePointer<Int32>, image: ModelImage, data: fw_data_t) -> Bool {
    let arena = UnsafeMutableRawBufferPointer(start: data.arena, count: Int(data.arena_size))
    let engine: Engine
    do throws(CSDStatus) {
        var e = try Engine(image: image, arena: arena, mode: mode)
        if mode == .spiking { try e.setDelay(delay) }
        try e.setCountPath(!eventPath)
        engine = e
    } catch {
        fail("Engine", error)
    }
    let classes = image.classes, pixels = image.inputBytes, count = Int(data.count)
    return withUnsafeTemporaryAllocation(of: Int32.self, capacity: maxClasses) { logits in
        withUnsafeTemporaryAllocation(of: OpStats.self, capacity: maxOps) { stats in
            func input(_ i: Int) -> UnsafeBufferPointer<UInt8> {
                UnsafeBufferPointer(start: data.inputs! + i * pixels, count: pixels)
            }
            func same(_ i: Int) -> Bool {
                var equal = true
                for k in 0..<classes { equal = equal && logits[k] == expected[i * classes + k] }
                return equal
            }

            // Statistics and per-op instruction counts of image 0, outside the measured pairs.
            benchMark()
            do throws(CSDStatus) {
                try engine.run(input: input(0), logits: logits, observe: { index, s in
                    if index < maxOps { stats[index] = s }
                    markOp(index, s)
                })
            } catch {
                fail("Engine.run", error)
            }
            let statsExact = same(0)
            var macs: UInt32 = 0, synapticOps: UInt32 = 0, spikes: UInt32 = 0
            put(name)
            put(" stats of image 0 (per op):")
            newline()
            for i in 0..<image.opCount {
                let s = stats[i]
                put("  op ")
                put(i)
                put(" ")
                put(opName(s.kind))
                put("neurons", s.neurons)
                put("spikes", s.spikes)
                put("synaptic_ops", s.synapticOps)
                put("macs", s.macs)
                newline()
                macs &+= s.macs
                synapticOps &+= s.synapticOps
                spikes &+= s.spikes
            }

            var correct = 0, exact = 0
            for i in 0..<count {
                benchBegin()
                do throws(CSDStatus) {
                    try engine.run(input: input(i), logits: logits)
                } catch {
                    fail("Engine.run", error)
                }
                benchEnd()
                var predicted = 0  // the largest logit, the first on ties
                for k in 1..<classes where logits[k] > logits[predicted] { predicted = k }
                let equal = same(i)
                if predicted == Int(data.labels![i]) { correct += 1 }
                if equal { exact += 1 }
                if i < 3 || !equal {
                    put(name)
                    put(" image ")
                    put(i)
                    put(": class ")
                    put(predicted)
                    if data.labelled != 0 {
                        put(" label ")
                        put(Int(data.labels![i]))
                        put(" (")
                        put(classes == 10 ? className(predicted) : "?")
                        put(")")
                    }
                    put(equal ? " logits" : " LOGITS DIFFER FROM GOLDEN")
                    for k in 0..<classes {
                        board_putc(32)
                        put(logits[k])
                    }
                    newline()
                }
            }
            put("result: mode=")
            put(name)
            put("delay", mode == .spiking ? delay : 0)
            put("images", count)
            put("labelled", Int(data.labelled))
            put("correct", correct)
            put("bit_exact", exact)
            put("stats_run_exact", statsExact ? 1 : 0)
            put("macs", macs)
            put("synaptic_ops", synapticOps)
            put("spikes", spikes)
            newline()
            return exact == count && statsExact
        }
    }
}

@main
struct SwiftMain {
    static func main() {
        board_init()
        let data = fw_data
        put("csd firmware: main=swift board=")
        putC(data.board_name)
        put(" cpu=")
        putC(data.board_cpu)
        newline()

        let image: ModelImage
        do throws(CSDStatus) {
            image = try ModelImage(checking: UnsafeRawBufferPointer(start: data.image, count: Int(data.image_size)))
        } catch {
            fail("ModelImage(checking:)", error)
        }
        let h = image.header
        guard image.classes <= maxClasses, image.classes == Int(data.classes), image.opCount <= maxOps,
              image.inputBytes == Int(data.pixels) else {
            fail("model does not match golden.h", .metadata)
        }
        put("model: image_bytes=")
        put(h.imageBytes)
        put(" ops=")
        put(image.opCount)
        put(" input=")
        put(UInt32(h.inputChannels))
        board_putc(120)  // 'x'
        put(UInt32(h.inputHeight))
        board_putc(120)
        put(UInt32(h.inputWidth))
        put(" classes=")
        put(image.classes)
        put(" tokens=")
        put(UInt32(h.tokens))
        put(" width=")
        put(UInt32(h.width))
        put(" T=")
        put(UInt32(h.timeSteps))
        put(" L=")
        put(UInt32(h.levels))
        put(" D=")
        put(UInt32(h.delay))
        newline()
        put("result: model")
        put("image_bytes", h.imageBytes)
        put("tensor_bytes", h.tensorBytes)
        put("macs", h.macs)
        put("arena_fused", image.arenaBytes(.fused))
        put("arena_spiking", image.arenaBytes(.spiking))
        put("arena_static", Int(data.arena_size))
        put("images", Int(data.count))
        newline()

        // Pair 0: an empty begin / end, whose count run.py subtracts (the markers' own cost).
        benchBegin()
        benchEnd()
        // Marks 0-2: the cost of an observer call that only marks (mark 2 - mark 1).
        benchMark()
        markOp(0, OpStats())
        markOp(0, OpStats())

        var ok = runPass("fused", .fused, delay: 0, expected: data.logits_fused, image: image, data: data)
        ok = runPass("spiking", .spiking, delay: Int(data.delay), expected: data.logits_spiking, image: image, data: data) && ok
        ok = runPass("event", .spiking, delay: Int(data.event_delay), expected: data.logits_event, image: image, data: data) && ok
        ok = runPass("spiking_event", .spiking, delay: Int(data.delay), eventPath: true, expected: data.logits_spiking,
                     image: image, data: data) && ok

        put("result: stack")
        put("high_water", stackHighWater(data))
        put("size", UnsafeRawPointer(data.stack_top!) - UnsafeRawPointer(data.stack_bottom!))
        newline()
        put(ok ? "PASS: every logit equals the golden value in every pass (Swift main)"
               : "FAIL: logits differ from golden (Swift main)")
        newline()
        board_exit(ok ? 0 : 1)
    }
}

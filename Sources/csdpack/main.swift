import ArgumentParser
import CSDFormat
import CSDPack
import Foundation

struct CSDPackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csdpack",
        abstract: "Pack a trained CSDformer export into a verified, flash-resident integer image.",
        subcommands: [Convert.self, Inspect.self, Verify.self, Trace.self])
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("csdpack: error: \(message)\n".utf8))
    Foundation.exit(1)
}

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Convert model.safetensors + model.json into a .csd image.")

    @Argument(help: "The export's safetensors file.") var model: String
    @Option(help: "The export's model.json.") var config: String
    @Option(name: .customLong("time-steps"), help: "T (default: the export's).") var timeSteps: Int?
    @Option(help: "L (default: the export's).") var levels: Int?
    @Option(help: "Default DIF delay D stored in the image (default: T).") var delay: Int?
    @Option(name: .short, help: "Output image path.") var output: String
    @Option(name: .customLong("c-source"), help: "Also write the image as a C source file.") var cSource: String?
    @Option(name: .customLong("c-header"), help: "Also write a C header (NAME_size, NAME_ARENA_BYTES_*).") var cHeader: String?
    @Option(help: "C symbol of the image (default: csd_model).") var symbol: String = "csd_model"
    @Flag(help: "Pack with --time-steps or --levels other than the trained ones (it costs accuracy).") var force = false
    @Flag(name: .customLong("low-ram"),
          help: "Plan attention head by head in the fused plan (docs/FORMAT.md, \"Attention units\"): the smallest fused arena, for more instructions (the stream neuron runs again per head).")
    var lowRAM = false

    func run() throws {
        guard CSource.isIdentifier(symbol) else { fail("--symbol \(symbol): not a C identifier") }
        guard (cSource == nil) == (cHeader == nil) else { fail("--c-source and --c-header go together") }
        let started = Date()
        let result: PackResult
        let trained: ExportModel
        do {
            result = try Packer.convert(weightsPath: model, configPath: config,
                                        options: ConvertOptions(timeSteps: timeSteps, levels: levels, delay: delay, lowRAM: lowRAM))
            trained = try ExportModel.read(path: config)
        } catch {
            fail(error.message)
        }
        // T and L other than the trained ones make a valid image of another network: refused unless --force
        for (flag, given, value) in [("--time-steps", timeSteps, trained.timeSteps), ("--levels", levels, trained.levels)] {
            guard let given, given != value else { continue }
            let name = flag == "--levels" ? "L" : "T"
            let cost = "the integer network then differs from the one trained (on the reference model, L 7 -> 3 "
                + "took the accuracy from 92.2% to 84.4%); check it with csdpack verify"
            guard force else { fail("\(flag) \(given): the model was trained with \(name) = \(value); \(cost). Pass --force to pack it anyway") }
            FileHandle.standardError.write(Data("csdpack: warning: \(flag) \(given): the model was trained with \(name) = \(value); \(cost)\n".utf8))
        }
        var files: [(path: String, data: Data)] = [(output, Data(result.image))]
        if let c = cSource, let h = cHeader {
            let headerName = (h as NSString).lastPathComponent
            files.append((c, Data(CSource.source(image: result.image, symbol: symbol, headerName: headerName).utf8)))
            files.append((h, Data(CSource.header(result: result, symbol: symbol).utf8)))
        }
        do { try AtomicFiles.write(files) } catch { fail(error.message) }
        let worst = result.conversion.ops.compactMap(\.precision).max() ?? 0
        let h = result.conversion.header
        print("""
        wrote \(output): \(result.image.count) bytes, \(result.conversion.ops.count) ops, T=\(h.timeSteps) L=\(h.levels) D=\(h.delay)
        arena bytes: fused \(result.fused.arenaBytes) (live set \(result.fused.liveBytes)), spiking \(result.spiking.arenaBytes) (live set \(result.spiking.liveBytes)); buffers and kernel scratch
        worst threshold rounding: \(String(format: "%.2e", worst)) relative; converted in \(String(format: "%.2f", Date().timeIntervalSince(started))) s
        """)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate an image and print its header and op table (with --analyze: flash, RAM, MACs, synaptic operations and estimated Cortex-M4 instructions per op).")

    @Argument(help: "The .csd image.") var image: String
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Per op: flash bytes, live arena bytes per mode, MACs, synaptic operations, estimated Cortex-M4 instructions.")
    var analyze = false
    @Option(help: "With --analyze: the data set (fashion-mnist or mnist) whose test images give the synaptic operations.")
    var data: String?
    @Option(name: .customLong("data-dir"), help: "With --data: its folder (default for fashion-mnist: /usr/share/datasets/fashion-mnist).")
    var dataDir: String?
    @Option(help: "With --data: the first N test images (default 100).") var limit: Int = 100
    @Option(help: "With --analyze: the spiking delay D (default: the image's).") var delay: Int?

    func validate() throws {
        if !analyze, data != nil || delay != nil { throw ValidationError("--data and --delay need --analyze") }
        if data == nil, dataDir != nil { throw ValidationError("--data-dir needs --data") }
        guard limit >= 1 else { throw ValidationError("--limit \(limit): need at least 1 image") }
    }

    func run() throws {
        let data: Data
        do throws(PackError) { data = try Files.read(image) } catch { fail(error.message) }
        let report = InspectReport.make([UInt8](data))
        guard analyze, report.status == 0 else {
            emit(json: report.json, text: report.text)
            if report.status != 0 { Foundation.exit(2) }
            return
        }
        let t = Int(report.header.timeSteps)
        let d = delay ?? Int(report.header.delay)
        guard (0...t).contains(d) else { fail("--delay \(d): need 0...\(t) (the image's T)") }
        var spiking: Verifier.ModeResult? = nil
        var sample: (data: String, images: Int)? = nil
        if let name = self.data {
            do throws(PackError) {
                let verifier = try Verifier(imageBytes: [UInt8](data))
                let set = try Dataset.loadTest(name, directory: dataDir)
                let n = min(limit, set.count)
                spiking = try verifier.run(set, count: n, mode: .spiking, delay: d)
                sample = (name, n)
            } catch { fail(error.message) }
        }
        let analysis = AnalyzeReport.make(report, delay: d, spiking: spiking, sample: sample)
        emit(json: analysis.json, text: analysis.text)
    }

    func emit(json object: [String: Any], text: String) {
        if json {
            let out = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: out, as: UTF8.self))
        } else {
            print(text, terminator: "")
        }
    }
}

/// The image and the data set it runs on (verify, trace).
struct ImageAndData: ParsableArguments {
    @Argument(help: "The .csd image.") var image: String
    @Option(help: "fashion-mnist or mnist (IDX test split).") var data: String = "fashion-mnist"
    @Option(name: .customLong("data-dir"), help: "Data set folder (default for fashion-mnist: /usr/share/datasets/fashion-mnist).")
    var dataDir: String?

    /// The validated image (in the host runtime) and the test split, or exit with the reason.
    func load() -> (Verifier, Dataset) {
        do throws(PackError) {
            let bytes = try Files.read(image)
            return (try Verifier(imageBytes: [UInt8](bytes)), try Dataset.loadTest(data, directory: dataDir))
        } catch { fail(error.message) }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an image over a data set's test split with the runtime's host build.")

    @OptionGroup var input: ImageAndData
    @Option(help: "First N test images only.") var limit: Int?
    @Option(help: "fused, spiking or both.") var mode: String = "both"
    @Option(help: "DIF delay for spiking mode (default: the image's).") var delay: Int?
    @Option(help: "Predictions .npy of the fake-quant model (agreement is reported).") var reference: String?
    @Flag(name: .customLong("sweep-delay"), help: "Spiking accuracy for every D in 0...T.") var sweepDelay = false
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Write each mode's logits (int32 [N][classes]) and per-op spikes (uint32 [N][ops]) into this folder.")
    var dump: String?
    @Option(help: "Threads, each with its own arena over disjoint images (default: one per core); results are the same for any count.")
    var threads: Int?

    func validate() throws {
        if let n = threads, n < 1 { throw ValidationError("--threads \(n): need at least 1") }
    }

    func run() throws {
        guard ["fused", "spiking", "both"].contains(mode) else { fail("--mode \(mode): use fused, spiking or both") }
        let (verifier, dataset) = input.load()
        var referencePredictions: [Int]? = nil
        do throws(PackError) {
            if let r = reference { referencePredictions = try Npy.readIntegers(path: r) }
        } catch { fail(error.message) }
        let count = min(limit ?? dataset.count, dataset.count)
        guard count > 0 else { fail("--limit: no images to run") }
        if let r = referencePredictions, r.count < count { fail("--reference has \(r.count) predictions, need \(count)") }
        let t = Int(verifier.image.header.timeSteps)
        let d = delay ?? Int(verifier.image.header.delay)
        guard (0...t).contains(d) else { fail("--delay \(d): the image has T = \(t); use 0...\(t)") }
        // progress: a line updated in place on a terminal; without one, one whole line per mode (not with --json)
        let terminal = isatty(2) != 0
        func runMode(_ m: ExecutionMode, _ delay: Int) -> Verifier.ModeResult {
            let label = m == .fused ? "fused" : "spiking D=\(delay)"
            do throws(PackError) {
                let r = try verifier.run(dataset, count: count, mode: m, delay: delay, threads: threads, progress: { n in
                    if terminal { FileHandle.standardError.write(Data("\r\(label): \(n)/\(count) images".utf8)) }
                })
                if terminal {
                    FileHandle.standardError.write(Data("\n".utf8))
                } else if !json {
                    FileHandle.standardError.write(Data("\(label): \(count)/\(count) images\n".utf8))
                }
                return r
            } catch { fail(error.message) }
        }
        var results: [Verifier.ModeResult] = []
        if mode != "spiking" { results.append(runMode(.fused, t)) }
        if mode != "fused" { results.append(runMode(.spiking, d)) }
        var sweep: [(Int, Verifier.ModeResult)] = []
        if sweepDelay { for dd in 0...t { sweep.append((dd, runMode(.spiking, dd))) } }
        if let dir = dump {
            var files: [(path: String, data: Data)] = []
            for r in results + sweep.map(\.1) {
                let stem = (dir as NSString).appendingPathComponent(r.mode == .fused ? "fused" : "spiking_D\(r.delay)")
                files.append((stem + ".logits.i32", r.logits.withUnsafeBytes { Data($0) }))
                files.append((stem + ".spikes.u32", r.imageOpSpikes.withUnsafeBytes { Data($0) }))
            }
            do throws(PackError) { try AtomicFiles.write(files) } catch { fail(error.message) }
        }

        func agreement(_ r: Verifier.ModeResult) -> Double? {
            guard let ref = referencePredictions else { return nil }
            return Double(zip(r.predictions, ref.prefix(count)).filter { $0 == $1 }.count) / Double(count)
        }
        var mismatches: Int? = nil
        if results.count == 2 {
            let classes = Int(verifier.image.header.classes)
            mismatches = (0..<count).filter { i in
                results[0].logits[(i * classes)..<((i + 1) * classes)] != results[1].logits[(i * classes)..<((i + 1) * classes)]
            }.count
        }
        let spikingResult = results.first { $0.mode == .spiking }
        let first = results[0]
        func modeJSON(_ r: Verifier.ModeResult) -> [String: Any] {
            var o: [String: Any] = ["mode": r.mode == .fused ? "fused" : "spiking", "delay": r.delay,
                                    "accuracy": Double(r.correct) / Double(count),
                                    "mean_spikes": Double(r.spikes) / Double(count),
                                    "mean_synaptic_ops": Double(r.synapticOps) / Double(count),
                                    "mean_macs": Double(r.macs) / Double(count),
                                    "energy_estimate_pj": r.energyEstimatePicojoules,
                                    "energy_estimate_pj_per_op": r.opEnergyEstimatePicojoules]
            if let a = agreement(r) { o["reference_agreement"] = a }
            return o
        }
        if json {
            var o: [String: Any] = [
                "samples": count,
                "accuracy": Double(first.correct) / Double(count),
                "reference_agreement": agreement(first) as Any? ?? NSNull(),
                "fused_spiking_mismatches": mismatches as Any? ?? NSNull(),
                "mean_spikes": Double((spikingResult ?? first).spikes) / Double(count),
                "mean_synaptic_ops": spikingResult.map { Double($0.synapticOps) / Double(count) } as Any? ?? NSNull(),
                "modes": results.map(modeJSON),
            ]
            if sweepDelay { o["delay_sweep"] = sweep.map { modeJSON($0.1) } }
            let out = try JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: out, as: UTF8.self))
        } else {
            print("samples: \(count)")
            for r in results {
                var line = String(format: "%@ (D=%d): accuracy %.4f, mean spikes %.0f, mean synaptic ops %.0f, mean MACs %.0f, "
                                  + "energy estimate %.1f nJ",
                                  r.mode == .fused ? "fused" : "spiking", r.delay, Double(r.correct) / Double(count),
                                  Double(r.spikes) / Double(count), Double(r.synapticOps) / Double(count), Double(r.macs) / Double(count),
                                  r.energyEstimatePicojoules / 1000)
                if let a = agreement(r) { line += String(format: ", reference agreement %.4f", a) }
                print(line)
            }
            if let m = mismatches { print("fused/spiking logit mismatches: \(m) of \(count) images") }
            print(String(format: "energy estimate: per inference, %.1f pJ per MAC and %.1f pJ per synaptic operation "
                         + "(45 nm CMOS, as the SNN literature counts; not a measurement of this runtime)",
                         EnergyEstimate.picojoulesPerMAC, EnergyEstimate.picojoulesPerAccumulate))
            for (dd, r) in sweep {
                print(String(format: "sweep D=%2d: accuracy %.4f, mean synaptic ops %.0f, energy estimate %.1f nJ", dd,
                             Double(r.correct) / Double(count), Double(r.synapticOps) / Double(count),
                             r.energyEstimatePicojoules / 1000)
                      + (agreement(r).map { String(format: ", reference agreement %.4f", $0) } ?? ""))
            }
        }
    }
}

struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the host runtime's per-op trace in the csd-trace line format (docs/VALIDATION.md).")

    @OptionGroup var input: ImageAndData
    @Option(help: "First test image index.") var index: Int = 0
    @Option(help: "Number of consecutive images.") var count: Int = 1
    @Option(help: "fused or spiking.") var mode: String = "fused"
    @Option(help: "DIF delay (spiking; default: the image's).") var delay: Int?
    @Flag(name: .customLong("with-data"), help: "Also print every op's output bytes in hex.") var withData = false

    func run() throws {
        guard mode == "fused" || mode == "spiking" else { fail("--mode \(mode): use fused or spiking") }
        let (verifier, dataset) = input.load()
        guard index >= 0, count >= 1, index + count <= dataset.count else { fail("--index/--count outside the \(dataset.count) test images") }
        let m: ExecutionMode = mode == "fused" ? .fused : .spiking
        let d = delay ?? Int(verifier.image.header.delay)
        for i in index..<(index + count) {
            let lines: [String]
            do throws(PackError) { lines = try verifier.traceLines(dataset, index: i, mode: m, delay: d, withData: withData) } catch {
                fail(error.message)
            }
            for line in lines { print(line) }
        }
    }
}

CSDPackCommand.main()

import ArgumentParser
import CSDPack
import Foundation

struct CSDPackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csdpack",
        abstract: "Pack a trained CSDformer export into a verified, flash-resident integer image.",
        subcommands: [Convert.self, Inspect.self])
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

    func run() throws {
        guard CSource.isIdentifier(symbol) else { fail("--symbol \(symbol): not a C identifier") }
        guard (cSource == nil) == (cHeader == nil) else { fail("--c-source and --c-header go together") }
        let started = Date()
        let result: PackResult
        do {
            result = try Packer.convert(weightsPath: model, configPath: config,
                                        options: ConvertOptions(timeSteps: timeSteps, levels: levels, delay: delay))
        } catch {
            fail(error.message)
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
        arena bytes: fused \(result.fused.arenaBytes) (live set \(result.fused.liveBytes)), spiking \(result.spiking.arenaBytes) (live set \(result.spiking.liveBytes))
        worst threshold rounding: \(String(format: "%.2e", worst)) relative; converted in \(String(format: "%.2f", Date().timeIntervalSince(started))) s
        """)
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate an image and print its header and op table.")

    @Argument(help: "The .csd image.") var image: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: image) else { fail("\(image): cannot read the file") }
        let report = InspectReport.make([UInt8](data))
        if json {
            let out = try JSONSerialization.data(withJSONObject: report.json, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: out, as: UTF8.self))
        } else {
            print(report.text, terminator: "")
        }
        if report.status != 0 { Foundation.exit(2) }
    }
}

CSDPackCommand.main()

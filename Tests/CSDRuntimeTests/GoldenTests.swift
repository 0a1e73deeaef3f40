import CSDFormat
import CSDPack
import CSDRuntime
import Foundation
import Testing

/// The committed golden data (Tests/TestData, generated from Tests/TestPlan/plan.json by the
/// NumPy reference): the Swift runtime must reproduce every logit of every run.
@Suite struct GoldenTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let data = root.appendingPathComponent("Tests/TestData")

    struct Run: Decodable { let mode: String; let delay: Int?; let file: String }
    struct Case: Decodable { let name: String; let count: Int; let classes: Int; let pixels: Int; let runs: [Run] }
    struct Manifest: Decodable { let cases: [Case] }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: data.appendingPathComponent("manifest.json")))
    }

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: data.appendingPathComponent(path)))
    }

    @Test func everyRunOfEveryCaseMatchesTheReference() throws {
        let m = try Self.manifest()
        #expect(m.cases.count >= 4)
        var runsChecked = 0
        for c in m.cases {
            runsChecked += try Self.checkRuns(of: c, on: try Harness(try Self.bytes("\(c.name)/model.csd")), label: c.name)
        }
        #expect(runsChecked >= 12)
    }

    /// Every run of case `c` on `harness`: each image's logits against the golden ones. Returns the runs checked.
    static func checkRuns(of c: Case, on harness: Harness, label: String) throws -> Int {
        let inputs = try bytes("\(c.name)/inputs.u8")
        #expect(inputs.count == c.count * c.pixels)
        for run in c.runs {
            let expected = try bytes(run.file).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }
            #expect(expected.count == c.count * c.classes)
            for i in 0..<c.count {
                let px = Array(inputs[(i * c.pixels)..<((i + 1) * c.pixels)])
                let out = try harness.run(px, mode: run.mode == "fused" ? .fused : .spiking, delay: run.delay)
                #expect(out.logits == Array(expected[(i * c.classes)..<((i + 1) * c.classes)]),
                        "\(label) \(run.mode) D=\(run.delay ?? -1) image \(i)")
            }
        }
        return c.runs.count
    }

    /// The reference export packed with attention units (`csdpack convert --low-ram`; docs/FORMAT.md,
    /// "Attention units").
    static func lowRAMImage() throws -> [UInt8] {
        let export = root.appendingPathComponent("Toolchain/models/fmnist-tiny")
        return try Packer.convert(weightsPath: export.appendingPathComponent("model.safetensors").path,
                                  configPath: export.appendingPathComponent("model.json").path,
                                  options: ConvertOptions(lowRAM: true)).image
    }

    /// Attention units change the order of evaluation only: the low-RAM image gives every golden logit of the
    /// reference model, in every run (fused, the count path, the event path).
    @Test func theLowRAMReferenceImageMatchesTheReference() throws {
        let bytes = try Self.lowRAMImage()
        let harness = try Harness(bytes)
        #expect((0..<harness.image.opCount).filter { harness.image.attentionUnit(containing: $0) == $0 } == [5, 15])
        #expect(harness.image.header.arenaBytes.0 < (try Harness(try Self.bytes("fmnist_tiny/model.csd"))).image.header.arenaBytes.0)
        let c = try #require(try Self.manifest().cases.first { $0.name == "fmnist_tiny" })
        #expect(try Self.checkRuns(of: c, on: harness, label: "low-RAM") >= 3)
    }

    @Test func packingTheReferenceExportReproducesTheGoldenImage() throws {
        let export = Self.root.appendingPathComponent("Toolchain/models/fmnist-tiny")
        let result = try Packer.convert(weightsPath: export.appendingPathComponent("model.safetensors").path,
                                        configPath: export.appendingPathComponent("model.json").path,
                                        options: ConvertOptions())
        #expect(result.image == (try Self.bytes("fmnist_tiny/model.csd")))
    }
}

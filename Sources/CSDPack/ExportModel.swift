import Foundation

/// Parses JSON text; a syntax error names the line and column (1-based) where the parser stopped.
enum JSONText {
    static func parse(_ data: Data, name: String) throws(PackError) -> Any {
        do { return try JSONSerialization.jsonObject(with: data) } catch {
            let detail = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? "\(error)"
            // Foundation says "... around character N." (a 0-based byte offset) or "... around line L, column C."
            if let r = detail.range(of: #"character \d+"#, options: .regularExpression),
               let offset = Int(detail[r].dropFirst("character ".count)) {
                let prefix = data.prefix(max(0, min(offset, data.count)))
                let line = prefix.filter { $0 == 0x0A }.count + 1
                let column = offset - (prefix.lastIndex(of: 0x0A).map { $0 - data.startIndex + 1 } ?? 0) + 1
                let what = detail.components(separatedBy: " around ").first ?? detail
                throw PackError("\(name): not valid JSON at line \(line), column \(column): \(what)")
            }
            throw PackError("\(name): not valid JSON: \(detail)")
        }
    }
}

/// A JSON value with its path, so every error names the field at fault.
struct JSONField {
    let value: Any
    let path: String

    func field(_ key: String) throws(PackError) -> JSONField {
        guard let dict = value as? [String: Any] else { throw PackError("\(path): expected an object, found \(found)") }
        guard let v = dict[key] else { throw PackError("\(path).\(key): missing") }
        return JSONField(value: v, path: "\(path).\(key)")
    }

    func optionalField(_ key: String) -> JSONField? {
        guard let dict = value as? [String: Any], let v = dict[key], !(v is NSNull) else { return nil }
        return JSONField(value: v, path: "\(path).\(key)")
    }

    var isNull: Bool { value is NSNull }

    /// The value as the JSON says it: `the string "7"`, `true`, `7.5`, `an object`...
    var found: String {
        switch value {
        case let s as String: return "the string \"\(s)\""
        case is NSNull: return "null"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case let b as Bool where type(of: value) == Bool.self: return b ? "true" : "false"
        default: return "\(value)"
        }
    }

    func string() throws(PackError) -> String {
        guard let s = value as? String else { throw PackError("\(path): expected a string, found \(found)") }
        return s
    }

    func int(_ range: ClosedRange<Int> = 0...65535) throws(PackError) -> Int {
        guard !(value is String), let n = value as? NSNumber, type(of: value) != Bool.self,
              n.doubleValue == n.doubleValue.rounded(), let i = Int(exactly: n.doubleValue), range.contains(i) else {
            throw PackError("\(path): expected an integer in \(range.lowerBound)...\(range.upperBound), found \(found)")
        }
        return i
    }

    func double() throws(PackError) -> Double {
        guard !(value is String), let n = value as? NSNumber, type(of: value) != Bool.self, n.doubleValue.isFinite else {
            throw PackError("\(path): expected a finite number, found \(found)")
        }
        return n.doubleValue
    }

    func array() throws(PackError) -> [JSONField] {
        guard let a = value as? [Any] else { throw PackError("\(path): expected an array, found \(found)") }
        return a.enumerated().map { JSONField(value: $0.element, path: "\(path)[\($0.offset)]") }
    }

    func ints(count: Int, _ range: ClosedRange<Int> = 0...65535) throws(PackError) -> [Int] {
        let a = try array()
        guard a.count == count else { throw PackError("\(path): expected \(count) integers, found \(a.count)") }
        var out: [Int] = []
        for f in a { out.append(try f.int(range)) }
        return out
    }
}

/// Tensor names of a linear (or conv) layer followed by BatchNorm.
public struct LinearBNNames {
    public var name: String
    public var weight: String
    public var bnWeight: String, bnBias: String, bnMean: String, bnVar: String

    init(_ f: JSONField) throws(PackError) {
        name = try f.field("name").string()
        weight = try f.field("weight").string()
        let bn = try f.field("bn")
        bnWeight = try bn.field("weight").string()
        bnBias = try bn.field("bias").string()
        bnMean = try bn.field("running_mean").string()
        bnVar = try bn.field("running_var").string()
    }
}

/// One layer of the export graph (docs/MODEL_EXPORT.md).
public enum ExportLayer {
    case conv(LinearBNNames, fromPixels: Bool, quant: String?, pool: Int, inShape: [Int], outShape: [Int])
    case tokens(posEmbed: String, tokens: Int, width: Int)
    case attention(name: String, heads: Int, headDim: Int, tokens: Int, quant: String,
                   q: LinearBNNames, k: LinearBNNames, v: LinearBNNames, proj: LinearBNNames,
                   qQuant: String, kQuant: String, vQuant: String, aQuant: String, oQuant: String)
    case mlp(name: String, quant: String, fc1: LinearBNNames, hiddenQuant: String, fc2: LinearBNNames, hidden: Int)
    case head(quant: String, weight: String, bias: String, classes: Int)
}

/// model.json, the parts the packer uses.
public struct ExportModel {
    public var datasetID: String
    public var inputShape: [Int]  // C, H, W
    public var classes: Int
    public var inputScale: Double
    public var inputMean: [Double]
    public var inputStd: [Double]
    public var timeSteps: Int
    public var levels: Int
    public var bnEps: Double
    public var layers: [ExportLayer]
    /// model.json's list of the safetensors file's tensors: name -> shape (all F32).
    public var tensorShapes: [String: [Int]]

    public static func read(path: String) throws(PackError) -> ExportModel {
        return try parse(try JSONText.parse(try Files.read(path), name: path), name: path)
    }

    public static func parse(_ json: Any, name: String) throws(PackError) -> ExportModel {
        let root = JSONField(value: json, path: name)
        let format = try root.field("format").string()
        guard format == "csdformer-export" else { throw PackError("\(name).format: \"\(format)\", expected \"csdformer-export\"") }
        let version = try root.field("version").int()
        guard version == 1 else { throw PackError("\(name).version: \(version), this packer reads version 1") }
        let phase = try root.field("phase").string()
        guard phase == "qat" else {
            throw PackError("\(name).phase: \"\(phase)\": only a QAT export (quantizers on, BN folded) can be packed")
        }
        let dataset = try root.field("dataset")
        let inputShape = try dataset.field("input_shape").ints(count: 3, 1...4096)
        let norm = try root.field("input_normalization")
        let scale = try norm.field("scale").double()
        guard scale > 0 else { throw PackError("\(norm.path).scale: must be > 0") }
        let means = try norm.field("mean").array().map { (f: JSONField) throws(PackError) -> Double in try f.double() }
        let stds = try norm.field("std").array().map { (f: JSONField) throws(PackError) -> Double in try f.double() }
        guard means.count == inputShape[0], stds.count == inputShape[0] else {
            throw PackError("\(norm.path): mean and std need one entry per input channel (\(inputShape[0]))")
        }
        guard means.allSatisfy({ $0 == 0 }) else {
            throw PackError("\(norm.path).mean: must be 0 (zero padding is pixel 0; fold a mean into the first BN instead)")
        }
        guard stds.allSatisfy({ $0 > 0 }) else { throw PackError("\(norm.path).std: must be > 0") }
        let t = try root.field("time_steps").int(1...16)
        let l = try root.field("levels").int(1...16)
        guard l <= t else { throw PackError("\(name).levels: \(l) exceeds time_steps \(t)") }
        var layers: [ExportLayer] = []
        for f in try root.field("graph").array() {
            layers.append(try parseLayer(f))
        }
        let classes = try dataset.field("classes").int(1...65535)
        var tensorShapes: [String: [Int]] = [:]
        let listed = try root.field("tensors")
        guard let entries = listed.value as? [String: Any] else { throw PackError("\(listed.path): expected an object, found \(listed.found)") }
        for key in entries.keys.sorted() {
            let entry = try listed.field(key)
            let dtype = try entry.field("dtype").string()
            guard dtype == "F32" else { throw PackError("\(entry.path).dtype: \"\(dtype)\", the packer reads F32") }
            tensorShapes[key] = try entry.field("shape").array().map { (f: JSONField) throws(PackError) -> Int in try f.int(0...Int(Int32.max)) }
        }
        try checkModelSection(root, inputShape: inputShape, classes: classes, timeSteps: t, levels: l, layers: layers)
        return ExportModel(
            datasetID: try dataset.field("id").string(), inputShape: inputShape,
            classes: classes, inputScale: scale, inputMean: means, inputStd: stds,
            timeSteps: t, levels: l, bnEps: try root.field("bn_eps").double(), layers: layers, tensorShapes: tensorShapes)
    }

    /// model.json's "model" (the training config) must describe the same network as the graph and the data set.
    static func checkModelSection(_ root: JSONField, inputShape: [Int], classes: Int, timeSteps: Int, levels: Int,
                                  layers: [ExportLayer]) throws(PackError) {
        guard let model = root.optionalField("model") else { return }
        func expect(_ key: String, _ value: Int, _ what: String) throws(PackError) {
            guard let f = model.optionalField(key) else { return }
            let v = try f.int(0...Int(Int32.max))
            guard v == value else { throw PackError("\(f.path): \(v), but \(what) is \(value)") }
        }
        try expect("in_channels", inputShape[0], "dataset.input_shape[0]")
        if let size = model.optionalField("image_size") {
            let hw = try size.ints(count: 2, 1...4096)
            guard hw == Array(inputShape[1...2]) else {
                throw PackError("\(size.path): \(hw), but dataset.input_shape is \(inputShape)")
            }
        }
        try expect("num_classes", classes, "dataset.classes")
        try expect("time_steps", timeSteps, "time_steps")
        try expect("levels", levels, "levels")
        var blocks = 0
        for (i, layer) in layers.enumerated() {
            guard case let .attention(_, heads, _, _, _, _, _, _, _, _, _, _, _, _) = layer else { continue }
            blocks += 1
            try expect("heads", heads, "graph[\(i)].heads")
        }
        try expect("depth", blocks, "the number of attention blocks in the graph")
    }

    static func quantName(_ f: JSONField) throws(PackError) -> String {
        try f.field("clip").string()
    }

    static func parseLayer(_ f: JSONField) throws(PackError) -> ExportLayer {
        let kind = try f.field("kind").string()
        switch kind {
        case "conv3x3_bn":
            let input = try f.field("input").string()
            guard input == "pixels" || input == "counts" else { throw PackError("\(f.path).input: \"\(input)\"") }
            let quantField = try f.field("quant")
            let quant: String? = quantField.isNull ? nil : try quantName(quantField)
            let pool = try f.field("pool").int(0...3)
            guard pool != 1 else { throw PackError("\(f.path).pool: 1 is not a pooling (0, 2 or 3)") }
            return .conv(try LinearBNNames(f), fromPixels: input == "pixels", quant: quant, pool: pool,
                         inShape: try f.field("in_shape").ints(count: 3, 1...4096),
                         outShape: try f.field("out_shape").ints(count: 3, 1...4096))
        case "tokens":
            return .tokens(posEmbed: try f.field("pos_embed").string(), tokens: try f.field("tokens").int(1...4096),
                           width: try f.field("width").int(1...4096))
        case "attention":
            return .attention(
                name: try f.field("name").string(), heads: try f.field("heads").int(1...4096),
                headDim: try f.field("head_dim").int(1...4096), tokens: try f.field("tokens").int(1...4096),
                quant: try quantName(try f.field("quant")),
                q: try LinearBNNames(try f.field("q")), k: try LinearBNNames(try f.field("k")),
                v: try LinearBNNames(try f.field("v")), proj: try LinearBNNames(try f.field("proj")),
                qQuant: try quantName(try f.field("q_quant")), kQuant: try quantName(try f.field("k_quant")),
                vQuant: try quantName(try f.field("v_quant")), aQuant: try quantName(try f.field("a_quant")),
                oQuant: try quantName(try f.field("o_quant")))
        case "mlp":
            let fc1 = try f.field("fc1")
            return .mlp(name: try f.field("name").string(), quant: try quantName(try f.field("quant")),
                        fc1: try LinearBNNames(fc1), hiddenQuant: try quantName(try f.field("hidden_quant")),
                        fc2: try LinearBNNames(try f.field("fc2")), hidden: try fc1.field("out_features").int(1...65535))
        case "head":
            return .head(quant: try quantName(try f.field("quant")), weight: try f.field("weight").string(),
                         bias: try f.field("bias").string(), classes: try f.field("classes").int(1...65535))
        default:
            throw PackError("\(f.path).kind: unknown layer kind \"\(kind)\"")
        }
    }
}

import CSDFormat

/// Options of `csdpack convert`.
public struct ConvertOptions {
    public var timeSteps: Int?
    public var levels: Int?
    public var delay: Int?
    /// Attention head by head in the fused plan (docs/FORMAT.md, "Attention units"): the least RAM, for more
    /// instructions.
    public var lowRAM: Bool
    public init(timeSteps: Int? = nil, levels: Int? = nil, delay: Int? = nil, lowRAM: Bool = false) {
        self.timeSteps = timeSteps; self.levels = levels; self.delay = delay; self.lowRAM = lowRAM
    }
}

/// One converted op before planning: its record (arena and tensor offsets not yet set),
/// its tensors and the values it reads and writes.
public struct ConvertedOp {
    public var name: String
    public var record = OpRecord()
    public var weights8: [Int8] = []
    public var weights16: [Int16] = []
    public var thresholds: [Int32] = []
    public var biases: [Int32] = []
    public var input: Int?
    public var input2: Int?
    public var output: Int?
    /// Relative threshold rounding error (nil without neurons).
    public var precision: Double?
    /// For a stream reader: its quantizer step, until `finishStream` knows the stream units.
    var readerStep: Double?
}

/// A buffer value: its kind and shape, and the ops that produce and last read it.
public struct PlannedValue {
    public var use: ValueUse
    public var first: Int
    public var last: Int
}

/// The whole conversion result: header metadata, ops and values.
public struct Conversion {
    public var header = ImageHeader()
    public var ops: [ConvertedOp] = []
    public var values: [PlannedValue] = []
    /// Stream unit per channel (real value of one stream step: the writers' fine unit times 2^streamShift).
    public var streamUnits: [Double] = []
    /// The stream shift s of every stream writer (docs/SEMANTICS.md, "Stream sinks").
    public var streamShift = 0
}

/// Converts an export into integer ops (docs/SEMANTICS.md section 4).
public struct Converter {
    let model: ExportModel
    let tensors: [String: FloatTensor]
    let timeSteps: Int
    let levels: Int
    let delay: Int
    var out = Conversion()
    /// Tensor names the graph has used (every tensor of the file must be).
    var used: Set<String> = []

    public init(model: ExportModel, tensors: [String: FloatTensor], options: ConvertOptions) throws(PackError) {
        self.model = model
        self.tensors = tensors
        timeSteps = options.timeSteps ?? model.timeSteps
        levels = options.levels ?? model.levels
        delay = options.delay ?? timeSteps
        guard (1...16).contains(timeSteps) else { throw PackError("--time-steps \(timeSteps): the runtime runs T in 1...16") }
        guard (1...timeSteps).contains(levels) else { throw PackError("--levels \(levels): need 1 <= L <= T (\(timeSteps))") }
        guard (0...timeSteps).contains(delay) else { throw PackError("--delay \(delay): need 0 <= D <= T (\(timeSteps))") }
    }

    // MARK: tensors

    mutating func tensor(_ name: String, _ shape: [Int]) throws(PackError) -> [Float] {
        used.insert(name)
        guard let t = tensors[name] else { throw PackError("tensor \(name): missing from the safetensors file") }
        guard t.shape == shape else { throw PackError("tensor \(name): shape \(t.shape), expected \(shape)") }
        for v in t.values where !v.isFinite { throw PackError("tensor \(name): contains NaN or Inf") }
        return t.values
    }

    /// A quantizer's step: |clip| / L (never below 1e-8, as in the model).
    mutating func step(_ clipName: String) throws(PackError) -> Double {
        let clip = try tensor(clipName, [1])[0]
        let s = Double(abs(clip / Float(levels)))
        guard s > 0 else { throw PackError("tensor \(clipName): clip is 0, the quantizer never fires") }
        return max(s, 1e-8)
    }

    mutating func folded(_ n: LinearBNNames, outputs: Int, fanInShape: [Int]) throws(PackError) -> FoldedLayer {
        let w = try tensor(n.weight, [outputs] + fanInShape)
        return Fold.foldBN(weight: w, outputs: outputs, gamma: try tensor(n.bnWeight, [outputs]),
                           beta: try tensor(n.bnBias, [outputs]), mean: try tensor(n.bnMean, [outputs]),
                           variance: try tensor(n.bnVar, [outputs]), eps: model.bnEps)
    }

    // MARK: values

    mutating func newValue(_ use: ValueUse) -> Int {
        out.values.append(PlannedValue(use: use, first: out.ops.count, last: out.ops.count))
        return out.values.count - 1
    }

    mutating func read(_ value: Int) { out.values[value].last = out.ops.count }

    static func dims(_ v: Int, _ field: String) throws(PackError) -> Int {
        guard v >= 1 && v <= 65535 else { throw PackError("\(field): \(v) does not fit the image's 16-bit dimensions") }
        return v
    }

    // MARK: conversion

    public static func convert(model: ExportModel, tensors: [String: FloatTensor],
                               options: ConvertOptions) throws(PackError) -> Conversion {
        var c = try Converter(model: model, tensors: tensors, options: options)
        try c.run()
        if let extra = tensors.keys.filter({ !c.used.contains($0) }).sorted().first {
            throw PackError("tensor \(extra): in the safetensors file but not part of the graph")
        }
        return c.out
    }

    /// A stream writer whose int16 weights are made once the stream units are known.
    struct StreamWriter {
        var opIndex: Int
        var layer: FoldedLayer
        var inputStep: Double
        var inputMax: Double  // L for counts, 255 for pixels
        var tokenBias: [Double]?  // [N][D] real per-token additions (position embedding)
    }

    /// What the walk over the graph carries from layer to layer.
    struct Cursor {
        /// The counts feeding the next layer: value id (nil: pixels), quantizer step, dims.
        var value: Int?
        var step: Double
        var dims: Dims
        /// The last conv's output before its pooling: the next conv's in_shape.
        var unpooled: Dims
        /// The residual stream's value id, from the tokens layer on.
        var stream: Int?
        var tokens = 0
        var width = 0
        /// The stream writers in op order (their int16 weights wait for the stream units).
        var writers: [StreamWriter] = []
    }

    /// Walks the graph (docs/MODEL_EXPORT.md), appending ops and values, then sets the stream's units.
    mutating func run() throws(PackError) {
        let layers = model.layers
        guard case .conv(_, true, nil, 0, _, _)? = layers.first else {
            throw PackError("graph[0]: must be the encoding conv3x3_bn on pixels without quantizer or pooling")
        }
        var h = try headerFields()
        let input = Dims(model.inputShape[0], model.inputShape[1], model.inputShape[2])
        var at = Cursor(value: nil, step: model.inputScale, dims: input, unpooled: input)
        var index = 0
        while index < layers.count {
            let path = "graph[\(index)]"
            switch layers[index] {
            case let .conv(names, fromPixels, _, _, inShape, outShape):
                index = try appendConv(names, fromPixels: fromPixels, inShape: inShape, outShape: outShape, index: index, &at)
            case .tokens:
                throw PackError("\(path): a tokens layer must follow the last tokenizer conv")
            case let .attention(name, heads, headDim, n, quant, q, k, v, proj, qQuant, kQuant, vQuant, aQuant, oQuant):
                guard let s = at.stream else { throw PackError("\(path): attention before the tokens layer") }
                guard n == at.tokens, heads * headDim == at.width else {
                    throw PackError("\(path): \(heads) heads x \(headDim) over \(n) tokens does not match the stream \(at.tokens) x \(at.width)")
                }
                let sU = try step(quant)
                let u = appendStreamNeuron("\(name).quant", stream: s, step: sU)
                // v first, channel-major (the pair reads a head's value channels as rows), then k; q, u's last
                // reader, writes over u (docs/FORMAT.md, "The attention pair" and "In place")
                let sV = try step(vQuant), sK = try step(kQuant), sQ = try step(qQuant)
                let vValue = try appendLinear(v, input: u, inStep: sU, outStep: sV, din: at.width, dout: at.width,
                                              channelMajor: true)
                let kValue = try appendLinear(k, input: u, inStep: sU, outStep: sK, din: at.width, dout: at.width)
                let qValue = try appendLinear(q, input: u, inStep: sU, outStep: sQ, din: at.width, dout: at.width, overInput: true)
                let sA = try step(aQuant), sO = try step(oQuant)
                try appendScores("\(name).scores", q: qValue, k: kValue, qStep: sQ, kStep: sK, outStep: sA,
                                 heads: heads, headDim: headDim, tokens: n)
                let o = try appendValues("\(name).values", q: qValue, k: kValue, v: vValue, scoreStep: sA, vStep: sV,
                                         outStep: sO, heads: heads, tokens: n, width: at.width)
                at.writers.append(try appendStreamAdd(proj, input: o, inStep: sO, din: at.width, dout: at.width, stream: s))
            case let .mlp(name, quant, fc1, hiddenQuant, fc2, hidden):
                guard let s = at.stream else { throw PackError("\(path): mlp before the tokens layer") }
                let hiddenDim = try Converter.dims(hidden, "\(path).fc1.out_features")
                let sU = try step(quant), sH = try step(hiddenQuant)
                let u = appendStreamNeuron("\(name).quant", stream: s, step: sU)
                let hv = try appendLinear(fc1, input: u, inStep: sU, outStep: sH, din: at.width, dout: hiddenDim)
                at.writers.append(try appendStreamAdd(fc2, input: hv, inStep: sH, din: hiddenDim, dout: at.width, stream: s))
            case let .head(quant, weightName, biasName, classes):
                guard let s = at.stream else { throw PackError("\(path): head before the tokens layer") }
                guard classes == model.classes else { throw PackError("\(path).classes: \(classes), dataset has \(model.classes)") }
                guard index == layers.count - 1 else { throw PackError("\(path): the head must be the last layer") }
                try appendHead(quant: quant, weight: weightName, bias: biasName, classes: classes, stream: s,
                               tokens: at.tokens, width: at.width)
            }
            index += 1
        }
        guard case .classifier? = out.ops.last.flatMap({ OpKind(rawValue: $0.record.kindRaw) }) else {
            throw PackError("graph: the last layer must be the head")
        }
        guard out.ops.count <= ModelImage.maxOps else { throw PackError("graph: \(out.ops.count) ops, the image holds at most \(ModelImage.maxOps)") }
        h.tokens = UInt16(at.tokens)
        h.width = UInt16(at.width)
        out.header = h
        try finishStream(at.writers)
    }

    /// The header's model fields known before the walk (input, classes, T, L, D).
    func headerFields() throws(PackError) -> ImageHeader {
        var h = ImageHeader()
        h.inputChannels = UInt16(model.inputShape[0])
        h.inputHeight = UInt16(model.inputShape[1])
        h.inputWidth = UInt16(model.inputShape[2])
        h.classes = UInt16(try Converter.dims(model.classes, "dataset.classes"))
        h.timeSteps = UInt8(timeSteps)
        h.levels = UInt8(levels)
        h.delay = UInt8(delay)
        return h
    }

    /// A tokenizer conv (graph[index]) and its sink: the next conv's quantizer (a neuron layer, then that conv's
    /// max-pool if it has one) or, for the last conv, the stream with the tokens layer's position embedding.
    /// Returns the index of the last layer it consumed (the tokens layer's for the last conv).
    mutating func appendConv(_ names: LinearBNNames, fromPixels: Bool, inShape: [Int], outShape: [Int],
                             index: Int, _ at: inout Cursor) throws(PackError) -> Int {
        let layers = model.layers
        let path = "graph[\(index)]"
        guard fromPixels == (index == 0) else { throw PackError("\(path).input: only graph[0] reads pixels") }
        let cin = at.dims.d0, hh = at.dims.d1, ww = at.dims.d2
        guard inShape == [at.unpooled.d0, at.unpooled.d1, at.unpooled.d2], outShape[1] == hh, outShape[2] == ww else {
            throw PackError("\(path): in_shape \(inShape) / out_shape \(outShape) do not chain with the layer before "
                            + "(\(at.unpooled.d0) x \(at.unpooled.d1) x \(at.unpooled.d2), \(cin) x \(hh) x \(ww) after pooling)")
        }
        let cout = try Converter.dims(outShape[0], "\(path).out_shape[0]")
        var layerFold = try folded(names, outputs: cout, fanInShape: [cin, 3, 3])
        if fromPixels, model.inputStd.contains(where: { $0 != 1 }) {
            layerFold = try refoldForStd(names, outputs: cout, cin: cin)
        }
        let inMax = fromPixels ? 255.0 : Double(levels)
        var op = ConvertedOp(name: names.name)
        op.record.kindRaw = OpKind.conv3x3.rawValue
        op.record.inDims = Dims(cin, hh, ww)
        op.record.outDims = Dims(cout, hh, ww)
        if fromPixels { op.record.flags |= OpFlag.inputPixels }
        if let v = at.value { read(v); op.input = v }
        if index + 1 < layers.count, case let .conv(_, _, nextQuant?, nextPool, _, _) = layers[index + 1] {
            let sOut = try step(nextQuant)
            let unit = layerFold.sigma.map { $0 * at.step }
            let p = try NeuronParameters.choose(
                scales: unit.map { sOut / $0 }, biases: zip(layerFold.bias, unit).map { $0 / $1 },
                accBound: Double(layerFold.absRowSums.max() ?? 0) * inMax, levels: levels, layer: names.name)
            op.record.shift = UInt8(p.shift)
            op.weights8 = layerFold.codes
            op.thresholds = p.thresholds
            op.biases = p.biases
            op.precision = p.precision
            let outValue = newValue(ValueUse(.counts, Dims(cout, hh, ww)))
            op.output = outValue
            out.ops.append(op)
            at.value = outValue; at.step = sOut; at.dims = Dims(cout, hh, ww)
            at.unpooled = at.dims
            if nextPool != 0 {
                at.value = try appendMaxPool("\(names.name).pool", input: outValue, dims: at.dims, pool: nextPool,
                                             path: "graph[\(index + 1)].pool")
                at.dims = out.values[at.value!].use.dims
            }
            return index
        }
        guard index + 1 < layers.count, case let .tokens(posName, n, d) = layers[index + 1] else {
            throw PackError("\(path): the last tokenizer conv must be followed by the tokens layer")
        }
        guard n == hh * ww, d == cout else {
            throw PackError("graph[\(index + 1)]: tokens \(n) x width \(d), but the tokenizer gives \(hh * ww) x \(cout)")
        }
        at.tokens = try Converter.dims(n, "tokens"); at.width = d
        let pos = try tensor(posName, [n, d])
        op.record.flags |= OpFlag.streamOut | OpFlag.streamSet | OpFlag.tokenBias
        let s = newValue(ValueUse(.stream, Dims(n, d, 1)))
        at.stream = s
        op.output = s
        at.writers.append(StreamWriter(opIndex: out.ops.count, layer: layerFold, inputStep: at.step,
                                       inputMax: inMax, tokenBias: pos.map { Double($0) }))
        out.ops.append(op)
        return index + 1
    }

    /// A MAX_POOL op over a conv's counts; returns the pooled value.
    mutating func appendMaxPool(_ name: String, input: Int, dims: Dims, pool: Int, path: String) throws(PackError) -> Int {
        var op = ConvertedOp(name: name)
        let ph = pooledSize(dims.d1, pool: pool), pw = pooledSize(dims.d2, pool: pool)
        guard ph >= 1, pw >= 1 else { throw PackError("\(path): pooling leaves no pixels") }
        op.record.kindRaw = OpKind.maxPool.rawValue
        op.record.pool = UInt8(pool)
        op.record.inDims = dims
        op.record.outDims = Dims(dims.d0, ph, pw)
        read(input)
        op.input = input
        let pooled = newValue(ValueUse(.counts, op.record.outDims))
        op.output = pooled
        out.ops.append(op)
        return pooled
    }

    /// An ATTENTION_SCORES op: acc = q.k over a head's channels; real = sq sk acc / sqrt(d) / N. Its scores
    /// go through the kernel scratch to the ATTENTION_VALUES op that must follow (docs/FORMAT.md, "The
    /// attention pair"): no arena value.
    mutating func appendScores(_ name: String, q: Int, k: Int, qStep: Double, kStep: Double, outStep sA: Double,
                               heads: Int, headDim: Int, tokens n: Int) throws(PackError) {
        var op = ConvertedOp(name: name)
        op.record.kindRaw = OpKind.attentionScores.rawValue
        op.record.heads = UInt16(heads)
        op.record.inDims = Dims(n, heads * headDim, 1)
        op.record.outDims = Dims(heads, n, n)
        read(q); read(k)
        op.input = q; op.input2 = k
        let scale = sA * Double(headDim).squareRoot() * Double(n) / (qStep * kStep)
        let L = Double(levels)
        let p = try NeuronParameters.choose(scales: [Double](repeating: scale, count: heads),
                                            biases: [Double](repeating: 0, count: heads),
                                            accBound: Double(headDim) * L * L, levels: levels, layer: name)
        op.record.shift = UInt8(p.shift)
        op.thresholds = p.thresholds; op.biases = p.biases; op.precision = p.precision
        out.ops.append(op)
    }

    /// An ATTENTION_VALUES op: acc = sum_j a v; real = sa sv acc. The pair reads q and k while it runs, and
    /// its output takes q's buffer (q has no later reader). Returns the attention output.
    mutating func appendValues(_ name: String, q: Int, k: Int, v: Int, scoreStep sA: Double, vStep: Double, outStep sO: Double,
                               heads: Int, tokens n: Int, width: Int) throws(PackError) -> Int {
        var op = ConvertedOp(name: name)
        op.record.kindRaw = OpKind.attentionValues.rawValue
        op.record.heads = UInt16(heads)
        op.record.inDims = Dims(heads, n, n)
        op.record.outDims = Dims(n, width, 1)
        read(q); read(k); read(v)
        op.input2 = v
        let L = Double(levels)
        let p = try NeuronParameters.choose(scales: [Double](repeating: sO / (sA * vStep), count: width),
                                            biases: [Double](repeating: 0, count: width),
                                            accBound: Double(n) * L * L, levels: levels, layer: name)
        op.record.shift = UInt8(p.shift)
        op.thresholds = p.thresholds; op.biases = p.biases; op.precision = p.precision
        op.output = q
        out.ops.append(op)
        return q
    }

    /// The head: a quantizer on the stream, then the CLASSIFIER (per-tensor int8, the token mean folded into its unit).
    mutating func appendHead(quant: String, weight weightName: String, bias biasName: String, classes: Int,
                             stream s: Int, tokens: Int, width: Int) throws(PackError) {
        let sH = try step(quant)
        let u = appendStreamNeuron("head.quant", stream: s, step: sH)
        let w = try tensor(weightName, [classes, width])
        let b = try tensor(biasName, [classes])
        let f = Fold.quantizePerTensor(w, outputs: classes, bias: b.map { Double($0) })
        var op = ConvertedOp(name: "head")
        op.record.kindRaw = OpKind.classifier.rawValue
        op.record.inDims = Dims(tokens, width, 1)
        op.record.outDims = Dims(classes, 1, 1)
        read(u)
        op.input = u
        op.weights8 = f.codes
        // Logit unit: sigma * s_h / N; bias in that unit.
        let unit = f.sigma[0] * sH / Double(tokens)
        let betas = f.bias.map { ($0 / unit).rounded(.toNearestOrEven) }
        let bound = Double(f.absRowSums.max() ?? 0) * Double(tokens) * Double(levels) + (betas.map { abs($0) }.max() ?? 0)
        guard bound <= Double(Int32.max) else { throw PackError("\(weightName): logits could overflow int32") }
        op.biases = betas.map { Int32($0) }
        out.ops.append(op)
    }

    /// A LINEAR op into a neuron layer; returns the output counts value.
    /// A LINEAR neuron layer; with `overInput` (Din == Dout, and no later op reads the input) its output
    /// takes the input's buffer (docs/FORMAT.md, "In place"). Returns the output value.
    mutating func appendLinear(_ names: LinearBNNames, input: Int, inStep: Double, outStep: Double,
                               din: Int, dout: Int, overInput: Bool = false, channelMajor: Bool = false) throws(PackError) -> Int {
        let f = try folded(names, outputs: dout, fanInShape: [din])
        let n = out.values[input].use.dims.d0
        var op = ConvertedOp(name: names.name)
        op.record.kindRaw = OpKind.linear.rawValue
        op.record.inDims = Dims(n, din, 1)
        op.record.outDims = Dims(n, dout, 1)
        read(input)
        op.input = input
        let unit = f.sigma.map { $0 * inStep }
        let p = try NeuronParameters.choose(scales: unit.map { outStep / $0 }, biases: zip(f.bias, unit).map { $0 / $1 },
                                            accBound: Double(f.absRowSums.max() ?? 0) * Double(levels),
                                            levels: levels, layer: names.name)
        op.record.shift = UInt8(p.shift)
        op.weights8 = f.codes
        op.thresholds = p.thresholds
        op.biases = p.biases
        op.precision = p.precision
        if channelMajor { op.record.flags |= OpFlag.channelMajor }
        let o = overInput && din == dout && !channelMajor ? input : newValue(ValueUse(channelMajor ? .channelMajor : .counts, Dims(n, dout, 1)))
        op.output = o
        out.ops.append(op)
        return o
    }

    /// A LINEAR op adding into the stream; its int16 weights are set in `finishStream`.
    mutating func appendStreamAdd(_ names: LinearBNNames, input: Int, inStep: Double, din: Int, dout: Int,
                                  stream: Int) throws(PackError) -> StreamWriter {
        let f = try folded(names, outputs: dout, fanInShape: [din])
        let n = out.values[input].use.dims.d0
        var op = ConvertedOp(name: names.name)
        op.record.kindRaw = OpKind.linear.rawValue
        op.record.flags = OpFlag.streamOut
        op.record.inDims = Dims(n, din, 1)
        op.record.outDims = Dims(n, dout, 1)
        read(input)
        read(stream)
        op.input = input
        op.output = stream
        let w = StreamWriter(opIndex: out.ops.count, layer: f, inputStep: inStep, inputMax: Double(levels), tokenBias: nil)
        out.ops.append(op)
        return w
    }

    /// A STREAM_NEURON op (a quantizer reading the stream); thresholds are set in `finishStream`.
    mutating func appendStreamNeuron(_ name: String, stream: Int, step: Double) -> Int {
        let dims = out.values[stream].use.dims
        var op = ConvertedOp(name: name)
        op.record.kindRaw = OpKind.streamNeuron.rawValue
        op.record.inDims = dims
        op.record.outDims = dims
        read(stream)
        op.input = stream
        op.readerStep = step
        let o = newValue(ValueUse(.counts, dims))
        op.output = o
        out.ops.append(op)
        return o
    }

    /// Chooses the stream units and the stream shift (docs/SEMANTICS.md section 4, step 5), writes the
    /// writers' int16 weights, biases and shift, and the readers' thresholds.
    mutating func finishStream(_ writers: [StreamWriter]) throws(PackError) {
        let d = Int(out.header.width), n = Int(out.header.tokens)
        var units = [Double](repeating: 0, count: d)
        for w in writers {
            for c in 0..<d { units[c] = max(units[c], w.layer.sigma[c] * w.inputStep * 127 / 32767) }
        }
        var made: [StreamBounds] = []
        for w in writers {
            let f = w.layer, name = out.ops[w.opIndex].name
            var w16 = [Int16](repeating: 0, count: f.codes.count)
            for c in 0..<d {
                let m = f.sigma[c] * w.inputStep / units[c]
                for k in 0..<f.fanIn {
                    let v = (Double(f.codes[c * f.fanIn + k]) * m).rounded(.toNearestOrEven)
                    guard abs(v) <= 32767 else { throw PackError("\(name): stream weight overflows int16") }
                    w16[c * f.fanIn + k] = Int16(v)
                }
            }
            let real: [Double]
            if let pos = w.tokenBias {
                real = (0..<(n * d)).map { ((f.bias[$0 % d] + pos[$0]) / units[$0 % d]).rounded(.toNearestOrEven) }
            } else {
                real = (0..<d).map { (f.bias[$0] / units[$0]).rounded(.toNearestOrEven) }
            }
            guard real.allSatisfy({ abs($0) < Double(Int32.max) }) else { throw PackError("\(name): a stream bias overflows int32") }
            made.append(StreamBounds(w16: w16, biases: real.map { Int64($0) }, channels: d, inputMax: Int64(w.inputMax)))
        }
        let shift = try StreamBounds.streamShift(made, names: writers.map { out.ops[$0.opIndex].name })
        let half: Int64 = shift > 0 ? Int64(1) << (shift - 1) : 0
        out.streamUnits = units.map { $0 * Double(1 << shift) }
        out.streamShift = shift
        // the fused interval of X per channel, summed over the writers so far (the readers' |X| bound)
        var lo = [Int64](repeating: 0, count: d), hi = lo
        var writerIndex = 0
        for i in 0..<out.ops.count {
            if writerIndex < writers.count && writers[writerIndex].opIndex == i {
                let m = made[writerIndex]
                writerIndex += 1
                for c in 0..<d {
                    let v = m.fusedValue(c, shift: shift)
                    lo[c] += v.lo
                    hi[c] += v.hi
                }
                out.ops[i].weights16 = m.w16
                out.ops[i].biases = m.biases.map { Int32($0 + half) }
                out.ops[i].record.shift = UInt8(shift)
            } else if out.ops[i].record.kindRaw == OpKind.streamNeuron.rawValue {
                let stepR = out.ops[i].readerStep ?? 1
                let bound = zip(lo, hi).map { max(-$0, $1) }.max() ?? 0
                let p = try NeuronParameters.choose(scales: out.streamUnits.map { stepR / $0 }, biases: [Double](repeating: 0, count: d),
                                                    accBound: Double(bound), levels: levels, layer: out.ops[i].name)
                out.ops[i].record.shift = UInt8(p.shift)
                out.ops[i].thresholds = p.thresholds
                out.ops[i].biases = p.biases
                out.ops[i].precision = p.precision
            }
        }
    }

    /// The encoding conv when the normalization has std != 1: divide each input channel's weights by its std first.
    mutating func refoldForStd(_ names: LinearBNNames, outputs: Int, cin: Int) throws(PackError) -> FoldedLayer {
        var w = try tensor(names.weight, [outputs, cin, 3, 3])
        for j in 0..<outputs { for i in 0..<cin { for t in 0..<9 { w[(j * cin + i) * 9 + t] /= Float(model.inputStd[i]) } } }
        return Fold.foldBN(weight: w, outputs: outputs, gamma: try tensor(names.bnWeight, [outputs]),
                           beta: try tensor(names.bnBias, [outputs]), mean: try tensor(names.bnMean, [outputs]),
                           variance: try tensor(names.bnVar, [outputs]), eps: model.bnEps)
    }
}

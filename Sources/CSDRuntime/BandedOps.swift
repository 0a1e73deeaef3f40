import CSDFormat

/// Band units (docs/FORMAT.md, "Bands"; docs/SEMANTICS.md, "Bands"): in the fused plan (fused mode, and the
/// spiking count path) a producer and its consumer run a band of rows at a time through a buffer that
/// holds one band: a conv's map rows into its 2x2 max-pool, or a linear's tokens into the next linear.
/// Every value is the one the two ops compute one after the other: a conv output row depends only on the
/// input map, a pooled row only on its two conv rows, a token's output only on its own input row.
extension Context {
    /// Runs the unit of ops `index` (the producer) and `index + 1` (the consumer), leaving their statistics in
    /// `s1` and `s2` (and their kinds).
    /// On the count path (`spiking` here: the fused plan in spiking mode) it does what `runCounts` does for
    /// each op: the producer's input trains become counts before and trains again after if a later op reads
    /// them as trains, a linear consumer's band becomes counts before it runs, and the synaptic
    /// operations come from the counts.
    @inline(never) @usableFromInline mutating func runBands(index: Int, _ s1: inout OpStats, _ s2: inout OpStats) {
        let producer = image.op(index), consumer = image.op(index &+ 1)
        s2.kind = UInt32(consumer.kindRaw)
        let producerScratch = (arena + producer.scratch(plan)).assumingMemoryBound(to: UInt32.self)
        let consumerScratch = (arena + consumer.scratch(plan)).assumingMemoryBound(to: UInt32.self)
        let band = Int(producer.band), pixelsIn = producer.has(OpFlag.inputPixels)
        let off1 = producer.input(plan), in1 = counts(off1), n1 = producer.inputUse.dims.count
        let countsIn = spiking && !pixelsIn
        let total = countsIn ? inputCounts(off1, count: n1) : 0
        let bandBuffer = arena + producer.output(plan)
        if producer.kind == .conv3x3 {  // -> MAXPOOL, pool 2
            let c = producer.outDims.d0, h = producer.outDims.d1, w = producer.outDims.d2
            let oh = consumer.outDims.d1, ow = consumer.outDims.d2, pooled = arena + consumer.output(plan)
            let input = pixelsIn ? pixels : UnsafePointer(in1)
            var y0 = 0
            while y0 < h {
                let y1 = min(y0 &+ band, h), pooledRows = (y1 &- y0) &>> 1
                scratch = producerScratch
                convFused(producer, input, rows: (y0, y1), outPlane: band &* w, &s1)
                if pooledRows > 0 {  // the band's rows of every channel into their pooled rows
                    s2.spikes &+= poolMap(bandBuffer, poolValues, c: c, h: y1 &- y0, w: w, pool: 2, pooled + (y0 &>> 1) &* ow,
                                          oh: pooledRows, ow: ow, inPlane: band &* w, outPlane: oh &* ow)
                }
                y0 = y1
            }
            s2.neurons = UInt32(truncatingIfNeeded: c &* oh &* ow)
            if countsIn {
                s1.synapticOps = windowSum(in1, c: producer.inDims.d0, h: producer.inDims.d1, w: producer.inDims.d2)
                    &* UInt32(truncatingIfNeeded: c)
            }
        } else {  // LINEAR -> LINEAR
            let n = producer.outDims.d0, width = producer.outDims.d1
            var t0 = 0
            while t0 < n {
                let t1 = min(t0 &+ band, n)
                scratch = producerScratch
                linearFused(producer, tokens: (t0, t1), inputRow: 0, outputRow: t0, channels: (0, width), &s1)
                scratch = consumerScratch
                if spiking {  // the band's prefix trains become counts: the consumer's synaptic operations
                    let sum = Kernels.trainsToCounts(bandBuffer.assumingMemoryBound(to: UInt8.self), count: (t1 &- t0) &* width)
                    s2.synapticOps &+= sum &* UInt32(truncatingIfNeeded: consumer.outDims.d1)
                }
                linearFused(consumer, tokens: (t0, t1), inputRow: t0, outputRow: 0, channels: (0, consumer.outDims.d1), &s2)
                if spiking && t1 == n {  // the buffer's trains again (the last band's and the rows before), as an observer reads it
                    Kernels.countsToTrains(bandBuffer.assumingMemoryBound(to: UInt8.self), count: min(band, n) &* width)
                }
                t0 = t1
            }
            if countsIn { s1.synapticOps = total &* UInt32(truncatingIfNeeded: width) }
        }
        if spiking {  // the count path: as `runCounts` after each op
            if countsIn { releaseInput(off1, count: n1, total: total, from: index &+ 2) }
            if !pixelsIn { s1.macs = 0 }
            s2.macs = 0
        }
    }
}

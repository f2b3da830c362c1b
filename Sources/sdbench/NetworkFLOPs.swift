import Networks

/// FLOPs of the networks' GEMM work from their configurations: convolutions, linear layers and the two attention
/// products (2 FLOPs per multiply-add). Element-wise work (norms, activations, softmax) is not counted, so the
/// floor (FLOPs / measured sgemm rate) is what the GEMMs alone would take.
enum UNetFLOPs {
    static func count(_ cfg: UNetConfig, batch: Int, height: Int, width: Int, contextTokens: Int) -> Double {
        var macs = 0.0
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ hw: Int) { macs += Double(cin * cout * k * k * hw) }
        func res(_ cin: Int, _ cout: Int, _ hw: Int) {
            conv(cin, cout, 3, hw)
            conv(cout, cout, 3, hw)
            if cin != cout { conv(cin, cout, 1, hw) }
        }
        func transformer(_ channels: Int, _ hw: Int) {
            let c = Double(channels), n = Double(hw), t = Double(contextTokens), ctx = Double(cfg.contextDim)
            let perBlock = 4 * c * c * n + 2 * n * n * c             // attn1: q, k, v, out; scores and values
                + 2 * c * c * n + 2 * c * ctx * t + 2 * n * t * c    // attn2: q, out; k, v; scores and values
                + 12 * c * c * n                                     // GEGLU feed-forward (c → 8c, 4c → c)
            macs += 2 * c * c * n + Double(cfg.transformerDepth) * perBlock   // + proj_in, proj_out
        }
        let mc = cfg.modelChannels
        var hw = height * width, ch = mc
        var skips = [mc]
        conv(cfg.inChannels, mc, 3, hw)
        for (level, mult) in cfg.channelMult.enumerated() {
            for _ in 0..<cfg.numResBlocks {
                res(ch, mult * mc, hw)
                ch = mult * mc
                if cfg.attentionLevels[level] { transformer(ch, hw) }
                skips.append(ch)
            }
            if level != cfg.channelMult.count - 1 {
                hw /= 4
                conv(ch, ch, 3, hw)
                skips.append(ch)
            }
        }
        res(ch, ch, hw)
        transformer(ch, hw)
        res(ch, ch, hw)
        for (level, mult) in cfg.channelMult.enumerated().reversed() {
            for i in 0...cfg.numResBlocks {
                res(ch + skips.removeLast(), mult * mc, hw)
                ch = mult * mc
                if cfg.attentionLevels[level] { transformer(ch, hw) }
                if level != 0 && i == cfg.numResBlocks {
                    hw *= 4
                    conv(ch, ch, 3, hw)
                }
            }
        }
        conv(ch, cfg.outChannels, 3, hw)
        return 2 * macs * Double(batch)
    }
}

enum VAEFLOPs {
    /// Decoder FLOPs for one latent of `height × width` (post_quant_conv included).
    static func decode(_ cfg: VAEConfig, height: Int, width: Int) -> Double {
        var macs = 0.0
        func conv(_ cin: Int, _ cout: Int, _ k: Int, _ hw: Int) { macs += Double(cin * cout * k * k * hw) }
        func res(_ cin: Int, _ cout: Int, _ hw: Int) {
            conv(cin, cout, 3, hw)
            conv(cout, cout, 3, hw)
            if cin != cout { conv(cin, cout, 1, hw) }
        }
        var hw = height * width
        var ch = cfg.baseChannels * (cfg.channelMult.last ?? 1)
        conv(cfg.latentChannels, cfg.latentChannels, 1, hw)
        conv(cfg.latentChannels, ch, 3, hw)
        res(ch, ch, hw)
        macs += 4 * Double(ch * ch * hw) + 2 * Double(hw) * Double(hw) * Double(ch)   // mid attention
        res(ch, ch, hw)
        for (level, mult) in cfg.channelMult.enumerated().reversed() {
            for _ in 0...cfg.numResBlocks {
                res(ch, cfg.baseChannels * mult, hw)
                ch = cfg.baseChannels * mult
            }
            if level != 0 {
                hw *= 4
                conv(ch, ch, 3, hw)
            }
        }
        conv(ch, cfg.outChannels, 3, hw)
        return 2 * macs
    }
}

enum CLIPFLOPs {
    /// Text-model FLOPs for `batch` rows of `tokens`: per layer q, k, v, out and the two MLP projections, plus
    /// the full `tokens × tokens` score and value products (as PyTorch computes them under the causal mask).
    static func count(layers: Int, width: Int, inner: Int, batch: Int, tokens: Int) -> Double {
        let c = Double(width), t = Double(tokens)
        let perLayer = 4 * c * c * t + 2 * c * Double(inner) * t + 2 * t * t * c
        return 2 * Double(layers) * perLayer * Double(batch)
    }
}

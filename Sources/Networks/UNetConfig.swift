import TensorCore

/// Hyper-parameters of an ldm `UNetModel`, read from the tensor shapes of a checkpoint.
public struct UNetConfig: Sendable, Equatable {
    public var inChannels: Int
    public var outChannels: Int
    public var modelChannels: Int
    /// Channel multiplier per resolution level.
    public var channelMult: [Int]
    public var numResBlocks: Int
    /// Per level: whether its blocks carry a SpatialTransformer.
    public var attentionLevels: [Bool]
    public var transformerDepth: Int
    public var contextDim: Int
    /// Attention heads: a fixed count (SD1: 8), or a fixed width per head (SD2: 64) when `headChannels` is set.
    public var numHeads: Int
    public var headChannels: Int?

    /// Stable Diffusion 1.x (v1-inference.yaml).
    public static let sd1 = UNetConfig(inChannels: 4, outChannels: 4, modelChannels: 320, channelMult: [1, 2, 4, 4],
                                       numResBlocks: 2, attentionLevels: [true, true, true, false],
                                       transformerDepth: 1, contextDim: 768, numHeads: 8, headChannels: nil)

    public init(inChannels: Int, outChannels: Int, modelChannels: Int, channelMult: [Int], numResBlocks: Int,
                attentionLevels: [Bool], transformerDepth: Int, contextDim: Int, numHeads: Int, headChannels: Int?) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.modelChannels = modelChannels
        self.channelMult = channelMult
        self.numResBlocks = numResBlocks
        self.attentionLevels = attentionLevels
        self.transformerDepth = transformerDepth
        self.contextDim = contextDim
        self.numHeads = numHeads
        self.headChannels = headChannels
    }

    /// Heads of a transformer on `channels` channels.
    public func heads(channels: Int) -> Int { headChannels.map { channels / $0 } ?? numHeads }

    /// The UNet halves the resolution this many times; latents must be divisible by 2^this.
    public var downsamplings: Int { channelMult.count - 1 }

    /// Reads the configuration from the shapes under `w` (scoped at `model.diffusion_model`).
    /// Accepts 9-channel inpainting inputs and any level / block count with a consistent structure; the head rule
    /// follows the context width (768: SD1, 8 heads; 1024: SD2, 64 channels per head).
    public static func detect(from w: WeightReader) throws -> UNetConfig {
        guard let convIn = w.shape("input_blocks.0.0.weight"), convIn.count == 4 else {
            throw TensorError.missingKey(w.key("input_blocks.0.0.weight"))
        }
        guard let convOut = w.shape("out.2.weight"), convOut.count == 4 else {
            throw TensorError.missingKey(w.key("out.2.weight"))
        }
        let mc = convIn[0]
        // Walk input_blocks: res blocks (optionally with attention) until a Downsample (`.0.op`) ends a level.
        var levels: [(blocks: Int, channels: Int, attention: Bool)] = []
        var current = (blocks: 0, channels: mc, attention: false)
        var index = 1
        while true {
            let block = w["input_blocks"][index]
            if block.contains("0.op.weight") {
                levels.append(current)
                current = (0, current.channels, false)
            } else if let out = block.shape("0.out_layers.3.weight") {
                current.blocks += 1
                current.channels = out[0]
                if block.contains("1.proj_in.weight") { current.attention = true }
            } else {
                break
            }
            index += 1
        }
        levels.append(current)
        guard let numRes = levels.first?.blocks, numRes > 0, levels.allSatisfy({ $0.blocks == numRes }) else {
            throw TensorError.invalid("\(w.key("input_blocks")): levels have res block counts "
                                      + "\(levels.map(\.blocks)); expected the same non-zero count per level")
        }
        guard levels.allSatisfy({ $0.channels % mc == 0 }) else {
            throw TensorError.invalid("\(w.key("input_blocks")): level widths \(levels.map(\.channels)) "
                                      + "are not multiples of model_channels \(mc)")
        }
        let transformer = w["middle_block"][1]
        let contextKey = "transformer_blocks.0.attn2.to_k.weight"
        guard let toK = transformer.shape(contextKey), toK.count == 2 else {
            throw TensorError.missingKey(transformer.key(contextKey))
        }
        let context = toK[1]
        return UNetConfig(inChannels: convIn[1], outChannels: convOut[0], modelChannels: mc,
                          channelMult: levels.map { $0.channels / mc }, numResBlocks: numRes,
                          attentionLevels: levels.map(\.attention),
                          transformerDepth: SpatialTransformer.depth(in: transformer), contextDim: context,
                          numHeads: 8, headChannels: context == 1024 ? 64 : nil)
    }
}

@_exported import TensorCore

/// Where initial and per-step noise comes from, as A1111's `randn_source` option.
/// "GPU" reproduces NVIDIA GPU noise, which A1111's Philox ("NV") stream equals; both use Philox here.
public enum NoiseSourceKind: String, Sendable, CaseIterable, Codable {
    case gpu = "GPU", cpu = "CPU", nv = "NV"
}

/// How the first pass is upscaled before a hires-fix second pass.
public struct HiresFix: Sendable, Equatable {
    /// Upscaler name as A1111 lists it (`Latent`, `Latent (nearest)`, … or an image upscaler); nil = the
    /// default ("Latent"), and then the infotext has no `Hires upscaler`.
    public var upscaler: String?
    public var scale: Double
    /// Explicit target size; 0 means "use `scale`".
    public var resizeX: Int
    public var resizeY: Int
    /// 0 means "same as the first pass".
    public var secondPassSteps: Int
    public var denoisingStrength: Double
    /// Empty means "same as the first pass".
    public var prompt: String
    public var negativePrompt: String
    /// nil means "same as the first pass".
    public var samplerName: String?
    public var scheduler: String?

    public init(upscaler: String? = nil, scale: Double = 2, resizeX: Int = 0, resizeY: Int = 0,
                secondPassSteps: Int = 0, denoisingStrength: Double = 0.7, prompt: String = "",
                negativePrompt: String = "", samplerName: String? = nil, scheduler: String? = nil) {
        self.upscaler = upscaler
        self.scale = scale
        self.resizeX = resizeX
        self.resizeY = resizeY
        self.secondPassSteps = secondPassSteps
        self.denoisingStrength = denoisingStrength
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.samplerName = samplerName
        self.scheduler = scheduler
    }

    /// Size the first pass is upscaled to, and how many latent rows/columns are then cropped away (when both
    /// `resizeX` and `resizeY` are given and the aspect differs, A1111 upscales to cover and crops the excess).
    /// Matches: modules/processing.py StableDiffusionProcessingTxt2Img.calculate_target_resolution
    public func target(width: Int, height: Int) -> (width: Int, height: Int, truncateX: Int, truncateY: Int) {
        if resizeX == 0 && resizeY == 0 {
            return (Int(Double(width) * scale), Int(Double(height) * scale), 0, 0)
        }
        if resizeY == 0 { return (resizeX, resizeX * height / width, 0, 0) }
        if resizeX == 0 { return (resizeY * width / height, resizeY, 0, 0) }
        let srcRatio = Double(width) / Double(height), dstRatio = Double(resizeX) / Double(resizeY)
        let (w, h) = srcRatio < dstRatio ? (resizeX, resizeX * height / width) : (resizeY * width / height, resizeY)
        return (w, h, Self.floorDiv(w - resizeX, 8), Self.floorDiv(h - resizeY, 8))
    }

    private static func floorDiv(_ a: Int, _ b: Int) -> Int { Int((Double(a) / Double(b)).rounded(.down)) }
}

/// A txt2img job in typed form: what `WebAPI` decodes from A1111's wire format, with every option that
/// affects the image already resolved (no JSON, no option lookups inside the pipeline).
public struct GenerationRequest: Sendable {
    public var prompt: String
    public var negativePrompt: String
    /// -1 asks for a random seed; the chosen one is reported in the result.
    public var seed: Int64
    public var subseed: Int64
    public var subseedStrength: Double
    /// -1/-1 or 0/0 means "off".
    public var seedResizeFromW: Int
    public var seedResizeFromH: Int
    /// A1111 sampler name (already resolved from aliases, e.g. "DPM++ 2M").
    public var samplerName: String
    /// A1111 schedule type name ("Automatic", "Karras", …).
    public var scheduler: String
    public var steps: Int
    public var cfgScale: Double
    public var width: Int
    public var height: Int
    public var batchSize: Int
    public var nIter: Int
    public var tiling: Bool
    /// Sampler eta; nil means the sampler's option default (eta_ancestral / eta_ddim).
    public var eta: Double?
    public var sChurn: Double
    public var sTmin: Double
    public var sTmax: Double?
    public var sNoise: Double
    /// CLIP_stop_at_last_layers (1 = last layer).
    public var clipSkip: Int
    /// `emphasis` option: how `(text:1.2)` changes the encoding.
    public var emphasis: EmphasisMode = .original
    /// `comma_padding_backtrack` option (0 disables).
    public var commaPaddingBacktrack: Int = 20
    public var noiseSource: NoiseSourceKind
    /// eta_noise_seed_delta (ENSD).
    public var etaNoiseSeedDelta: Int64
    public var hires: HiresFix?
    /// Checkpoint to use (title, name or hash as the registry resolves it); nil = the loaded one.
    public var checkpoint: String?
    /// VAE to use: nil = automatic (the checkpoint's own), "None" = the checkpoint's own, else a `Models/VAE` name.
    public var vae: String?
    /// Extensions acting on this job (ControlNet units, AnimateDiff, …), decoded at the edge.
    public var hooks: [any GenerationHook]

    public init(prompt: String = "", negativePrompt: String = "", seed: Int64 = -1, subseed: Int64 = -1,
                subseedStrength: Double = 0, seedResizeFromW: Int = -1, seedResizeFromH: Int = -1,
                samplerName: String = "Euler", scheduler: String = "Automatic", steps: Int = 20,
                cfgScale: Double = 7, width: Int = 512, height: Int = 512, batchSize: Int = 1, nIter: Int = 1,
                tiling: Bool = false, eta: Double? = nil, sChurn: Double = 0, sTmin: Double = 0,
                sTmax: Double? = nil, sNoise: Double = 1, clipSkip: Int = 1, noiseSource: NoiseSourceKind = .gpu,
                etaNoiseSeedDelta: Int64 = 0, hires: HiresFix? = nil, checkpoint: String? = nil,
                vae: String? = nil, hooks: [any GenerationHook] = []) {
        self.prompt = prompt
        self.negativePrompt = negativePrompt
        self.seed = seed
        self.subseed = subseed
        self.subseedStrength = subseedStrength
        self.seedResizeFromW = seedResizeFromW
        self.seedResizeFromH = seedResizeFromH
        self.samplerName = samplerName
        self.scheduler = scheduler
        self.steps = steps
        self.cfgScale = cfgScale
        self.width = width
        self.height = height
        self.batchSize = batchSize
        self.nIter = nIter
        self.tiling = tiling
        self.eta = eta
        self.sChurn = sChurn
        self.sTmin = sTmin
        self.sTmax = sTmax
        self.sNoise = sNoise
        self.clipSkip = clipSkip
        self.noiseSource = noiseSource
        self.etaNoiseSeedDelta = etaNoiseSeedDelta
        self.hires = hires
        self.checkpoint = checkpoint
        self.vae = vae
        self.hooks = hooks
    }
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel. `Media` turns it into PNG.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Everything a finished job produced, including every value A1111's infotext and `info` JSON record.
public struct GenerationResult: Sendable {
    public var images: [RGBImage]
    /// Per image: prompt after styles, negative prompt, seed, subseed.
    public var allPrompts: [String]
    public var allNegativePrompts: [String]
    public var allSeeds: [Int64]
    public var allSubseeds: [Int64]
    /// The request with seeds resolved (-1 replaced) and sampler/scheduler resolved.
    public var request: GenerationRequest
    /// Schedule type label as the infotext writes it ("Automatic", "Karras", …).
    public var scheduleLabel: String
    public var modelName: String
    /// 10-hex shorthash of the checkpoint, nil if it was never hashed.
    public var modelShortHash: String?
    public var vaeName: String?
    public var vaeShortHash: String?
    /// `name: addnet-hash` pairs for LoRAs that were applied, in prompt order.
    public var loraHashes: [(name: String, hash: String)]
    /// A1111's `extra_generation_params` in insertion order: hires-fix keys, `Lora hashes`, schedule keys,
    /// then the hooks' keys.
    public var extraParameters: [(key: String, value: InfotextValue?)]
    /// True when the job was interrupted (the images are what was made so far).
    public var interrupted: Bool
    /// Wall-clock seconds spent generating.
    public var seconds: Double

    public init(images: [RGBImage], allPrompts: [String], allNegativePrompts: [String], allSeeds: [Int64],
                allSubseeds: [Int64], request: GenerationRequest, scheduleLabel: String, modelName: String,
                modelShortHash: String?, vaeName: String? = nil, vaeShortHash: String? = nil,
                loraHashes: [(name: String, hash: String)] = [], extraParameters: [(key: String, value: InfotextValue?)] = [],
                interrupted: Bool = false, seconds: Double = 0) {
        self.images = images
        self.allPrompts = allPrompts
        self.allNegativePrompts = allNegativePrompts
        self.allSeeds = allSeeds
        self.allSubseeds = allSubseeds
        self.request = request
        self.scheduleLabel = scheduleLabel
        self.modelName = modelName
        self.modelShortHash = modelShortHash
        self.vaeName = vaeName
        self.vaeShortHash = vaeShortHash
        self.loraHashes = loraHashes
        self.extraParameters = extraParameters
        self.interrupted = interrupted
        self.seconds = seconds
    }
}

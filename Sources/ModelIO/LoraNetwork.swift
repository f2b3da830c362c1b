import Foundation

/// The layers of an SD1 checkpoint as A1111's Lora extension names them: every weight of the UNet
/// (`model.diffusion_model.*`) and of the text encoder (`cond_stage_model.*`) under its module path with `.`
/// replaced by `_` (`diffusion_model_input_blocks_1_1_proj_in`, `transformer_text_model_encoder_layers_0_mlp_fc1`).
/// Matches: extensions-builtin/Lora/networks.py assign_network_names_to_compvis_modules
public struct LoraLayerIndex: Sendable {
    /// A1111 layer name → checkpoint key of the layer's weight.
    public let weightKeys: [String: String]
    /// Checkpoint key → stored shape.
    public let shapes: [String: [Int]]

    public init(_ base: any TensorSource) {
        var keys = [String: String](), shapes = [String: [Int]]()
        for key in base.keys where key.hasSuffix(".weight") {
            let module: Substring
            if key.hasPrefix("model.diffusion_model.") {
                module = key.dropFirst("model.".count).dropLast(".weight".count)
            } else if key.hasPrefix("cond_stage_model.") {
                module = key.dropFirst("cond_stage_model.".count).dropLast(".weight".count)
            } else {
                continue
            }
            keys[module.replacingOccurrences(of: ".", with: "_")] = key
            shapes[key] = base.shape(of: key)
        }
        weightKeys = keys
        self.shapes = shapes
    }

    /// The layer a LoRA module name (the part of a key before the first `.`) patches, or nil.
    /// Matches: extensions-builtin/Lora/networks.py load_network (name lookups and their fallbacks)
    public func layer(forModule name: String) -> String? {
        let converted = Self.compvisName(name)
        if weightKeys[converted] != nil { return converted }
        if name.contains("lora_unet") {
            let ldm = name.replacingOccurrences(of: "lora_unet", with: "diffusion_model")
            return weightKeys[ldm] != nil ? ldm : nil
        }
        if name.contains("lora_te1_text_model") {
            for replacement in ["0_transformer_text_model", "transformer_text_model"] {
                let te = name.replacingOccurrences(of: "lora_te1_text_model", with: replacement)
                if weightKeys[te] != nil { return te }
            }
        }
        return nil
    }

    private static let resnetSuffixes = [
        "conv1": "in_layers_2", "conv2": "out_layers_3", "norm1": "in_layers_0", "norm2": "out_layers_0",
        "time_emb_proj": "emb_layers_1", "conv_shortcut": "skip_connection",
    ]

    /// Diffusers-style kohya names (`lora_unet_down_blocks_0_attentions_0_…`, `lora_te_text_model_…`) to the
    /// CompVis layer names of an SD1 checkpoint; other names come back unchanged.
    /// Matches: extensions-builtin/Lora/networks.py convert_diffusers_name_to_compvis (SD1 branches)
    public static func compvisName(_ key: String) -> String {
        func suffix(_ kind: Substring, _ s: Substring) -> String {
            kind == "resnets" ? resnetSuffixes[String(s)] ?? String(s) : String(s)
        }
        func block(_ kind: Substring) -> Int { kind == "attentions" ? 1 : 0 }
        if let m = key.prefixMatch(of: #/lora_unet_conv_in(.*)/#) {
            return "diffusion_model_input_blocks_0_0\(m.1)"
        }
        if let m = key.prefixMatch(of: #/lora_unet_conv_out(.*)/#) {
            return "diffusion_model_out_2\(m.1)"
        }
        if let m = key.prefixMatch(of: #/lora_unet_time_embedding_linear_(\d+)(.*)/#), let i = Int(m.1) {
            return "diffusion_model_time_embed_\(i * 2 - 2)\(m.2)"
        }
        if let m = key.prefixMatch(of: #/lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)/#),
           let b = Int(m.1), let j = Int(m.3) {
            return "diffusion_model_input_blocks_\(1 + b * 3 + j)_\(block(m.2))_\(suffix(m.2, m.4))"
        }
        if let m = key.prefixMatch(of: #/lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)/#), let j = Int(m.2) {
            return "diffusion_model_middle_block_\(m.1 == "attentions" ? 1 : j * 2)_\(suffix(m.1, m.3))"
        }
        if let m = key.prefixMatch(of: #/lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)/#),
           let b = Int(m.1), let j = Int(m.3) {
            return "diffusion_model_output_blocks_\(b * 3 + j)_\(block(m.2))_\(suffix(m.2, m.4))"
        }
        if let m = key.prefixMatch(of: #/lora_unet_down_blocks_(\d+)_downsamplers_0_conv/#), let b = Int(m.1) {
            return "diffusion_model_input_blocks_\(3 + b * 3)_0_op"
        }
        if let m = key.prefixMatch(of: #/lora_unet_up_blocks_(\d+)_upsamplers_0_conv/#), let b = Int(m.1) {
            return "diffusion_model_output_blocks_\(2 + b * 3)_\(b > 0 ? 2 : 1)_conv"
        }
        if let m = key.prefixMatch(of: #/lora_te_text_model_encoder_layers_(\d+)_(.+)/#) {
            return "transformer_text_model_encoder_layers_\(m.1)_\(m.2)"
        }
        return key
    }
}

/// A LoRA / LyCORIS file matched against a checkpoint's layers.
///
/// Module types, tried in A1111's order: LoRA/LoCon (`lora_up.weight` + `lora_down.weight`, or PEFT's `lora_B`/
/// `lora_A`, optional `lora_mid.weight`), LoHa (`hada_w1_a/b`, `hada_w2_a/b`, optional `hada_t1/t2`), LoKr
/// (`lokr_w1` or `lokr_w1_a/b`, `lokr_w2` or `lokr_w2_a/b`, optional `lokr_t2`) and full (`diff`, optional
/// `diff_b`), each with `alpha` / `scale`. Other types (IA3, OFT, GLoRA, norm, DoRA scales) are refused with an
/// error naming the module and its keys. Keys that match no layer of the checkpoint are listed in `unmatched` and
/// ignored, as A1111 ignores them. Every factor's shape is checked against the layer before anything is computed.
/// Matches: extensions-builtin/Lora/networks.py load_network; network_*.py ModuleType*.create_module
public struct LoraNetwork: Sendable {
    public let path: String
    public let modules: [LoraModule]
    /// File keys that matched no layer of the checkpoint.
    public let unmatched: [String]

    static let understoodParts: Set<String> = [
        "lora_up.weight", "lora_down.weight", "lora_mid.weight", "lora_A.weight", "lora_B.weight",
        "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2",
        "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2",
        "diff", "diff_b", "alpha", "scale",
    ]

    public init(file: any CheckpointFile, layers: LoraLayerIndex) throws {
        path = file.path
        var grouped = [String: [String: String]]()   // layer → part → file key
        var order = [String](), unmatched = [String]()
        for key in file.keys {
            guard let dot = key.firstIndex(of: ".") else { unmatched.append(key); continue }
            let module = String(key[..<dot]), part = String(key[key.index(after: dot)...])
            if module == "bundle_emb" { unmatched.append(key); continue }
            guard let layer = layers.layer(forModule: module) else { unmatched.append(key); continue }
            if grouped[layer] == nil { order.append(layer) }
            grouped[layer, default: [:]][part] = key
        }
        self.unmatched = unmatched
        modules = try order.map { layer in
            try ModuleReader(layer: layer, parts: grouped[layer] ?? [:], file: file, layers: layers).module()
        }
    }
}

/// Reads and checks one module's tensors.
private struct ModuleReader {
    let layer: String
    let parts: [String: String]
    let file: any CheckpointFile
    let layers: LoraLayerIndex
    let name: String

    init(layer: String, parts: [String: String], file: any CheckpointFile, layers: LoraLayerIndex) {
        self.layer = layer
        self.parts = parts
        self.file = file
        self.layers = layers
        name = String((parts.values.sorted().first ?? layer).prefix { $0 != "." })
    }

    func fail(_ why: String) -> ModelFileError { .badTensor(file: file.path, key: name, reason: why) }
    func has(_ part: String) -> Bool { parts[part] != nil }
    func tensor(_ part: String) throws -> Tensor? { try parts[part].map { try file.tensor($0) } }
    func required(_ part: String) throws -> Tensor {
        guard let t = try tensor(part) else { throw fail("needs '\(part)'") }
        guard t.rank >= 1, t.count > 0 else { throw fail("'\(part)' is empty (shape \(t.shape))") }
        return t
    }
    func scalar(_ part: String) throws -> Double? {
        guard let t = try tensor(part) else { return nil }
        guard t.count == 1 else { throw fail("'\(part)' should be a scalar, got shape \(t.shape)") }
        return Double(t.scalars[0])
    }
    /// A1111's calc_scale: `scale`, else `alpha / dim` when the type has a dim, else 1.
    func scale(dim: Int?) throws -> Double {
        if let s = try scalar("scale") { return s }
        if let alpha = try scalar("alpha"), let dim, dim > 0 { return alpha / Double(dim) }
        return 1
    }
    /// Precision from the stored dtypes of the factor tensors (not alpha/scale).
    func precision(of names: [String]) -> ModulePrecision {
        ModulePrecision.of(names.compactMap { parts[$0] }.map { file.dtype(of: $0) })
    }

    func module() throws -> LoraModule {
        let unknown = parts.keys.filter { !LoraNetwork.understoodParts.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ModelFileError.unsupportedFormat(file: file.path, reason:
                "network module '\(name)' has keys \(unknown.joined(separator: ", ")), a network type this server "
                + "does not apply (supported: LoRA/LoCon lora_up/lora_down[/lora_mid], PEFT lora_A/lora_B, "
                + "LoHa hada_*, LoKr lokr_*, full diff[/diff_b], with alpha or scale)")
        }
        guard let targetKey = layers.weightKeys[layer], let target = layers.shapes[targetKey],
              target.count == 2 || target.count == 4 else {
            throw fail("patches '\(layer)', which is not a linear or convolution layer")
        }
        let wanted = target.reduce(1, *)
        func module(_ f: LoraModule.Factors, scale: Double, precision: ModulePrecision, produced: Int) throws -> LoraModule {
            let inpaintingPad = target.count == 4 && target[1] == 9 && produced * 9 == wanted * 4
            guard produced == wanted || inpaintingPad else {
                throw fail("the factors make \(produced) values but checkpoint weight '\(targetKey)' \(target) has \(wanted)")
            }
            return LoraModule(name: name, layer: layer, targetKey: targetKey, targetShape: target, factors: f,
                              scale: scale, precision: precision)
        }
        if (has("lora_up.weight") && has("lora_down.weight")) || (has("lora_B.weight") && has("lora_A.weight")) {
            let up = try required(has("lora_up.weight") ? "lora_up.weight" : "lora_B.weight")
            let down = try required(has("lora_down.weight") ? "lora_down.weight" : "lora_A.weight")
            let mid = try tensor("lora_mid.weight")
            let (r, upRank) = (down.shape[0], up.count / up.shape[0])
            guard up.rank >= 2, down.rank >= 2 else { throw fail("lora_up/lora_down must be at least 2-D") }
            if let mid {
                guard mid.rank == 4, mid.shape[0] == upRank, mid.shape[1] == r else {
                    throw fail("lora_mid \(mid.shape) does not join lora_up \(up.shape) and lora_down \(down.shape)")
                }
            } else if upRank != r {
                throw fail("lora_up \(up.shape) and lora_down \(down.shape) ranks differ")
            }
            guard up.shape[0] == target[0] else { throw fail("lora_up \(up.shape) does not match \(target)") }
            let inner = (down.count / r) * (mid.map { $0.count / ($0.shape[0] * $0.shape[1]) } ?? 1)
            // LoRA factors are widened to float32 (A1111 casts them to devices.dtype).
            return try module(.lora(up: up, down: down, mid: mid), scale: try scale(dim: r), precision: .f32,
                              produced: up.shape[0] * inner)
        }
        if ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"].allSatisfy(has) {
            let (w1a, w1b, w2a, w2b) = (try required("hada_w1_a"), try required("hada_w1_b"),
                                        try required("hada_w2_a"), try required("hada_w2_b"))
            let (t1, t2) = (try tensor("hada_t1"), try tensor("hada_t2"))
            let s1 = try productShape(w1a, w1b, t1, "hada_w1"), s2 = try productShape(w2a, w2b, t2, "hada_w2")
            guard s1.reduce(1, *) == s2.reduce(1, *) else { throw fail("hada_w1 makes \(s1) but hada_w2 makes \(s2)") }
            let p = precision(of: ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"])
            return try module(.loha(w1a: w1a, w1b: w1b, t1: t1, w2a: w2a, w2b: w2b, t2: t2),
                              scale: try scale(dim: w1b.shape[0]), precision: p, produced: s1.reduce(1, *))
        }
        let hasW1 = has("lokr_w1") || (has("lokr_w1_a") && has("lokr_w1_b"))
        let hasW2 = has("lokr_w2") || (has("lokr_w2_a") && has("lokr_w2_b"))
        if hasW1 && hasW2 {
            let w1 = try kronFactor("lokr_w1", t: nil), w2 = try kronFactor("lokr_w2", t: try tensor("lokr_t2"))
            guard w1.shape.count == 2, w2.shape.count == 2 || w2.shape.count == 4 else {
                throw fail("lokr_w1 must be 2-D and lokr_w2 2-D or 4-D (got \(w1.shape), \(w2.shape))")
            }
            let dim = ["lokr_w2_b", "lokr_w1_b"].lazy.compactMap { self.parts[$0].flatMap { self.file.shape(of: $0)?.first } }.first
            let p = precision(of: ["lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"])
            return try module(.lokr(w1: w1.factor, w2: w2.factor), scale: try scale(dim: dim), precision: p,
                              produced: w1.shape.reduce(1, *) * w2.shape.reduce(1, *))
        }
        if has("diff") {
            let diff = try required("diff"), bias = try tensor("diff_b")
            if let bias, bias.count != target[0] {
                throw fail("diff_b has \(bias.count) values for a layer with \(target[0]) outputs")
            }
            return try module(.full(diff: diff, bias: bias), scale: try scale(dim: nil),
                              precision: precision(of: ["diff"]), produced: diff.count)
        }
        throw fail("keys \(parts.keys.sorted().joined(separator: ", ")) make no complete network module")
    }

    /// The shape `a · b` (or the CP rebuild from `t`) makes; throws when the factors do not chain.
    func productShape(_ a: Tensor, _ b: Tensor, _ t: Tensor?, _ label: String) throws -> [Int] {
        guard a.rank >= 2, b.rank >= 2 else { throw fail("\(label) factors must be at least 2-D") }
        if let t {
            guard t.rank >= 2, a.rank == 2, b.rank == 2, t.shape[0] == a.shape[0], t.shape[1] == b.shape[0] else {
                throw fail("\(label) CP factors do not chain (t \(t.shape), a \(a.shape), b \(b.shape))")
            }
            return [a.shape[1], b.shape[1]] + Array(t.shape.dropFirst(2))
        }
        guard a.count / a.shape[0] == b.shape[0] else {
            throw fail("\(label)_a \(a.shape) and \(label)_b \(b.shape) do not chain")
        }
        return [a.shape[0], b.count / b.shape[0]]
    }

    /// A LoKr factor and the shape it makes.
    func kronFactor(_ base: String, t: Tensor?) throws -> (factor: LoraModule.KronFactor, shape: [Int]) {
        if let whole = try tensor(base) { return (.whole(whole), whole.shape) }
        let a = try required(base + "_a"), b = try required(base + "_b")
        let shape = try productShape(a, b, t, base)
        guard t != nil || (a.rank == 2 && b.rank == 2) else { throw fail("\(base)_a/_b must be 2-D") }
        return (t.map { .cp(t: $0, a: a, b: b) } ?? .product(a, b), shape)
    }
}

/// A checkpoint with LoRA networks merged into its weights on read: `tensor(key)` is the stored weight plus each
/// network's change, added in network order (what A1111 leaves in the layer after activating the networks).
/// Matches: extensions-builtin/Lora/networks.py network_apply_weights
public struct LoraOverlay: TensorSource {
    public struct Application: Sendable {
        public let network: LoraNetwork
        public let teMultiplier: Double
        public let unetMultiplier: Double
        public let dynDim: Int?

        public init(network: LoraNetwork, teMultiplier: Double, unetMultiplier: Double, dynDim: Int?) {
            self.network = network
            self.teMultiplier = teMultiplier
            self.unetMultiplier = unetMultiplier
            self.dynDim = dynDim
        }
    }

    private struct Patch {
        let module: LoraModule
        let multiplier: Double
        let dynDim: Int?
        /// True when the key is the module's bias (a `full` module's `diff_b`).
        let bias: Bool
    }

    public let base: any TensorSource
    private let patches: [String: [Patch]]

    public init(base: any TensorSource, applying networks: [Application]) {
        self.base = base
        var patches = [String: [Patch]]()
        for a in networks {
            for m in a.network.modules {
                let multiplier = m.isTextEncoder ? a.teMultiplier : a.unetMultiplier
                patches[m.targetKey, default: []].append(Patch(module: m, multiplier: multiplier, dynDim: a.dynDim, bias: false))
                if let bias = m.biasKey, base.shape(of: bias) != nil {
                    patches[bias, default: []].append(Patch(module: m, multiplier: multiplier, dynDim: nil, bias: true))
                }
            }
        }
        self.patches = patches
    }

    /// Checkpoint keys whose values differ from the base.
    public var patchedKeys: Set<String> { Set(patches.keys) }

    public var keys: [String] { base.keys }
    public func shape(of key: String) -> [Int]? { base.shape(of: key) }

    public func tensor(_ key: String) throws -> Tensor {
        var t = try base.tensor(key)
        for p in patches[key] ?? [] {
            t = p.bias ? p.module.appliedToBias(t, multiplier: p.multiplier)
                       : p.module.applied(to: t, multiplier: p.multiplier, dynDim: p.dynDim)
        }
        return t
    }
}

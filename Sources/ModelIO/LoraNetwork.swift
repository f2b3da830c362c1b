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

/// One LoRA / LoCon module: the low-rank factors that change one checkpoint weight.
public struct LoraModule: Sendable {
    /// The module name in the LoRA file (`lora_unet_…`).
    public let name: String
    /// A1111's layer name of the patched layer.
    public let layer: String
    /// Checkpoint key of the patched weight, and its stored shape.
    public let targetKey: String
    public let targetShape: [Int]
    public let up: Tensor       // [out, r] or [out, r, 1, 1]
    public let down: Tensor     // [r, in] or [r, in, k, k] (or [r, in, 1, 1] with `mid`)
    public let mid: Tensor?     // [r, r, k, k]: CP decomposition of a conv
    /// `alpha / rank`, or the stored `scale`, or 1.
    public let scale: Double

    /// Text-encoder layers take the te multiplier, the rest the UNet multiplier.
    /// Matches: extensions-builtin/Lora/network.py NetworkModule.multiplier
    public var isTextEncoder: Bool { layer.prefix(20).contains("transformer") }

    public var rank: Int { down.shape[0] }

    /// The weight change at `multiplier`, in the target's stored shape: `up · down` (or the CP rebuild),
    /// times the scale, times the multiplier, in that order as float32. `dynDim` keeps the first ranks only.
    /// Matches: extensions-builtin/Lora/network_lora.py NetworkModuleLora.calc_updown,
    /// network.py NetworkModule.finalize_updown, lyco_helpers.py rebuild_conventional/rebuild_cp_decomposition
    public func delta(multiplier: Double, dynDim: Int?) -> Tensor {
        let out = up.shape[0]
        var up2 = up.reshaped([out, up.count / out])                      // [out, r]
        var down2 = down.reshaped([rank, down.count / rank])              // [r, in·k·k]
        var updown: Tensor
        if let mid {
            // einsum('n m k l, i n, m j -> i j k l', mid, up, down)
            let (n, m) = (mid.shape[0], mid.shape[1]), kl = mid.count / (n * m)
            let t = up2.matmul(mid.reshaped([n, m * kl]))                   // [out, m·kl]
                .reshaped([out, m, kl]).permuted([0, 2, 1])                   // [out, kl, m]
            updown = t.matmul(down2).permuted([0, 2, 1])                     // [out, in, kl]
        } else {
            if let dynDim, dynDim < up2.shape[1] {
                up2 = up2.slice(axis: 1, 0..<dynDim)
                down2 = down2.slice(axis: 0, 0..<dynDim)
            }
            updown = up2.matmul(down2)                                        // [out, in·k·k]
        }
        updown = updown * Float(scale)
        updown = updown * Float(multiplier)
        let targetCount = targetShape.reduce(1, *)
        if updown.count == targetCount { return updown.reshaped(targetShape) }
        // A 4-channel conv_in LoRA on a 9-channel inpainting UNet: zero for the 5 extra input channels.
        // Matches: extensions-builtin/Lora/networks.py network_apply_weights (inpainting pad)
        let inner = updown.count / (out * 4)
        let padded = Tensor.concat([updown.reshaped([out, 4, inner]), Tensor(zeros: [out, 5, inner])], axis: 1)
        return padded.reshaped(targetShape)
    }
}

/// A kohya-style LoRA / LoCon file matched against a checkpoint's layers.
///
/// Understood per module: `lora_up.weight` + `lora_down.weight` (or PEFT's `lora_B.weight` + `lora_A.weight`),
/// optional `lora_mid.weight` (CP/Tucker convs), `alpha`, `scale`. Modules of other LyCORIS types (LoHa, LoKr,
/// IA3, OFT, DoRA, …) are refused with an error that names the module and its keys. Keys that match no layer of
/// the checkpoint are listed in `unmatched` and ignored, as A1111 ignores them.
/// Matches: extensions-builtin/Lora/networks.py load_network, network_lora.py ModuleTypeLora.create_module
public struct LoraNetwork: Sendable {
    public let path: String
    public let modules: [LoraModule]
    /// File keys that matched no layer of the checkpoint.
    public let unmatched: [String]

    static let understoodParts: Set<String> = ["lora_up.weight", "lora_down.weight", "lora_mid.weight",
                                               "lora_A.weight", "lora_B.weight", "alpha", "scale"]

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
            try Self.module(layer: layer, parts: grouped[layer] ?? [:], file: file, layers: layers)
        }
    }

    private static func module(layer: String, parts: [String: String], file: any CheckpointFile,
                               layers: LoraLayerIndex) throws -> LoraModule {
        let any = parts.values.sorted().first ?? layer
        let name = String(any.prefix { $0 != "." })
        let unknown = parts.keys.filter { !understoodParts.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ModelFileError.unsupportedFormat(file: file.path, reason:
                "LoRA module '\(name)' has keys \(unknown.joined(separator: ", ")), a network type this server "
                + "does not apply (supported: LoRA/LoCon lora_up/lora_down[/lora_mid], PEFT lora_A/lora_B, alpha, scale)")
        }
        guard let upKey = parts["lora_up.weight"] ?? parts["lora_B.weight"],
              let downKey = parts["lora_down.weight"] ?? parts["lora_A.weight"] else {
            throw ModelFileError.badTensor(file: file.path, key: name,
                                           reason: "a LoRA module needs both lora_up.weight and lora_down.weight")
        }
        guard let targetKey = layers.weightKeys[layer], let targetShape = layers.shapes[targetKey],
              targetShape.count == 2 || targetShape.count == 4 else {
            throw ModelFileError.badTensor(file: file.path, key: name,
                                           reason: "patches '\(layer)', which is not a linear or convolution layer")
        }
        let up = try file.tensor(upKey), down = try file.tensor(downKey)
        let mid = try parts["lora_mid.weight"].map { try file.tensor($0) }
        func scalar(_ part: String) throws -> Double? {
            guard let key = parts[part] else { return nil }
            let t = try file.tensor(key)
            guard t.count == 1 else {
                throw ModelFileError.badTensor(file: file.path, key: key, reason: "expected a scalar, got shape \(t.shape)")
            }
            return Double(t.scalars[0])
        }
        let rank = down.shape.first ?? 0
        let scale = try scalar("scale") ?? (try scalar("alpha")).map { $0 / Double(rank) } ?? 1
        try checkShapes(up: up, down: down, mid: mid, target: targetShape, file: file.path, name: name)
        return LoraModule(name: name, layer: layer, targetKey: targetKey, targetShape: targetShape,
                          up: up, down: down, mid: mid, scale: scale)
    }

    /// The factors must chain (`up`'s rank = `down`'s rank, through `mid`) and rebuild the target's size.
    private static func checkShapes(up: Tensor, down: Tensor, mid: Tensor?, target: [Int], file: String,
                                    name: String) throws {
        func fail(_ why: String) -> ModelFileError {
            .badTensor(file: file, key: name, reason: "\(why) (up \(up.shape), down \(down.shape)"
                       + (mid.map { ", mid \($0.shape)" } ?? "") + ", checkpoint weight \(target))")
        }
        guard up.rank >= 2, down.rank >= 2, up.count > 0, down.count > 0 else { throw fail("empty or 1-D factors") }
        let upRank = up.count / up.shape[0], downRank = down.shape[0]
        if let mid {
            guard mid.rank == 4, mid.shape[0] == upRank, mid.shape[1] == downRank else {
                throw fail("lora_mid does not join lora_up and lora_down")
            }
        } else if upRank != downRank {
            throw fail("lora_up and lora_down ranks differ")
        }
        let inner = (down.count / downRank) * (mid.map { $0.count / ($0.shape[0] * $0.shape[1]) } ?? 1)
        let produced = up.shape[0] * inner
        let wanted = target.reduce(1, *)
        let inpaintingPad = target.count == 4 && target[1] == 9 && produced * 9 == wanted * 4
        guard up.shape[0] == target[0], produced == wanted || inpaintingPad else {
            throw fail("the factors do not rebuild the checkpoint weight")
        }
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

    public let base: any TensorSource
    private let patches: [String: [(module: LoraModule, multiplier: Double, dynDim: Int?)]]

    public init(base: any TensorSource, applying networks: [Application]) {
        self.base = base
        var patches = [String: [(module: LoraModule, multiplier: Double, dynDim: Int?)]]()
        for a in networks {
            for m in a.network.modules {
                patches[m.targetKey, default: []].append((m, m.isTextEncoder ? a.teMultiplier : a.unetMultiplier, a.dynDim))
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
            t = t + p.module.delta(multiplier: p.multiplier, dynDim: p.dynDim).reshaped(t.shape)
        }
        return t
    }
}

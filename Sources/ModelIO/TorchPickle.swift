import Foundation

/// A storage named by a torch pickle's persistent id: `<archive>/data/<key>`, `count` elements of `typeName`.
struct TorchStorage: Sendable {
    let key: String
    /// e.g. `torch.HalfStorage`.
    let typeName: String
    let count: Int
}

/// A tensor view as `_rebuild_tensor_v2` describes it: a storage, an element offset, sizes and strides.
struct TorchTensor: Sendable {
    let storage: TorchStorage
    let offset: Int
    let shape: [Int]
    let stride: [Int]
}

/// The meaning of the few globals a torch checkpoint needs; every other global is refused by name.
///
/// Matches: stable-diffusion-webui modules/safe.py `RestrictedUnpickler.find_class` (the allow-list), and
/// torch/serialization.py `_load` (persistent ids `('storage', type, key, location, numel)`).
struct TorchPickleSemantics: PickleSemantics {
    let file: String

    /// Legacy typed-storage classes torch still writes in persistent ids, with the dtype each holds.
    static let storageTypes: [String: DType?] = [
        "torch.FloatStorage": .f32, "torch.HalfStorage": .f16, "torch.BFloat16Storage": .bf16,
        "torch.DoubleStorage": .f64, "torch.LongStorage": .i64, "torch.IntStorage": .i32,
        "torch.ShortStorage": .i16, "torch.CharStorage": .i8, "torch.ByteStorage": .u8, "torch.BoolStorage": .bool,
        // Known to torch but not convertible to Float32 tensors here: refused when a tensor uses one.
        "torch.ComplexFloatStorage": nil, "torch.ComplexDoubleStorage": nil, "torch.QInt8Storage": nil,
        "torch.QUInt8Storage": nil, "torch.QInt32Storage": nil, "torch.UntypedStorage": nil,
    ]

    static let rebuildFunctions: Set<String> = [
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
    ]

    static let containerFunctions: Set<String> = [
        "collections.OrderedDict", "builtins.set", "builtins.frozenset", "_codecs.encode", "torch.Size",
    ]

    /// Plain values: dtypes appear as arguments (tensor metadata), never called.
    static let dtypeValues: Set<String> = [
        "torch.float32", "torch.float16", "torch.bfloat16", "torch.float64", "torch.int64", "torch.int32",
        "torch.int16", "torch.int8", "torch.uint8", "torch.bool",
    ]

    /// Classes found in training checkpoints next to the weights; their instances become inert placeholders
    /// whose state is dropped (nothing of them is ever called or read).
    static let inertClasses: Set<String> = [
        "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint",
        "pytorch_lightning.callbacks.model_checkpoint",
        "numpy.core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray.scalar", "numpy._core.multiarray._reconstruct",
        "numpy.dtype", "numpy.ndarray",
    ]

    private func fail(_ reason: String) -> ModelFileError { .badPickle(file: file, reason: reason) }

    func resolveGlobal(module: String, name: String) throws -> PickleValue {
        // Protocol-2 pickles spell the builtins module the Python 2 way.
        let qualified = (module == "__builtin__" ? "builtins" : module) + "." + name
        if Self.storageTypes.keys.contains(qualified) || Self.rebuildFunctions.contains(qualified)
            || Self.containerFunctions.contains(qualified) || Self.dtypeValues.contains(qualified)
            || Self.inertClasses.contains(qualified) {
            return .global(qualified)
        }
        throw ModelFileError.forbiddenGlobal(file: file, global: qualified)
    }

    func call(_ callable: PickleValue, _ args: [PickleValue]) throws -> PickleValue {
        guard case let .global(name) = callable else { throw fail("cannot call a \(callable.kind)") }
        switch name {
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
            guard args.count >= 4, case let .storage(storage) = args[0], let offset = args[1].asInt,
                  let shape = intTuple(args[2]), let stride = intTuple(args[3]) else {
                throw fail("\(name) called with unexpected arguments (\(args.map(\.kind).joined(separator: ", ")))")
            }
            return .tensor(TorchTensor(storage: storage, offset: offset, shape: shape, stride: stride))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let data = args.first, case .tensor = data else { throw fail("\(name) without a tensor argument") }
            return data
        case "collections.OrderedDict":
            let dict = PickleDict()
            if let items = args.first {
                for pair in try sequence(items, of: name) {
                    let kv = try sequence(pair, of: name)
                    guard kv.count == 2 else { throw fail("\(name) item is not a key/value pair") }
                    try dict.set(kv[0], kv[1], file: file)
                }
            }
            return .dict(dict)
        case "builtins.set", "builtins.frozenset":
            return .set(PickleList(try args.first.map { try sequence($0, of: name) } ?? []))
        case "torch.Size":
            return .tuple(PickleList(try args.first.map { try sequence($0, of: name) } ?? []))
        case "_codecs.encode":
            // Protocol 2 writes Python 3 bytes as _codecs.encode(text, 'latin1').
            guard args.count == 2, let text = args[0].asString, let encoding = args[1].asString else {
                throw fail("_codecs.encode called with unexpected arguments")
            }
            switch encoding.lowercased() {
            case "latin1", "latin-1", "iso-8859-1":
                var out = [UInt8]()
                for scalar in text.unicodeScalars {
                    guard scalar.value < 256 else { throw fail("_codecs.encode: text is not latin-1") }
                    out.append(UInt8(scalar.value))
                }
                return .bytes(out)
            case "utf-8", "utf8": return .bytes(Array(text.utf8))
            default: throw fail("_codecs.encode with encoding '\(encoding)'")
            }
        default:
            if Self.inertClasses.contains(name) { return .instance(name) }
            throw fail("'\(name)' is not callable in a checkpoint")
        }
    }

    func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        guard case let .tuple(tuple) = id, case let t = tuple.items, t.count == 5, t[0].asString == "storage",
              case let .global(typeName) = t[1],
              Self.storageTypes.keys.contains(typeName), let key = t[2].asString, let count = t[4].asInt,
              count >= 0, !key.isEmpty, key.count <= 64 else {
            throw fail("unexpected persistent id (only torch storages are allowed)")
        }
        return .storage(TorchStorage(key: key, typeName: typeName, count: count))
    }

    func build(_ object: PickleValue, state: PickleValue) throws {
        switch object {
        case .dict, .instance, .tensor:
            break  // instance attributes (e.g. a state dict's `_metadata`) carry no weights: dropped
        default:
            throw fail("BUILD on a \(object.kind)")
        }
    }

    private func sequence(_ value: PickleValue, of name: String) throws -> [PickleValue] {
        switch value {
        case let .tuple(t): return t.items
        case let .list(list): return list.items
        case let .set(set): return set.items
        default: throw fail("\(name) expects a sequence, got a \(value.kind)")
        }
    }

    private func intTuple(_ value: PickleValue) -> [Int]? {
        let items: [PickleValue]
        switch value {
        case let .tuple(t): items = t.items
        case let .list(l): items = l.items
        default: return nil
        }
        let ints = items.compactMap(\.asInt)
        return ints.count == items.count ? ints : nil
    }
}

/// The tensors and scalar facts found in an unpickled checkpoint object.
struct CollectedCheckpoint {
    var tensors: [(key: String, tensor: TorchTensor)] = []
    var metadata: [String: String] = [:]
}

/// Walks the unpickled object the way A1111 reads a checkpoint.
///
/// Matches: stable-diffusion-webui modules/sd_models.py `get_state_dict_from_checkpoint` — a top-level
/// `state_dict` entry, when present, is the state dict; a nested `state_dict` inside it is dropped. Nested
/// dictionaries (e.g. an embedding's `string_to_param`) are flattened with dotted keys. Shared and cyclic
/// containers are visited once; depth is bounded.
func collectCheckpoint(_ root: PickleValue, file: String) throws -> CollectedCheckpoint {
    var out = CollectedCheckpoint()
    var visited = Set<ObjectIdentifier>()
    var seenKeys = Set<String>()

    func scalarText(_ v: PickleValue) -> String? {
        switch v {
        case let .int(i): return String(i)
        case let .float(f): return String(f)
        case let .string(s): return s
        case let .bool(b): return b ? "True" : "False"
        default: return nil
        }
    }

    func keyText(_ k: PickleValue) -> String? {
        switch k {
        case let .string(s): return s
        case let .int(i): return String(i)
        default: return nil
        }
    }

    func walk(_ value: PickleValue, prefix: String, depth: Int) throws {
        guard depth <= 32 else { throw ModelFileError.badPickle(file: file, reason: "containers nested deeper than 32 under '\(prefix)'") }
        let join = { (k: String) in prefix.isEmpty ? k : prefix + "." + k }
        switch value {
        case let .tensor(t):
            if seenKeys.insert(prefix).inserted { out.tensors.append((prefix, t)) }
        case let .dict(d):
            guard visited.insert(ObjectIdentifier(d)).inserted else { return }
            for (k, v) in d.entries {
                guard let name = keyText(k) else { continue }
                if depth == 0, name == "state_dict" { continue }
                try walk(v, prefix: join(name), depth: depth + 1)
            }
        case let .list(l):
            guard visited.insert(ObjectIdentifier(l)).inserted else { return }
            for (i, v) in l.items.enumerated() { try walk(v, prefix: join(String(i)), depth: depth + 1) }
        case let .tuple(t):
            guard visited.insert(ObjectIdentifier(t)).inserted else { return }
            for (i, v) in t.items.enumerated() { try walk(v, prefix: join(String(i)), depth: depth + 1) }
        default:
            break
        }
    }

    guard case let .dict(top) = root else {
        throw ModelFileError.badPickle(file: file, reason: "checkpoint holds a \(root.kind), not a dictionary")
    }
    var stateDict = top
    if case let .dict(inner)? = top["state_dict"] { stateDict = inner }
    for container in stateDict === top ? [top] : [top, stateDict] {
        for (k, v) in container.entries {
            if let name = keyText(k), let text = scalarText(v) { out.metadata[name] = text }
        }
    }
    try walk(.dict(stateDict), prefix: "", depth: 0)
    return out
}

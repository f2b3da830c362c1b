import Foundation

/// A value built by `RestrictedUnpickler`. Nothing in here can run code: globals are names checked against an
/// allow-list, and "calling" one is interpreted by `PickleSemantics`, never executed.
///
/// Every container is a class (tuples too, though never mutated once built) so that `dismantle` can empty
/// them in place: a hostile pickle can nest millions of levels deep, and releasing such a value the ordinary
/// way would recurse once per level and overflow the stack.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// An integer wider than 64 bits, kept as its little-endian two's-complement bytes.
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleList)
    case list(PickleList)
    case dict(PickleDict)
    case set(PickleList)
    /// An allowed global (`module.name`), not yet applied.
    case global(String)
    /// An instance of an allowed inert class; its state is dropped.
    case instance(String)
    case storage(TorchStorage)
    case tensor(TorchTensor)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .set: return "set"
        case let .global(name): return "global \(name)"
        case let .instance(name): return "instance of \(name)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    var asString: String? { if case let .string(s) = self { return s } else { return nil } }
    var asInt: Int? { if case let .int(i) = self { return i } else { return nil } }
}

/// A list shared through the memo (pickles alias containers, so they are reference types here).
final class PickleList {
    var items: [PickleValue]
    init(_ items: [PickleValue] = []) { self.items = items }
}

/// An insertion-ordered dictionary with Python's "last assignment wins" semantics.
final class PickleDict {
    private(set) var keys: [PickleValue] = []
    private(set) var values: [PickleValue] = []
    private var index: [PickleKey: Int] = [:]

    func set(_ key: PickleValue, _ value: PickleValue, file: String) throws {
        guard let hk = PickleKey(key) else {
            throw ModelFileError.badPickle(file: file, reason: "unhashable dictionary key of type \(key.kind)")
        }
        if let i = index[hk] {
            values[i] = value
        } else {
            index[hk] = keys.count
            keys.append(key)
            values.append(value)
        }
    }

    subscript(_ key: String) -> PickleValue? { index[.string(key)].map { values[$0] } }

    /// Hands out every key and value and leaves the dictionary empty (for `dismantle`).
    func removeAll() -> [PickleValue] {
        defer { keys = []; values = []; index = [:] }
        return keys + values
    }

    var entries: Zip2Sequence<[PickleValue], [PickleValue]> { zip(keys, values) }
}

/// The hashable subset of pickle values, for dictionary keys.
indirect enum PickleKey: Hashable {
    case none, bool(Bool), int(Int), bigInt([UInt8]), float(UInt64), string(String), bytes([UInt8]), tuple([PickleKey])
    case global(String)

    /// Nil for unhashable values and for tuples nested deeper than 16 levels.
    init?(_ value: PickleValue, depth: Int = 0) {
        guard depth <= 16 else { return nil }
        switch value {
        case .none: self = .none
        case let .bool(b): self = .bool(b)
        case let .int(i): self = .int(i)
        case let .bigInt(b): self = .bigInt(b)
        case let .float(f): self = .float(f.bitPattern)
        case let .string(s): self = .string(s)
        case let .bytes(b): self = .bytes(b)
        case let .global(g): self = .global(g)
        case let .tuple(t):
            var keys = [PickleKey]()
            for item in t.items {
                guard let k = PickleKey(item, depth: depth + 1) else { return nil }
                keys.append(k)
            }
            self = .tuple(keys)
        default: return nil
        }
    }
}

/// Empties every container reachable from `roots` using an explicit work list, breaking cycles too, so that
/// releasing the values afterwards costs constant stack depth however deeply the pickle nested them.
func dismantle(_ roots: [PickleValue]) {
    var work = roots
    while let value = work.popLast() {
        switch value {
        case let .list(l), let .tuple(l), let .set(l):
            work.append(contentsOf: l.items)
            l.items = []
        case let .dict(d):
            work.append(contentsOf: d.removeAll())
        default:
            break
        }
    }
}

/// What a checkpoint format allows globals to mean. Implementations refuse anything they do not know.
protocol PickleSemantics {
    /// GLOBAL / STACK_GLOBAL / INST: returns the value standing for `module.name`, or throws `forbiddenGlobal`.
    func resolveGlobal(module: String, name: String) throws -> PickleValue
    /// REDUCE / NEWOBJ / INST / OBJ: the result of applying `callable` to `args`.
    func call(_ callable: PickleValue, _ args: [PickleValue]) throws -> PickleValue
    /// BINPERSID / PERSID: the object a persistent id refers to.
    func persistentLoad(_ id: PickleValue) throws -> PickleValue
    /// BUILD: applies `state` to `object` (which stays on the stack).
    func build(_ object: PickleValue, state: PickleValue) throws
}

/// A pickle virtual machine for protocols 0–5 that never imports or executes anything.
///
/// Opcode meanings follow CPython's `Lib/pickle.py` (`_Unpickler.load_*`); the difference is that every global
/// goes through `PickleSemantics.resolveGlobal`, so a pickle naming `os.system` fails at the name, before any
/// call could be formed. Lengths are checked against the remaining bytes before anything is allocated.
struct RestrictedUnpickler {
    let file: String
    let semantics: PickleSemantics
    private let bytes: [UInt8]
    private var pos = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]

    init(bytes: [UInt8], file: String, semantics: PickleSemantics) {
        self.bytes = bytes
        self.file = file
        self.semantics = semantics
    }

    /// Runs the pickle in `bytes` and hands its object to `body`; afterwards, on success or error, every
    /// container the machine built is dismantled (see `dismantle`).
    static func withUnpickled<R>(bytes: [UInt8], file: String, semantics: PickleSemantics,
                                 _ body: (PickleValue) throws -> R) throws -> R {
        var machine = RestrictedUnpickler(bytes: bytes, file: file, semantics: semantics)
        defer { machine.dismantleAll() }
        let root = try machine.load()
        defer { dismantle([root]) }
        return try body(root)
    }

    private mutating func dismantleAll() {
        dismantle(stack + Array(memo.values))
        stack = []
        memo = [:]
        marks = []
    }

    private func fail(_ reason: String) -> ModelFileError { .badPickle(file: file, reason: reason) }

    // MARK: - reading

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - pos else {
            throw fail("needs \(n) more bytes at offset \(pos) but \(bytes.count - pos) remain")
        }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }

    private mutating func byte() throws -> UInt8 { try take(1).first! }

    private mutating func uint(_ n: Int) throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    private mutating func length(_ n: Int) throws -> Int {
        let v = try uint(n)
        guard v <= UInt64(bytes.count - pos) else {
            throw fail("length \(v) at offset \(pos - n) runs past the end (\(bytes.count - pos) bytes remain)")
        }
        return Int(v)
    }

    private mutating func line() throws -> String {
        guard let end = bytes[pos...].firstIndex(of: 0x0a) else { throw fail("unterminated text line at offset \(pos)") }
        defer { pos = end + 1 }
        return String(decoding: bytes[pos..<end], as: UTF8.self)
    }

    private mutating func utf8(_ n: Int) throws -> String {
        let slice = try take(n)
        guard let s = String(bytes: slice, encoding: .utf8) else { throw fail("invalid UTF-8 string at offset \(pos - n)") }
        return s
    }

    // MARK: - stack

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow at offset \(pos - 1)") }
        if let m = marks.last, stack.count < m { throw fail("popped across a MARK at offset \(pos - 1)") }
        return v
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw fail("no MARK for opcode at offset \(pos - 1)") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }

    private mutating func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw fail("empty stack at offset \(pos - 1)") }
        return v
    }

    private func memoGet(_ i: Int) throws -> PickleValue {
        guard let v = memo[i] else { throw fail("memo slot \(i) read before it was written") }
        return v
    }

    private mutating func append(_ items: [PickleValue]) throws {
        guard case let .list(list) = try top() else { throw fail("APPEND to a \(try top().kind) at offset \(pos - 1)") }
        list.items.append(contentsOf: items)
    }

    private mutating func setItems(_ items: [PickleValue]) throws {
        guard items.count % 2 == 0 else { throw fail("odd number of items for SETITEMS at offset \(pos - 1)") }
        let target = try top()
        switch target {
        case let .dict(dict):
            for i in stride(from: 0, to: items.count, by: 2) { try dict.set(items[i], items[i + 1], file: file) }
        case .instance:
            break  // state of an inert object: dropped
        default:
            throw fail("SETITEM on a \(target.kind) at offset \(pos - 1)")
        }
    }

    private mutating func global(_ module: String, _ name: String) throws -> PickleValue {
        try semantics.resolveGlobal(module: module, name: name)
    }

    private static func decodeLong(_ b: ArraySlice<UInt8>) -> PickleValue {
        if b.isEmpty { return .int(0) }
        if b.count <= 8 {
            var v: UInt64 = 0
            for (i, x) in b.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
            let shift = UInt64(64 - 8 * b.count)
            return .int(Int(Int64(bitPattern: v << shift) >> Int64(shift)))
        }
        return .bigInt(Array(b))
    }

    // MARK: - the machine

    /// Runs to STOP and returns the pickled object.
    mutating func load() throws -> PickleValue {
        while true {
            let op = try byte()
            switch op {
            case 0x80: // PROTO
                let p = try byte()
                guard p <= 5 else { throw fail("unsupported pickle protocol \(p)") }
            case 0x95: _ = try uint(8) // FRAME: framing is only a read-ahead hint
            case 0x2e: // STOP
                let v = try pop()
                guard stack.isEmpty, marks.isEmpty else { throw fail("items left on the stack at STOP") }
                return v
            case 0x28: marks.append(stack.count) // MARK
            case 0x30: _ = try pop() // POP
            case 0x31: _ = try popMark() // POP_MARK
            case 0x32: stack.append(try top()) // DUP
            case 0x4e: stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case 0x4a: stack.append(.int(Int(Int32(truncatingIfNeeded: try uint(4))))) // BININT
            case 0x4b: stack.append(.int(Int(try uint(1)))) // BININT1
            case 0x4d: stack.append(.int(Int(try uint(2)))) // BININT2
            case 0x8a: let n = try length(1); stack.append(Self.decodeLong(try take(n))) // LONG1
            case 0x8b: // LONG4
                let n = Int(Int32(truncatingIfNeeded: try uint(4)))
                stack.append(Self.decodeLong(try take(n)))
            case 0x49: // INT (text; "01"/"00" are the protocol-0 booleans)
                let s = try line()
                if s == "01" || s == "00" { stack.append(.bool(s == "01")); break }
                guard let v = Int(s) else { throw fail("bad INT literal '\(s.prefix(40))'") }
                stack.append(.int(v))
            case 0x4c: // LONG (text)
                let s = try line()
                guard let v = Int(s.hasSuffix("L") ? String(s.dropLast()) : s) else { throw fail("bad LONG literal '\(s.prefix(40))'") }
                stack.append(.int(v))
            case 0x47: stack.append(.float(Double(bitPattern: UInt64(bigEndian: try uint(8))))) // BINFLOAT
            case 0x46: // FLOAT (text)
                let s = try line()
                guard let v = Double(s) else { throw fail("bad FLOAT literal '\(s.prefix(40))'") }
                stack.append(.float(v))
            case 0x58: let n = try length(4); stack.append(.string(try utf8(n))) // BINUNICODE
            case 0x8c: let n = try length(1); stack.append(.string(try utf8(n))) // SHORT_BINUNICODE
            case 0x8d: let n = try length(8); stack.append(.string(try utf8(n))) // BINUNICODE8
            case 0x54: let n = try length(4); stack.append(.string(String(decoding: try take(n), as: Unicode.ASCII.self))) // BINSTRING
            case 0x55: let n = try length(1); stack.append(.string(String(decoding: try take(n), as: Unicode.ASCII.self))) // SHORT_BINSTRING
            case 0x42: let n = try length(4); stack.append(.bytes(Array(try take(n)))) // BINBYTES
            case 0x43: let n = try length(1); stack.append(.bytes(Array(try take(n)))) // SHORT_BINBYTES
            case 0x8e, 0x96: let n = try length(8); stack.append(.bytes(Array(try take(n)))) // BINBYTES8, BYTEARRAY8
            case 0x29: stack.append(.tuple(PickleList())) // EMPTY_TUPLE
            case 0x74: stack.append(.tuple(PickleList(try popMark()))) // TUPLE
            case 0x85: stack.append(.tuple(PickleList([try pop()]))) // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(.tuple(PickleList([a, b]))) // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(.tuple(PickleList([a, b, c]))) // TUPLE3
            case 0x5d: stack.append(.list(PickleList())) // EMPTY_LIST
            case 0x6c: stack.append(.list(PickleList(try popMark()))) // LIST
            case 0x7d: stack.append(.dict(PickleDict())) // EMPTY_DICT
            case 0x64: // DICT
                let items = try popMark()
                let dict = PickleDict()
                stack.append(.dict(dict))
                try setItems(items)
            case 0x8f: stack.append(.set(PickleList())) // EMPTY_SET
            case 0x91: stack.append(.set(PickleList(try popMark()))) // FROZENSET
            case 0x61: let v = try pop(); try append([v]) // APPEND
            case 0x65: let items = try popMark(); try append(items) // APPENDS
            case 0x73: let v = try pop(), k = try pop(); try setItems([k, v]) // SETITEM
            case 0x75: let items = try popMark(); try setItems(items) // SETITEMS
            case 0x90: // ADDITEMS
                let items = try popMark()
                guard case let .set(set) = try top() else { throw fail("ADDITEMS to a \(try top().kind)") }
                set.items.append(contentsOf: items)
            case 0x70: memo[try lineIndex()] = try top() // PUT
            case 0x71: memo[Int(try uint(1))] = try top() // BINPUT
            case 0x72: memo[Int(try uint(4))] = try top() // LONG_BINPUT
            case 0x94: memo[memo.count] = try top() // MEMOIZE
            case 0x67: stack.append(try memoGet(try lineIndex())) // GET
            case 0x68: stack.append(try memoGet(Int(try uint(1)))) // BINGET
            case 0x6a: stack.append(try memoGet(Int(try uint(4)))) // LONG_BINGET
            case 0x63: // GLOBAL
                let module = try line(), name = try line()
                stack.append(try global(module, name))
            case 0x93: // STACK_GLOBAL
                let nameValue = try pop(), moduleValue = try pop()
                guard let name = nameValue.asString, let module = moduleValue.asString else {
                    throw fail("STACK_GLOBAL with non-string module or name")
                }
                stack.append(try global(module, name))
            case 0x52: // REDUCE
                let args = try pop(), callable = try pop()
                guard case let .tuple(t) = args else { throw fail("REDUCE arguments are a \(args.kind), not a tuple") }
                stack.append(try semantics.call(callable, t.items))
            case 0x81: // NEWOBJ
                let args = try pop(), cls = try pop()
                guard case let .tuple(t) = args else { throw fail("NEWOBJ arguments are a \(args.kind), not a tuple") }
                stack.append(try semantics.call(cls, t.items))
            case 0x92: // NEWOBJ_EX
                let kwargs = try pop(), args = try pop(), cls = try pop()
                guard case let .tuple(t) = args, case let .dict(kw) = kwargs, kw.keys.isEmpty else {
                    throw fail("NEWOBJ_EX with keyword arguments or non-tuple arguments")
                }
                stack.append(try semantics.call(cls, t.items))
            case 0x69: // INST
                let module = try line(), name = try line()
                let cls = try global(module, name)
                stack.append(try semantics.call(cls, try popMark()))
            case 0x6f: // OBJ
                var items = try popMark()
                guard !items.isEmpty else { throw fail("OBJ without a class") }
                let cls = items.removeFirst()
                stack.append(try semantics.call(cls, items))
            case 0x62: // BUILD
                let state = try pop()
                try semantics.build(try top(), state: state)
            case 0x51: stack.append(try semantics.persistentLoad(try pop())) // BINPERSID
            case 0x50: stack.append(try semantics.persistentLoad(.string(try line()))) // PERSID
            case 0x82, 0x83, 0x84:
                throw fail("extension-registry opcode 0x\(String(op, radix: 16)) at offset \(pos - 1) is not allowed")
            case 0x97, 0x98:
                throw fail("out-of-band buffer opcode 0x\(String(op, radix: 16)) at offset \(pos - 1) is not allowed")
            case 0x53, 0x56:
                throw fail("protocol-0 quoted string opcode 0x\(String(op, radix: 16)) at offset \(pos - 1) is not supported")
            default:
                throw fail("unknown opcode 0x\(String(op, radix: 16)) at offset \(pos - 1)")
            }
        }
    }

    private mutating func lineIndex() throws -> Int {
        let s = try line()
        guard let i = Int(s), i >= 0 else { throw fail("bad memo index '\(s.prefix(40))'") }
        return i
    }
}

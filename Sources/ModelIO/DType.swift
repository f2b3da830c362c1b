/// Storage types found in checkpoints (safetensors spelling). Values are widened to Float32 on read.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool, .f8e4m3, .f8e5m2: return 1
        }
    }

    /// True for the 16-bit float types whose raw bits callers may want to keep compact.
    public var isHalf: Bool { self == .f16 || self == .bf16 }
}

/// IEEE binary16 bits to Float32, branch-light so the loop over a tensor vectorises.
///
/// Exponent rebias by +112; exponent 31 (inf/NaN) gets a further +112 to land on 255; exponent 0 (zero and
/// subnormals) is normalised by adding 2^-14 as an implicit bit and subtracting it again in float arithmetic.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let magnitude = UInt32(h & 0x7fff) << 13
    let exponent = magnitude & 0x0f80_0000
    var bits = magnitude &+ 0x3800_0000
    if exponent == 0x0f80_0000 { bits &+= 0x3800_0000 }
    var value: Float
    if exponent == 0 {
        value = Float(bitPattern: bits &+ 0x0080_0000) - Float(bitPattern: 0x3880_0000)
    } else {
        value = Float(bitPattern: bits)
    }
    value = Float(bitPattern: value.bitPattern | (UInt32(h & 0x8000) << 16))
    return value
}

/// FP8 E4M3 (the "FN" variant: no infinities, S.1111.111 is NaN) to Float32, via a 256-entry table.
private let f8e4m3Table: [Float] = (0..<256).map { (b: Int) -> Float in
    let sign: Float = b & 0x80 != 0 ? -1 : 1
    let e = (b >> 3) & 0x0f, m = b & 0x07
    if e == 0x0f && m == 0x07 { return .nan }
    if e == 0 { return sign * Float(m) * 0x1p-9 }
    return sign * (1 + Float(m) / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
}

/// Converts `count` stored little-endian values of `dtype` at `raw` to Float32.
func widen(_ raw: UnsafeRawPointer, dtype: DType, count: Int, into out: UnsafeMutablePointer<Float>) {
    switch dtype {
    case .f32:
        for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case .f16:
        for i in 0..<count { out[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
    case .bf16:
        for i in 0..<count {
            out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
        }
    case .f64:
        for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
    case .f8e4m3:
        f8e4m3Table.withUnsafeBufferPointer { table in
            for i in 0..<count { out[i] = table[Int(raw.load(fromByteOffset: i, as: UInt8.self))] }
        }
    case .f8e5m2:
        for i in 0..<count { out[i] = halfToFloat(UInt16(raw.load(fromByteOffset: i, as: UInt8.self)) << 8) }
    case .i64:
        for i in 0..<count { out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
    case .i32:
        for i in 0..<count { out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
    case .i16:
        for i in 0..<count { out[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
    case .i8:
        for i in 0..<count { out[i] = Float(raw.load(fromByteOffset: i, as: Int8.self)) }
    case .u64:
        for i in 0..<count { out[i] = Float(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
    case .u32:
        for i in 0..<count { out[i] = Float(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
    case .u16:
        for i in 0..<count { out[i] = Float(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
    case .u8:
        for i in 0..<count { out[i] = Float(raw.load(fromByteOffset: i, as: UInt8.self)) }
    case .bool:
        for i in 0..<count { out[i] = raw.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
    }
}

/// Number of elements of `shape`, or nil when a dimension is negative or the product overflows.
func elementCount(_ shape: [Int]) -> Int? {
    var n = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        n = p
    }
    return n
}

/// Float32 logarithm and sine/cosine computed step for step as PyTorch's AVX2 normal kernel computes them
/// (Cephes polynomials in `avx_mathfun.h`), so that `torch.randn` can be reproduced to the bit.
///
/// PyTorch builds that file with GCC's default `-ffp-contract=fast` and `-mfma`: every product whose only use is
/// an addition becomes one fused multiply-add (the earlier product of a `p*q + r*s` pair is the fused one).
/// The explicit `addingProduct` calls below are exactly those fusions; all other operations round separately.
/// Matches: aten/src/ATen/native/cpu/avx_mathfun.h log256_ps, sincos256_ps
enum CephesFloat {
    private static let sqrtHalf = Float(0.707106781186547524 as Double)
    private static let logP: [Float] = ([
        7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
        -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1,
    ] as [Double]).map { Float($0) }
    private static let logQ1 = Float(-2.12194440e-4 as Double)
    private static let logQ2 = Float(0.693359375 as Double)

    private static let fourOverPi = Float(1.27323954473516 as Double)
    private static let minusDP1 = Float(-0.78515625 as Double)
    private static let minusDP2 = Float(-2.4187564849853515625e-4 as Double)
    private static let minusDP3 = Float(-3.77489497744594108e-8 as Double)
    private static let sinP0 = Float(-1.9515295891E-4 as Double)
    private static let sinP1 = Float(8.3321608736E-3 as Double)
    private static let sinP2 = Float(-1.6666654611E-1 as Double)
    private static let cosP0 = Float(2.443315711809948E-005 as Double)
    private static let cosP1 = Float(-1.388731625493765E-003 as Double)
    private static let cosP2 = Float(4.166664568298827E-002 as Double)

    /// Natural log for positive finite `x` (denormals are clamped to the smallest normal, as the kernel does).
    static func log(_ input: Float) -> Float {
        let clamped = max(input, Float(bitPattern: 0x0080_0000))
        let bits = clamped.bitPattern
        // Exponent and mantissa in [0.5, 1).
        var e = Float(Int32(bitPattern: bits >> 23) - 0x7f) + 1
        var x = Float(bitPattern: (bits & ~UInt32(0x7f80_0000)) | Float(0.5).bitPattern)
        let below = x < sqrtHalf
        let tmp: Float = below ? x : 0
        x = x - 1
        e = e - (below ? 1 : 0)
        x = x + tmp

        let z = x * x
        var y = logP[0]
        for k in 1..<logP.count {
            y = logP[k].addingProduct(y, x)
        }
        y = y * x
        y = (e * logQ1).addingProduct(y, z)
        y = y - z * 0.5
        return (x + y).addingProduct(e, logQ2)
    }

    /// (sin x, cos x) for finite `x` with |x| < 2³¹·π/4 (the range reduction truncates to Int32).
    static func sincos(_ input: Float) -> (sin: Float, cos: Float) {
        var signSin = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7fff_ffff)

        var j = Int32(x * fourOverPi)
        j = (j &+ 1) & ~1
        let y = Float(j)
        let swapSignSin = UInt32(bitPattern: j & 4) << 29
        let usesSinePoly = (j & 2) == 0
        let signCos = UInt32(bitPattern: ~(j &- 2) & 4) << 29
        signSin ^= swapSignSin

        // Extended-precision reduction: x - y·π/4 in three parts.
        x = x.addingProduct(y, minusDP1)
        x = x.addingProduct(y, minusDP2)
        x = x.addingProduct(y, minusDP3)

        let z = x * x
        var yc = cosP1.addingProduct(cosP0, z)
        yc = cosP2.addingProduct(yc, z)
        yc = yc * z
        yc = (-(z * 0.5)).addingProduct(yc, z)
        yc = yc + 1

        var ys = sinP1.addingProduct(sinP0, z)
        ys = sinP2.addingProduct(ys, z)
        ys = ys * z
        ys = x.addingProduct(ys, x)

        // The kernel selects with masks and adds the zeroed other branch (which turns -0 into +0).
        let sinFromSine: Float = usesSinePoly ? ys : 0, sinFromCos: Float = usesSinePoly ? 0 : yc
        let sinValue = sinFromCos + sinFromSine
        let cosValue = (yc - sinFromCos) + (ys - sinFromSine)
        return (Float(bitPattern: sinValue.bitPattern ^ signSin), Float(bitPattern: cosValue.bitPattern ^ signCos))
    }
}

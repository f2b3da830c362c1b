import Testing
@testable import TensorCore

@Test func matmulOfIdentityIsInput() {
    let a = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
    let eye = Tensor(shape: [3, 3], scalars: [1, 0, 0, 0, 1, 0, 0, 0, 1])
    #expect(a.matmul(eye) == a)
}

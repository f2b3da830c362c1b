/// CLIP BPE tokenizer and the A1111 prompt parser.
public enum TokenizerInfo {
    public static let contextLength = 77
}

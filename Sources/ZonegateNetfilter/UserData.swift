/// libnftnl's userdata format (`nftnl_udata`): type byte, length byte, value.
/// nft keeps comments and set key byte order there; the kernel stores it untouched.
/// Built in Swift because it is three lines, and decoding needs no callback.
struct UserData {
    /// `NFTNL_UDATA_RULE_COMMENT`, `NFTNL_UDATA_SET_ELEM_COMMENT`: both type 0.
    static let commentType: UInt8 = 0
    /// `NFTNL_UDATA_SET_KEYBYTEORDER`, `_DATABYTEORDER`, `_DATA_INTERVAL`, `_COMMENT`:
    /// what nft writes for a set so that `nft list` prints its keys and values.
    static let setKeyByteOrder: UInt8 = 0
    static let setDataByteOrder: UInt8 = 1
    static let setDataInterval: UInt8 = 6
    static let setComment: UInt8 = 7
    /// nft refuses longer comments (`NFTNL_UDATA_COMMENT_MAXLEN`).
    static let maximumCommentLength = 127

    private(set) var bytes: [UInt8] = []

    mutating func put(_ type: UInt8, _ value: [UInt8]) {
        bytes += [type, UInt8(value.count)] + value
    }

    /// A NUL-terminated string, as `nftnl_udata_put_strz` writes it.
    mutating func put(_ type: UInt8, string: String) {
        put(type, Array(string.utf8.prefix(Self.maximumCommentLength)) + [0])
    }

    /// A host-order u32, as `nftnl_udata_put_u32` writes it.
    mutating func put(_ type: UInt8, u32 value: UInt32) {
        put(type, withUnsafeBytes(of: value, Array.init))
    }

    /// The value of the first attribute of `type`; nil if absent or truncated.
    static func value(of type: UInt8, in bytes: [UInt8]) -> [UInt8]? {
        var index = 0
        while index + 2 <= bytes.count {
            let length = Int(bytes[index + 1])
            guard index + 2 + length <= bytes.count else { return nil }
            if bytes[index] == type { return Array(bytes[index + 2 ..< index + 2 + length]) }
            index += 2 + length
        }
        return nil
    }

    static func string(of type: UInt8, in bytes: [UInt8]) -> String? {
        value(of: type, in: bytes).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    static func comment(_ text: String?) -> [UInt8]? {
        guard let text else { return nil }
        var data = UserData()
        data.put(commentType, string: text)
        return data.bytes
    }
}

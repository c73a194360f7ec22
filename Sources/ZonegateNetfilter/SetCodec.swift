import CNftnl
import ZonegateRuleset

/// An element as the kernel stores it. Single-field interval sets (the kernel's
/// rbtree) hold a range as two elements, a start and an end marker one past the
/// range (`NFT_SET_ELEM_INTERVAL_END`); concatenated intervals (pipapo) hold one
/// element with `NFTA_SET_ELEM_KEY_END`.
struct KernelElement {
    var key: [UInt8]
    var keyEnd: [UInt8]?
    var isIntervalEnd = false
    var data: SetElement.Data?
    var comment: String?

    /// What tells two kernel elements apart.
    var identity: [[UInt8]] { [key, keyEnd ?? [], [isIntervalEnd ? 1 : 0]] }

    /// An upper bound of the element's encoded size, to cut element lists.
    var sizeBound: Int {
        64 + 2 * key.count + (data.map { _ in 64 } ?? 0) + (comment?.utf8.count ?? 0) + (data?.chainLength ?? 0)
    }
}

extension SetElement.Data {
    fileprivate var chainLength: Int {
        if case .verdict(let verdict) = self { verdict.targetChain?.utf8.count ?? 0 } else { 0 }
    }
}

/// Encodes and decodes sets and their elements.
enum SetCodec {
    /// `NFT_DATA_VERDICT`: the data type of verdict maps.
    static let verdictDataType = UInt32(NFT_DATA_VERDICT.rawValue)

    /// Whether the kernel keeps this set's ranges as start/end element pairs.
    static func usesEndMarkers(_ set: NftSet) -> Bool {
        set.flags.contains(.interval) && set.keyType.count == 1
    }

    /// Builds a libnftnl set for `add set`, valid during `body`.
    // add set inet zonegate allow4 { type ipv4_addr . inet_service; flags interval; }
    static func withEncoded(
        _ set: NftSet, table: String, setID: UInt32?, _ body: (OpaquePointer) -> Void
    ) throws(NetfilterError) {
        let encoded = try cCall("nftnl_set_alloc") { nftnl_set_alloc() }
        defer { nftnl_set_free(encoded) }
        nftnl_set_set_str(encoded, attr(NFTNL_SET_TABLE), table)
        nftnl_set_set_str(encoded, attr(NFTNL_SET_NAME), set.name)
        nftnl_set_set_u32(encoded, attr(NFTNL_SET_FLAGS), set.kernelFlags.rawValue)
        // nft folds a concatenation's datatype ids six bits each, first field highest.
        nftnl_set_set_u32(encoded, attr(NFTNL_SET_KEY_TYPE), set.keyType.reduce(0) { $0 << 6 | $1.typeID })
        nftnl_set_set_u32(encoded, attr(NFTNL_SET_KEY_LEN), set.keyLength)
        var userData = UserData()
        userData.put(UserData.setKeyByteOrder, u32: set.keyType.count == 1 ? set.keyType[0].byteOrder.rawValue : 0)
        switch set.dataType {
        case .none:
            break
        case .verdict:
            nftnl_set_set_u32(encoded, attr(NFTNL_SET_DATA_TYPE), verdictDataType)
            nftnl_set_set_u32(encoded, attr(NFTNL_SET_DATA_LEN), 0)
            userData.put(UserData.setDataByteOrder, u32: 0)
            userData.put(UserData.setDataInterval, u32: 0)
        case .value(let field):
            nftnl_set_set_u32(encoded, attr(NFTNL_SET_DATA_TYPE), field.typeID)
            nftnl_set_set_u32(encoded, attr(NFTNL_SET_DATA_LEN), field.length)
            userData.put(UserData.setDataByteOrder, u32: field.byteOrder.rawValue)
            userData.put(UserData.setDataInterval, u32: 0)
        }
        if let setID { nftnl_set_set_u32(encoded, attr(NFTNL_SET_ID), setID) }
        if let timeout = set.timeout { nftnl_set_set_u64(encoded, attr(NFTNL_SET_TIMEOUT), timeout) }
        if set.kernelFlags.contains(.concat) {
            // The kernel wants the field lengths of an interval concatenation (NFTA_SET_DESC_CONCAT).
            let lengths = set.keyType.map { UInt8($0.length) }
            try cCall("nftnl_set_set_data") {
                nftnl_set_set_data(encoded, attr(NFTNL_SET_DESC_CONCAT), lengths, UInt32(lengths.count))
            }
        }
        if let comment = set.comment { userData.put(UserData.setComment, string: comment) }
        try cCall("nftnl_set_set_data") {
            nftnl_set_set_data(encoded, attr(NFTNL_SET_USERDATA), userData.bytes, UInt32(userData.bytes.count))
        }
        body(encoded)
    }

    /// The kernel's elements for `elements` of `set` (end markers for rbtree ranges).
    static func kernelElements(_ elements: [SetElement], of set: NftSet) -> [KernelElement] {
        guard usesEndMarkers(set) else {
            return elements.map { KernelElement(key: $0.key, keyEnd: $0.keyEnd, data: $0.data, comment: $0.comment) }
        }
        return elements.flatMap { element -> [KernelElement] in
            let start = KernelElement(key: element.key, data: element.data, comment: element.comment)
            guard let end = element.keyEnd.flatMap(incremented) else { return [start] }
            return [start, KernelElement(key: end, isIntervalEnd: true)]
        }
    }

    /// The elements of a libnftnl set for a `NEWSETELEM`/`DELSETELEM` message, valid during `body`.
    static func withElements(
        _ elements: ArraySlice<KernelElement>, table: String, set: String, setID: UInt32?,
        _ body: (OpaquePointer) -> Void
    ) throws(NetfilterError) {
        let encoded = try cCall("nftnl_set_alloc") { nftnl_set_alloc() }
        defer { nftnl_set_free(encoded) }
        nftnl_set_set_str(encoded, attr(NFTNL_SET_TABLE), table)
        nftnl_set_set_str(encoded, attr(NFTNL_SET_NAME), set)
        if let setID { nftnl_set_set_u32(encoded, attr(NFTNL_SET_ID), setID) }
        for element in elements {
            let item = try cCall("nftnl_set_elem_alloc") { nftnl_set_elem_alloc() }
            // The set owns the element from here and frees it with itself.
            nftnl_set_elem_add(encoded, item)
            try setBytes(item, attr(NFTNL_SET_ELEM_KEY), element.key)
            if let keyEnd = element.keyEnd { try setBytes(item, attr(NFTNL_SET_ELEM_KEY_END), keyEnd) }
            if element.isIntervalEnd {
                nftnl_set_elem_set_u32(item, attr(NFTNL_SET_ELEM_FLAGS), UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue))
            }
            switch element.data {
            case .verdict(let verdict)?:
                nftnl_set_elem_set_u32(item, attr(NFTNL_SET_ELEM_VERDICT), VerdictCode.encode(verdict))
                if let chain = verdict.targetChain {
                    try cCall("nftnl_set_elem_set_str") { nftnl_set_elem_set_str(item, attr(NFTNL_SET_ELEM_CHAIN), chain) }
                }
            case .value(let bytes)?:
                try setBytes(item, attr(NFTNL_SET_ELEM_DATA), bytes)
            case nil:
                break
            }
            if let comment = UserData.comment(element.comment) {
                try setBytes(item, attr(NFTNL_SET_ELEM_USERDATA), comment)
            }
        }
        body(encoded)
    }

    private static func setBytes(_ element: OpaquePointer, _ attribute: UInt16, _ bytes: [UInt8]) throws(NetfilterError) {
        try cCall("nftnl_set_elem_set") { nftnl_set_elem_set(element, attribute, bytes, UInt32(bytes.count)) }
    }

    // MARK: - Decoding

    /// A set from a `NEWSET` message parsed into `set`; elements are read separately.
    static func decode(_ set: OpaquePointer) throws(NetfilterError) -> NftSet {
        guard let name = nftnl_set_get_str(set, attr(NFTNL_SET_NAME)) else { throw .malformedReply("set name") }
        let flags = NftSet.Flags(rawValue: nftnl_set_get_u32(set, attr(NFTNL_SET_FLAGS)))
        let foldedType = nftnl_set_get_u32(set, attr(NFTNL_SET_KEY_TYPE))
        let keyLength = nftnl_set_get_u32(set, attr(NFTNL_SET_KEY_LEN))
        var fieldLengths = KnownTypes.fieldLengths(folded: foldedType, keyLength: keyLength)
        if nftnl_set_is_set(set, attr(NFTNL_SET_DESC_CONCAT)) {
            var count: UInt32 = 0
            let lengths = nftnl_set_get_data(set, attr(NFTNL_SET_DESC_CONCAT), &count)
            fieldLengths = UnsafeRawBufferPointer(start: lengths, count: Int(count)).map(UInt32.init)
        }
        let keyType = fieldLengths.indices.map { index -> KeyField in
            let shift = UInt32(6 * (fieldLengths.count - 1 - index))
            return KnownTypes.field(id: foldedType >> shift & 0x3f, length: fieldLengths[index])
        }
        var dataType = NftSet.DataType.none
        if flags.contains(.map) {
            let type = nftnl_set_get_u32(set, attr(NFTNL_SET_DATA_TYPE))
            dataType = type == verdictDataType
                ? .verdict : .value(KnownTypes.field(id: type, length: nftnl_set_get_u32(set, attr(NFTNL_SET_DATA_LEN))))
        }
        let userData = bytes(nftnl_set_get_data, set, attr(NFTNL_SET_USERDATA))
        return NftSet(
            name: String(cString: name), keyType: keyType, dataType: dataType, flags: flags,
            timeout: nftnl_set_is_set(set, attr(NFTNL_SET_TIMEOUT)) ? nftnl_set_get_u64(set, attr(NFTNL_SET_TIMEOUT)) : nil,
            comment: userData.flatMap { UserData.string(of: UserData.setComment, in: $0) }
        )
    }

    /// The elements of a `NEWSETELEM` dump message parsed into `set`.
    static func decodeElements(_ set: OpaquePointer) throws(NetfilterError) -> [KernelElement] {
        let iterator = try cCall("nftnl_set_elems_iter_create") { nftnl_set_elems_iter_create(set) }
        defer { nftnl_set_elems_iter_destroy(iterator) }
        var elements: [KernelElement] = []
        // iter_next returns the element under the cursor, then advances.
        while let item = nftnl_set_elems_iter_next(iterator) {
            guard let key = elementBytes(item, attr(NFTNL_SET_ELEM_KEY)) else { throw .malformedReply("set element key") }
            var element = KernelElement(key: key, keyEnd: elementBytes(item, attr(NFTNL_SET_ELEM_KEY_END)))
            element.isIntervalEnd = nftnl_set_elem_is_set(item, attr(NFTNL_SET_ELEM_FLAGS))
                && nftnl_set_elem_get_u32(item, attr(NFTNL_SET_ELEM_FLAGS)) & UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue) != 0
            if nftnl_set_elem_is_set(item, attr(NFTNL_SET_ELEM_VERDICT)) {
                let chain = nftnl_set_elem_get_str(item, attr(NFTNL_SET_ELEM_CHAIN)).map { String(cString: $0) }
                element.data = .verdict(try VerdictCode.decode(nftnl_set_elem_get_u32(item, attr(NFTNL_SET_ELEM_VERDICT)), chain: chain))
            } else if let data = elementBytes(item, attr(NFTNL_SET_ELEM_DATA)) {
                element.data = .value(data)
            }
            element.comment = elementBytes(item, attr(NFTNL_SET_ELEM_USERDATA)).flatMap {
                UserData.string(of: UserData.commentType, in: $0)
            }
            elements.append(element)
        }
        return elements
    }

    /// Rebuilds elements from the kernel's: rbtree start/end pairs become one range.
    static func elements(_ kernel: [KernelElement], of set: NftSet) -> [SetElement] {
        guard usesEndMarkers(set) else {
            return kernel.map { SetElement(key: $0.key, keyEnd: $0.keyEnd, data: $0.data, comment: $0.comment) }
        }
        // At one key an end marker closes the previous range before a start opens the next.
        let sorted = kernel.sorted { a, b in
            a.key == b.key ? a.isIntervalEnd && !b.isIntervalEnd : a.key.lexicographicallyPrecedes(b.key)
        }
        var result: [SetElement] = []
        var open: KernelElement?
        for element in sorted {
            if element.isIntervalEnd {
                // nft's leading end marker at 0 closes nothing.
                guard let start = open, let last = decremented(element.key) else { continue }
                result.append(SetElement(key: start.key, keyEnd: last, data: start.data, comment: start.comment))
                open = nil
            } else {
                if let start = open {
                    // A range running to the end of the key space has no end marker.
                    result.append(SetElement(key: start.key, keyEnd: allOnes(start.key.count), data: start.data, comment: start.comment))
                }
                open = element
            }
        }
        if let start = open {
            result.append(SetElement(key: start.key, keyEnd: allOnes(start.key.count), data: start.data, comment: start.comment))
        }
        return result
    }

    // MARK: - Byte helpers

    private static func elementBytes(_ element: OpaquePointer, _ attribute: UInt16) -> [UInt8]? {
        guard nftnl_set_elem_is_set(element, attribute) else { return nil }
        var length: UInt32 = 0
        let pointer = nftnl_set_elem_get(element, attribute, &length)
        return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
    }

    static func bytes(
        _ getter: (OpaquePointer?, UInt16, UnsafeMutablePointer<UInt32>?) -> UnsafeRawPointer?,
        _ object: OpaquePointer, _ attribute: UInt16
    ) -> [UInt8]? {
        var length: UInt32 = 0
        guard let pointer = getter(object, attribute, &length) else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
    }

    /// `bytes + 1` as a big-endian number; nil when it overflows.
    static func incremented(_ bytes: [UInt8]) -> [UInt8]? {
        var result = bytes
        for index in result.indices.reversed() {
            result[index] &+= 1
            if result[index] != 0 { return result }
        }
        return nil
    }

    static func decremented(_ bytes: [UInt8]) -> [UInt8]? {
        var result = bytes
        for index in result.indices.reversed() {
            result[index] &-= 1
            if result[index] != 0xff { return result }
        }
        return nil
    }

    private static func allOnes(_ count: Int) -> [UInt8] { [UInt8](repeating: 0xff, count: count) }
}

/// nft datatypes zonegate knows by id, so that a dump decodes to the same `KeyField`.
enum KnownTypes {
    static let all: [KeyField] = [.ipv4Addr, .ipv6Addr, .etherAddr, .inetProto, .inetService, .mark, .ifname]

    /// The field lengths of a key without `NFTA_SET_DESC_CONCAT` (a concatenation in a hash): the
    /// folded type's fields when all are known and fill the key, else one field of the whole key.
    static func fieldLengths(folded: UInt32, keyLength: UInt32) -> [UInt32] {
        var ids: [UInt32] = []
        var rest = folded
        repeat {
            ids.insert(rest & 0x3f, at: 0)
            rest >>= 6
        } while rest != 0
        let fields = ids.compactMap { id in all.first { $0.typeID == id } }
        guard fields.count == ids.count, fields.count > 1, fields.reduce(0, { $0 + $1.paddedLength }) == keyLength else { return [keyLength] }
        return fields.map(\.length)
    }

    static func field(id: UInt32, length: UInt32) -> KeyField {
        all.first { $0.typeID == id && $0.length == length }
            ?? KeyField(name: "type\(id)", typeID: id, length: length, byteOrder: .big)
    }
}

/// Verdict codes of `NFTA_VERDICT_CODE` (`NF_ACCEPT`, `NFT_JUMP`, ...).
enum VerdictCode {
    static func encode(_ verdict: Verdict) -> UInt32 {
        let code: Int32 = switch verdict {
        case .accept: NF_ACCEPT
        case .drop: NF_DROP
        case .continue: NFT_CONTINUE.rawValue
        case .return: NFT_RETURN.rawValue
        case .jump: NFT_JUMP.rawValue
        case .goto: NFT_GOTO.rawValue
        }
        return UInt32(bitPattern: code)
    }

    static func decode(_ code: UInt32, chain: String?) throws(NetfilterError) -> Verdict {
        switch Int32(bitPattern: code) {
        case NF_ACCEPT: return .accept
        case NF_DROP: return .drop
        case NFT_CONTINUE.rawValue: return .continue
        case NFT_RETURN.rawValue: return .return
        case NFT_JUMP.rawValue: if let chain { return .jump(chain) }
        case NFT_GOTO.rawValue: if let chain { return .goto(chain) }
        default: break
        }
        throw .malformedReply("verdict \(Int32(bitPattern: code))")
    }
}

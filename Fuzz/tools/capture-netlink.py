#!/usr/bin/env python3
"""Captures real netlink replies for the fuzz seed corpus (docs/fuzzing.md).

Run as root in a throwaway network namespace, from the repository root:
    unshare --net -- python3 Fuzz/tools/capture-netlink.py Fuzz/corpus
It loads Tests/ZonegateNetfilterTests/wire.nft (the constructs zonegate writes) plus a few of its
own, then writes what the kernel answers, byte for byte, as zonegate's sockets receive it:
  fuzz-nft-readback/  the replies of the table, chain, set, element and rule dumps
  fuzz-conntrack/     a ctnetlink dump holding UDP, TCP and ICMP (v4 and v6) connections
  fuzz-nflog/         NFLOG packet messages of group 2 with zonegate's deny and audit prefixes
Everything it makes disappears with the namespace.
"""
import os, socket, struct, subprocess, sys, time

NETLINK_NETFILTER = 12
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 1, 4, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_ULOG, NFNL_SUBSYS_NFTABLES = 1, 4, 10
NFT_MSG_GETTABLE, NFT_MSG_GETCHAIN, NFT_MSG_GETRULE, NFT_MSG_GETSET, NFT_MSG_GETSETELEM = 1, 4, 7, 10, 13
NFPROTO_UNSPEC, NFPROTO_INET = 0, 1
LOG_GROUP = 2

EXTRA = """
table inet zonegate {
	set peers6 { type ipv6_addr; flags interval; elements = { fd00::/64, 2001:db8::1 } }
	set svc { type inet_service; flags interval; elements = { 22, 8000-8999 } }
	chain deny {
		limit rate 10/second burst 5 packets log prefix "zonegate deny " group 2
		reject with icmpx admin-prohibited
	}
	chain input {
		type filter hook input priority 0; policy accept;
		ip6 saddr @peers6 th dport @svc counter accept
		ip protocol udp udp dport 9 jump deny
		meta l4proto tcp tcp dport 7 log prefix "zonegate audit " group 2
		ip6 nexthdr ipv6-icmp log prefix "zonegate deny " group 2
		ip protocol icmp log prefix "zonegate audit " group 2
		ct state new counter
		tcp flags & (syn | ack) == syn counter
		ip daddr 127.0.0.0/8 ip saddr != 10.0.0.0/8 counter
		icmp type echo-request limit rate over 100/minute drop
	}
}
"""

def nlmsg(msg_type, flags, seq, body):
    return struct.pack("=IHHII", 16 + len(body), msg_type, flags, seq, 0) + body

def attr(kind, payload):
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * ((4 - len(payload) % 4) % 4)

def nfgen(family, res_id=0):
    return struct.pack("=BBH", family, 0, socket.htons(res_id))

def split(buffer):
    messages, offset = [], 0
    while len(buffer) - offset >= 16:
        length, msg_type = struct.unpack_from("=IH", buffer, offset)
        if length < 16:
            break
        messages.append((msg_type, buffer[offset:offset + length]))
        offset += (length + 3) & ~3
    return messages

def dump(sock, msg_type, family, attrs=b""):
    """The reply messages of one dump request, without NLMSG_DONE."""
    sock.send(nlmsg(msg_type, NLM_F_REQUEST | NLM_F_DUMP, 1, nfgen(family) + attrs))
    replies = []
    while True:
        for kind, message in split(sock.recv(1 << 20)):
            if kind == NLMSG_DONE:
                return replies
            if kind == NLMSG_ERROR:
                raise OSError(-struct.unpack_from("=i", message, 16)[0], "dump %#x" % msg_type)
            replies.append(message)

def write(directory, name, messages):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(b"".join(m + b"\0" * ((4 - len(m) % 4) % 4) for m in messages))

def nft(script):
    subprocess.run(["nft", "-f", "-"], input=script.encode(), check=True)

def main(out):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("Tests/ZonegateNetfilterTests/wire.nft") as f:
        nft(f.read())
    nft(EXTRA)

    # NFLOG: bind the group before any packet is logged (nfnetlink_log config: bind, copy 128 bytes, sequence numbers).
    log = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    log.bind((0, 0))
    config = (NFNL_SUBSYS_ULOG << 8) | 1
    body = nfgen(NFPROTO_UNSPEC, LOG_GROUP) + attr(1, bytes([1])) + attr(2, struct.pack(">IBB", 128, 2, 0)) \
        + attr(5, struct.pack(">I", 1)) + attr(6, struct.pack(">H", 1))    # QTHRESH 1, FLAGS SEQ
    log.send(nlmsg(config, NLM_F_REQUEST | NLM_F_ACK, 1, body))
    for kind, message in split(log.recv(65536)):
        if kind == NLMSG_ERROR and struct.unpack_from("=i", message, 16)[0] != 0:
            raise OSError(-struct.unpack_from("=i", message, 16)[0], "NFLOG bind")

    # Traffic: UDP and TCP over both families, pings (conntrack entries and logged packets).
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        for port in (9, 53, 8080):
            udp.sendto(b"x", (address, port))
        for port in (7, 22, 8443):
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.settimeout(0.2)
            try:
                tcp.connect((address, port))
            except OSError:
                pass
            tcp.close()
        icmp = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6)
        echo = struct.pack("!BBHHH", 8 if family == socket.AF_INET else 128, 0, 0, 0x1234, 1) + b"ping"
        if family == socket.AF_INET:    # the kernel computes ICMPv6 checksums, not ICMP ones
            total = sum(struct.unpack("!%dH" % (len(echo) // 2), echo))
            total = (total >> 16) + (total & 0xffff)
            echo = echo[:2] + struct.pack("!H", ~(total + (total >> 16)) & 0xffff) + echo[4:]
        icmp.sendto(echo, (address, 0))
    time.sleep(0.3)

    nf = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    nf.bind((0, 0))
    base = NFNL_SUBSYS_NFTABLES << 8
    readback = f"{out}/fuzz-nft-readback"
    tables = dump(nf, base | NFT_MSG_GETTABLE, NFPROTO_UNSPEC)
    table_attr = attr(1, b"zonegate\0")
    chains = dump(nf, base | NFT_MSG_GETCHAIN, NFPROTO_INET, table_attr)
    sets = dump(nf, base | NFT_MSG_GETSET, NFPROTO_INET, table_attr)
    rules = dump(nf, base | NFT_MSG_GETRULE, NFPROTO_INET, table_attr)
    elements = []
    for message in sets:
        offset, name = 20, None
        while offset + 4 <= len(message):
            length, kind = struct.unpack_from("=HH", message, offset)
            if kind & 0x3fff == 2:          # NFTA_SET_NAME
                name = message[offset + 4:offset + length]
            offset += (length + 3) & ~3
        replies = dump(nf, base | NFT_MSG_GETSETELEM, NFPROTO_INET, table_attr + attr(2, name))
        elements += replies
        write(readback, "elements-" + name.rstrip(b"\0").decode(), replies)
    write(readback, "tables", tables)
    write(readback, "chains", chains)
    write(readback, "sets", sets)
    write(readback, "rules", rules)
    for index, message in enumerate(rules):
        write(readback, f"rule-{index:02}", [message])
    write(readback, "dump", tables + chains + sets + elements + rules)

    conntrack = dump(nf, (NFNL_SUBSYS_CTNETLINK << 8) | 1, NFPROTO_UNSPEC)
    write(f"{out}/fuzz-conntrack", "dump", conntrack)
    for index, message in enumerate(conntrack):
        write(f"{out}/fuzz-conntrack", f"entry-{index:02}", [message])

    log.settimeout(1)
    packets = []
    try:
        while True:
            packets += [m for kind, m in split(log.recv(1 << 20)) if kind >> 8 == NFNL_SUBSYS_ULOG]
    except socket.timeout:
        pass
    write(f"{out}/fuzz-nflog", "batch", packets)
    for index, message in enumerate(packets):
        write(f"{out}/fuzz-nflog", f"packet-{index:02}", [message])
    print(f"captured {len(tables + chains + sets + elements + rules)} nf_tables, {len(conntrack)} conntrack, {len(packets)} NFLOG messages")

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Fuzz/corpus")

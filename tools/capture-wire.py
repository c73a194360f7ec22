#!/usr/bin/env python3
"""Turns `nft --debug=mnl -c -f FILE` output into one line per batch message:
`TYPE NFGENMSG-HEX BODY-HEX`, the body rebuilt from the attribute dump.

Usage: unshare -n -- nft --debug=mnl -c -f Tests/ZonegateNetfilterTests/wire.nft 2>&1 \
         | tools/capture-wire.py
Only the messages between batch begin (16) and batch end (17) are printed; the
cache requests nft sends first are not part of the batch."""
import re
import sys

ansi = re.compile(r"\x1b\[[0-9;]*m")
messages, current, in_batch = [], None, False
for raw in sys.stdin:
    line = ansi.sub("", raw)
    header = re.match(r"\|\s+(\d+)\s+\|\s+(\S+)\s+\|\s+\|\s+type \| flags", line)
    if header:
        kind = int(header.group(1))
        if kind == 16:
            in_batch = True
        elif kind == 17:
            in_batch = False
        current = {"type": kind, "extra": "", "body": bytearray()} if in_batch and kind != 16 else None
        if current is not None:
            messages.append(current)
        continue
    if current is None:
        continue
    extra = re.match(r"\|\s+((?:[0-9a-f]{2} ){4})\s*\|\s+\|\s+extra header", line)
    if extra:
        current["extra"] = extra.group(1).replace(" ", "")
        continue
    attribute = re.match(r"\|(\d{5})\|(..)\|(\d{5})\|", line)
    if attribute:
        length, flags, kind = int(attribute.group(1)), attribute.group(2), int(attribute.group(3))
        kind |= (0x8000 if "N" in flags else 0) | (0x4000 if "B" in flags else 0)
        current["body"] += length.to_bytes(2, "little") + kind.to_bytes(2, "little")
        continue
    data = re.match(r"\|\s+((?:[0-9a-f]{2} ){4})\s*\|\s+\|\s+data", line)
    if data:
        current["body"] += bytes.fromhex(data.group(1).replace(" ", ""))
for message in messages:
    print(f'{message["type"]} {message["extra"]} {message["body"].hex()}')

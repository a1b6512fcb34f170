#!/usr/bin/env python3
"""Rewrites a metanas checkpoint's JSON header (docs/formats.md, version 2).

edit_checkpoint.py IN OUT drop-program   : metadata without "program" (as a
    checkpoint saved by the library alone), with a valid header CRC.
edit_checkpoint.py IN OUT seed N         : program.config.seed = N, keeping the
    old header CRC (a hand edit, which the reader must refuse).
"""
import json, struct, sys, zlib

src, dst, what = sys.argv[1], sys.argv[2], sys.argv[3]
b = open(src, "rb").read()
hlen, hcrc = struct.unpack_from("<QI", b, 12)
header = json.loads(b[24:24 + hlen])
data = b[24 + hlen:]
if what == "drop-program":
    header["metadata"].pop("program", None)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    crc = zlib.crc32(text)
elif what == "seed":
    header["metadata"]["program"]["config"]["seed"] = int(sys.argv[4])
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    crc = hcrc
else:
    sys.exit("unknown edit " + what)
open(dst, "wb").write(b[:12] + struct.pack("<QI", len(text), crc) + text + data)

#!/usr/bin/env python3
# mkhive.py - write an empty Windows registry hive (one root key, one security cell) so the
# tests can build SYSTEM and SOFTWARE hives with hivexsh: hivex edits hives but cannot create
# one.  The layout follows the regf format as hivex reads it (lib/hivex-internal.h):
#   0x0000 base block "regf" (4 KiB, checksum = XOR of the first 127 dwords)
#   0x1000 one 4 KiB "hbin": root "nk" cell, "sk" cell, then one free cell.
#
#   mkhive.py OUT [ROOTNAME]
import struct
import sys


def cell(payload, allocated=True):
    size = (len(payload) + 4 + 7) & ~7
    return struct.pack("<i", -size if allocated else size) + payload.ljust(size - 4, b"\0")


def main():
    out = sys.argv[1]
    name = (sys.argv[2] if len(sys.argv) > 2 else "ROOT").encode("ascii")
    nk_off, none = 0x20, 0xFFFFFFFF
    # Minimal self-relative security descriptor: revision 1, SE_SELF_RELATIVE|SE_DACL_PRESENT,
    # no owner, group, SACL or DACL (a NULL DACL).
    sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)
    nk_len = (4 + 0x4C + len(name) + 7) & ~7
    sk_off = nk_off + nk_len
    nk = (b"nk" + struct.pack("<H", 0x2C) + struct.pack("<Q", 0) + struct.pack("<I", 0)
          + struct.pack("<I", none)              # parent
          + struct.pack("<II", 0, 0)             # subkeys, volatile subkeys
          + struct.pack("<II", none, none)       # subkey lists
          + struct.pack("<I", 0)                 # values
          + struct.pack("<I", none)              # value list
          + struct.pack("<I", sk_off)            # security
          + struct.pack("<I", none)              # class name
          + struct.pack("<IIIII", 0, 0, 0, 0, 0) # max lengths, work var
          + struct.pack("<HH", len(name), 0) + name)
    sk = (b"sk" + struct.pack("<H", 0) + struct.pack("<II", sk_off, sk_off)
          + struct.pack("<I", 1) + struct.pack("<I", len(sd)) + sd)
    cells = cell(nk) + cell(sk)
    hbin_size = 0x1000
    free = struct.pack("<i", hbin_size - 0x20 - len(cells)) + b"\0" * (hbin_size - 0x20 - len(cells) - 4)
    hbin = (b"hbin" + struct.pack("<II", 0, hbin_size) + b"\0" * 16 + struct.pack("<I", 0)
            + cells + free)
    assert len(hbin) == hbin_size
    base = bytearray(0x1000)
    struct.pack_into("<4sIIQIIIIIII", base, 0, b"regf", 1, 1, 0, 1, 3, 0, 1, nk_off, hbin_size, 1)
    csum = 0
    for i in range(0, 0x1FC, 4):
        csum ^= struct.unpack_from("<I", base, i)[0]
    struct.pack_into("<I", base, 0x1FC, csum)
    with open(out, "wb") as f:
        f.write(bytes(base) + hbin)


main()

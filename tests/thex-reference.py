#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# An independent reference for the SHA-256 THEX tree (doc/gateway-protocol.md), written
# the plain way with hashlib, level by level as the THEX draft describes it
# (the C code uses a stack instead), so test-hash-tree can check one against
# the other.
#
# Usage: thex-reference.py [--serialize] FILE [BLOCK_SIZE [FILE BLOCK_SIZE]...]
# For each file (block size 65536 unless given) prints the base32 root and,
# with --serialize, a second line with the hex of the serialization from the
# root down to the block layer.  Several files per run save interpreter
# start-ups in the tests.

import base64
import hashlib
import sys

LEAF_SIZE = 1024


def leaf(segment):
    return hashlib.sha256(b"\x00" + segment).digest()


def next_level(nodes):
    up = [hashlib.sha256(b"\x01" + nodes[i] + nodes[i + 1]).digest()
          for i in range(0, len(nodes) - 1, 2)]
    if len(nodes) % 2 == 1:
        up.append(nodes[-1])
    return up


def levels(data):
    nodes = [leaf(data[i:i + LEAF_SIZE])
             for i in range(0, len(data), LEAF_SIZE)] or [leaf(b"")]
    result = [nodes]
    while len(nodes) > 1:
        nodes = next_level(nodes)
        result.append(nodes)
    return result  # leaves first, root last


def describe(path, block_size, serialize):
    with open(path, "rb") as f:
        data = f.read()
    block_level = block_size.bit_length() - LEAF_SIZE.bit_length()

    tree = levels(data)
    root = tree[-1][0]
    print(base64.b32encode(root).decode("ascii").rstrip("="))
    if serialize:
        # level k holds the nodes over 2^k leaves; the block layer is
        # level block_level, or the root when the tree is shorter
        cut = tree[min(block_level, len(tree) - 1):]
        print("".join(n.hex() for level in reversed(cut) for n in level))


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    serialize = "--serialize" in argv
    if not args:
        sys.exit(__doc__ or "usage: thex-reference.py [--serialize] FILE "
                 "[BLOCK_SIZE [FILE BLOCK_SIZE]...]")
    if len(args) % 2 == 1:
        args.append("65536")
    for i in range(0, len(args), 2):
        describe(args[i], int(args[i + 1]), serialize)


if __name__ == "__main__":
    main(sys.argv)

"""Merkle trees for batch signatures: RFC 9162 (Certificate Transparency v2) tree hashing and audit paths.

A producer that seals many envelopes at once (the gateway's audit records) may sign the root of a Merkle
tree over their signed digests once, and give every envelope its inclusion proof, instead of one ECDSA
signature per envelope. Every envelope stays independently verifiable: leaf -> proof -> root -> signature.

Leaves and nodes are domain-separated (``0x00`` / ``0x01`` prefixes) so a leaf can never pose as an inner
node; ``root_from_path`` follows RFC 9162 §2.1.3.2 exactly and refuses a path of the wrong length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "MAX_BATCH",
    "all_paths",
    "audit_path",
    "leaf_hash",
    "node_hash",
    "path_length",
    "root_from_path",
    "tree_root",
]

#: The largest batch a proof may name (so a path has at most 16 entries).
MAX_BATCH = 1 << 16


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(_root(leaves[:k]), _root(leaves[k:]))


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """Root over already-hashed leaves (``leaf_hash`` of each item), RFC 9162 MTH."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    return _root(leaves)


def _path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(index, leaves[:k]), _root(leaves[k:])]
    return [*_path(index - k, leaves[k:]), _root(leaves[:k])]


def audit_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Inclusion proof of leaf ``index``: sibling hashes from the leaf up to the root (RFC 9162 PATH)."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {len(leaves)}")
    return _path(index, leaves)


def all_paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's audit path in one pass over the tree (O(n log n) hashes in all)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")

    def walk(lo: int, hi: int, paths: list[list[bytes]]) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        k = _split(hi - lo)
        left = walk(lo, lo + k, paths)
        right = walk(lo + k, hi, paths)
        for i in range(lo, lo + k):
            paths[i].append(right)
        for i in range(lo + k, hi):
            paths[i].append(left)
        return node_hash(left, right)

    paths: list[list[bytes]] = [[] for _ in leaves]
    return walk(0, len(leaves), paths), paths


def path_length(index: int, size: int) -> int:
    """How many entries the audit path of leaf ``index`` in a tree of ``size`` has."""
    n = 0
    while size > 1:
        k = _split(size)
        if index < k:
            size = k
        else:
            index, size = index - k, size - k
        n += 1
    return n


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` proves ``leaf`` (a leaf hash) is leaf ``index`` of, in a tree of ``size``;
    None when the path cannot belong to such a tree (wrong length, index out of range). RFC 9162 §2.1.3.2."""
    if not 0 <= index < size or size > MAX_BATCH:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if len(p) != 32 or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None

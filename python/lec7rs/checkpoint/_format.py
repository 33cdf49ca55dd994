"""The checkpoint file format: a tree of plain values and arrays, no pickle.

Layout (all integers little-endian)::

    offset 0   header     magic b"LEC7RSCK", u32 format version, u32 flags (0),
                          u64 manifest length, u64 payload length
    offset 32  manifest   UTF-8 JSON: the tree, arrays replaced by references
                          (dtype, shape, offset and length in the payload)
               padding    zeros up to a multiple of 64
               payload    the arrays' raw bytes, little-endian, C order, each
                          at a multiple of 64
    last 32    checksum   SHA-256 tree hash of everything before it:
                          SHA-256(TREE_TAG + SHA-256(piece 0) + SHA-256(piece 1)
                          + ...), over consecutive 16 MiB pieces (the last one
                          shorter), so that the pieces hash in parallel

Tree nodes are JSON objects tagged by ``"t"``: ``none``, ``bool``, ``int``
(a JSON integer), ``float`` (``repr`` of the float as a string, so nan,
inf and -0.0 round-trip exactly), ``str``, ``list``, ``tuple``, ``dict``
(a list of ``[key, value]`` node pairs; keys are ``str`` or ``int`` nodes,
so optimizer state keyed by param index keeps its int keys), ``array``
and ``scalar`` (a NumPy scalar: dtype and the hex of its bytes). Array and
scalar dtypes come from a fixed list of numeric types; nothing in a file
can name a Python object, so loading a file runs no code from it.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import struct
import sys
from typing import Any, BinaryIO

import numpy as np

from .. import _core

MAGIC = b"LEC7RSCK"
VERSION = 1
HEADER = struct.Struct("<8sIIQQ")
ALIGN = 64
DIGEST = 32
#: The pieces of the tree hash (part of the format).
PIECE = 16 << 20
TREE_TAG = b"lec7rs.checkpoint sha256 tree\0"
#: Bytes per read or write call: big enough to amortize the calls, small
#: enough that hashing one piece overlaps the I/O of the next.
IO_CHUNK = 16 << 20
MAX_DEPTH = 64

#: The dtypes a file may hold, by name: numbers and bools, never objects.
DTYPES = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
        "complex64",
        "complex128",
    )
}


class Encoder:
    """Turns a tree of plain values into manifest nodes and a payload plan."""

    def __init__(self) -> None:
        self.arrays: list = []  # (offset, little-endian C-contiguous array)
        self.size = 0

    def encode(self, value: Any, path: str, depth: int = 0) -> dict:
        if depth > MAX_DEPTH:
            raise ValueError(f"{path}: nested more than {MAX_DEPTH} levels deep")
        if value is None:
            return {"t": "none"}
        if isinstance(value, np.ndarray):
            return self._array(value, path)
        if isinstance(value, np.generic):
            name = _dtype_name(value.dtype, path)
            raw = np.asarray(value, dtype=DTYPES[name]).tobytes()
            return {"t": "scalar", "dtype": name, "v": raw.hex()}
        if isinstance(value, bool):
            return {"t": "bool", "v": value}
        if isinstance(value, int):
            return {"t": "int", "v": int(value)}
        if isinstance(value, float):
            return {"t": "float", "v": repr(float(value))}
        if isinstance(value, str):
            return {"t": "str", "v": str(value)}
        if isinstance(value, (list, tuple)):
            tag = "tuple" if isinstance(value, tuple) else "list"
            items = [self.encode(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
            return {"t": tag, "v": items}
        if isinstance(value, dict):
            pairs = []
            for k, v in value.items():
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(
                        f"{path}: dict key {k!r} of type {type(k).__name__} cannot be stored "
                        "(keys must be str or int)"
                    )
                key = {"t": "str", "v": str(k)} if isinstance(k, str) else {"t": "int", "v": int(k)}
                pairs.append([key, self.encode(v, f"{path}[{k!r}]", depth + 1)])
            return {"t": "dict", "v": pairs}
        raise TypeError(
            f"{path}: a value of type {type(value).__name__} cannot be stored in a checkpoint "
            "(plain values, lists, tuples, dicts and numeric NumPy arrays only)"
        )

    def _array(self, value: np.ndarray, path: str) -> dict:
        name = _dtype_name(value.dtype, path)
        array = np.ascontiguousarray(value, dtype=DTYPES[name])
        offset = self.size
        self.arrays.append((offset, array))
        self.size = _align(offset + array.nbytes)
        return {
            "t": "array",
            "dtype": name,
            "shape": list(array.shape),
            "offset": offset,
            "nbytes": array.nbytes,
        }


def _dtype_name(dtype: np.dtype, path: str) -> str:
    if dtype.kind in "biufc" and dtype.fields is None:
        little = dtype.newbyteorder("<")
        for name, allowed in DTYPES.items():
            if little == allowed:
                return name
    raise TypeError(f"{path}: arrays of dtype {dtype} cannot be stored (numeric dtypes only)")


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def write(f: BinaryIO, tree: Any, what: str = "checkpoint") -> None:
    """Writes ``tree`` to the binary file ``f`` (from its current position,
    which must be 0). Unsupported values raise ``TypeError`` before the first
    byte is written."""
    enc = Encoder()
    root = enc.encode(tree, what)
    manifest = json.dumps(
        {"format": "lec7rs.checkpoint", "root": root}, separators=(",", ":"), allow_nan=False
    ).encode()
    head = HEADER.pack(MAGIC, VERSION, 0, len(manifest), enc.size)
    start = _align(len(head) + len(manifest))
    with _TreeHash() as hasher:

        def put(data: Any) -> None:
            hasher.update(data)
            f.write(data)

        put(head + manifest + bytes(start - len(head) - len(manifest)))
        done = 0
        for offset, array in enc.arrays:
            if offset > done:
                put(bytes(offset - done))
            data = memoryview(array.reshape(-1).view(np.uint8))
            for i in range(0, len(data), IO_CHUNK):
                put(data[i : i + IO_CHUNK])
            done = offset + array.nbytes
        if enc.size > done:
            put(bytes(enc.size - done))
        digest = hasher.digest()
    f.write(digest)


def read(path: str) -> Any:
    """Reads and checks a checkpoint file; returns its tree. Arrays are
    views of one buffer holding the whole file. Anything wrong (foreign,
    truncated, corrupt or malformed file) raises ``ValueError``."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(HEADER.size)
        if len(head) < HEADER.size or head[: len(MAGIC)] != MAGIC:
            kind = "an empty file" if size == 0 else "not a lec7rs checkpoint"
            raise ValueError(f"{path}: {kind} (no lec7rs checkpoint header)")
        _, version, flags, manifest_len, payload_len = HEADER.unpack(head)
        if version != VERSION or flags != 0:
            raise ValueError(
                f"{path}: checkpoint format version {version} (flags {flags}) is not supported "
                f"by this lec7rs (it reads version {VERSION}); it was written by another version"
            )
        start = _align(HEADER.size + manifest_len)
        expected = start + payload_len + DIGEST
        if size != expected:
            state = "truncated" if size < expected else "has trailing bytes"
            raise ValueError(f"{path}: {state}: {size} bytes, the header says {expected}")
        buf = np.empty(size, np.uint8)
        buf[: HEADER.size] = np.frombuffer(head, np.uint8)
        view = memoryview(buf)
        with _TreeHash() as hasher:
            hasher.update(view[: HEADER.size])
            pos = HEADER.size
            body = size - DIGEST
            while pos < size:
                n = f.readinto(view[pos : min(pos + IO_CHUNK, size)])
                if not n:
                    raise ValueError(f"{path}: truncated while reading (at byte {pos})")
                if pos < body:
                    hasher.update(view[pos : min(pos + n, body)])
                pos += n
            digest = hasher.digest()
    if digest != bytes(view[body:]):
        raise ValueError(f"{path}: checksum mismatch: the file is corrupt")
    try:
        manifest = json.loads(
            bytes(view[HEADER.size : HEADER.size + manifest_len]).decode("utf-8"),
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: malformed manifest ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "lec7rs.checkpoint":
        raise ValueError(f"{path}: malformed manifest (not a lec7rs checkpoint)")
    decoder = _Decoder(buf[start : start + payload_len], path)
    return decoder.decode(manifest.get("root"), "checkpoint", 0)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


class _Decoder:
    def __init__(self, payload: np.ndarray, path: str):
        self.payload = payload
        self.path = path

    def fail(self, where: str, msg: str) -> ValueError:
        return ValueError(f"{self.path}: malformed manifest at {where}: {msg}")

    def decode(self, node: Any, where: str, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(where, f"nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, dict) or not isinstance(node.get("t"), str):
            raise self.fail(where, "expected a tagged node")
        tag = node["t"]
        v = node.get("v")
        if tag == "none":
            return None
        if tag == "bool" and isinstance(v, bool):
            return v
        if tag == "int" and type(v) is int:
            return v
        if tag == "float" and isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                raise self.fail(where, f"bad float {v!r}") from None
        if tag == "str" and isinstance(v, str):
            return v
        if tag in ("list", "tuple") and isinstance(v, list):
            items = [self.decode(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(v)]
            return tuple(items) if tag == "tuple" else items
        if tag == "dict" and isinstance(v, list):
            out: dict = {}
            for pair in v:
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise self.fail(where, "expected [key, value] pairs")
                key_node = pair[0]
                if not isinstance(key_node, dict) or key_node.get("t") not in ("str", "int"):
                    raise self.fail(where, "dict keys must be str or int nodes")
                key = self.decode(key_node, where, depth + 1)
                if key in out:
                    raise self.fail(where, f"duplicate key {key!r}")
                out[key] = self.decode(pair[1], f"{where}[{key!r}]", depth + 1)
            return out
        if tag == "array":
            return self._array(node, where)
        if tag == "scalar":
            dtype = DTYPES.get(node.get("dtype")) if isinstance(node.get("dtype"), str) else None
            if dtype is None or not isinstance(v, str):
                raise self.fail(where, f"bad scalar {node!r}")
            try:
                raw = bytes.fromhex(v)
            except ValueError:
                raise self.fail(where, "bad scalar bytes") from None
            if len(raw) != dtype.itemsize:
                raise self.fail(where, "bad scalar length")
            return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))[0]
        raise self.fail(where, f"unknown or malformed node of type {tag!r}")

    def _array(self, node: dict, where: str) -> np.ndarray:
        name = node.get("dtype")
        dtype = DTYPES.get(name) if isinstance(name, str) else None
        if dtype is None:
            raise self.fail(where, f"array dtype {name!r} is not allowed")
        shape, offset, nbytes = node.get("shape"), node.get("offset"), node.get("nbytes")
        if not (
            isinstance(shape, list)
            and len(shape) <= 64
            and all(type(d) is int and d >= 0 for d in shape)
            and type(offset) is int
            and type(nbytes) is int
        ):
            raise self.fail(where, "bad array shape, offset or length")
        count = 1
        for d in shape:
            count *= d
        if nbytes != count * dtype.itemsize or offset < 0 or offset + nbytes > len(self.payload):
            raise self.fail(where, "array bytes outside the payload or of the wrong length")
        array = self.payload[offset : offset + nbytes].view(dtype).reshape(shape)
        if sys.byteorder != "little":
            array = array.astype(dtype.newbyteorder("="))
        return array


class _TreeHash:
    """The checksum: SHA-256 over the SHA-256 digests of consecutive
    ``PIECE``-byte pieces of the data given to ``update`` (in any sizes).
    Pieces are hashed on helper threads (hashlib releases the GIL) while the
    caller reads or writes the next ones; the split is fixed, so the result
    does not depend on the thread count. The caller must not change data it
    handed over until ``digest()`` returns."""

    def __init__(self) -> None:
        threads = max(1, _core.get_num_threads())
        self._pool = concurrent.futures.ThreadPoolExecutor(threads, "lec7rs-sha")
        self._digests: list = []
        self._piece: list = []
        self._fill = 0

    def __enter__(self) -> _TreeHash:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def update(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            take = min(PIECE - self._fill, len(view))
            self._piece.append(view[:take])
            self._fill += take
            view = view[take:]
            if self._fill == PIECE:
                self._end_piece()

    def _end_piece(self) -> None:
        self._digests.append(self._pool.submit(_sha256, self._piece))
        self._piece, self._fill = [], 0

    def digest(self) -> bytes:
        if self._fill or not self._digests:
            self._end_piece()
        top = hashlib.sha256(TREE_TAG)
        for d in self._digests:
            top.update(d.result())
        return top.digest()


def _sha256(parts: list) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()

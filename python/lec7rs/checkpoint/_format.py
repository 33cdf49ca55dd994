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

What ``read`` accepts, beyond the layout (``save`` writes nothing else):
each node has exactly the entries of its tag; the tree is at most
``MAX_DEPTH`` levels deep; an array's offset is a multiple of 64 and its
length is its shape's; the byte ranges of the non-empty arrays lie in the
payload, in increasing order, and never overlap (a range cannot be used
twice, so the arrays of a file never hold more bytes than its payload);
bool arrays and scalars hold bytes 0 and 1 only.

Reading costs a small multiple of the file's size, whatever the file: the
manifest is decoded while it is parsed (``json`` ``object_hook``: each node
becomes its value as soon as it is complete, so the parsed JSON objects do
not pile up), arrays are views of the file's buffer, checked before they
are made, and the location of an error is spelled out only once there is
one. Every error is a ``ValueError`` of a few hundred characters at most,
naming the file and where in the tree the problem is.
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
from .._text import brief, cap

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


#: The entries of each kind of node (``read`` wants exactly these).
_ENTRIES = {
    "none": 1,
    "bool": 2,
    "int": 2,
    "float": 2,
    "str": 2,
    "list": 2,
    "tuple": 2,
    "dict": 2,
    "array": 5,
    "scalar": 3,
}
#: The most digits of an integer in a manifest (CPython's default limit on
#: int-from-string conversions, fixed here so a file reads the same anywhere).
MAX_DIGITS = 4300


def where(loc: Any) -> str:
    """Spells out a location: a root label (str) or a chain of
    ``(parent, key)`` pairs, built only when there is an error to report."""
    keys = []
    while isinstance(loc, tuple):
        loc, key = loc
        keys.append(key)
    return _spell(str(loc), reversed(keys))


def _spell(root: str, keys: Any) -> str:
    parts = [f"[{brief(k)}]" for k in keys]
    text = root + "".join(parts)
    if len(text) > 160:  # deep as well as long: the start and the end
        text = root + "".join(parts[:1]) + "..." + "".join(parts[-1:])
    return cap(text, 160)


class Encoder:
    """Turns a tree of plain values into manifest nodes and a payload plan."""

    def __init__(self) -> None:
        self.arrays: list = []  # (offset, little-endian C-contiguous array)
        self.size = 0

    def encode(self, value: Any, loc: Any, depth: int = 0) -> dict:
        """``loc``: where ``value`` is (see ``where``)."""
        if depth > MAX_DEPTH:
            raise ValueError(f"{where(loc)}: nested more than {MAX_DEPTH} levels deep")
        if value is None:
            return {"t": "none"}
        if isinstance(value, np.ndarray):
            return self._array(value, loc)
        if isinstance(value, np.generic):
            name = _dtype_name(value.dtype, loc)
            raw = np.asarray(value, dtype=_dtype(name)).tobytes()
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
            items = [self.encode(v, (loc, i), depth + 1) for i, v in enumerate(value)]
            return {"t": tag, "v": items}
        if isinstance(value, dict):
            pairs = []
            for k, v in value.items():
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(
                        f"{where(loc)}: dict key {brief(k)} of type {type(k).__name__} cannot "
                        "be stored (keys must be str or int)"
                    )
                key = {"t": "str", "v": str(k)} if isinstance(k, str) else {"t": "int", "v": int(k)}
                pairs.append([key, self.encode(v, (loc, k), depth + 1)])
            return {"t": "dict", "v": pairs}
        raise TypeError(
            f"{where(loc)}: a value of type {type(value).__name__} cannot be stored in a "
            "checkpoint (plain values, lists, tuples, dicts and numeric NumPy arrays only)"
        )

    def _array(self, value: np.ndarray, loc: Any) -> dict:
        name = _dtype_name(value.dtype, loc)
        array = np.ascontiguousarray(value, dtype=_dtype(name))
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


def _bfloat16() -> np.dtype | None:
    """ml_dtypes' bfloat16 (low-precision params and state), imported only
    when a checkpoint holds it; None without ml_dtypes."""
    try:
        import ml_dtypes
    except ImportError:  # pragma: no cover - ml_dtypes is in the test extra
        return None
    return np.dtype(ml_dtypes.bfloat16)


def _dtype(name: Any) -> np.dtype | None:
    """The dtype of a stored name (None: not allowed)."""
    if name == "bfloat16":
        return _bfloat16()
    return DTYPES.get(name) if type(name) is str else None


def _dtype_name(dtype: np.dtype, loc: Any) -> str:
    if dtype.name == "bfloat16" and dtype == _bfloat16():
        return "bfloat16"
    if dtype.kind in "biufc" and dtype.fields is None:
        little = dtype.newbyteorder("<")
        for name, allowed in DTYPES.items():
            if little == allowed:
                return name
    raise TypeError(f"{where(loc)}: arrays of dtype {dtype} cannot be stored (numeric dtypes only)")


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
    if bytes(view[HEADER.size + manifest_len : start]) != bytes(start - HEADER.size - manifest_len):
        raise ValueError(
            f"{path}: malformed checkpoint (the padding after the manifest is not zeros)"
        )
    decoder = _Decoder(buf[start : start + payload_len], path)
    try:
        # str() of the buffer decodes it without a bytes copy first.
        text = str(view[HEADER.size : HEADER.size + manifest_len], "utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: malformed manifest (not UTF-8 at byte {e.start})") from None
    try:
        manifest = json.loads(
            text,
            object_hook=decoder.node,
            parse_int=_parse_int,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        raise ValueError(f"{path}: malformed manifest (nested too deeply)") from None
    except ValueError as e:  # JSONDecodeError, and too many digits
        raise ValueError(f"{path}: malformed manifest ({cap(str(e), 200)})") from None
    del text
    return decoder.finish(manifest)


def _parse_int(text: str) -> int:
    if len(text) > MAX_DIGITS + 1:  # + the sign
        raise ValueError(f"an integer of more than {MAX_DIGITS} digits")
    return int(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


class _Bad:
    """A node that failed: why, and the keys from it up to where it is now
    (innermost first), spelled out only at the end."""

    __slots__ = ("keys", "message")

    def __init__(self, message: str):
        self.message = message
        self.keys: list = []


#: The first item of a decoded node that failed (the second is its ``_Bad``).
_FAILED = object()
_NONE = (None, 0)
_TRUE = (True, 0)
_FALSE = (False, 0)


class _Decoder:
    """Decodes the manifest while ``json`` parses it: ``node`` is the
    ``object_hook``, called on each JSON object once its contents are
    parsed (children before parents). It turns a tagged node into a pair
    ``(value, height)`` -- a tuple, which plain JSON never yields, so a
    decoded node cannot be mistaken for raw JSON -- or ``(_FAILED, _Bad)``,
    which each parent passes up, adding its key, so that the location of a
    problem is spelled out once, at the end. An untagged object (the
    top-level one) comes back as it is."""

    def __init__(self, payload: np.ndarray, path: str):
        self.payload = payload
        self.path = path
        #: Where the last non-empty array ends: ranges come in increasing order.
        self.end = 0

    def node(self, d: dict) -> Any:
        tag = d.get("t")
        if type(tag) is not str:
            return d
        entries = _ENTRIES.get(tag)
        if entries is None:
            return _fail(f"unknown or malformed node of type {brief(tag)}")
        if len(d) != entries:
            return _fail(f"a {tag} node with other entries than {_entry_names(tag)}")
        if tag == "none":
            return _NONE
        if tag == "array":
            return self._array(d)
        if tag == "scalar":
            return _scalar(d.get("dtype"), d.get("v"))
        v = d.get("v")
        if tag == "int":
            return (v, 0) if type(v) is int else _fail("an int node without an integer")
        if tag == "str":
            return (v, 0) if type(v) is str else _fail("a str node without a string")
        if tag == "bool":
            return (
                _TRUE
                if v is True
                else _FALSE
                if v is False
                else _fail("a bool node without true or false")
            )
        if tag == "float":
            if type(v) is str and len(v) <= 64:
                try:
                    return (float(v), 0)
                except ValueError:
                    pass
            return _fail(f"bad float {brief(v)}")
        if type(v) is not list:
            return _fail(f"a {tag} node without a list")
        if tag == "dict":
            return _dict(v)
        height = deepest = 0
        for i, item in enumerate(v):
            if type(item) is not tuple:
                return _fail("expected a tagged node", i)
            value, h = item
            if value is _FAILED:
                h.keys.append(i)
                return item
            if h > height:
                height, deepest = h, i
            v[i] = value  # the list becomes the decoded list, in place
        if v:
            height += 1
            if height > MAX_DEPTH:
                return _fail(f"nested more than {MAX_DEPTH} levels deep", deepest)
        return (v if tag == "list" else tuple(v), height)

    def _array(self, d: dict) -> tuple:
        name = d.get("dtype")
        dtype = _dtype(name)
        if dtype is None:
            return _fail(f"array dtype {brief(name)} is not allowed")
        shape, offset, nbytes = d.get("shape"), d.get("offset"), d.get("nbytes")
        if not (
            type(shape) is list
            and len(shape) <= 64
            and all(type(n) is int and 0 <= n <= sys.maxsize for n in shape)
            and type(offset) is int
            and type(nbytes) is int
        ):
            return _fail("bad array shape, offset or length")
        count = 1
        for n in shape:
            count *= n
        if nbytes != count * dtype.itemsize or offset < 0 or offset + nbytes > len(self.payload):
            return _fail("array bytes outside the payload or of the wrong length")
        if offset % ALIGN:
            return _fail(f"array offset {offset} is not a multiple of {ALIGN}")
        if nbytes:
            if offset < self.end:
                return _fail(
                    "array bytes overlap those of an earlier array (each range of the "
                    "payload holds one array, in increasing order)"
                )
            self.end = offset + nbytes
        raw = self.payload[offset : offset + nbytes]
        if dtype.kind == "b" and nbytes and raw.max() > 1:
            return _fail("a bool array with bytes other than 0 and 1")
        try:
            array = raw.view(dtype).reshape(shape)
        except (ValueError, OverflowError):  # an empty array of a shape NumPy refuses
            return _fail(f"array shape {brief(shape)} is too big")
        if sys.byteorder != "little":
            array = array.astype(dtype.newbyteorder("="))
        return (array, 0)

    def finish(self, manifest: Any) -> Any:
        """The tree, from what ``json`` returned."""
        if (
            type(manifest) is not dict
            or manifest.get("format") != "lec7rs.checkpoint"
            or len(manifest) != 2
            or "root" not in manifest
        ):
            raise ValueError(f"{self.path}: malformed manifest (not a lec7rs checkpoint)")
        root = manifest["root"]
        if type(root) is not tuple:
            raise self.fail(_Bad("expected a tagged node"))
        value, h = root
        if value is _FAILED:
            raise self.fail(h)
        return value

    def fail(self, bad: _Bad) -> ValueError:
        at = _spell("checkpoint", reversed(bad.keys))
        return ValueError(f"{self.path}: malformed manifest at {at}: {cap(bad.message, 120)}")


def _fail(message: str, *keys: Any) -> tuple:
    bad = _Bad(message)
    bad.keys.extend(keys)
    return (_FAILED, bad)


def _entry_names(tag: str) -> str:
    names = {"none": "t", "array": "t, dtype, shape, offset, nbytes", "scalar": "t, dtype, v"}
    return names.get(tag, "t, v")


def _dict(pairs: list) -> tuple:
    out: dict = {}
    height = 0
    deepest = None
    for pair in pairs:
        if not (type(pair) is list and len(pair) == 2):
            return _fail("expected [key, value] pairs")
        key_node, item = pair
        if type(key_node) is not tuple:
            return _fail("dict keys must be str or int nodes")
        key = key_node[0]
        if key is _FAILED:
            return key_node
        if type(key) is not str and type(key) is not int:
            return _fail("dict keys must be str or int nodes")
        if type(item) is not tuple:
            return _fail("expected a tagged node", key)
        value, h = item
        if value is _FAILED:
            h.keys.append(key)
            return item
        if key in out:
            return _fail(f"duplicate key {brief(key)}")
        out[key] = value
        if h > height:
            height, deepest = h, key
    if out:
        height += 1
        if height > MAX_DEPTH:  # the deepest entry is too deep: name it
            return _fail(f"nested more than {MAX_DEPTH} levels deep", deepest)
    return (out, height)


def _scalar(name: Any, v: Any) -> tuple:
    dtype = DTYPES.get(name) if type(name) is str else None
    if dtype is None:
        return _fail(f"scalar dtype {brief(name)} is not allowed")
    if type(v) is not str or len(v) != 2 * dtype.itemsize:
        return _fail(f"a {name} scalar needs {2 * dtype.itemsize} hex digits")
    try:
        raw = bytes.fromhex(v)
    except ValueError:
        raw = b""
    if len(raw) != dtype.itemsize:
        return _fail("bad scalar bytes")
    if dtype.kind == "b" and raw[0] > 1:
        return _fail("a bool scalar with a byte other than 0 and 1")
    return (np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))[0], 0)


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

"""State fingerprints: a canonical encoding of values and 128-bit BLAKE2b keys.

A fingerprint must not merge two distinct states: a cache hit prunes the second one, and a
violation only it leads to would be missed. Python's ``hash()`` is not fit for that
(``hash(-1) == hash(-2)``, ``hash(1) == hash(True)``, and tuples hash their elements'
hashes), so every value is first turned into a canonical byte string that keeps its type
(``1``, ``True`` and ``1.0`` differ; so do ``-1`` and ``-2``), and the bytes are hashed with
BLAKE2b to 128 bits, as TLC fingerprints states with a wide hash.

Two distinct states share a fingerprint only by a 128-bit hash collision: with ``n`` states
the odds are below ``n**2 / 2**129`` (under 10**-26 for a million states);
:func:`collision_odds` gives the bound the statistics print.

Encodable values: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, tuples and
named tuples, frozensets, :class:`~pfnlab.explore.Shared` objects (by their stable name),
enum members and frozen dataclasses of encodable values. Anything else raises
:class:`Unencodable`; the engine then turns state caching off for the run (it never
guesses).
"""

from __future__ import annotations

import dataclasses
import enum
from hashlib import blake2b
from typing import Any

_DIGEST = 16  # bytes: 128-bit fingerprints


class Unencodable(TypeError):
    """A value that has no canonical encoding (state caching is turned off)."""


def canon(value: Any) -> bytes:
    """The canonical encoding of ``value``: equal encodings iff equal values of equal types."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(v: Any, out: list[bytes]) -> None:
    t = type(v)
    if v is None:
        out.append(b"N")
    elif t is bool:
        out.append(b"T" if v else b"F")
    elif t is int:
        s = str(v).encode()
        out.append(b"i%d:" % len(s) + s)
    elif t is str:
        s = v.encode("utf-8", "surrogatepass")
        out.append(b"s%d:" % len(s) + s)
    elif t is tuple:
        out.append(b"(%d:" % len(v))
        for x in v:
            _encode(x, out)
        out.append(b")")
    elif t is frozenset:
        items = sorted(canon(x) for x in v)
        out.append(b"{%d:" % len(items))
        out.extend(items)
        out.append(b"}")
    elif t is float:
        s = v.hex().encode()
        out.append(b"f%d:" % len(s) + s)
    elif t is bytes:
        out.append(b"b%d:" % len(v) + v)
    elif isinstance(v, tuple) and hasattr(t, "_fields"):  # a NamedTuple
        out.append(b"(" + _type_tag(t) + b"%d:" % len(v))
        for x in v:
            _encode(x, out)
        out.append(b")")
    elif "_name" in getattr(v, "__dict__", ()) and "_idx" in v.__dict__:
        # a Shared object: its stable name is its identity across executions
        s = v.__dict__["_name"].encode("utf-8", "surrogatepass")
        out.append(b"@" + _type_tag(t) + b"%d:" % len(s) + s)
    elif isinstance(v, enum.Enum):
        out.append(b"E" + _type_tag(t))
        _encode(v.value, out)
    elif dataclasses.is_dataclass(v) and not isinstance(v, type):
        if not t.__dataclass_params__.frozen:
            raise Unencodable(f"{t.__qualname__} is a mutable dataclass (make it frozen)")
        out.append(b"D" + _type_tag(t))
        for f in dataclasses.fields(v):
            _encode(getattr(v, f.name), out)
        out.append(b")")
    else:
        raise Unencodable(f"a {t.__qualname__} has no canonical encoding")


def _type_tag(t: type) -> bytes:
    s = f"{t.__module__}.{t.__qualname__}".encode()
    return b"%d:" % len(s) + s


def digest(data: bytes) -> int:
    """A 128-bit key of ``data``."""
    return int.from_bytes(blake2b(data, digest_size=_DIGEST).digest(), "little")


_SCALARS = (int, str, bool, type(None))


def _exact(v: Any, depth: int = 0) -> Any:
    """A hashable key that is equal for two values iff their canonical encodings are, for
    the values met most often (scalars, small tuples, NamedTuples and frozensets of such
    values, shared objects); None for the others. Types are part of the key at every
    level, so ``1`` and ``True`` (equal in Python) stay apart; floats are left out
    (``0.0 == -0.0``)."""
    t = type(v)
    if t in _SCALARS:
        return (t, v)
    if isinstance(v, (tuple, frozenset)):
        if len(v) > 8 or depth > 3:
            return None
        parts = []
        for x in v:
            k = _exact(x, depth + 1)
            if k is None:
                return None
            parts.append(k)
        return (t, tuple(parts) if t is not frozenset else frozenset(parts))
    d = getattr(v, "__dict__", None)
    if d is not None and "_idx" in d and "_name" in d:
        return (t, d["_name"])  # a Shared object: by its type and stable name
    return None


_FIELD_KEYS: dict[tuple[Any, ...], int] = {}
_BY_ID: dict[tuple[str, str, int], tuple[Any, int]] = {}
_CANON: dict[Any, bytes] = {}


def field_key(name: str, field: str, value: Any) -> int:
    """The Zobrist key of ``name.field == value``, memoised: scalars by typed value, other
    values first by identity (the memo holds the value, so that its id stays its own), then
    by their ``_exact`` key where they have one."""
    t = type(value)
    if t in _SCALARS:
        sk = (name, field, t, value)
        key = _FIELD_KEYS.get(sk)
        if key is None:
            key = digest(canon((name, field, value)))
            if len(_FIELD_KEYS) < 1_000_000:
                _FIELD_KEYS[sk] = key
        return key
    ik = (name, field, id(value))
    hit = _BY_ID.get(ik)
    if hit is not None and hit[0] is value:  # the same object as last time: no walk
        return hit[1]
    ek = _exact(value)
    ck = (name, field, ek)
    key = _FIELD_KEYS.get(ck) if ek is not None else None
    if key is None:
        key = digest(canon((name, field, value)))
        if ek is not None and len(_FIELD_KEYS) < 1_000_000:
            _FIELD_KEYS[ck] = key
    if len(_BY_ID) >= 200_000:
        _BY_ID.clear()
    _BY_ID[ik] = (value, key)
    return key


#: key transitions by (key, tag, exact value): re-executions replay the same prefixes, so
#: the same transitions of a thread's key recur many times
_STEPS: dict[tuple[Any, ...], int] = {}
_STEPS_MAX = 1_000_000


def _next_key(key: int, tag: bytes, value: Any) -> int:
    """``digest(key + tag + canon(value))``, memoised by exact value where there is one."""
    t = type(value)
    ek = (t, value) if t in _SCALARS else _exact(value)
    if ek is None:
        return digest(key.to_bytes(_DIGEST, "little") + tag + canon(value))
    mk = (key, tag, ek)
    out = _STEPS.get(mk)
    if out is None:
        b = _CANON.get(ek)
        if b is None:
            b = canon(value)
            if len(_CANON) < 200_000:
                _CANON[ek] = b
        out = digest(key.to_bytes(_DIGEST, "little") + tag + b)
        if len(_STEPS) >= _STEPS_MAX:
            _STEPS.clear()
        _STEPS[mk] = out
    return out


def extend(key: int, value: Any) -> int:
    """A thread's history key after it received ``value`` from shared state."""
    return _next_key(key, b"", value)


def returned(key: int, depth: int, value: Any) -> int:
    """A thread's key after the call at nesting ``depth`` that began at key ``key``
    returned ``value`` (see threadstate.call_summarised); never equal to an ``extend`` key
    (no canonical encoding starts with ``R``).

    The depth is what tells apart two calls that began at the same key, one inside the
    other (``return f(x)`` after a read): without it, the point right after the inner call
    returned and the point after the outer one returned would share a key."""
    return _next_key(key, b"R%d:" % depth, value)


def combine(parts: list[int]) -> int:
    """One 128-bit key of a sequence of 128-bit keys (order matters)."""
    return digest(b"".join(p.to_bytes(_DIGEST, "little") for p in parts))


def collision_odds(states: int) -> float:
    """An upper bound on the probability that two of ``states`` states share a fingerprint."""
    return min(1.0, states * states / 2.0 ** (8 * _DIGEST + 1))

"""An independent reference for the targeted programs (``tests/engine/targeted.py``).

It shares no code with the engine: it interprets a :class:`~tests.engine.targeted.Spec`
directly, every shared access one step (Plain, Stable and Guarded fields included, every
lock operation its own step: the finest semantics, no reduction of any kind), and explores
every reachable state explicitly (a visited set over whole states, registers and program
counters included). What it reports is what the program can do:

- the findings reachable, as (kind, property): ``fail()`` (assertion, bad), a use of a
  freed object (a field access, a free, a wait attempt whose condition reads it: the
  waiter polls, so it is runnable then), a lock released by a thread that does not hold
  it or an SRCU section left by a thread that is not in one
  (assertion, lock-balance), a Guarded field accessed without its lock (assertion,
  lock-guard), a state where every unfinished thread is blocked (hang, hang); a finding
  ends its execution;
- data races, by definition: a reachable state in which two threads' next operations are
  conflicting accesses to one Plain field (at least one a write; a wait whose condition
  reads the field counts as a read, a free of the object as a write), reported as
  (data-race, data-race); the search goes on past them (the engine stops an execution at
  its first: see ``tests/engine/against_reference.py``);
- the final states (every thread finished, no finding), each object as
  ``(name, freed, ((field, repr(value)), ...))``, sorted by name, as
  ``tests/engine/oracle.typed_final_state`` renders the engine's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.engine.targeted import Op, Spec, uses_plain

#: the fields of an object, in the engine's declaration order (targeted._HEADER; ``p``
#: only in programs that use it)
OBJ_FIELDS = ("v", "p", "pins", "s", "t", "g", "q")
GUARDED = {"g": False, "q": True}  # field -> lockless reads allowed


class Ref:
    """An object reference held in a field or register: its ``repr`` is the name, as an
    engine ``Shared`` object's is."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("ref", self.name))


@dataclass
class Outcome:
    """What the program can do (module docstring)."""

    findings: set[tuple[str, str]] = field(default_factory=set)
    final_states: set[tuple[Any, ...]] = field(default_factory=set)
    states: int = 0

    @property
    def racy(self) -> bool:
        return ("data-race", "data-race") in self.findings


# ------------------------------------------------------------------ compiling threads
# Instructions: ("step", op) a shared access; ("br", c, target) jump unless r == c;
# ("fail", c); ("create", name) a new object (local: nobody sees it until published);
# ("skipref", target) jump unless the temporary x holds an object.
def _compile(ops: tuple[Op, ...], me: int, out: list[tuple[Any, ...]]) -> None:
    for op in ops:
        k = op[0]
        if k == "if":
            br = len(out)
            out.append(("br", op[1], -1))
            _compile(op[2], me, out)
            out[br] = ("br", op[1], len(out))
        elif k == "fail":
            out.append(("fail", op[1]))
        elif k == "alloc":
            name = f"a{me}_{op[2]}"
            out += [("create", name), ("step", ("wr", name, "v", 1)),
                    ("step", ("publish", op[1], name))]
        elif k in ("deref", "freeref"):
            out.append(("step", ("load", op[1])))
            skip = len(out)
            out.append(("skipref", -1))
            out.append(("step", ("rd", "<x>", op[2]) if k == "deref" else ("free", "<x>")))
            out[skip] = ("skipref", len(out))
        else:
            out.append(("step", op))


class _Halt(Exception):
    def __init__(self, kind: str, prop: str) -> None:
        super().__init__(kind, prop)
        self.key = (kind, prop)


# A state: (objects, threads). objects: tuple of (name, freed, fields tuple) sorted by name,
# with locks ("<o>.lk", "L0", "L1": fields (owner,)) and "S" (readers,); threads: tuple of
# (pc, r, x). Mutable copies are dicts while a step runs.
def run(spec: Spec, max_states: int = 200_000) -> Outcome:
    """Explore every reachable state of ``spec``'s program (raises past ``max_states``)."""
    fields = OBJ_FIELDS if uses_plain(spec) else tuple(f for f in OBJ_FIELDS if f != "p")
    code: list[list[tuple[Any, ...]]] = []
    for t, ops in enumerate(spec.threads):
        c: list[tuple[Any, ...]] = []
        _compile(ops, t, c)
        code.append(c)
    names = [f"t{t}" for t in range(len(spec.threads))]
    objs: dict[str, Any] = {}
    for i in range(spec.objects):
        _new_obj(objs, f"o{i}")
        objs[f"o{i}"]["pins"] = spec.pins[i]
    for lock in ("L0", "L1"):
        objs[lock] = {"_freed": None, "owner": None}
    objs["S"] = {"_freed": None, "readers": ()}
    threads = [[0, 0, 0] for _ in names]
    out = Outcome()
    start = _settle(code, names, objs, threads, out)
    if start is None:
        return out
    seen = {start}
    stack = [start]
    while stack:
        state = stack.pop()
        out.states += 1
        if out.states > max_states:
            raise RuntimeError(f"reference: more than {max_states} states")
        objs_t, threads_t = state
        moved = False
        unfinished = False
        for t in range(len(names)):
            pc = threads_t[t][0]
            if pc >= len(code[t]):
                continue
            unfinished = True
            objs = {name: dict(f) for name, f in objs_t}
            threads = [list(x) for x in threads_t]
            try:
                ok = _step(code[t], t, names, objs, threads)
            except _Halt as h:
                out.findings.add(h.key)
                moved = True
                continue
            if not ok:  # blocked
                continue
            moved = True
            nxt = _settle(code, names, objs, threads, out)
            if nxt is not None and nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
        if not unfinished:
            out.final_states.add(_final(objs_t, fields))
        elif not moved:
            out.findings.add(("hang", "hang"))
    return out


def _new_obj(objs: dict[str, Any], name: str) -> None:
    objs[name] = {"_freed": None, "v": 0, "p": 0, "pins": (), "s": 0, "t": 0, "g": 0, "q": 0}
    objs[name + ".lk"] = {"_freed": None, "owner": None}


def _settle(code: list[list[tuple[Any, ...]]], names: list[str], objs: dict[str, Any],
            threads: list[list[Any]], out: Outcome) -> Any:
    """Run every thread's local instructions up to its next step, check the state for data
    races, and freeze it; None if a finding ended the execution here."""
    try:
        for t, c in enumerate(code):
            th = threads[t]
            while th[0] < len(c):
                ins = c[th[0]]
                if ins[0] == "br":
                    th[0] = th[0] + 1 if th[1] == ins[1] else ins[2]
                elif ins[0] == "fail":
                    if th[1] == ins[1]:
                        raise _Halt("assertion", "bad")
                    th[0] += 1
                elif ins[0] == "create":
                    _new_obj(objs, ins[1])
                    th[0] += 1
                elif ins[0] == "skipref":
                    th[0] = th[0] + 1 if isinstance(th[2], Ref) else ins[1]
                else:
                    break
    except _Halt as h:
        out.findings.add(h.key)
        return None
    if _racy(code, threads):
        out.findings.add(("data-race", "data-race"))
    return (tuple(sorted((n, tuple(sorted(f.items()))) for n, f in objs.items())),
            tuple(tuple(th) for th in threads))


def _pending(c: list[tuple[Any, ...]], th: list[Any]) -> Op | None:
    return c[th[0]][1] if th[0] < len(c) else None


def _plain_access(op: Op | None, th: list[Any]) -> tuple[str, bool, bool] | None:
    """(object, is_write, is_plain) if ``op`` accesses a Plain field ``p`` or frees."""
    if op is None:
        return None
    k = op[0]
    if k in ("rd", "wr", "inc") and op[2] == "p":
        obj = op[1] if op[1] != "<x>" else th[2].name
        return obj, k != "rd", True
    if k == "wait" and op[1][0] == "eq" and op[1][2] == "p":
        return op[1][1], False, True
    if k == "free":  # a free writes the whole object (the engine's race detector agrees)
        return (op[1] if op[1] != "<x>" else th[2].name), True, False
    return None


def _racy(code: list[list[tuple[Any, ...]]], threads: list[list[Any]]) -> bool:
    acc = [_plain_access(_pending(c, threads[t]), threads[t]) for t, c in enumerate(code)]
    for a in range(len(acc)):
        for b in range(a + 1, len(acc)):
            x, y = acc[a], acc[b]
            if x is not None and y is not None and x[0] == y[0] and (x[1] or y[1]) \
                    and (x[2] or y[2]):
                return True
    return False


def _step(c: list[tuple[Any, ...]], t: int, names: list[str], objs: dict[str, Any],
          threads: list[list[Any]]) -> bool:
    """Thread ``t`` takes its pending step; False (nothing changed) if it is blocked."""
    th = threads[t]
    op = c[th[0]][1]
    me = names[t]
    k = op[0]
    o = th[2].name if len(op) > 1 and op[1] == "<x>" else (op[1] if len(op) > 1 else None)
    if k in ("rd", "wr", "inc"):
        f = op[2]
        if f in GUARDED and (k != "rd" or not GUARDED[f]) \
                and objs[o + ".lk"]["owner"] != me:
            raise _Halt("assertion", "lock-guard")
        d = _live(objs, o)
        if k == "rd":
            th[1] = d[f]
        elif k == "wr":
            d[f] = op[3]
        else:
            d[f] += 1
    elif k in ("pin", "unpin"):
        d = _live(objs, o)
        d["pins"] = tuple(sorted({*d["pins"], op[2]})) if k == "pin" else \
            tuple(x for x in d["pins"] if x != op[2])
    elif k == "publish":
        _live(objs, o)["v"] = Ref(op[2])
    elif k == "load":
        th[2] = _live(objs, o)["v"]
    elif k in ("lk", "acq"):
        lock = objs[o + ".lk" if k == "lk" else f"L{op[1]}"]
        if lock["owner"] is not None:
            return False
        lock["owner"] = me
    elif k in ("ulk", "rel"):
        lock = objs[o + ".lk" if k == "ulk" else f"L{op[1]}"]
        if lock["owner"] != me:
            raise _Halt("assertion", "lock-balance")
        lock["owner"] = None
    elif k == "srl":  # (readers: the thread of each open section, sorted)
        objs["S"]["readers"] = tuple(sorted((*objs["S"]["readers"], me)))
    elif k == "sru":
        readers = list(objs["S"]["readers"])
        if me not in readers:
            raise _Halt("assertion", "lock-balance")
        readers.remove(me)
        objs["S"]["readers"] = tuple(readers)
    elif k == "sync":
        if objs["S"]["readers"]:
            return False
    elif k == "wait":
        a = op[1]
        if a[0] == "freed":
            if objs[a[1]]["_freed"] is None:
                return False
        elif objs[a[1]]["_freed"] is not None:  # the waiter's next poll reads freed memory
            raise _Halt("use-after-free", "use-after-free")
        elif objs[a[1]][a[2]] != a[3]:
            return False
    else:
        assert k == "free", op
        _live(objs, o)["_freed"] = f"by {me}"
    th[0] += 1
    return True


def _live(objs: dict[str, Any], name: str) -> dict[str, Any]:
    d: dict[str, Any] = objs[name]
    if d["_freed"] is not None:
        raise _Halt("use-after-free", "use-after-free")
    return d


def _final(objs_t: tuple[Any, ...], obj_fields: tuple[str, ...]) -> tuple[Any, ...]:
    out = []
    for name, fields in objs_t:
        f = dict(fields)
        order = obj_fields if "v" in f else ("owner",) if "owner" in f else ("readers",)
        out.append((name, f["_freed"] is not None, tuple((k, repr(f[k])) for k in order)))
    return tuple(sorted(out))

"""What differs between the calls a test made on the original and on a mutant, as recorded by
`gate.mutmut_adapter.recorder`: the first thing a test could have read differently, and what an
assertion on it would read. Pure: the probe compares with it as each test ends (and stops at the
first difference), the explain step words it.

A call is a `gate.wire.probe.Call` (see the recorder); `again` is the same test's calls in a second
run of the original: what differs between the original's two runs (a clock, an id) is no effect of
the mutant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gate.wire.probe import Call, Check, Difference, Held, Target

EXCEPTION_PARTS = (
    ("cause", "__cause__", "the exception's __cause__ is {a} on the original but {b} on the mutant"),
    ("suppress_context", "__suppress_context__",
     "the exception's __suppress_context__ is {a} on the original but {b} on the mutant (`raise ... from None`)"),
    ("context", "__context__", "the exception's __context__ is {a} on the original but {b} on the mutant"),
    ("frames", "__traceback__", "the exception's traceback passes through {a} on the original but {b} on the mutant"),
)


def unobserved(calls: Sequence[Call]) -> str | None:
    """Why a test's calls cannot be compared, if one of them could not be recorded."""
    return next((c.unobserved for c in calls if c.unobserved is not None), None)


def differences(before: Sequence[Call], after: Sequence[Call], again: Sequence[Call]) -> list[Difference]:
    """Each call's first difference between one test's calls on the original (`before`, `again`)
    and on the mutant (`after`), in the order of the calls: its words, the name an assertion reads
    (or None), what a suggested assertion needs (or None) and where the test made the call. The
    first is the test's difference; a later call's may be the one a test can name (the first ran
    before the test had a name for the object)."""
    if len(before) != len(after) and len(before) == len(again):
        return [Difference(what=f"the function ran {len(before)} times on the original but {len(after)} on the "
                                "mutant", read=None, check=None, site=None)]
    found = []
    for a, b, a2 in zip(before, after, again if len(again) == len(before) else before):
        one = difference(a, b, a2)
        if one is not None:
            found.append(Difference(what=one.what, read=one.read, check=one.check, site=a.site))
    return found


def of_the_call_itself(found: Difference) -> bool:
    """Whether a difference is in what the call returned or raised (not in state it left behind)."""
    return found.check is not None and found.check.target in (Target.RETURNED, Target.RAISED)


def _differs(x: Any, y: Any, x2: Any) -> bool:
    return x != y and x == x2


def _outcome(call: Call) -> str:
    return f"raised {call.raised}" if call.raised is not None else f"returned {call.returned}"


def _listed(names: Sequence[str] | None) -> str:
    return ", ".join(names) if names else "no function"


def _said(value: Any) -> Any:
    """A recorded value as the words (and a check) show it: a sequence as a list."""
    return list(value) if isinstance(value, tuple) else value


def _difference(what: str, read: str | None, check: Check | None = None) -> Difference:
    return Difference(what=what, read=read, check=check, site=None)


def difference(a: Call, b: Call, a2: Call) -> Difference | None:
    """The first thing two calls left differently, and that the original's second run (`a2`) left
    as its first did; or None (the site is the caller's to add)."""
    which = f"the call of {a.via}" if a.via else "the call"
    if _differs(_outcome(a), _outcome(b), _outcome(a2)):
        check = (Check(target=Target.RETURNED, original=a.returned) if a.raised is None
                 else Check(target=Target.RAISED, part="type", original=a.raised, mutant=b.raised))
        return _difference(f"{which} {_outcome(a)} on the original but {_outcome(b)} on the mutant", None, check)
    if a.raised is not None:
        for key, read, words in EXCEPTION_PARTS:
            x, y = _said(getattr(a, key)), _said(getattr(b, key))
            if _differs(x, y, _said(getattr(a2, key))):
                shown = (_listed(x), _listed(y)) if key == "frames" else (x, y)
                return _difference(f"{which} raised {a.raised}, and " + words.format(a=shown[0], b=shown[1]), read,
                                   Check(target=Target.RAISED, part=key, original=x))
    for at, words in (("exit", "{t}.{n} is {a} on the original but {b} on the mutant"),
                      ("end", "at the test's end, {t}.{n} is {a} on the original but {b} on the mutant")):
        if at == "end" and any(_freed_at_end(c) for c in (a, b, a2)):
            # freed by the test's end in some run: the test held no reference to read it through
            # (when a collection runs is no effect of the mutant)
            continue
        x, y, x2 = _self_at(a, at), _self_at(b, at), _self_at(a2, at)
        for name in sorted(set(x) | set(y)):
            if _differs(x.get(name), y.get(name), x2.get(name)):
                return _difference(words.format(t=a.self_type, n=name, a=x.get(name, "unset"), b=y.get(name, "unset")),
                                   name, Check(target=Target.SELF, attr=name, original=x.get(name),
                                               mutant=y.get(name)))
        found = _held_difference(a, b, a2, at)
        if found is not None:
            return found
        if at == "exit":
            found = _plain_difference(a, b, a2)
            if found is not None:
                return found
    return None


def _freed_at_end(call: Call) -> bool:
    return call.end is not None and call.end.freed


def _self_at(call: Call, at: str) -> dict[str, str]:
    if at == "exit":
        return call.self_state
    return call.end.self_state if call.end is not None else {}


def _held_at(call: Call, at: str) -> dict[str, Held]:
    if at == "exit":
        return call.held
    return call.end.held if call.end is not None else {}


def _freed(held: dict[str, Held], path: str) -> bool:
    return path in held and held[path].freed


def _state(held: dict[str, Held], path: str) -> dict[str, str]:
    return held[path].state if path in held else {}


def _held_difference(a: Call, b: Call, a2: Call, at: str) -> Difference | None:
    when = "" if at == "exit" else "at the test's end, "
    x, y, x2 = _held_at(a, at), _held_at(b, at), _held_at(a2, at)
    for path in sorted(set(x) | set(y)):
        held = x[path] if path in x else y[path]
        freed = [_freed(h, path) for h in (x, y, x2)]
        if at == "end" and any(freed):
            continue  # as for `self`: freed by the test's end, so the test could not read it
        if _differs(*freed):
            state = ("freed", "still alive") if freed[0] else ("still alive", "freed")
            return _difference(f"{when}the {held.type} that {path} held when the call began is {state[0]} on the "
                               f"original but {state[1]} on the mutant", path.rsplit(".", 1)[-1])
        before, after, before_again = _state(x, path), _state(y, path), _state(x2, path)
        for name in sorted(set(before) | set(after)):
            if _differs(before.get(name), after.get(name), before_again.get(name)):
                return _difference(f"{when}the {held.type} in {path} when the call began has {name} = "
                                   f"{before.get(name, 'unset')} on the original but {after.get(name, 'unset')} on "
                                   "the mutant", name)
    return None


def _plain_difference(a: Call, b: Call, a2: Call) -> Difference | None:
    """Module globals, log records and mock calls, at the call's exit."""
    ga, gb, ga2 = a.globals, b.globals, a2.globals
    for name in sorted(set(ga) | set(gb)):
        if _differs(ga.get(name), gb.get(name), ga2.get(name)):
            return _difference(f"the module global {name} is {ga.get(name, 'unset')} on the original but "
                               f"{gb.get(name, 'unset')} on the mutant", name)
    la, lb = list(a.logs), list(b.logs)
    if _differs(la, lb, list(a2.logs)):
        return _difference(f"the log records are {la} on the original but {lb} on the mutant", "caplog",
                           Check(target=Target.LOG, original=la, mutant=lb))
    ma, mb, ma2 = a.mocks, b.mocks, a2.mocks
    for name in sorted(set(ma) | set(mb)):
        if _differs(_mock_calls(ma, name), _mock_calls(mb, name), _mock_calls(ma2, name)):
            x, y = _mock_calls(ma, name) or [], _mock_calls(mb, name) or []
            read = name.split()[-1].rsplit(".", 1)[-1]  # `global torch.cuda.empty_cache`: empty_cache
            return _difference(f"the calls to the mock {name} are {x} on the original but {y} on the mutant",
                               None if read.isdigit() else read, Check(target=Target.MOCK, mock=name, original=x))
    return None


def _mock_calls(mocks: dict[str, tuple[str, ...]], name: str) -> list[str] | None:
    """A mock's calls during the call, or None where the call could not reach it."""
    return list(mocks[name]) if name in mocks else None

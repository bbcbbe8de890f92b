"""What differs between the calls a test made on the original and on a mutant, as recorded by
`gate.mutmut_adapter.recorder`: the first thing a test could have read differently, and what an
assertion on it would read. Pure: the probe compares with it as each test ends (and stops at the
first difference), the explain step words it.

A call is a dict of descriptions (see the recorder); `again` is the same test's calls in a second
run of the original: what differs between the original's two runs (a clock, an id) is no effect of
the mutant."""

from __future__ import annotations

from typing import Any

Call = dict[str, Any]

EXCEPTION_PARTS = (
    ("cause", "__cause__", "the exception's __cause__ is {a} on the original but {b} on the mutant"),
    ("suppress_context", "__suppress_context__",
     "the exception's __suppress_context__ is {a} on the original but {b} on the mutant (`raise ... from None`)"),
    ("context", "__context__", "the exception's __context__ is {a} on the original but {b} on the mutant"),
    ("frames", "__traceback__", "the exception's traceback passes through {a} on the original but {b} on the mutant"),
)


def unobserved(calls: list[Call]) -> str | None:
    """Why a test's calls cannot be compared, if one of them could not be recorded."""
    return next((c["unobserved"] for c in calls if "unobserved" in c), None)


def differences(before: list[Call], after: list[Call], again: list[Call]) -> list[dict[str, Any]]:
    """Each call's first difference between one test's calls on the original (`before`, `again`)
    and on the mutant (`after`), in the order of the calls: {"what": words, "read": the name an
    assertion reads or None, "check": what a suggested assertion needs, or None, "site": where the
    test made the call}. The first is the test's difference; a later call's may be the one a test
    can name (the first ran before the test had a name for the object)."""
    if len(before) != len(after) and len(before) == len(again):
        return [{"what": f"the function ran {len(before)} times on the original but {len(after)} on the mutant",
                 "read": None, "check": None, "site": None}]
    found = []
    for a, b, a2 in zip(before, after, again if len(again) == len(before) else before):
        one = difference(a, b, a2)
        if one is not None:
            found.append({**one, "site": a.get("site")})
    return found


def of_the_call_itself(found: dict[str, Any]) -> bool:
    """Whether a difference is in what the call returned or raised (not in state it left behind)."""
    check = found.get("check") or {}
    return check.get("target") in ("returned", "raised")


def _differs(x: Any, y: Any, x2: Any) -> bool:
    return x != y and x == x2


def _outcome(call: Call) -> str:
    return f"raised {call['raised']}" if "raised" in call else f"returned {call.get('returned')}"


def _listed(names: list[str]) -> str:
    return ", ".join(names) if names else "no function"


def difference(a: Call, b: Call, a2: Call) -> dict[str, Any] | None:
    """The first thing two calls left differently, and that the original's second run (`a2`) left
    as its first did; or None."""
    which = f"the call of {a['via']}" if a.get("via") else "the call"
    if _differs(_outcome(a), _outcome(b), _outcome(a2)):
        check = ({"target": "returned", "original": a["returned"]} if "raised" not in a
                 else {"target": "raised", "part": "type", "original": a["raised"], "mutant": b.get("raised")})
        return {"what": f"{which} {_outcome(a)} on the original but {_outcome(b)} on the mutant", "read": None,
                "check": check}
    if "raised" in a:
        for key, read, words in EXCEPTION_PARTS:
            if _differs(a.get(key), b.get(key), a2.get(key)):
                x, y = a.get(key), b.get(key)
                x, y = (_listed(x), _listed(y)) if key == "frames" else (x, y)
                return {"what": f"{which} raised {a['raised']}, and " + words.format(a=x, b=y), "read": read,
                        "check": {"target": "raised", "part": key, "original": a.get(key)}}
    for at, words in (("exit", "{t}.{n} is {a} on the original but {b} on the mutant"),
                      ("end", "at the test's end, {t}.{n} is {a} on the original but {b} on the mutant")):
        if at == "end" and any(_freed_at_end(c) for c in (a, b, a2)):
            # freed by the test's end in some run: the test held no reference to read it through
            # (when a collection runs is no effect of the mutant)
            continue
        x, y, x2 = _self_at(a, at), _self_at(b, at), _self_at(a2, at)
        for name in sorted(set(x) | set(y)):
            if _differs(x.get(name), y.get(name), x2.get(name)):
                return {"what": words.format(t=a.get("self_type", ""), n=name, a=x.get(name, "unset"),
                                             b=y.get(name, "unset")),
                        "read": name, "check": {"target": "self", "attr": name, "original": x.get(name),
                                                "mutant": y.get(name)}}
        found = _held_difference(a, b, a2, at)
        if found is not None:
            return found
        if at == "exit":
            found = _plain_difference(a, b, a2)
            if found is not None:
                return found
    return None


def _freed_at_end(call: Call) -> bool:
    return bool(call.get("end", {}).get("freed"))


def _self_at(call: Call, at: str) -> dict[str, str]:
    return call.get("self", {}) if at == "exit" else call.get("end", {}).get("self", {})


def _held_at(call: Call, at: str) -> dict[str, Any]:
    return call.get("held", {}) if at == "exit" else call.get("end", {}).get("held", {})


def _held_difference(a: Call, b: Call, a2: Call, at: str) -> dict[str, Any] | None:
    when = "" if at == "exit" else "at the test's end, "
    x, y, x2 = _held_at(a, at), _held_at(b, at), _held_at(a2, at)
    for path in sorted(set(x) | set(y)):
        held = x.get(path) or y[path]
        freed = [bool(h.get(path, {}).get("freed")) for h in (x, y, x2)]
        if at == "end" and any(freed):
            continue  # as for `self`: freed by the test's end, so the test could not read it
        if _differs(*freed):
            state = ("freed", "still alive") if freed[0] else ("still alive", "freed")
            return {"what": f"{when}the {held['type']} that {path} held when the call began is {state[0]} on the "
                            f"original but {state[1]} on the mutant", "read": path.rsplit(".", 1)[-1],
                    "check": None}
        before, after = x.get(path, {}).get("state", {}), y.get(path, {}).get("state", {})
        before_again = x2.get(path, {}).get("state", {})
        for name in sorted(set(before) | set(after)):
            if _differs(before.get(name), after.get(name), before_again.get(name)):
                return {"what": f"{when}the {held['type']} in {path} when the call began has {name} = "
                                f"{before.get(name, 'unset')} on the original but {after.get(name, 'unset')} on "
                                "the mutant", "read": name, "check": None}
    return None


def _plain_difference(a: Call, b: Call, a2: Call) -> dict[str, Any] | None:
    """Module globals, log records and mock calls, at the call's exit."""
    ga, gb, ga2 = a.get("globals", {}), b.get("globals", {}), a2.get("globals", {})
    for name in sorted(set(ga) | set(gb)):
        if _differs(ga.get(name), gb.get(name), ga2.get(name)):
            return {"what": f"the module global {name} is {ga.get(name, 'unset')} on the original but "
                            f"{gb.get(name, 'unset')} on the mutant", "read": name, "check": None}
    if _differs(a.get("logs", []), b.get("logs", []), a2.get("logs", [])):
        return {"what": f"the log records are {a.get('logs', [])} on the original but {b.get('logs', [])} on the "
                        "mutant", "read": "caplog",
                "check": {"target": "log", "original": a.get("logs", []), "mutant": b.get("logs", [])}}
    ma, mb, ma2 = a.get("mocks", {}), b.get("mocks", {}), a2.get("mocks", {})
    for name in sorted(set(ma) | set(mb)):
        if _differs(ma.get(name), mb.get(name), ma2.get(name)):
            read = name.split()[-1].rsplit(".", 1)[-1]  # `global torch.cuda.empty_cache`: empty_cache
            return {"what": f"the calls to the mock {name} are {ma.get(name, [])} on the original but "
                            f"{mb.get(name, [])} on the mutant", "read": None if read.isdigit() else read,
                    "check": {"target": "mock", "mock": name, "original": ma.get(name, [])}}
    return None

"""After the mutant runs, for each survivor: the missing check. Its covering tests run again on
the original and on the mutant (`gate.mutmut_adapter.probe`), recording at the mutated function's
exit what a test could have observed; the first difference, with the test it showed in, is the
assertion that test lacks:

    after tests/test_store.py::test_x, Store.handle is None on the original but a Handle on the
    mutant; no assertion in that test reads handle

Where nothing differs at the function's exit, it says so: a candidate equivalent, or an effect
elsewhere (the mutant still fails the gate; only the equivalents the generation proves are
dropped). Only survivors are probed, so a passing run pays nothing for it."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gate.imports import import_roots
from gate.mutmut_adapter.protocol import MUTANTS_DIR
from gate.process import last_line, run_python, tool_caches
from gate.result import MutantOutcome
from gate.settings import Settings
from gate.steps.snapshot import test_unit

NO_DIFFERENCE = ("no difference seen at the function's exit: a candidate equivalent, or an effect elsewhere "
                 "(in what the function changed outside self and its module, or later)")


def explain(survivors: Iterable[MutantOutcome], settings: Settings, work: Path, files: list[str]) -> dict[str, str]:
    """The missing check of each survivor, by mutant name."""
    survivors = [m for m in survivors if m.tests]
    if not survivors:
        return {}
    spec_path, out_path = work / MUTANTS_DIR / ".gate-probe-spec.json", work / MUTANTS_DIR / ".gate-probe.json"
    spec_path.write_text(json.dumps({"survivors": {m.name: list(m.tests) for m in survivors},
                                     "pytest_args": list(settings.pytest_args),
                                     "import_roots": import_roots(work, files)}))
    out_path.unlink(missing_ok=True)
    done = run_python(["-P", "-m", "gate.mutmut_adapter.probe", str(spec_path), str(out_path)], cwd=work,
                      env=tool_caches(work / MUTANTS_DIR / ".gate-tools"))
    if done.returncode != 0 or not out_path.exists():
        # the survivors fail the gate all the same: only their explanation is lost, and says why
        why = f"not found: the probe of the survivors' tests failed (exit {done.returncode}): {last_line(done.output)}"
        return {m.name: why for m in survivors}
    observed = json.loads(out_path.read_text())

    def source_of(nodeid: str) -> str | None:
        return _test_source(work, nodeid)

    return {m.name: missing_check(observed[m.name], m.tests, source_of) for m in survivors}


def missing_check(runs: dict[str, Any], tests: Iterable[str], source_of: Callable[[str], str | None]) -> str:
    """The first difference between the original's and the mutant's calls, as the check a test
    lacks; what also differs between the original's two runs is no effect of the mutant."""
    unseen = _unobserved(runs)
    if unseen is not None:
        return f"not observed: {unseen}"
    original, mutant = runs["original"]["calls"], runs["mutant"]["calls"]
    again = runs.get("original_again", runs["original"])["calls"]
    for test in tests:
        before, after, before_again = original.get(test, []), mutant.get(test, []), again.get(test, [])
        if not before and not after:
            continue
        if len(before) != len(after) and len(before) == len(before_again):
            return (f"after {test}, the function ran {len(before)} times on the original but {len(after)} on the "
                    f"mutant; no assertion in that test noticed")
        for a, b, a2 in zip(before, after, before_again if len(before_again) == len(before) else before):
            difference = _difference(a, b, a2)
            if difference is not None:
                what, name = difference
                return f"after {test}, {what}; {_reads(source_of(test), name)}"
    return NO_DIFFERENCE


def _unobserved(runs: dict[str, Any]) -> str | None:
    """Why the probe saw nothing it could compare, if so: then it must not say "no difference"."""
    for mode in ("original", "original_again", "mutant"):
        run = runs.get(mode)
        if run is not None and run["exit_code"] != 0:
            return (f"the tests ended with exit {run['exit_code']} on the {mode.replace('_again', '')} under the "
                    "probe (a test that failed, or ran past its limit)")
    calls = [c for run in runs.values() for test_calls in run["calls"].values() for c in test_calls]
    reasons = [c["unobserved"] for c in calls if "unobserved" in c]
    if reasons:
        return reasons[0]
    if not runs["original"]["calls"]:
        return "no call of the function was seen (a classmethod or staticmethod is called past the probe)"
    return None


def _difference(a: dict[str, Any], b: dict[str, Any], a2: dict[str, Any]) -> tuple[str, str | None] | None:
    """(the difference in words, the name an assertion would read) for the first thing two calls
    left differently, and that the original's second run (`a2`) left as its first did; or None."""
    def outcome(call: dict[str, Any]) -> str:
        return f"raised {call['raised']}" if "raised" in call else f"returned {call.get('returned')}"

    def differs(x: Any, y: Any, x2: Any) -> bool:
        return x != y and x == x2

    if differs(outcome(a), outcome(b), outcome(a2)):
        return f"the call {outcome(a)} on the original but {outcome(b)} on the mutant", None
    if differs(a.get("cause"), b.get("cause"), a2.get("cause")):
        return (f"the exception's __cause__ is {a.get('cause')} on the original but {b.get('cause')} on the "
                "mutant"), "__cause__"
    for name in sorted(set(a["self"]) | set(b["self"])):
        if differs(a["self"].get(name), b["self"].get(name), a2["self"].get(name)):
            return (f"{a['self_type']}.{name} is {a['self'].get(name, 'unset')} on the original but "
                    f"{b['self'].get(name, 'unset')} on the mutant"), name
    for path in sorted(set(a["held"]) | set(b["held"])):
        held = a["held"].get(path) or b["held"][path]
        before, after = a["held"].get(path, {}).get("state", {}), b["held"].get(path, {}).get("state", {})
        before_again = a2["held"].get(path, {}).get("state", {})
        for name in sorted(set(before) | set(after)):
            if differs(before.get(name), after.get(name), before_again.get(name)):
                return (f"the {held['type']} in {path} when the call began has {name} = "
                        f"{before.get(name, 'unset')} on the original but {after.get(name, 'unset')} on the "
                        "mutant"), name
    for name in sorted(set(a["globals"]) | set(b["globals"])):
        if differs(a["globals"].get(name), b["globals"].get(name), a2["globals"].get(name)):
            return (f"the module global {name} is {a['globals'].get(name, 'unset')} on the original but "
                    f"{b['globals'].get(name, 'unset')} on the mutant"), name
    if differs(a["logs"], b["logs"], a2["logs"]):
        return f"the log records are {a['logs']} on the original but {b['logs']} on the mutant", "caplog"
    for name in sorted(set(a["mocks"]) | set(b["mocks"])):
        if differs(a["mocks"].get(name), b["mocks"].get(name), a2["mocks"].get(name)):
            read = name.split()[-1].rsplit(".", 1)[-1]  # `global torch.cuda.empty_cache`: empty_cache
            return (f"the calls to the mock {name} are {a['mocks'].get(name, [])} on the original but "
                    f"{b['mocks'].get(name, [])} on the mutant"), None if read.isdigit() else read
    return None


def _reads(source: str | None, name: str | None) -> str:
    if name is None or source is None:
        return "no assertion in that test checks it"
    if name not in _names(source):
        return f"no assertion in that test reads {name}"
    return f"that test reads {name}, but not this value of it"


def _names(source: str) -> set[str]:
    """Every name, attribute and string a test's code mentions."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.add(node.value)
        elif isinstance(node, ast.arg):
            found.add(node.arg)
    return found


def _test_source(work: Path, nodeid: str) -> str | None:
    """The source of the test function a node id names, as the snapshot holds it."""
    file, qualname = test_unit(nodeid)
    try:
        text = (work / file).read_text()
        tree = ast.parse(text)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    scope: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in qualname.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        scope = getattr(node, "body", [])
    return ast.get_source_segment(text, node) if node is not None else None

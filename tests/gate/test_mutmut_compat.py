"""The adapter's boundary to mutmut (`gate.mutmut_adapter.internals`): every internal it uses, the
parameters it passes them, the file and name conventions it relies on, and the units mutmut
trampolines. A mutmut upgrade that moves any of them fails here, with the list of what moved.

Each check runs in a process of its own: mutmut reads its configuration at import, and the check
installs one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from gate.mutmut_adapter.client import MUTMUT_OPERATORS, NEVER_MUTATED_NAMES, TESTED_MUTMUT


def in_own_process(body: str) -> object:
    """The JSON that `body` (run after the adapter installed a neutral configuration) prints."""
    script = "import json\nimport gate.mutmut_adapter.internals as mutmut\nmutmut.moved()\n" + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_installed_mutmut_is_a_tested_release():
    import importlib.metadata

    assert importlib.metadata.version("mutmut") in TESTED_MUTMUT


def test_every_internal_the_adapter_uses_is_where_it_looks_and_takes_what_it_passes():
    moved = in_own_process("print(json.dumps(mutmut.moved()))")
    assert moved == [], "mutmut moved:\n" + "\n".join(moved)


def test_the_conventions_the_adapter_relies_on_hold():
    found = in_own_process("""
        import inspect
        import os
        from pathlib import Path

        print(json.dumps({
            # the trampoline raises for the forced-failure name, and generation sets its own name
            "forced fail": f'mutant_under_test == "{mutmut.FORCED_FAIL}"' in inspect.getsource(
                __import__("mutmut.mutation.trampoline", fromlist=["x"])),
            "generation": f'set_mutant_under_test("{mutmut.GENERATION}")' in inspect.getsource(mutmut.cli),
            # mutmut's own files beside each copy, in its folder
            "side files": all(f'Path("{mutmut.MUTANTS_DIR}") / (str(path) + "{suffix}")' in inspect.getsource(
                __import__("mutmut.mutation.data", fromlist=["x"])) for suffix in mutmut.MUTMUT_SIDE_FILES),
            # how a function's trampoline and its mutants are named
            "method": mutmut.mangle_function_name(name="load", class_name="Store"),
            "function": mutmut.mangle_function_name(name="load", class_name=None),
            "mutant": mutmut.get_mutant_name(Path("pkg/mod.py"), "xǁStoreǁload__mutmut_3"),
            "never mutated": sorted(mutmut.NEVER_MUTATE_FUNCTION_NAMES),
            # the table the trampoline reads each function's original and mutants from
            "table": [line.split(" = ")[0] for line in mutmut.combine_mutations_to_source(
                *(lambda made: (made[0], made[1][:1], made[2], made[3]))(mutmut.create_mutations(
                    "m.py", "def load(x):\\n    return x + 1\\n", None, None))).code.splitlines()
                if line.startswith("mutants_") and " = " in line],
            "table named": [mutmut.mutants_table("x_load__mutmut_1"), mutmut.ORIGINAL_KEY],
            # the probe's tracebacks leave out the trampoline's frames and name mutmut's copies plainly
            # the environment variable the trampoline reads the active mutant from
            "env var": f'"{mutmut.MUTANT_UNDER_TEST}" in os.environ' in inspect.getsource(
                __import__("mutmut.mutation.trampoline", fromlist=["x"])),
            # a copy's prefixes and suffix, and the function a mutant name belongs to
            "prefixes": [mutmut.mangle_function_name(name="load", class_name=c).startswith(p)
                         for c, p in zip((None, "Store"), mutmut.COPY_PREFIXES)],
            "of function": [mutmut.function_of(n) for n in mutmut.combine_mutations_to_source(
                *(lambda made: (made[0], made[1][:1], made[2], made[3]))(mutmut.create_mutations(
                    "m.py", "def load(x):\\n    return x + 1\\n", None, None))).mutant_names],
            "suffix": sorted(n.removeprefix("x_load" + mutmut.MUTANT_SUFFIX) for n in mutmut.combine_mutations_to_source(
                *(lambda made: (made[0], made[1][:1], made[2], made[3]))(mutmut.create_mutations(
                    "m.py", "def load(x):\\n    return x + 1\\n", None, None))).mutant_names),
            "trampoline file": [inspect.getsourcefile(__import__("mutmut.mutation.trampoline", fromlist=["x"])
                                                      ).endswith(mutmut.TRAMPOLINE_FILES)],
            "plain names": [mutmut.plain_function_name(n) for n in (
                mutmut.mangle_function_name(name="load", class_name="Store") + "__mutmut_3",
                mutmut.mangle_function_name(name="load", class_name=None) + "__mutmut_orig", "helper")],
            "operators": sorted({op.__name__.removeprefix("operator_") for _, op in mutmut.mutation_operators}),
        }))
    """)
    assert found == {
        "forced fail": True, "generation": True, "side files": True,
        "method": "xǁStoreǁload", "function": "x_load", "mutant": "pkg.mod.xǁStoreǁload__mutmut_3",
        "never mutated": sorted(NEVER_MUTATED_NAMES),
        "table": ["mutants_x_load__mutmut: MutantDict", "mutants_x_load__mutmut['_mutmut_orig']",
                  "mutants_x_load__mutmut['x_load__mutmut_1']"],
        "table named": ["mutants_x_load__mutmut", "_mutmut_orig"],
        "env var": True, "prefixes": [True, True], "of function": ["x_load"],
        "suffix": ["1"],
        "trampoline file": [True], "plain names": ["load", "load", "helper"],
        "operators": sorted(MUTMUT_OPERATORS),  # each of mutmut's operators is described for the reports
    }


def test_the_gate_process_reads_mutmuts_names_without_importing_mutmut():
    found = subprocess.run([sys.executable, "-c", "import sys, gate.mutmut_adapter.naming, gate.wire.driver\n"
                            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mutmut'))"],
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"


def test_the_globals_the_adapter_replaces_are_the_ones_mutmut_reads():
    found = in_own_process("""
        import io
        from pathlib import Path

        source = "def f():\\n    return 1 + 1\\n"
        original, calls = mutmut.mutate_file_contents, []

        def spy(*args, **kwargs):
            calls.append(args[0])
            return original(*args, **kwargs)

        mutmut.replace("mutate_file_contents", spy)
        mutmut.cli.write_all_mutants_to_file(out=io.StringIO(), source=source, filename=Path("m.py"))
        with_operators = len(mutmut.create_mutations("m.py", source, None, None)[1])
        mutmut.replace("mutation_operators", [])
        without = len(mutmut.create_mutations("m.py", source, None, None)[1])
        print(json.dumps({"file contents": calls, "mutations": [with_operators > 0, without]}))
    """)
    assert found == {"file contents": ["m.py"], "mutations": [True, 0]}


UNITS = '''
def f(x):
    return x + 1

class C:
    def m(self):
        return 1 + 1
    async def a(self):
        return 2 + 2
    class D:
        def inner(self):
            return 3 + 3

if True:
    def g():
        return 4 + 4

@decorated
def h():
    return 5 + 5

def outer():
    def nested():
        return 6 + 6
    return nested
'''


@pytest.mark.parametrize("source", [UNITS])
def test_mutmut_trampolines_exactly_the_units_the_regions_know(source):
    # the regions' one enumeration of units (`unit_def_lines`); a decorated one is left out by
    # `unmutatable_reason`, which tests/gate/test_regions.py checks
    found = in_own_process(f"""
        from gate.steps.regions import unit_def_lines

        source = {source!r}
        module, mutations, classes, functions = mutmut.create_mutations("mod.py", source, None, None)
        mutated = mutmut.combine_mutations_to_source(module, mutations, classes, functions)
        trampolined = sorted({{name.rsplit("__mutmut_", 1)[0] for name in mutated.mutant_names}})
        known = sorted(mutmut.mangle_function_name(name=name.rpartition(".")[2],
                                                   class_name=name.rpartition(".")[0] or None)
                       for name in unit_def_lines(source).values() if name != "h")
        print(json.dumps([trampolined, known]))
    """)
    trampolined, known = found
    assert trampolined == known == ["x_f", "x_outer", "xǁCǁa", "xǁCǁm"]


def test_the_adapter_finds_those_units_among_libcsts_nodes():
    found = in_own_process(f"""
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider

        from gate.mutmut_adapter.mutate import _units_of

        wrapper = MetadataWrapper(cst.parse_module({UNITS!r}), unsafe_skip_copy=True)
        units = _units_of({UNITS!r}, wrapper.resolve(PositionProvider))
        print(json.dumps(sorted([node.name.value, *names] for node, names in units.items())))
    """)
    assert found == [["a", "xǁCǁa", "C.a"], ["f", "x_f", "f"], ["h", "x_h", "h"], ["m", "xǁCǁm", "C.m"],
                     ["outer", "x_outer", "outer"]]

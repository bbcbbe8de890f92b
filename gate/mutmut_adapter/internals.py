"""Every part of mutmut the gate relies on, named here and nowhere else.

mutmut 3 has no API for what the gate does (keep only in-region mutations, add operators, run a
mutant's tests in a given order), so the adapter drives its internals. They are listed in
`USED`, with the parameters the adapter passes, and in the file and name conventions below;
`tests/gate/test_mutmut_compat.py` checks each of them, so a mutmut upgrade fails in that one test
with a list of what moved.

mutmut reads its configuration when some of its modules are imported (`safe_setproctitle`), so
`install_config` must run first: every other name is imported on first use (`internals.NAME`).
Only the driver process's modules and the compatibility test import this (the import walls in
pyproject.toml check it); no other module of the gate imports mutmut.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import mutmut.configuration as _configuration

# mutmut's file and name conventions live in `naming` (which the gate's own process may import);
# re-exported here for the driver's side, and checked against mutmut by the compatibility test
from gate.mutmut_adapter.naming import (  # noqa: F401
    COPY_PREFIXES as COPY_PREFIXES,
    FORCED_FAIL as FORCED_FAIL,
    GENERATION as GENERATION,
    MUTANT_SUFFIX as MUTANT_SUFFIX,
    MUTANT_UNDER_TEST as MUTANT_UNDER_TEST,
    MUTANTS_DIR as MUTANTS_DIR,
    MUTMUT_SIDE_FILES as MUTMUT_SIDE_FILES,
    ORIGINAL_KEY as ORIGINAL_KEY,
    TABLE_PREFIX as TABLE_PREFIX,
    TRAMPOLINE_FILES as TRAMPOLINE_FILES,
    function_of as function_of,
    is_mutmut_global as is_mutmut_global,
    mutants_table as mutants_table,
    plain_function_name as plain_function_name,
)

CONFIG_FIELDS = (
    "also_copy", "only_mutate", "do_not_mutate", "do_not_mutate_patterns", "max_stack_depth", "debug",
    "source_paths", "resolved_mutated_source_paths", "pytest_add_cli_args", "pytest_add_cli_args_test_selection",
    "mutate_only_covered_lines", "timeout_multiplier", "timeout_constant", "type_check_command",
    "use_setproctitle", "track_dependencies", "dependency_tracking_depth", "cache_invalidation_files",
    "cache_invalidation_exclude", "on_dependency_change", "use_git_change_detection", "process_isolation",
    "forkserver_warmup", "max_forkserver_restarts", "preload_modules_file", "log_to_file", "log_file_path",
)
"""`Config`'s fields: `install_config` sets every one."""

USED: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    # name here: (module, attribute or None for the module itself, parameters the adapter passes)
    "cli": ("mutmut.__main__", None, ()),  # where `mutate_file_contents` is read, as a global
    "create_file_mutants": ("mutmut.__main__", "create_file_mutants", ("path",)),
    "mutate_file_contents": ("mutmut.__main__", "mutate_file_contents",
                             ("filename", "code", "covered_lines", "coverage_excluded_lines")),
    "mutation_operators": ("mutmut.mutation.file_mutation", "mutation_operators", ()),
    "create_mutations": ("mutmut.mutation.file_mutation", "create_mutations",
                         ("filename", "code", "covered_lines", "coverage_excluded_lines")),
    "OuterFunctionProvider": ("mutmut.mutation.file_mutation", "OuterFunctionProvider", ()),
    "Mutation": ("mutmut.mutation.file_mutation", "Mutation",
                 ("original_node", "mutated_node", "contained_by_top_level_function")),
    "deep_replace": ("mutmut.mutation.file_mutation", "deep_replace", ("tree", "old_node", "new_node")),
    "combine_mutations_to_source": ("mutmut.mutation.file_mutation", "combine_mutations_to_source",
                                    ("module", "mutations", "ignored_classes", "ignored_functions")),
    "compute_mutated_function_hashes": ("mutmut.mutation.file_mutation", "_compute_mutated_function_hashes",
                                        ("source_code", "module", "mutations")),
    "get_ignored_lines": ("mutmut.mutation.file_mutation", "get_ignored_lines",
                          ("filename", "source", "metadata_wrapper", "coverage_excluded_lines")),
    "NEVER_MUTATE_FUNCTION_NAMES": ("mutmut.mutation.file_mutation", "NEVER_MUTATE_FUNCTION_NAMES", ()),
    "set_mutant_under_test": ("mutmut.mutation.trampoline", "set_mutant_under_test", ("name",)),
    "mangle_function_name": ("mutmut.mutation.trampoline_templates", "mangle_function_name",
                             ("name", "class_name")),
    "get_mutant_name": ("mutmut.utils.format_utils", "get_mutant_name",
                        ("relative_source_path", "mutant_method_name")),
    "change_cwd": ("mutmut.utils.file_utils", "change_cwd", ()),
    "copy_src_dir": ("mutmut.utils.file_utils", "copy_src_dir", ()),
    "copy_also_copy_files": ("mutmut.utils.file_utils", "copy_also_copy_files", ()),
    "setup_source_paths": ("mutmut.utils.file_utils", "setup_source_paths", ()),
    "walk_source_files": ("mutmut.utils.file_utils", "walk_source_files", ()),
    "PytestRunner": ("mutmut.runners.harness", "PytestRunner", ()),
    "BadTestExecutionCommandsException": ("mutmut.runners.harness", "BadTestExecutionCommandsException", ()),
    "ForkServerRunner": ("mutmut.workers.isolation", "ForkServerRunner",
                         ("max_workers", "test_runner_class", "test_runner_args", "max_restarts")),
    "ForkServerCrashError": ("mutmut.workers.isolation", "ForkServerCrashError", ()),
    "MutantResult": ("mutmut.workers.isolation", "MutantResult", ("mutant_name", "exit_code")),
    "config": ("mutmut.configuration", "config", ()),
    "ForkServerWarmup": ("mutmut.configuration", "ForkServerWarmup", ()),
}

METHODS: dict[str, dict[str, tuple[str, ...]]] = {
    # the methods the adapter calls or overrides, and the parameters it passes
    "PytestRunner": {"warm_up": (), "run_tests": ("mutant_name", "tests"), "execute_pytest": ("params",),
                     "_pytest_args_regular_run": ("tests",)},
    "ForkServerRunner": {"startup": (), "submit": ("mutant_name", "tests", "cpu_time_limit", "estimated_time"),
                         "has_capacity": (), "wait_for_result": (), "pending_count": (),
                         "signal_work_complete": (), "stop_all_workers": (), "shutdown": ()},
}
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    # attributes of mutmut's objects the adapter reads
    "PytestRunner": ("_pytest_add_cli_args", "_pytest_add_cli_args_test_selection"),
    "ForkServerWarmup": ("NONE", "COLLECT"),
}


def install_config(**fields: Any) -> None:
    """mutmut's configuration, set before any mutmut module reads `pyproject.toml` for one."""
    fields["process_isolation"] = getattr(_configuration.ProcessIsolation, fields["process_isolation"])
    fields["forkserver_warmup"] = getattr(_configuration.ForkServerWarmup, fields["forkserver_warmup"])
    _configuration._config = _configuration.Config(**fields)


def replace(name: str, value: Any) -> None:
    """Replace one of mutmut's module globals (`mutate_file_contents`, `mutation_operators`)."""
    module, attribute, _ = USED[name]
    setattr(importlib.import_module(module), attribute or name, value)


def __getattr__(name: str) -> Any:
    if name not in USED:
        raise AttributeError(f"gate.mutmut_adapter.internals names no mutmut internal {name!r}")
    module, attribute, _ = USED[name]
    loaded = importlib.import_module(module)
    return loaded if attribute is None else getattr(loaded, attribute)


def moved() -> list[str]:
    """What of the conventions, `USED`, `METHODS` and `ATTRIBUTES` the installed mutmut lacks or
    names otherwise, one line each. Installs a neutral configuration where none is: run it in a
    process of its own."""
    import dataclasses

    fields = [f.name for f in dataclasses.fields(_configuration.Config)]
    if fields != list(CONFIG_FIELDS):
        return [f"mutmut.configuration.Config has the fields {fields}, not {list(CONFIG_FIELDS)}"]
    if _configuration._config is None:
        install_config(**{name: [] for name in CONFIG_FIELDS}
                       | {"max_stack_depth": -1, "debug": False, "mutate_only_covered_lines": False,
                          "timeout_multiplier": 1.0, "timeout_constant": 0.0, "use_setproctitle": False,
                          "track_dependencies": False, "dependency_tracking_depth": -1,
                          "on_dependency_change": "ignore", "use_git_change_detection": False,
                          "process_isolation": "FORKSERVER", "forkserver_warmup": "NONE", "max_forkserver_restarts": 0, "preload_modules_file": None,
                          "log_to_file": False, "log_file_path": "mutmut-debug.log"})
    problems = []
    found: dict[str, Any] = {}
    for name, (module, attribute, params) in USED.items():
        try:
            value = found[name] = __getattr__(name)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{module}.{attribute or ''}: {exc}")
            continue
        problems += _missing_params(f"{module}.{attribute}", value, params)
    for owner, methods in METHODS.items():
        for method, params in methods.items():
            value = getattr(found.get(owner), method, None)
            if value is None:
                problems.append(f"{owner}.{method}: gone")
            else:
                problems += _missing_params(f"{owner}.{method}", value, params)
    for owner, attributes in ATTRIBUTES.items():
        # an instance's attributes where they are set in __init__ (the runner's arguments)
        holder = found[owner]() if owner == "PytestRunner" and owner in found else found.get(owner)
        problems += [f"{owner}.{a}: gone" for a in attributes if not hasattr(holder, a)]
    return problems


def _missing_params(where: str, value: Any, params: tuple[str, ...]) -> list[str]:
    if not params:
        return []
    try:
        accepted = inspect.signature(value).parameters
    except (TypeError, ValueError):
        return [f"{where}: no signature to check"]
    return [f"{where}: no parameter {p!r}" for p in params if p not in accepted]

"""`python -P -m gate.mutmut_adapter.driver generate|run SPEC`: the one process that imports mutmut,
started by `client` in the gate's snapshot folder. It configures mutmut from the spec, runs the
phase, and reports in `gate.wire.driver` events: the result, or the error that stopped it."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

from gate.errors import GateError, InfrastructureError
from gate.levers import levers_off
from gate.wire import driver as wire
from gate.wire.driver import Event, MutmutSetup, Phase, emit, emit_error


def configure(setup: MutmutSetup) -> None:
    """mutmut's configuration, from the spec alone (never the project's own `[tool.mutmut]`). The
    first import of mutmut: inside `main`'s error handling, so a broken mutmut is one line."""
    from gate.mutmut_adapter import internals as mutmut

    mutmut.install_config(
        also_copy=[Path(p) for p in setup.also_copy],
        only_mutate=[], do_not_mutate=[], do_not_mutate_patterns=[],
        max_stack_depth=-1, debug=False,
        source_paths=[Path(p) for p in setup.source_paths],
        resolved_mutated_source_paths=[Path.cwd().resolve() / mutmut.MUTANTS_DIR / p for p in setup.source_paths],
        pytest_add_cli_args=["-p", "no:cacheprovider", *setup.pytest_args],
        pytest_add_cli_args_test_selection=list(setup.tests),
        mutate_only_covered_lines=False,
        timeout_multiplier=1.0, timeout_constant=0.0,  # the gate computes each mutant's limit itself
        type_check_command=[], use_setproctitle=True,
        track_dependencies=False, dependency_tracking_depth=-1,
        cache_invalidation_files=[], cache_invalidation_exclude=[], on_dependency_change="ignore",
        use_git_change_detection=False,
        process_isolation="FORKSERVER",
        forkserver_warmup="NONE" if "preload" in levers_off() else "COLLECT",
        max_forkserver_restarts=3, preload_modules_file=None,
        log_to_file=False, log_file_path=f"{mutmut.MUTANTS_DIR}/mutmut-debug.log",
    )


def main(argv: list[str]) -> int:
    phase, spec_path = Phase(argv[0]), Path(argv[1])
    driver_pid = os.getpid()

    def on_term(signum: int, frame: Any) -> None:
        if os.getpid() != driver_pid:  # a forked child of ours must never unwind into the driver
            os._exit(1)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        spec = wire.read_spec(phase, spec_path)
        configure(spec.setup)
        if isinstance(spec, wire.GenerateSpec):
            from gate.mutmut_adapter.mutate import run_generation
            result: wire.Generation | wire.RunResult = run_generation(spec)
        else:
            from gate.mutmut_adapter.runner import run
            result = run(spec)
    except KeyboardInterrupt:  # only a gate that stopped reading stops the driver (its own session)
        return 130
    except GateError as exc:
        if os.getpid() != driver_pid:
            os._exit(1)
        emit_error(exc)
        return 1
    except BaseException as exc:  # report mutmut's own crash in one line, then let it show
        if os.getpid() != driver_pid:
            os._exit(1)
        emit_error(InfrastructureError(f"mutmut ({phase.value}) crashed: {type(exc).__name__}: {exc}"))
        raise
    emit(Event.DONE, result)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main(sys.argv[1:]))

"""Mutant generation, beside the measurement (it needs the regions, not the coverage): resolve the
exception types the handlers catch, then have mutmut generate the mutants of every mutable region
(also those outside a `--changed` scope, so that mutant names stay those of a full run). It also
says which regions no mutant can check, and why."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate import imports, rules
from gate.clock import Clock
from gate.errors import InfrastructureError
from gate.mutmut_adapter import client
from gate.operators import OPERATORS
from gate.result import Region, RegionKind, RegionReport
from gate.settings import Settings
from gate.steps import exception_types, snapshot
from gate.steps.mutants import start_fork_server
from gate.steps.regions import read_source


@dataclass(frozen=True)
class TypeResolution:
    """What the exception-type step learned about each guarded file with handlers."""

    facts: dict[str, Any]
    """file -> the facts the type operators use, with `unresolved`: caught type expression -> why."""
    failed: dict[str, str]
    """file -> why importing it failed."""
    caught: dict[str, dict[int, list[str]]]
    """file -> line of an `except` -> the type expressions it names."""
    modules: dict[str, str]


@dataclass(frozen=True)
class Generated:
    generation: client.Generation
    types: TypeResolution
    started_run: client.Run | None
    """mutmut's fork server, started once the mutants exist when the measurement really runs (it
    imports the code and collects the tests meanwhile); None otherwise."""


def mutable(regions: Iterable[Region], settings: Settings) -> list[Region]:
    return [r for r in regions if client.unmutatable_reason(r, settings.policy.safe_decorators) is None]


def generate(settings: Settings, work: Path, project: list[str], files: list[str], regions: list[Region],
             tests: Iterable[str], environment: str, clock: Clock, prestart: bool) -> Generated:
    """Resolve the exception types, then generate the mutants of every mutable region; then, if
    asked, start mutmut's fork server, which imports the mutated copy."""
    with clock.measure("exception types"):
        # a hierarchy may be defined in any module of the project, not only where it is caught
        modules = [f for f in project if f.endswith(".py") and not snapshot.is_test_module(f)]
        handled = {r.file for r in regions if r.kind is RegionKind.EXCEPT}
        with_handlers = [f for f in files if f in handled]
        resolved, failed = exception_types.resolve(
            work, with_handlers, settings.cache_dir / "exception-types.json", key=environment, modules=modules,
            import_roots=imports.import_roots(work, files))
        types = TypeResolution(
            facts=resolved, failed=failed,
            caught={f: exception_types.caught_exprs_by_line(read_source(work / f)) for f in with_handlers},
            modules={f: imports.module_name(work, f) for f in with_handlers})
    with clock.measure("generate"):
        spans: dict[str, list[tuple[int, int, str]]] = {}
        for region in mutable(regions, settings):
            spans.setdefault(region.file, []).append((region.start, region.end, region.kind.value))
        generation = client.request_generation(
            work, files=files, regions=spans, max_workers=settings.max_workers, tests=list(tests),
            pytest_args=list(settings.pytest_args),
            operators=client.OperatorSpec(
                enabled=tuple(sorted(settings.policy.operators if settings.policy.operators is not None
                                     else OPERATORS)), exceptions=resolved))
    return Generated(generation, types, start_fork_server(settings, work, files, tests) if prestart else None)


def check_made(generation: client.Generation, regions: Iterable[Region], settings: Settings) -> None:
    """Fail closed when mutmut made no mutant at all in regions it can mutate."""
    mutable_regions = mutable(regions, settings)
    if mutable_regions and not generation.mutants:
        raise InfrastructureError(f"no mutants were generated in {len(mutable_regions)} error-handling regions "
                                  "that mutmut can mutate")


def notes(generation: client.Generation) -> list[str]:
    if not generation.dropped_invalid:
        return []
    return [f"{generation.dropped_invalid} gate mutants did not compile and were not tested "
            "(an operator bug: please report it)"]


def with_unmutatable(reports: Iterable[RegionReport], settings: Settings) -> list[RegionReport]:
    """The reports, with every region mutmut cannot mutate marked (and accepted where the policy says so)."""
    marked = []
    for report in reports:
        reason = client.unmutatable_reason(report.region, settings.policy.safe_decorators)
        if reason is not None:
            report = dataclasses.replace(report, not_mutated=reason,
                                         accepted=rules.accepted(report.region, settings.policy.accept_unmutated))
        marked.append(report)
    return marked


def with_type_problems(reports: list[RegionReport], types: TypeResolution, accept: dict[str, str]
                       ) -> list[RegionReport]:
    """The reports, with every handler whose caught types could not be resolved marked (the type
    operators made no mutant of it: broaden, narrow, handler order), and accepted where the policy
    says so; `gate.rules` makes an unaccepted one an infrastructure failure (exit 4)."""
    marked = []
    for report in reports:
        region = report.region
        problem = None
        if region.kind is RegionKind.EXCEPT and region.file in types.failed:
            problem = f"{region.file}: cannot resolve the caught types: {types.failed[region.file]}"
        elif region.kind is RegionKind.EXCEPT and region.file in types.caught:
            unresolved = types.facts.get(region.file, {}).get("unresolved", {})
            whys = [(expr, unresolved[expr]) for expr in types.caught[region.file].get(region.start, [])
                    if expr in unresolved]
            if whys:
                expr, why = whys[0]
                problem = f"{region.id} cannot resolve the caught type {expr} in {types.modules[region.file]} ({why})"
        if problem is not None:
            report = dataclasses.replace(report, unresolved_types=problem,
                                         accepted=report.accepted or rules.accepted(region, accept))
        marked.append(report)
    return marked

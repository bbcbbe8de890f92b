"""`reports/gate-junit.xml`: one test case per error-handling region, failed when a mutant in it
fails the gate (it survived, no test reached it, or a timeout or crash counts against it), or
when the suite never ran the region or one of its branches; CI test tabs show it. Each case's
time is its region's own, the suite's the run's wall time. A run that an error stopped is one
case in error, saying why: an empty suite would read as green in a CI test tab. Written with
junitparser."""

from __future__ import annotations

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from gate.result import GateResult, MutantStatus, stamp


def render(result: GateResult) -> str:
    suite = TestSuite("gate: error-handling regions")
    suite.add_property("gate run", stamp(result.run))  # which run and commit the cases are of
    for report in result.regions:
        region = report.region
        case = TestCase(f"{region.id} {region.label}", classname=region.file.removesuffix(".py").replace("/", "."))
        mutants = result.mutants_in(region.id)
        problems = [f"{m.status.value}: {m.label} ({m.operator})\n{m.diff}" for m in mutants if m.fails]
        problems = [p.message for p in report.problems if not p.adopted] + problems
        case.time = round(sum(m.seconds for m in mutants), 3)
        if problems:
            failure = Failure(problems[0].splitlines()[0])
            failure.text = "\n\n".join(problems)
            case.result = [failure]
        elif mutants and all(m.status is MutantStatus.NOT_RUN for m in mutants):
            case.result = [Skipped("outside this run's scope")]
        suite.add_testcase(case)
    if result.error is not None:
        suite.add_testcase(_stopped_case(result))
    xml = JUnitXml("gate")
    xml.add_testsuite(suite)
    # a case's time is its region's own (its mutants' runs, added up); the suite's is the run's wall
    # time, which the cases' sum exceeds when workers ran mutants side by side
    if "total" in result.timings:
        suite.time = xml.time = result.timings["total"]
    return '<?xml version="1.0" encoding="utf-8"?>\n' + xml.tostring().decode() + "\n"


def _stopped_case(result: GateResult) -> TestCase:
    case = TestCase("gate run", classname="gate")
    messages = [f.message for f in result.verdict.findings] or [result.error or "stopped"]
    error = Error(messages[0], f"exit {int(result.verdict.exit_code)}")
    error.text = "\n".join(messages)
    case.result = [error]
    return case

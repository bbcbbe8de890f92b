"""`python -P -m gate.steps.coverage_html SPEC`: coverage.py's HTML report (whole files, branches,
test contexts) of the last measurement, written in a child process in the snapshot while the
mutants run (it takes seconds, and the verdict does not need it). Its spec is a
`gate.wire.coverage_html.HtmlReportSpec`."""

from __future__ import annotations

import sys
from pathlib import Path

from gate.steps.measurement import load_coverage
from gate.wire import codec, coverage_html
from gate.wire.coverage_html import HtmlReportSpec


def main(spec: HtmlReportSpec) -> None:
    cov = load_coverage(Path(spec.data_file), Path.cwd())
    # whole files: the regions' own coverage is the headline of the gate's index.html
    cov.html_report(directory=spec.directory, show_contexts=True, ignore_errors=True, title=spec.title)


if __name__ == "__main__":
    main(codec.read(HtmlReportSpec, Path(sys.argv[1]), coverage_html.FORMAT))

"""`reports/mutation/index.html`: one self-contained page that opens offline, rendered by the
mutation-testing report schema's own viewer (`mutation-testing-elements`, vendored and inlined)."""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import PurePath

from gate.report import mutation_json
from gate.result import GateResult, stamp

VIEWER = "mutation-test-elements-3.9.0.js"


def render(result: GateResult) -> str:
    """The page of `mutation_json`'s report, titled with the project and the run it shows."""
    report = mutation_json.report(result)
    title = f"gate: {PurePath(result.project).name}, {stamp(result.run)}"
    viewer = resources.files("gate.report").joinpath("vendor", VIEWER).read_text(encoding="utf-8")
    # "</" would end the inline <script> early
    data = json.dumps(report).replace("</", "<\\/")
    script = viewer.replace("</script", "<\\/script")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<script>{script}</script>
</head>
<body>
<mutation-test-report-app title-postfix="{html.escape(title)}"></mutation-test-report-app>
<script>document.querySelector("mutation-test-report-app").report = {data};</script>
</body>
</html>
"""

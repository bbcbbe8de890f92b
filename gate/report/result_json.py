"""`reports/gate-result.json`: the whole result as plain data (`gate.result.to_dict`), what
`gate merge` and `gate suggest` read back."""

from __future__ import annotations

import json

from gate.result import GateResult, to_dict


def render(result: GateResult) -> str:
    return json.dumps(to_dict(result), indent=1) + "\n"

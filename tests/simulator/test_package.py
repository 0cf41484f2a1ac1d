"""The simulator is core code: importing it loads no pipeline, Kedro or CLI module."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = (
    "kedro",
    "fraud_detection.pipelines",
    "fraud_detection.streaming",
    "fraud_detection.scoring",
    "fraud_detection.settings",
)


def test_importing_the_simulator_loads_only_core_modules():
    code = "import json, sys, fraud_detection.simulator; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout)
    assert "fraud_detection.simulator.assembly" in loaded
    assert [name for name in loaded if name.startswith(FORBIDDEN)] == []

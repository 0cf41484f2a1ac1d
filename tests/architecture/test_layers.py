"""The layers of docs/architecture.md hold: the import contracts pass, entry points
load config through the leaf module without building Kedro hooks, and every pipeline
is a namespace Kedro-Viz can collapse."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT


def _modules_after_import(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_contracts_are_kept():
    lint_imports = shutil.which("lint-imports") or str(PROJECT_ROOT / ".venv/bin/lint-imports")
    result = subprocess.run(
        [lint_imports, "--config", str(PROJECT_ROOT / "pyproject.toml")],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "entry_point",
    [
        "fraud_detection.scoring.cli",
        "fraud_detection.streaming.producer",
        "fraud_detection.alerting.airflow",
    ],
)
def test_entry_points_do_not_build_the_kedro_hooks(entry_point):
    loaded = _modules_after_import(entry_point)
    assert "fraud_detection.config" in loaded or entry_point == "fraud_detection.alerting.airflow"
    # Neither the Kedro hooks (which build every service client) nor boto3 are loaded.
    assert not {"fraud_detection.settings", "fraud_detection.hooks", "boto3"} & loaded
    assert not any(name.startswith("fraud_detection.pipelines") for name in loaded)


def test_config_module_imports_nothing_of_the_project():
    loaded = _modules_after_import("fraud_detection.config")
    assert {name for name in loaded if name.startswith("fraud_detection")} == {
        "fraud_detection",
        "fraud_detection.config",
    }


def test_every_node_is_in_the_namespace_of_its_pipeline():
    from kedro.framework.project import configure_project

    configure_project("fraud_detection")
    from fraud_detection.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    folders = [name for name in pipelines if name not in {"__default__", "train_and_promote"}]
    assert len(folders) >= 9
    for name in folders:
        nodes = pipelines[name].nodes
        assert nodes and all(
            n.namespace == name and n.name.startswith(f"{name}.") for n in nodes
        ), name
        assert all(name in n.tags for n in nodes), name
        # Dataset names stay global, so the stages connect and the catalog is unchanged.
        assert not any(d.startswith(f"{name}.") for n in nodes for d in (*n.inputs, *n.outputs)), (
            name
        )

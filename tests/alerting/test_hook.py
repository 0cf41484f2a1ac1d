"""The alerting hook in real Kedro runs: a KedroSession on a copy of the project with
the sinks pointed at local receivers (through `.env`, as users configure them)."""

from __future__ import annotations

import logging
import os

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import node, pipeline
from kedro.runner import SequentialRunner

from fraud_detection.alerting import AlertingHook
from fraud_detection.errors import DataQualityError
from fraud_detection.validation import StartupValidationError
from tests.alerting.conftest import body_text, free_port
from tests.conftest import make_transactions
from tests.e2e.test_default_run import make_project

ENV_VARS = (
    "ALERT_WEBHOOK_URL",
    "ALERT_SMTP_HOST",
    "ALERT_SMTP_PORT",
    "ALERT_SMTP_SECURITY",
    "ALERT_EMAIL_FROM",
    "ALERT_EMAIL_TO",
)
FAST_RETRY = (
    "alerting:\n  retry: {attempts: 2, initial_wait_seconds: 0.01, max_wait_seconds: 0.02}\n"
)


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    # One MLflow database for the module: creating one costs seconds of migrations.
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture
def project(tmp_path, monkeypatch, tracking_uri):
    path = make_project(tmp_path)
    raw = make_transactions(n=400, days=30, seed=3)
    raw.to_parquet(path / "data/01_raw/transactions.parquet")
    (path / "conf/local/alerting.yml").write_text(FAST_RETRY)
    monkeypatch.chdir(path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    # The run loads these from the project's .env into os.environ: put back what was
    # there before, so they do not leak into later tests.
    saved = {name: os.environ.pop(name, None) for name in ENV_VARS}
    yield path
    for name, value in saved.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


def write_env(project, webhook_url: str, smtp_host: str, smtp_port: int) -> None:
    (project / ".env").write_text(
        f"ALERT_WEBHOOK_URL={webhook_url}\nALERT_SMTP_HOST={smtp_host}\nALERT_SMTP_PORT={smtp_port}\n"
        "ALERT_SMTP_SECURITY=none\nALERT_EMAIL_FROM=fraud@example.test\nALERT_EMAIL_TO=ops@example.test\n"
    )


def run(project, runtime_params: dict | None = None) -> str:
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=runtime_params or {}) as session:
        session_id = session.session_id
        try:
            session.run(pipeline_names=["train_and_promote"])
        except Exception as error:
            error.session_id = session_id
            raise
    return session_id


def test_data_quality_stop_alerts_with_counts_and_reasons_and_the_run_still_fails(
    project, webhook, smtp
):
    write_env(project, webhook.url, smtp.host, smtp.port)
    raw = make_transactions(n=400, days=30, seed=3)
    raw.loc[:59, "customer_id"] = None
    raw.loc[60:69, "amount"] = -5.0
    raw.to_parquet(project / "data/01_raw/transactions.parquet")
    with pytest.raises(DataQualityError, match="70 of 400 transactions") as failure:
        run(project)
    (post,) = webhook.events()
    text = str(post)
    assert post["text"] == "[local] Data-quality limit exceeded: ingestion stopped the run"
    for fragment in (
        "missing_customer_id",
        "60",
        "amount_out_of_range",
        "10",
        "17.50%",
        "5.00%",
        "enforce_quality_limit_node",
        failure.value.session_id,
    ):
        assert fragment in text, fragment
    (mail,) = smtp.messages
    assert mail["X-Fraud-Detection-Event"] == "data_quality_failed"
    assert "missing_customer_id  60" in body_text(
        mail
    ) and f"run id            {failure.value.session_id}" in body_text(mail)


def test_failed_node_alerts_with_its_name_error_and_run_ids(project, webhook, smtp):
    write_env(project, webhook.url, smtp.host, smtp.port)
    with pytest.raises(ValueError, match="Column mapping names source column") as failure:
        run(project, {"ingestion": {"column_mapping": {"amount": "TX_AMOUNT"}}})
    (post,) = webhook.events()
    assert post["text"] == "[local] Pipeline run failed in node ingestion.standardise_columns_node"
    facts = {
        f["text"].split("\n")[0].strip("*"): f["text"].split("\n")[1]
        for f in post["blocks"][2]["fields"]
    }
    assert facts["node"] == "ingestion.standardise_columns_node"
    assert facts["error type"] == "ValueError"
    assert facts["run id"] == failure.value.session_id
    assert facts["MLflow run id"] not in ("", "none")  # kedro-mlflow's run of this session
    assert "TX_AMOUNT" in post["blocks"][1]["text"]["text"]
    # A subject longer than one header line is folded; unfolded, it is the same title.
    assert smtp.messages[0]["Subject"].strip() == post["text"]


def test_unreachable_service_at_start_up_alerts_before_any_node_runs(project, webhook, smtp):
    write_env(project, webhook.url, smtp.host, smtp.port)
    (project / "conf/local/validation.yml").write_text(
        "startup_validation:\n"
        f"  kafka: {{bootstrap_servers: '127.0.0.1:{free_port()}', timeout_s: 1}}\n"
    )
    with pytest.raises(StartupValidationError, match="Kafka"):
        run(project)
    (post,) = webhook.events()
    assert post["text"].startswith("[local] Start-up checks failed: 1 problem(s), no node ran")
    assert "Kafka" in str(post["blocks"]) and "not started" in str(post["blocks"])
    assert smtp.messages[0]["X-Fraud-Detection-Event"] == "service_unreachable"


def test_dead_sinks_never_mask_the_original_error(project, caplog):
    write_env(project, f"http://127.0.0.1:{free_port()}/hook", "127.0.0.1", free_port())
    raw = make_transactions(n=400, days=30, seed=3)
    raw.loc[:99, "customer_id"] = None
    raw.to_parquet(project / "data/01_raw/transactions.parquet")
    with caplog.at_level(logging.WARNING, logger="fraud_detection"):
        with pytest.raises(DataQualityError, match="100 of 400 transactions") as failure:
            run(project)
    assert failure.value.report["rows_quarantined"] == 100
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "Alert sink webhook could not send the data_quality_failed alert after 2 attempt(s)" in m
        for m in messages
    )
    assert any(
        "Alert sink email could not send the data_quality_failed alert after 2 attempt(s)" in m
        for m in messages
    )


def test_typo_in_alerting_yml_fails_at_start_up_with_the_key(project):
    (project / "conf/local/alerting.yml").write_text(
        "alerting:\n  events:\n    model_promotd: [webhook]\n"
    )
    with pytest.raises(ValueError, match=r"alerting.events: \['model_promotd'\]"):
        run(project)


class _Context:
    """What the hook reads from a KedroContext."""

    def __init__(self, project, env="local"):
        from kedro.config import OmegaConfigLoader

        from fraud_detection.settings import CONFIG_LOADER_ARGS

        self.env = env
        self.config_loader = OmegaConfigLoader(
            conf_source=str(project / "conf"), env=env, **CONFIG_LOADER_ARGS
        )


def _hook_manager(hook: AlertingHook):
    from kedro.framework.hooks.manager import _create_hook_manager

    manager = _create_hook_manager()
    manager.register(hook)
    return manager


def test_drift_verdict_saved_by_a_pipeline_alerts_with_the_drifted_features(project, receivers_env):
    webhook, smtp = receivers_env
    verdict = {
        "drift_detected": True,
        "window": {"start": "2026-11-20", "end": "2026-11-27", "rows": 5400},
        "features": [
            {"feature": "amount", "psi": 0.41, "ks_pvalue": 0.0001, "drifted": True},
            {"feature": "hour", "psi": 0.02, "ks_pvalue": 0.6, "drifted": False},
        ],
        "score": {"psi": 0.05, "drifted": False},
    }
    hook = AlertingHook()
    manager = _hook_manager(hook)
    manager.hook.after_context_created(context=_Context(project))
    manager.hook.before_pipeline_run(
        run_params={"run_id": "monitoring-run-1", "env": "local"}, pipeline=None, catalog=None
    )
    monitoring = pipeline(
        [node(lambda: verdict, inputs=None, outputs="monitoring_verdict", name="check_drift_node")]
    )
    catalog = DataCatalog({"monitoring_verdict": MemoryDataset()})
    SequentialRunner().run(monitoring, catalog, manager, run_id="monitoring-run-1")
    (post,) = webhook.events()
    assert post["text"] == "[local] Drift detected: 1 feature(s)"
    text = str(post)
    assert (
        "amount" in text
        and "0.4100" in text
        and "monitoring-run-1" in text
        and "2026-11-20 to 2026-11-27 (5,400 rows)" in text
    )
    assert "hour" not in post["blocks"][-1]["text"]["text"]  # only drifted features in the table
    assert smtp.messages[0]["X-Fraud-Detection-Event"] == "drift_detected"


def test_promotion_decision_saved_to_the_registry_alerts_side_by_side(project, receivers_env):
    webhook, smtp = receivers_env
    decision = {
        "promote": False,
        "reason": (
            "challenger average_precision 0.5000 does not beat champion 0.5200 "
            "by the margin 0.005 (gain -0.0200)"
        ),
        "challenger": {"metrics": {"average_precision": 0.50, "roc_auc": 0.93}, "run_id": "new"},
        "champion": {
            "version": "7",
            "run_id": "old",
            "metrics": {"average_precision": 0.52, "roc_auc": 0.94},
        },
        "challenger_run_id": "new",
        "test_rows": 4677,
    }
    hook = AlertingHook()
    manager = _hook_manager(hook)
    manager.hook.after_context_created(context=_Context(project))
    manager.hook.before_pipeline_run(
        run_params={"run_id": "training-run-9", "env": "local"}, pipeline=None, catalog=None
    )
    promotion = pipeline(
        [
            node(
                lambda report: report,
                inputs="promotion_report",
                outputs="champion_alias",
                name="record_promotion_node",
            )
        ]
    )
    catalog = DataCatalog(
        {"promotion_report": MemoryDataset(decision), "champion_alias": MemoryDataset()}
    )
    SequentialRunner().run(promotion, catalog, manager)
    # Routed to the webhook only in conf/base/alerting.yml.
    (post,) = webhook.events()
    assert smtp.messages == []
    assert post["text"] == "[local] Challenger rejected: champion kept"
    table = post["blocks"][-1]["text"]["text"]
    assert (
        "average_precision  0.5000      0.5200    -0.0200" in table
        and "roc_auc            0.9300      0.9400    -0.0100" in table
    )
    assert "training-run-9" in str(post) and "does not beat champion" in str(post)


def test_verdict_without_drift_sends_nothing(project, receivers_env):
    webhook, smtp = receivers_env
    hook = AlertingHook()
    manager = _hook_manager(hook)
    manager.hook.after_context_created(context=_Context(project))
    monitoring = pipeline(
        [
            node(
                lambda: {"drift_detected": False, "features": {}},
                inputs=None,
                outputs="monitoring_verdict",
                name="check_drift_node",
            )
        ]
    )
    SequentialRunner().run(
        monitoring, DataCatalog({"monitoring_verdict": MemoryDataset()}), manager
    )
    assert webhook.posts == [] and smtp.messages == []

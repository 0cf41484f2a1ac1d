"""Alert builders: pure functions of the run's data."""

from fraud_detection.alerting import events as ev

RUN = ev.RunInfo(environment="local", run_id="r1")


def test_verdict_features_as_mapping_or_list_read_the_same_with_drifted_first():
    as_mapping = {
        "features": {
            "hour": {"psi": 0.5, "drifted": False},
            "amount": {"psi": 0.3, "drifted": True},
        }
    }
    as_list = {
        "features": [
            {"feature": "hour", "psi": 0.5, "drifted": False},
            {"feature": "amount", "psi": 0.3, "drifted": True},
        ]
    }
    assert ev.drifted_features(as_mapping) == ev.drifted_features(as_list)
    assert [e["feature"] for e in ev.drifted_features(as_mapping)] == ["amount", "hour"]


def test_first_promotion_has_no_champion_column_values():
    alert = ev.promotion_decided(
        {
            "promote": True,
            "reason": "no champion yet",
            "challenger": {"metrics": {"roc_auc": 0.9}},
            "champion": None,
        },
        RUN,
    )
    assert alert.event == ev.MODEL_PROMOTED
    assert alert.table.rows == (("roc_auc", "0.9000", "-", "-"),)
    assert alert.facts["champion version"] == "none"


def test_a_challenger_staged_for_live_evidence_is_not_called_rejected():
    alert = ev.promotion_decided(
        {
            "promote": False,
            "stage": "challenger",
            "reason": "beats champion; live evidence is required",
            "challenger": {"metrics": {"roc_auc": 0.9}},
            "champion": {"version": "3", "metrics": {"roc_auc": 0.8}},
        },
        RUN,
    )
    assert alert.event == ev.CHALLENGER_REJECTED and alert.facts["decision"] == "challenger"
    assert "Challenger staged: champion kept until live evidence" in alert.title


def test_long_errors_are_cut_for_chat_but_kept_whole_in_details():
    error = ValueError("x" * 5000)
    alert = ev.pipeline_failed(error, "n", RUN)
    assert len(alert.summary) < ev.MAX_ERROR_CHARS + 50
    assert alert.details["error"] == "x" * 5000


def test_mlflow_link_only_when_a_web_ui_is_known():
    assert ev.mlflow_run_url(None, "sqlite:///mlflow.db", "1", "abc") is None
    assert (
        ev.mlflow_run_url(None, "http://mlflow:5000/", "1", "abc")
        == "http://mlflow:5000/#/experiments/1/runs/abc"
    )
    assert (
        ev.mlflow_run_url("https://ui.example.test", "sqlite:///x", "2", "abc")
        == "https://ui.example.test/#/experiments/2/runs/abc"
    )


def test_alert_text_lists_facts_then_the_run_identity():
    text = ev.pipeline_failed(KeyError("k"), "create_features_node", RUN).as_text()
    assert text.index("node") < text.index("environment") < text.index("run id")
    assert "MLflow run id  none" in text


def test_incomparable_champion_is_its_own_warning_whatever_the_decision():
    decision = {
        "promote": False,
        "comparable": False,
        "not_comparable_reason": "it cannot score the test rows: KeyError: 'amount'",
        "reason": "champion not comparable (...); champion kept",
        "challenger": {"metrics": {"average_precision": 0.7}},
        "champion": {"version": "3", "metrics": None},
    }
    kept = ev.promotion_decided(decision, RUN)
    assert kept.event == ev.CHAMPION_NOT_COMPARABLE and kept.severity == "warning"
    assert "champion kept" in kept.title and "KeyError: 'amount'" in kept.summary
    assert kept.facts["champion version"] == "3"
    replaced = ev.promotion_decided({**decision, "promote": True}, RUN)
    assert replaced.event == ev.CHAMPION_NOT_COMPARABLE
    assert "promoted on the floors alone" in replaced.title

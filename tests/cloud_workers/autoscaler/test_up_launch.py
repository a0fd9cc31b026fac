"""The autoscaler's launch spec in ``medkiosk up``: an argv the real parser accepts, and the summary."""

from __future__ import annotations

from pathlib import Path

from medkiosk.__main__ import build_parser
from medkiosk._up_autoscaler import AutoscalerLaunch


def test_argv_parses_with_the_real_cli(tmp_path: Path) -> None:
    common = ["--keys-dir", str(tmp_path), "--stats-file", str(tmp_path / "s.json")]
    args = build_parser().parse_args(AutoscalerLaunch().argv(common))
    assert args.forecaster == "exp_smoothing" and args.step == 2.0 and args.min_history == 3
    args = build_parser().parse_args(AutoscalerLaunch(checkpoint=tmp_path, keda_port=9091).argv(common))
    assert args.forecaster == "lstm" and args.checkpoint == tmp_path and args.keda_port == 9091


def test_summary_counts_actions_and_applied_commands() -> None:
    stats = {
        "model": "v3-abc",
        "decisions": 40,
        "scaling_actions": 2,
        "actions": [{"target": "k1", "action": "scale_out", "from": 1, "to": 2}],
        "commands_sent": 2,
        "telemetry": 30,
    }
    out = AutoscalerLaunch.summary(stats, {"k1": {"commands_applied": 2}, "k2": {}})
    assert out["scaling_actions"] == 2 and out["commands_applied"] == 2 and out["model"] == "v3-abc"
    assert AutoscalerLaunch.summary({}, {})["scaling_actions"] == 0

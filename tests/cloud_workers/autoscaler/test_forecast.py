"""Forecasters: the baselines' exact answers, the LSTM beating them on a seeded seasonal series, and
trace loading refusing bad files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from cloud_workers.autoscaler import (
    ExponentialSmoothing,
    LastValue,
    LstmConfig,
    LstmForecaster,
    SeasonalNaive,
    bundled_trace_path,
    forecast_at,
    load_trace,
    mae,
)

QS = (0.5, 0.9)


def seasonal_series(days: int, season: int = 24, seed: int = 0) -> np.ndarray:
    """A daily shape times a level that changes from day to day, plus a little noise: last value misses
    the shape, seasonal naive misses the level, a model that sees both gets both."""
    rng = np.random.default_rng(seed)
    t = np.arange(days * season)
    shape = 1.0 + 0.8 * np.sin(np.pi * (t % season) / season) ** 2
    level = np.repeat(rng.uniform(60, 140, size=days), season)
    return np.maximum(level * shape + rng.normal(0, 3, size=len(t)), 0.0)


def test_baselines_exact() -> None:
    y = np.arange(1.0, 11.0)
    origins = np.array([5, 9], dtype=np.int64)
    lv = LastValue(horizon=2, quantiles=(0.5,))
    assert lv.predict_batch(y, origins)[:, :, 0].tolist() == [[5, 5], [9, 9]]
    sn = SeasonalNaive(season=3, horizon=2, quantiles=(0.5,))
    assert sn.predict_batch(y, origins)[:, :, 0].tolist() == [[3, 4], [7, 8]]
    es = ExponentialSmoothing(horizon=1, quantiles=(0.5,), alpha=1.0)
    assert es.predict_batch(y, origins)[:, 0, 0].tolist() == [5, 9]


def test_baseline_quantiles_come_from_training_residuals() -> None:
    y = seasonal_series(20)
    lv = LastValue(horizon=2, quantiles=QS)
    lv.fit(y)
    pred = lv.predict_batch(y, np.arange(30, 400, dtype=np.int64))
    assert np.all(pred[:, :, 1] >= pred[:, :, 0])
    # The 0.9 quantile covers about 90 % of what happened.
    cover = np.mean(y[30:400] <= pred[:, 0, 1])
    assert 0.8 < cover < 0.97


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One intra-op thread: deterministic, and no OpenMP spinning against other processes on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
def test_lstm_learns_the_season_and_beats_last_value_and_seasonal_naive() -> None:
    season = 12
    y = seasonal_series(40, season)
    train = y[: 34 * season]
    lstm = LstmForecaster(
        cfg=LstmConfig(season=season, week=7, window=12, hidden=16, epochs=30, batch_size=32, val_seasons=4, seed=0)
    )
    lstm.fit(train)
    origins = np.arange(len(train), len(y) - 1, dtype=np.int64)
    base = {
        f.name: f for f in (LastValue(horizon=2, quantiles=QS), SeasonalNaive(season=season, horizon=2, quantiles=QS))
    }
    for f in base.values():
        f.fit(train)
    m = mae(lstm, y, origins)
    assert m < 0.8 * mae(base["last_value"], y, origins)
    assert m < 0.8 * mae(base["seasonal_naive"], y, origins)
    f = forecast_at(lstm, y[:-5])
    assert f.values.shape == (2, 2) and np.all(f.at(0.9) >= f.at(0.5)) and np.all(f.values >= 0)


def test_baselines_fit_on_too_little_history() -> None:
    for f in (
        SeasonalNaive(season=100, horizon=2, quantiles=QS),
        LastValue(horizon=2, quantiles=QS),
        ExponentialSmoothing(horizon=2, quantiles=QS),
    ):
        f.fit(np.array([3.0, 4.0]))
        pred = f.predict_batch(np.array([3.0, 4.0, 5.0]), np.array([3], dtype=np.int64))
        assert pred.shape == (1, 2, 2) and np.all(np.isfinite(pred))


def test_untrained_lstm_refuses_to_predict() -> None:
    with pytest.raises(RuntimeError):
        LstmForecaster(cfg=LstmConfig(season=24)).predict_batch(np.ones(50), np.array([40], dtype=np.int64))


def test_the_bundled_trace_is_the_real_one() -> None:
    trace = load_trace(bundled_trace_path())
    assert len(trace.values) == 27716 and trace.step_s == 300.0 and trace.season == 169
    assert trace.timestamps[0] == "2003-03-03T07:00:00Z"
    train, test = trace.split(20)
    assert len(test) == 20 * 169 and len(train) + len(test) == len(trace.values)


@pytest.mark.parametrize(
    "body",
    [
        "DateTime,Calls\n",
        "DateTime,Calls\n2003-03-03T07:00:00Z,-1\n2003-03-03T07:05:00Z,3\n",
        "DateTime,Calls\n2003-03-03T07:00:00Z,nan\n2003-03-03T07:05:00Z,3\n",
        "DateTime,Calls\n2003-03-03T07:00:00Z,abc\n2003-03-03T07:05:00Z,3\n",
        "DateTime,Calls\nnot-a-time,1\nstill-not,3\n",
    ],
)
def test_bad_traces_are_refused(tmp_path: Path, body: str) -> None:
    p = tmp_path / "t.csv"
    p.write_text(body)
    with pytest.raises(ValueError):
        load_trace(p)

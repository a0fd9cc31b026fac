"""The LSTM load forecaster: pure PyTorch (no Kafka), quantile outputs, trained with the pinball loss.

Input per step: the scaled count, the count one season earlier, and the phase of the day and of the
week (sin/cos). The last hidden state is joined with what is already known about the steps being
predicted (their phase and their values one season earlier) and a small head emits one value per
(step ahead, quantile).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

__all__ = ["LstmConfig", "LstmForecaster", "LstmNet", "build_features"]

Array = npt.NDArray[np.float64]


@dataclass(kw_only=True)
class LstmConfig:
    """Hyper-parameters (restored from the checkpoint with the weights)."""

    season: int
    #: Seasons per week (5 for a weekday-only trace, 7 for a round-the-clock one).
    week: int = 5
    window: int = 36
    hidden: int = 32
    layers: int = 1
    horizon: int = 2
    quantiles: tuple[float, ...] = (0.5, 0.9)
    epochs: int = 8
    batch_size: int = 256
    lr: float = 3e-3
    seed: int = 0
    #: Held out from the end of the training series to pick the best epoch (in seasons).
    val_seasons: int = 5


def _phase(idx: Array, period: float) -> tuple[Array, Array]:
    ang = 2.0 * math.pi * (idx % period) / period
    return np.sin(ang), np.cos(ang)


def build_features(
    series: Array, origins: npt.NDArray[np.int64], cfg: LstmConfig, scale: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Window features ``(n, window, 6)`` and known-future features ``(n, horizon * 5)`` per origin.

    Positions before the start of the series read as zero counts; origins must be >= 1.
    """
    y = series / scale
    n_w, h = cfg.window, cfg.horizon
    steps = origins[:, None] + np.arange(-n_w, 0)[None, :]  # (n, window)
    fut = origins[:, None] + np.arange(h)[None, :]  # (n, horizon)

    def val(idx: npt.NDArray[np.int64]) -> Array:
        ok = (idx >= 0) & (idx < len(y))
        return np.where(ok, y[np.clip(idx, 0, len(y) - 1)], 0.0)

    week = float(cfg.season * cfg.week)
    ds, dc = _phase(steps.astype(np.float64), cfg.season)
    ws, wc = _phase(steps.astype(np.float64), week)
    window = np.stack([val(steps), val(steps - cfg.season), ds, dc, ws, wc], axis=-1)
    fds, fdc = _phase(fut.astype(np.float64), cfg.season)
    fws, fwc = _phase(fut.astype(np.float64), week)
    known = np.concatenate([val(fut - cfg.season), fds, fdc, fws, fwc], axis=1)
    return window.astype(np.float32), known.astype(np.float32)


class LstmNet(nn.Module):
    """LSTM encoder plus a head over (last hidden state, known future features)."""

    def __init__(self, cfg: LstmConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.lstm = nn.LSTM(input_size=6, hidden_size=cfg.hidden, num_layers=cfg.layers, batch_first=True)
        self.head = nn.Sequential(
            nn.Linear(cfg.hidden + cfg.horizon * 5, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, cfg.horizon * len(cfg.quantiles)),
        )

    def forward(self, window: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(window)
        last_in = window[:, -1:, 0]  # the last observed (scaled) value: predict the change from it
        z: torch.Tensor = self.head(torch.cat([out[:, -1, :], known], dim=1))
        z = z.view(-1, self.cfg.horizon, len(self.cfg.quantiles))
        return z + last_in[:, :, None]


def pinball(pred: torch.Tensor, target: torch.Tensor, quantiles: tuple[float, ...]) -> torch.Tensor:
    """Mean quantile (pinball) loss; ``pred`` is ``(n, horizon, q)``, ``target`` ``(n, horizon)``."""
    q = torch.tensor(quantiles, dtype=pred.dtype)[None, None, :]
    diff = target[:, :, None] - pred
    return torch.mean(torch.maximum(q * diff, (q - 1.0) * diff))


@dataclass(kw_only=True)
class LstmForecaster:
    """A trained ``LstmNet`` behind the ``Forecaster`` interface (counts in, counts out)."""

    cfg: LstmConfig
    net: LstmNet | None = None
    scale: float = 1.0
    name: str = "lstm"
    model_version: str = ""
    #: The checkpoint version it was loaded from (0: trained in this process).
    version: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def horizon(self) -> int:
        return self.cfg.horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self.cfg.quantiles

    def fit(self, series: Array) -> None:
        """Train on ``series``; the last ``val_seasons`` seasons pick the best epoch."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.scale = max(float(np.mean(series)), 1e-6)
        net = LstmNet(cfg)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        cut = len(series) - cfg.val_seasons * cfg.season
        if cut < cfg.window + cfg.horizon + 1:
            cut = len(series)  # too short to hold out a validation part
        train_o = np.arange(1, cut - cfg.horizon + 1, dtype=np.int64)
        val_o = np.arange(max(cut, 1), len(series) - cfg.horizon + 1, dtype=np.int64)
        tw, tk, ty = self._tensors(series, train_o)
        best: tuple[float, dict[str, Any]] = (math.inf, net.state_dict())
        for epoch in range(cfg.epochs):
            start = time.perf_counter()
            net.train()
            order = rng.permutation(len(train_o))
            total = 0.0
            for i in range(0, len(order), cfg.batch_size):
                b = torch.from_numpy(order[i : i + cfg.batch_size])
                opt.zero_grad()
                loss = pinball(net(tw[b], tk[b]), ty[b], cfg.quantiles)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                total += float(loss.detach()) * len(b)
            val = self._val_loss(net, series, val_o) if len(val_o) else total / len(order)
            self.history.append(
                {"epoch": epoch, "train": total / len(order), "val": val, "s": time.perf_counter() - start}
            )
            if val < best[0]:
                best = (val, {k: v.clone() for k, v in net.state_dict().items()})
        net.load_state_dict(best[1])
        net.eval()
        self.net = net

    def _tensors(self, series: Array, origins: npt.NDArray[np.int64]) -> tuple[torch.Tensor, ...]:
        w, k = build_features(series, origins, self.cfg, self.scale)
        idx = origins[:, None] + np.arange(self.cfg.horizon)[None, :]
        y = (series[idx] / self.scale).astype(np.float32)
        return torch.from_numpy(w), torch.from_numpy(k), torch.from_numpy(y)

    def _val_loss(self, net: LstmNet, series: Array, origins: npt.NDArray[np.int64]) -> float:
        net.eval()
        w, k, y = self._tensors(series, origins)
        with torch.no_grad():
            return float(pinball(net(w, k), y, self.cfg.quantiles))

    def predict_batch(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        if self.net is None:
            raise RuntimeError("the LSTM forecaster is not trained or loaded")
        w, k = build_features(series, origins, self.cfg, self.scale)
        net = self.net
        with torch.no_grad():
            out = [
                net(torch.from_numpy(w[i : i + 4096]), torch.from_numpy(k[i : i + 4096])).numpy()
                for i in range(0, len(origins), 4096)
            ]
        pred = np.concatenate(out, axis=0).astype(np.float64) * self.scale
        return np.maximum(np.sort(pred, axis=-1), 0.0)  # sorted: quantiles never cross

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.cfg)

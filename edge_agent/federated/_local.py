"""Local trainers implementing :class:`~edge_agent.federated.LocalTrainer`: DP-SGD (opacus) and plain SGD.

Each ``train`` call loads the global parameters, runs the configured local epochs and returns
``update = new - global``. DP-SGD uses opacus's per-sample gradients and flat clipping (``GradSampleModule``,
``DPOptimizer``); its Poisson sampling and its Gaussian noise come from a ChaCha20 keystream keyed per round and
step (``_randomness``), so they are reproducible by the hospital that holds the round key and by no one else.
The RDP accountant's history (one ``(noise_multiplier, sample_rate, steps)`` entry per round) is the trainer's
own, and can be restored after a restart. A trainer built on raw features (``raw_features``) gives its moments to
the statistics round and trains only once the federation's standardiser is set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.utils.data import TensorDataset

from edge_agent.federated._config import FlTrainingConfig
from edge_agent.federated._data import HospitalData, standardise_with
from edge_agent.federated._model import binary_metrics, flatten, load_flat, make_model, num_params
from edge_agent.federated._privacy import accountant_epsilon, calibrated_noise_multiplier
from edge_agent.federated._randomness import KeyedStream, derive_key
from edge_agent.federated._trainer import LocalResult
from streams.federated import feature_moments

__all__ = ["DpSgdTrainer", "NonPrivateTrainer", "build_trainer"]


def _round_key(rng: np.random.Generator) -> bytes:
    """A round key drawn from the caller's generator (``train``); ``train_keyed`` takes one directly."""
    return bytes(rng.bytes(32))


class _TorchTrainer:
    """Shared parts: the model, the local tensors, initial parameters and evaluation."""

    def __init__(
        self,
        data: HospitalData,
        test: tuple[NDArray[np.float64], NDArray[np.int64]] | None,
        *,
        hidden: int,
        seed: int,
        raw_features: bool = False,
    ) -> None:
        if data.n < 1:
            raise ValueError("a hospital needs at least one example")
        self._raw, self._raw_test = data, (HospitalData(test[0], test[1]) if test is not None else None)
        self._awaits = raw_features
        self._standardiser: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        self._hidden = hidden
        self._seed = seed
        self._model = make_model(data.n_features, hidden, seed=seed)
        self._eval_model = make_model(data.n_features, hidden, seed=seed)
        self._loss = nn.BCEWithLogitsLoss()
        self._use(data, self._raw_test)

    def _use(self, data: HospitalData, test: HospitalData | None) -> None:
        self._data = data
        self._test = test if test is not None else data
        self._dataset = TensorDataset(
            torch.as_tensor(data.X, dtype=torch.float32), torch.as_tensor(data.y, dtype=torch.float32)
        )
        self._X, self._y = self._dataset.tensors

    @property
    def awaits_standardiser(self) -> bool:
        """Built on raw features (``raw_features``): it trains only after :meth:`set_standardiser`."""
        return self._awaits

    @property
    def standardised(self) -> bool:
        """Whether the federation's standardiser has been set."""
        return self._standardiser is not None

    def feature_moments(self) -> list[int]:
        """Exact fixed-point ``[n, feature sums, sums of squares]`` of the raw local rows (the statistics round)."""
        return feature_moments(self._raw.X)

    def set_standardiser(self, mean: NDArray[np.float64], std: NDArray[np.float64]) -> None:
        """Standardise the raw local rows (and the raw test rows) with the federation's mean and std."""
        test = standardise_with(self._raw_test, mean, std) if self._raw_test is not None else None
        self._use(standardise_with(self._raw, mean, std), test)
        self._standardiser = (np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64))

    @property
    def num_params(self) -> int:
        """Length of the flat parameter vector."""
        return num_params(self._model)

    @property
    def num_examples(self) -> int:
        """Number of local training examples."""
        return self._data.n

    def initial_params(self, seed: int) -> NDArray[np.float64]:
        """Freshly initialised parameters (PyTorch's default init under ``seed``)."""
        return flatten(make_model(self._data.n_features, self._hidden, seed=seed))

    def evaluate(self, params: NDArray[np.float64]) -> dict[str, float]:
        """``accuracy``, ``auc``, ``loss`` and ``n`` on the test set (on the local data when no test set was given)."""
        load_flat(self._eval_model, params)
        return binary_metrics(self._eval_model, self._test.X, self._test.y)

    def _check_params(self, global_params: NDArray[np.float64]) -> NDArray[np.float64]:
        if self._awaits and self._standardiser is None:
            raise ValueError("this trainer holds raw features and has no federation standardiser yet")
        values = np.asarray(global_params, dtype=np.float64)
        load_flat(self._model, values)  # validates shape and finiteness
        return values.copy()


class DpSgdTrainer(_TorchTrainer):
    """DP-SGD (Poisson sampling, flat per-example clipping, Gaussian noise, RDP accounting) on one hospital's data.

    Give either ``noise_multiplier`` or ``target_epsilon``: with the latter the noise is calibrated so that
    ``rounds_planned`` rounds of ``epochs × batches`` steps spend at most ``target_epsilon``. ``batches`` per
    epoch defaults to ``ceil(n / batch_size)``; the per-step sample rate is ``1 / batches``. Only
    data-independent values and the DP update's norm are put in ``metrics`` unless ``report_train_metrics`` (the
    training loss and local accuracy are NOT covered by the DP guarantee).
    """

    def __init__(
        self,
        data: HospitalData,
        test: tuple[NDArray[np.float64], NDArray[np.int64]] | None = None,
        *,
        epochs: int = 1,
        batch_size: int = 16,
        lr: float = 0.5,
        noise_multiplier: float | None = None,
        target_epsilon: float | None = None,
        max_grad_norm: float = 1.0,
        delta: float = 1e-5,
        rounds_planned: int = 20,
        hidden: int = 0,
        seed: int = 0,
        report_train_metrics: bool = False,
        batches: int = 0,
        raw_features: bool = False,
    ) -> None:
        super().__init__(data, test, hidden=hidden, seed=seed, raw_features=raw_features)
        if epochs < 1 or batch_size < 1 or rounds_planned < 1:
            raise ValueError("epochs, batch_size and rounds_planned must be at least 1")
        if (noise_multiplier is None) == (target_epsilon is None):
            raise ValueError("give exactly one of noise_multiplier and target_epsilon")
        self._epochs = epochs
        self._delta = delta
        self._report = report_train_metrics
        self._max_grad_norm = float(max_grad_norm)
        batches = batches or math.ceil(data.n / batch_size)
        self._batches = batches
        self._sample_rate = 1.0 / batches
        self._steps_per_round = epochs * batches
        if noise_multiplier is None:
            assert target_epsilon is not None
            noise_multiplier = calibrated_noise_multiplier(
                target_epsilon, delta, self._sample_rate, rounds_planned * self._steps_per_round
            )
        self._noise_multiplier = float(noise_multiplier)
        from opacus import GradSampleModule  # lazy: opacus is heavy
        from opacus.optimizers import DPOptimizer

        self._gsm = GradSampleModule(self._model)
        # The optimizer adds no noise itself: the step hook adds the keyed CSPRNG noise (same place, same scale).
        self._optimizer = DPOptimizer(
            torch.optim.SGD(self._model.parameters(), lr=lr),
            noise_multiplier=0.0,
            max_grad_norm=self._max_grad_norm,
            expected_batch_size=max(1, data.n // batches),
            loss_reduction="mean",
        )
        self._optimizer.attach_step_hook(self._add_noise)
        self._noise: KeyedStream | None = None
        self._history: list[tuple[float, float, int]] = []
        self._steps = 0

    def _add_noise(self, optimizer: object) -> None:
        """Gaussian noise of std ``noise_multiplier * max_grad_norm`` on the clipped gradient sum (here already
        divided by the expected batch size, as opacus's ``scale_grad`` leaves it)."""
        assert self._noise is not None
        opt = self._optimizer
        scale = self._noise_multiplier * self._max_grad_norm / (opt.expected_batch_size * opt.accumulated_iterations)
        for p in opt.params:
            z = self._noise.normal(p.grad.numel()) * scale
            p.grad += torch.from_numpy(z).to(dtype=p.grad.dtype).reshape(p.grad.shape)

    @property
    def noise_multiplier(self) -> float:
        """The DP-SGD noise multiplier in use."""
        return self._noise_multiplier

    @property
    def sample_rate(self) -> float:
        """Poisson sampling probability of each example per step."""
        return self._sample_rate

    @property
    def max_grad_norm(self) -> float:
        """The per-example clipping norm."""
        return self._max_grad_norm

    @property
    def steps_per_round(self) -> int:
        """Optimizer steps per ``train`` call."""
        return self._steps_per_round

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far (all rounds)."""
        return self._steps

    @property
    def epsilon(self) -> float:
        """Cumulative epsilon at this trainer's delta from its RDP accountant history; 0 before any round."""
        return accountant_epsilon(self._history, self._delta)

    def accountant_history(self) -> list[tuple[float, float, int]]:
        """The RDP accountant's history: ``(noise_multiplier, sample_rate, steps)`` per round trained."""
        return list(self._history)

    def restore_accountant(self, history: Sequence[tuple[float, float, int]]) -> None:
        """Put back a history saved before a restart (so the spending is not forgotten)."""
        self._history = [(float(z), float(q), int(t)) for z, q, t in history]
        self._steps = sum(t for _, _, t in self._history)

    def train(self, global_params: NDArray[np.float64], round_id: int, rng: np.random.Generator) -> LocalResult:
        """:meth:`train_keyed` with a round key drawn from ``rng``."""
        return self.train_keyed(global_params, round_id, _round_key(rng))

    def train_keyed(self, global_params: NDArray[np.float64], round_id: int, key: bytes) -> LocalResult:
        """Run the local DP-SGD epochs from ``global_params``; sampling and noise of step ``s`` come from the
        keystreams of ``derive_key(key, "sample"/"noise", round_id, s)``."""
        start = self._check_params(global_params)
        loss_sum, seen = 0.0, 0
        self._gsm.train()
        step = 0
        for _ in range(self._epochs):
            for _ in range(self._batches):
                rows = np.flatnonzero(KeyedStream(derive_key(key, "sample", round_id, step)).bernoulli(
                    self._data.n, self._sample_rate))  # fmt: skip
                self._noise = KeyedStream(derive_key(key, "noise", round_id, step))
                idx = torch.from_numpy(rows.astype(np.int64))
                xb = self._X[idx].requires_grad_(True)  # a leaf needing grad: the full backward hooks fire normally
                yb = self._y[idx]
                self._optimizer.zero_grad()
                loss = self._loss(self._gsm(xb).reshape(-1), yb) if yb.numel() else (self._gsm(xb).sum() * 0.0)
                loss.backward()
                self._optimizer.step()
                self._steps += 1
                step += 1
                if yb.numel():
                    loss_sum += float(loss.detach()) * yb.numel()
                    seen += yb.numel()
        self._noise = None
        self._history.append((self._noise_multiplier, self._sample_rate, self._steps_per_round))
        update = flatten(self._model) - start
        metrics = {
            "steps": float(self._steps_per_round),
            "noise_multiplier": self._noise_multiplier,
            "sample_rate": self._sample_rate,
            "update_norm": float(np.linalg.norm(update)),
        }
        if self._report:
            metrics["train_loss"] = loss_sum / seen if seen else math.nan
            metrics["train_accuracy"] = binary_metrics(self._model, self._data.X, self._data.y)["accuracy"]
        return LocalResult(
            update=update,
            num_examples=self._data.n,
            epsilon=self.epsilon,
            delta=self._delta,
            metrics=metrics,
            round_dp=(self._noise_multiplier, self._sample_rate, self._steps_per_round),
        )


class NonPrivateTrainer(_TorchTrainer):
    """Plain minibatch SGD (shuffled, no clipping or noise) with the same interface; epsilon is reported as inf."""

    def __init__(
        self,
        data: HospitalData,
        test: tuple[NDArray[np.float64], NDArray[np.int64]] | None = None,
        *,
        epochs: int = 1,
        batch_size: int = 16,
        lr: float = 0.5,
        hidden: int = 0,
        seed: int = 0,
        raw_features: bool = False,
    ) -> None:
        super().__init__(data, test, hidden=hidden, seed=seed, raw_features=raw_features)
        if epochs < 1 or batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        self._epochs = epochs
        self._batch_size = batch_size
        self._optimizer = torch.optim.SGD(self._model.parameters(), lr=lr)

    def train(self, global_params: NDArray[np.float64], round_id: int, rng: np.random.Generator) -> LocalResult:
        """Run the local SGD epochs from ``global_params``; return the update (epsilon = inf, delta = 0)."""
        start = self._check_params(global_params)
        gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
        X, y = self._dataset.tensors
        loss_sum = 0.0
        self._model.train()
        for _ in range(self._epochs):
            order = torch.randperm(self._data.n, generator=gen)
            for i in range(0, self._data.n, self._batch_size):
                batch = order[i : i + self._batch_size]
                self._optimizer.zero_grad()
                loss = self._loss(self._model(X[batch]).reshape(-1), y[batch])
                loss.backward()
                self._optimizer.step()
                loss_sum += float(loss.detach()) * batch.numel()
        update = flatten(self._model) - start
        metrics = {
            "train_loss": loss_sum / (self._epochs * self._data.n),
            "train_accuracy": binary_metrics(self._model, self._data.X, self._data.y)["accuracy"],
            "update_norm": float(np.linalg.norm(update)),
        }
        return LocalResult(update=update, num_examples=self._data.n, epsilon=math.inf, delta=0.0, metrics=metrics)


def build_trainer(
    config: FlTrainingConfig,
    data: HospitalData,
    test: tuple[NDArray[np.float64], NDArray[np.int64]] | None = None,
    *,
    rounds_planned: int,
    seed: int,
    private: bool = True,
    raw_features: bool = False,
) -> DpSgdTrainer | NonPrivateTrainer:
    """The trainer ``config`` describes for one hospital: DP-SGD (default) or plain SGD (``private=False``);
    ``raw_features``: ``data`` and ``test`` are raw and wait for the federation's standardiser."""
    if not private:
        return NonPrivateTrainer(
            data,
            test,
            epochs=config.local_epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            hidden=config.hidden,
            seed=seed,
            raw_features=raw_features,
        )
    return DpSgdTrainer(
        data,
        test,
        epochs=config.local_epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        noise_multiplier=config.noise_multiplier,
        target_epsilon=config.target_epsilon if config.noise_multiplier is None else None,
        max_grad_norm=config.max_grad_norm,
        delta=config.delta,
        rounds_planned=rounds_planned,
        hidden=config.hidden,
        seed=seed,
        batches=config.batches_per_epoch,
        raw_features=raw_features,
    )

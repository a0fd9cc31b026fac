"""Local trainers implementing :class:`~edge_agent.federated.LocalTrainer`: Opacus DP-SGD and plain SGD.

Each ``train`` call loads the global parameters, runs the configured local epochs and returns
``update = new - global``. Randomness (Poisson sampling, DP noise, shuffling) comes from a torch seed derived
from the trainer's ``seed``, the ``round_id`` and one draw of the caller's ``rng``, inside a scoped
``torch.random.fork_rng`` (the process's global torch RNG is left untouched).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edge_agent.federated._config import FlTrainingConfig
from edge_agent.federated._data import HospitalData
from edge_agent.federated._model import binary_metrics, flatten, load_flat, make_model, num_params
from edge_agent.federated._privacy import accountant_epsilon, calibrated_noise_multiplier
from edge_agent.federated._trainer import LocalResult

__all__ = ["DpSgdTrainer", "NonPrivateTrainer", "build_trainer"]

# Opacus' per-sample-gradient hooks are full backward hooks on modules whose inputs (the data) need no grad;
# torch warns about that on every backward. Opacus warns once that its noise does not come from a CSPRNG
# (secure_mode needs torchcsprng, and would make seeded runs irreproducible).
_HOOK_WARNING = "Full backward hook is firing when gradients are computed with respect to module outputs"
_SECURE_RNG_WARNING = "Secure RNG turned off"


@contextmanager
def _quiet_opacus() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_HOOK_WARNING, category=UserWarning)
        warnings.filterwarnings("ignore", message=_SECURE_RNG_WARNING, category=UserWarning)
        yield


def _round_seeds(seed: int, round_id: int, rng: np.random.Generator) -> tuple[int, int]:
    state = np.random.SeedSequence([seed, round_id, int(rng.integers(2**32))]).generate_state(2, dtype=np.uint64)
    return int(state[0] >> np.uint64(1)), int(state[1] >> np.uint64(1))


class _TorchTrainer:
    """Shared parts: the model, the local tensors, initial parameters and evaluation."""

    def __init__(
        self, data: HospitalData, test: tuple[NDArray[np.float64], NDArray[np.int64]] | None, *, hidden: int, seed: int
    ) -> None:
        if data.n < 1:
            raise ValueError("a hospital needs at least one example")
        self._data = data
        self._test = HospitalData(test[0], test[1]) if test is not None else data
        self._hidden = hidden
        self._seed = seed
        self._model = make_model(data.n_features, hidden, seed=seed)
        self._eval_model = make_model(data.n_features, hidden, seed=seed)
        self._dataset = TensorDataset(
            torch.as_tensor(data.X, dtype=torch.float32), torch.as_tensor(data.y, dtype=torch.float32)
        )
        self._loss = nn.BCEWithLogitsLoss()

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
        values = np.asarray(global_params, dtype=np.float64)
        load_flat(self._model, values)  # validates shape and finiteness
        return values.copy()


class DpSgdTrainer(_TorchTrainer):
    """Opacus DP-SGD (Poisson sampling, flat per-example clipping, RDP accountant) on one hospital's data.

    The privacy engine persists across rounds, so the reported epsilon is this hospital's cumulative spend.
    Give either ``noise_multiplier`` or ``target_epsilon``: with the latter the noise is calibrated so that
    ``rounds_planned`` rounds of ``epochs × ceil(n / batch_size)`` steps spend at most ``target_epsilon``.
    The per-step sample rate is ``1 / ceil(n / batch_size)`` (Opacus derives it from the batch count).
    Only data-independent values and the DP update's norm are put in ``metrics`` unless
    ``report_train_metrics`` (the training loss and local accuracy are NOT covered by the DP guarantee).
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
    ) -> None:
        super().__init__(data, test, hidden=hidden, seed=seed)
        if epochs < 1 or batch_size < 1 or rounds_planned < 1:
            raise ValueError("epochs, batch_size and rounds_planned must be at least 1")
        if (noise_multiplier is None) == (target_epsilon is None):
            raise ValueError("give exactly one of noise_multiplier and target_epsilon")
        self._epochs = epochs
        self._delta = delta
        self._report = report_train_metrics
        batches = math.ceil(data.n / batch_size)
        self._sample_rate = 1.0 / batches
        self._steps_per_round = epochs * batches
        if noise_multiplier is None:
            assert target_epsilon is not None
            noise_multiplier = calibrated_noise_multiplier(
                target_epsilon, delta, self._sample_rate, rounds_planned * self._steps_per_round
            )
        self._noise_multiplier = float(noise_multiplier)
        self._noise_gen = torch.Generator()
        from opacus import PrivacyEngine  # lazy: opacus is heavy

        with _quiet_opacus():
            self._engine = PrivacyEngine(accountant="rdp", secure_mode=False)
            self._gsm, self._optimizer, self._loader = self._engine.make_private(
                module=self._model,
                optimizer=torch.optim.SGD(self._model.parameters(), lr=lr),
                data_loader=DataLoader(self._dataset, batch_size=batch_size),
                noise_multiplier=self._noise_multiplier,
                max_grad_norm=max_grad_norm,
                poisson_sampling=True,
                noise_generator=self._noise_gen,
            )
        if len(self._loader) != batches:
            raise RuntimeError(f"opacus loader has {len(self._loader)} batches, expected {batches}")
        self._steps = 0

    @property
    def noise_multiplier(self) -> float:
        """The DP-SGD noise multiplier in use."""
        return self._noise_multiplier

    @property
    def sample_rate(self) -> float:
        """Poisson sampling probability of each example per step."""
        return self._sample_rate

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
        """Cumulative epsilon spent so far at this trainer's delta, from the privacy engine's RDP accountant history
        (cached per-step RDP at ``streams.federated.RDP_ORDERS``: equal to ``epsilon_for`` and, in the usual
        regime, to ``PrivacyEngine.get_epsilon(delta)``); 0 before any step."""
        return accountant_epsilon(self._engine.accountant.history, self._delta)

    def train(self, global_params: NDArray[np.float64], round_id: int, rng: np.random.Generator) -> LocalResult:
        """Run the local DP-SGD epochs from ``global_params``; return the update and the cumulative epsilon."""
        start = self._check_params(global_params)
        sample_seed, noise_seed = _round_seeds(self._seed, round_id, rng)
        loss_sum, seen = 0.0, 0
        with torch.random.fork_rng(devices=[]), _quiet_opacus():
            torch.manual_seed(sample_seed)  # Poisson sampling draws from the (scoped) global generator
            self._noise_gen.manual_seed(noise_seed)
            self._gsm.train()
            for _ in range(self._epochs):
                for xb, yb in self._loader:
                    self._optimizer.zero_grad()
                    loss = self._loss(self._gsm(xb).reshape(-1), yb)
                    loss.backward()
                    self._optimizer.step()
                    self._steps += 1
                    if yb.numel():
                        loss_sum += float(loss.detach()) * yb.numel()
                        seen += yb.numel()
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
            update=update, num_examples=self._data.n, epsilon=self.epsilon, delta=self._delta, metrics=metrics
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
    ) -> None:
        super().__init__(data, test, hidden=hidden, seed=seed)
        if epochs < 1 or batch_size < 1:
            raise ValueError("epochs and batch_size must be at least 1")
        self._epochs = epochs
        self._batch_size = batch_size
        self._optimizer = torch.optim.SGD(self._model.parameters(), lr=lr)

    def train(self, global_params: NDArray[np.float64], round_id: int, rng: np.random.Generator) -> LocalResult:
        """Run the local SGD epochs from ``global_params``; return the update (epsilon = inf, delta = 0)."""
        start = self._check_params(global_params)
        shuffle_seed, _ = _round_seeds(self._seed, round_id, rng)
        gen = torch.Generator().manual_seed(shuffle_seed)
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
) -> DpSgdTrainer | NonPrivateTrainer:
    """The trainer ``config`` describes for one hospital: DP-SGD (default) or plain SGD (``private=False``)."""
    if not private:
        return NonPrivateTrainer(
            data,
            test,
            epochs=config.local_epochs,
            batch_size=config.batch_size,
            lr=config.lr,
            hidden=config.hidden,
            seed=seed,
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
    )

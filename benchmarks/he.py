"""Homomorphic-encryption benchmark for federated aggregation: per-value phe vs packed vs packed + pool.

Prints ONE JSON line. Every mode uses the same 2048-bit key; throughputs are values per second
(encrypt: all clients' values; add: values absorbed by the aggregator; decrypt: values recovered
from the aggregate). Per-value phe is measured on fewer values (it is ~100x slower) and
compared by throughput. ``round`` runs a full round of ``--clients`` hospitals with
``--round-params`` parameters and a ``--mask-fraction`` shared random-k mask, and reports where
the time goes.

    .venv/bin/python benchmarks/he.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from phe.paillier import EncryptedNumber

from streams.federated import (
    EncodeSpec,
    EncryptedAccumulator,
    ErrorFeedback,
    ObfuscatorPool,
    PackingSpec,
    PrivateKey,
    PublicKey,
    QuantSpec,
    ciphertext_bytes,
    clip_by_l2,
    decode_aggregate,
    decrypt_aggregate,
    encrypt_packed,
    generate_keypair,
    pack,
    random_k_mask,
    stochastic_quantize,
    unpack,
)

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def rounded(obj: Any) -> Any:
    """Floats to 4 significant digits, recursively, for a readable JSON line."""
    if isinstance(obj, float):
        return float(f"{obj:.4g}")
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


def rate(values: int, seconds: float) -> float:
    return round(values / seconds, 1) if seconds > 0 else float("inf")


def per_value(pub: PublicKey, priv: PrivateKey, updates: np.ndarray) -> dict[str, Any]:
    """phe's standard API: one EncryptedNumber per float value."""
    n, d = updates.shape
    enc, t_enc = timed(lambda: [[pub.encrypt(float(v)) for v in row] for row in updates])

    def add() -> list[EncryptedNumber]:
        total = list(enc[0])
        for row in enc[1:]:
            total = [a + b for a, b in zip(total, row, strict=True)]
        return total

    total, t_add = timed(add)
    dec, t_dec = timed(lambda: [priv.decrypt(c) for c in total])
    assert np.allclose(dec, updates.sum(axis=0), atol=1e-9)
    return {
        "clients": n,
        "values_per_client": d,
        "encrypt_values_per_s": rate(n * d, t_enc),
        "add_values_per_s": rate(n * d, t_add),
        "decrypt_values_per_s": rate(d, t_dec),
        "bytes_per_client": d * ciphertext_bytes(pub),
        "seconds": {"encrypt": t_enc, "add": t_add, "decrypt": t_dec},
    }


def packed(
    pub: PublicKey, priv: PrivateKey, spec: EncodeSpec, qs: np.ndarray, pool: ObfuscatorPool | None
) -> dict[str, Any]:
    """Quantised ints, packed, one raw Paillier ciphertext per plaintext; pooled obfuscators if given."""
    n, d = qs.shape
    plaintexts, t_pack = timed(lambda: [pack(q, spec.packing) for q in qs])
    cts, t_enc = timed(lambda: [[encrypt_packed(pub, p, pool) for p in row] for row in plaintexts])
    acc = EncryptedAccumulator(pub, len(cts[0]), spec.packing.max_clients)

    def add() -> None:
        for row in cts:
            acc.add(row)

    _, t_add = timed(add)
    sums, t_dec = timed(lambda: decrypt_aggregate(priv, acc.ciphertexts))
    slots, t_unpack = timed(lambda: unpack(sums, spec.packing, d))
    assert np.array_equal(slots, qs.sum(axis=0)), "packed aggregate is not exact"
    return {
        "clients": n,
        "values_per_client": d,
        "ciphertexts_per_client": len(cts[0]),
        "encrypt_values_per_s": rate(n * d, t_enc),
        "add_values_per_s": rate(n * d, t_add),
        "decrypt_values_per_s": rate(d, t_dec),
        "bytes_per_client": len(cts[0]) * ciphertext_bytes(pub),
        "seconds": {"pack": t_pack, "encrypt": t_enc, "add": t_add, "decrypt": t_dec, "unpack": t_unpack},
    }


def full_round(
    pub: PublicKey, priv: PrivateKey, spec: EncodeSpec, args: argparse.Namespace, rng: np.random.Generator
) -> dict[str, Any]:
    """One round, stage by stage (the stages of ``client_encode``), clients run one after another."""
    n, dim = args.clients, args.round_params
    k = max(1, round(dim * args.mask_fraction))
    num_ct = spec.packing.num_plaintexts(k)
    pool = ObfuscatorPool(pub)
    _, t_fill = timed(lambda: pool.fill(n * num_ct, threads=args.threads))
    stages = dict.fromkeys(["mask", "error_feedback", "clip_quantize", "pack", "encrypt"], 0.0)
    per_client_total = []
    acc = EncryptedAccumulator(pub, num_ct, spec.packing.max_clients)
    t_add = 0.0
    expected = np.zeros(k)
    for _ in range(n):
        update = rng.normal(scale=1e-3, size=dim)  # a local training step's delta (not timed)
        ef = ErrorFeedback(dim)
        t0 = time.perf_counter()
        mask = random_k_mask(dim, k, args.seed)
        t1 = time.perf_counter()
        comp = ef.compensate(update)
        sent = comp[mask]
        ef.record_sent(comp, mask)
        t2 = time.perf_counter()
        clipped = clip_by_l2(sent, spec.clip_norm)
        q = stochastic_quantize(clipped, spec.quant, rng)
        t3 = time.perf_counter()
        plaintexts = pack(q, spec.packing)
        t4 = time.perf_counter()
        cts = [encrypt_packed(pub, p, pool) for p in plaintexts]
        t5 = time.perf_counter()
        for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            stages[name] += dt
        per_client_total.append(t5 - t0)
        expected += clipped
        t6 = time.perf_counter()
        acc.add(cts)
        t_add += time.perf_counter() - t6
    # What one client's encryption costs when nothing was precomputed (phe draws r and computes r^n).
    _, t_enc_no_pool = timed(lambda: [encrypt_packed(pub, p, None) for p in plaintexts])
    sums, t_dec = timed(lambda: decrypt_aggregate(priv, acc.ciphertexts))
    total, t_decode = timed(lambda: decode_aggregate(sums, spec, n, k))
    model = np.zeros(dim)
    _, t_apply = timed(lambda: np.add.at(model, mask, total / n))
    max_err = float(np.max(np.abs(total - expected)))
    assert max_err < n * spec.quant.step
    server = t_add + t_dec + t_decode + t_apply
    return {
        "clients": n,
        "params": dim,
        "mask_k": k,
        "ciphertexts_per_client": num_ct,
        "bytes_per_client": num_ct * ciphertext_bytes(pub),
        "max_abs_error_vs_plain_sum": max_err,
        "seconds": {
            "pool_fill_offline": t_fill,
            **{f"clients_{name}": v for name, v in stages.items()},
            "aggregate": t_add,
            "decrypt": t_dec,
            "decode": t_decode,
            "apply": t_apply,
        },
        "critical_path_s": max(per_client_total) + server,  # clients encode in parallel
        "serial_total_s": sum(per_client_total) + server,
        "critical_path_without_pool_s": max(per_client_total) - stages["encrypt"] / n + t_enc_no_pool + server,
        "one_client_encrypt_without_pool_s": t_enc_no_pool,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--values", type=int, default=10_000, help="values per client (packed modes)")
    parser.add_argument("--per-value-values", type=int, default=300, help="values per client (per-value phe)")
    parser.add_argument("--bits", type=int, default=16)
    parser.add_argument("--key-bits", type=int, default=2048)
    parser.add_argument("--round-params", type=int, default=1_000_000)
    parser.add_argument("--mask-fraction", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="pool-fill threads")
    parser.add_argument("--seed", type=int, default=20240601)
    args = parser.parse_args()
    if args.quick:
        args.clients, args.values, args.per_value_values, args.round_params = 3, 500, 10, 50_000

    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    rng = np.random.default_rng(args.seed)
    (pub, priv), t_keygen = timed(lambda: generate_keypair(args.key_bits))
    spec = EncodeSpec(
        clip_norm=1.0,
        quant=QuantSpec(bits=args.bits, range=1.0),
        packing=PackingSpec.maximal(bits=args.bits, max_clients=args.clients, key_bits=args.key_bits),
    )
    n, d = args.clients, args.values
    floats = np.stack([clip_by_l2(rng.normal(scale=0.01, size=d), 1.0) for _ in range(n)])
    qs = np.stack([stochastic_quantize(row, spec.quant, rng) for row in floats])

    pv = per_value(pub, priv, floats[:, : args.per_value_values])
    pk = packed(pub, priv, spec, qs, None)
    pool = ObfuscatorPool(pub)
    _, t_fill = timed(lambda: pool.fill(n * pk["ciphertexts_per_client"], threads=args.threads))
    pp = packed(pub, priv, spec, qs, pool)
    pp["pool_fill_s"] = t_fill
    pp["pool_fill_threads"] = args.threads
    pp["encrypt_incl_fill_values_per_s"] = rate(n * d, t_fill + pp["seconds"]["encrypt"])
    rnd = full_round(pub, priv, spec, args, rng)

    def ratios(mode: dict[str, Any]) -> dict[str, float]:
        out = {
            k: round(mode[k] / pv[k], 1) for k in ("encrypt_values_per_s", "add_values_per_s", "decrypt_values_per_s")
        }
        bytes_per_value = pv["bytes_per_client"] / pv["values_per_client"]
        out["wire_bytes_reduction"] = round(bytes_per_value * mode["values_per_client"] / mode["bytes_per_client"], 1)
        return out

    result = {
        "benchmark": "he",
        "quick": args.quick,
        "key_bits": args.key_bits,
        "keygen_s": t_keygen,
        "bits": args.bits,
        "max_clients": spec.packing.max_clients,
        "slot_bits": spec.packing.slot_bits,
        "values_per_plaintext": spec.packing.values_per_plaintext,
        "per_value_phe": pv,
        "packed": pk,
        "packed_pool": pp,
        "ratios_vs_per_value": {"packed": ratios(pk), "packed_pool": ratios(pp)},
        "round": rnd,
        "cpu_count": os.cpu_count(),
        "loadavg_1min_at_start": load_at_start,
        "total_s": time.perf_counter() - started,
    }
    print(json.dumps(rounded(result)))


if __name__ == "__main__":
    main()

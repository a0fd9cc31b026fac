"""The envelope spec's test vectors, checked twice: by an outside implementation that uses only ``cryptography``
and freshly generated protobuf code (run in an isolated interpreter that cannot import this project), and by
``streams`` itself, so the spec, the vectors and the code cannot drift apart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from schemas import RejectReason
from streams import ChainTracker, Keyring, RecordPipeline
from streams._pipeline import Accepted, Duplicate, Rejected

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "docs" / "envelope-vectors.json"


@pytest.fixture(scope="module")
def vectors() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(VECTORS.read_text())
    return loaded


def test_an_outside_implementation_agrees_with_every_vector(tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    gen.mkdir()
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "schemas" / "v1").glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT), f"--python_out={gen}", *protos],
        check=True,
        cwd=ROOT,
    )
    script = tmp_path / "verifier.py"
    shutil.copy(Path(__file__).with_name("independent_verifier.py"), script)
    # -I: no PYTHONPATH, no user site, no script/cwd path; also drop the project's editable-install path entries.
    prelude = (
        "import sys; sys.path[:] = [p for p in sys.path if not p.rstrip('/').endswith({!r})]; "
        "sys.argv = sys.argv[1:]; exec(compile(open(sys.argv[0]).read(), sys.argv[0], 'exec'))"
    ).format(str(ROOT).rstrip("/"))
    proc = subprocess.run(
        [sys.executable, "-I", "-c", prelude, str(script), str(gen), str(VECTORS)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok:")


def _keyring(vectors: dict[str, object], root: Path) -> Keyring:
    keys = vectors["keys"]
    assert isinstance(keys, dict)
    for rel, content in keys.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content) if isinstance(content, dict) else str(content))
    (root / "signing").exists() and shutil.rmtree(root / "signing")  # a verifier holds public keys only
    return Keyring.load(root)


def test_streams_agrees_with_every_vector(vectors: dict[str, object], tmp_path: Path) -> None:
    keyring = _keyring(vectors, tmp_path / "keys")
    pipe = RecordPipeline(keyring, ChainTracker())
    chain = vectors["valid_chain"]
    assert isinstance(chain, list)
    for item in chain:
        got = pipe.open(item["topic"], 0, bytes.fromhex(item["wire"]))
        assert isinstance(got, Accepted), got
        assert got.digest.hex() == item["envelope_hash"]
        assert got.message is not None and got.message.SerializeToString(deterministic=True).hex() == item["payload"]
    dup = vectors["duplicate"]
    assert isinstance(dup, dict)
    assert isinstance(pipe.open("kiosk.identity.v1", 0, bytes.fromhex(dup["wire"])), Duplicate)
    batch = vectors["batch_chain"]
    assert isinstance(batch, list) and len(batch) >= 3
    pipe = RecordPipeline(keyring, ChainTracker())
    for item in batch:
        got = pipe.open(item["topic"], 0, bytes.fromhex(item["wire"]))
        assert isinstance(got, Accepted), got
        assert got.digest.hex() == item["envelope_hash"] == item["signed_digest"]
    invalid = vectors["invalid"]
    assert isinstance(invalid, list)
    reasons = set()
    for item in invalid:
        fresh = RecordPipeline(keyring, ChainTracker())
        for before in item["before"]:
            assert isinstance(fresh.open(item["topic"], 0, bytes.fromhex(before)), Accepted)
        got = fresh.open(item["topic"], 0, bytes.fromhex(item["wire"]))
        assert isinstance(got, Rejected), item["name"]
        assert got.error.label == item["reason"], item["name"]
        reasons.add(item["reason"])
    # Every reason a record can get from the envelope layer has a vector.
    layer = {
        "malformed", "too_large", "wrong_stream", "plaintext_refused", "wrong_schema", "unknown_producer",
        "unknown_signing_key", "bad_signature", "wrong_hospital", "decrypt_failed", "decode_failed",
        "broken_chain", "seq_gap", "replayed_seq",
    }  # fmt: skip
    assert layer <= reasons
    assert all(RejectReason.Value("REJECT_REASON_" + r.upper()) for r in reasons)

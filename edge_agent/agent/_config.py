"""A kiosk's configuration: one TOML file (``medkiosk edge --config kiosk.toml``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: JetPack 6's own interpreter, in the Jetson image
    import tomli as tomllib  # type: ignore[no-redef]

from edge_agent.sensors._rfid_frames import RfidFrameParser

__all__ = [
    "CameraConfig",
    "CommandsConfig",
    "FusionSettings",
    "KioskConfig",
    "LivenessSettings",
    "RfidSettings",
    "TelemetryConfig",
    "TriageSettings",
    "load_config",
]

_PACKAGE = Path(__file__).resolve().parents[1]


@dataclass(kw_only=True)
class RfidSettings:
    port: str = "/dev/ttyUSB0"
    baudrate: int = 115200
    debounce_ms: int = 1000
    formats: list[str] = field(default_factory=lambda: ["em4100", "line"])
    #: Line-mode limits: the length range, the exact lengths the site's cards have (empty: the whole range),
    #: and the alphabet ("digits", "hex" or "alnum"). em4100 frames are always 10 hex digits plus a checksum.
    line_min_chars: int = 8
    line_max_chars: int = 20
    line_lengths: list[int] = field(default_factory=list)
    line_alphabet: str = "hex"

    def __post_init__(self) -> None:
        try:  # the parser owns the rules; building one checks them when the file is loaded, not at first read
            RfidFrameParser(
                frame_formats=self.formats,  # type: ignore[arg-type]
                line_min_chars=self.line_min_chars,
                line_max_chars=self.line_max_chars,
                line_lengths=self.line_lengths,
                line_alphabet=self.line_alphabet,  # type: ignore[arg-type]
            )
        except ValueError as exc:
            raise ValueError(f"[rfid]: {exc}") from None


@dataclass(kw_only=True)
class CameraConfig:
    #: A device index ("0"), a video file, or a folder of images.
    source: str = "0"
    fps: float = 15.0
    loop: bool = False


@dataclass(kw_only=True)
class LivenessSettings:
    #: "ghostnet": our temporal model (``model`` is its ONNX file; the shipped one is a SYNTHETIC-data demo);
    #: "minifasnet": the pretrained MiniFASNet pair (``model`` is a folder written by
    #: ``python -m edge_agent.vision.export_silent_face``), the model to deploy.
    kind: str = "ghostnet"
    model: Path = _PACKAGE / "vision" / "models" / "liveness-demo.onnx"
    engine: str = "auto"
    #: "auto" (RetinaFace when ``detector_model`` holds its files and they load, else Haar), "retinaface", "haar".
    detector: str = "auto"
    #: Folder with ``deploy.prototxt`` and ``Widerface-RetinaFace.caffemodel`` (None: Haar only).
    detector_model: Path | None = None
    #: A frame is live when its score is strictly above this (used by the pipeline and by the fusion).
    threshold: float = 0.98
    #: Detector misses a face track survives (the history is kept, the missed frame adds nothing).
    max_missed: int = 3

    def __post_init__(self) -> None:
        if self.kind not in ("ghostnet", "minifasnet"):
            raise ValueError(f"[liveness]: kind must be ghostnet or minifasnet, got {self.kind!r}")
        if self.detector not in ("auto", "retinaface", "haar"):
            raise ValueError(f"[liveness]: detector must be auto, retinaface or haar, got {self.detector!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"[liveness]: threshold must be in (0, 1), got {self.threshold}")


@dataclass(kw_only=True)
class FusionSettings:
    window_ms: float = 50.0
    lateness_ms: float = 100.0
    #: Camera->kiosk offset used until the online estimate has ``offset_min_samples`` frames (or always, when
    #: ``estimate_clock_offset`` is false).
    clock_offset_ms: float = 0.0
    #: Estimate the offset online from each frame's capture stamp and arrival (see ``ClockOffsetEstimator``).
    estimate_clock_offset: bool = True
    offset_window: int = 150
    offset_min_samples: int = 15
    offset_percentile: float = 10.0


@dataclass(kw_only=True)
class TriageSettings:
    enabled: bool = True
    model_dir: Path = _PACKAGE / "triage" / "models"
    engine: str = "auto"
    workers: int = 1
    max_batch: int = 8
    #: Local endpoint the kiosk UI sends symptom selections to (one JSON object per line); None: off.
    listen: str | None = "127.0.0.1:8765"


@dataclass(kw_only=True)
class CommandsConfig:
    #: Cloud producers whose scaling commands this kiosk obeys.
    allowed_producers: list[str] = field(default_factory=lambda: ["autoscaler-1"])
    #: Cloud producers whose model versions (``fl.models.v1``) this kiosk installs.
    model_producers: list[str] = field(default_factory=lambda: ["coordinator-1", "trainer-1"])
    #: Groups this kiosk belongs to (commands may target "group:<name>").
    groups: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class TelemetryConfig:
    interval_s: float = 5.0


@dataclass(kw_only=True)
class KioskConfig:
    kiosk_id: str
    hospital_id: str
    rfid: RfidSettings = field(default_factory=RfidSettings)
    camera: CameraConfig = field(default_factory=CameraConfig)
    liveness: LivenessSettings = field(default_factory=LivenessSettings)
    fusion: FusionSettings = field(default_factory=FusionSettings)
    triage: TriageSettings = field(default_factory=TriageSettings)
    commands: CommandsConfig = field(default_factory=CommandsConfig)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    #: Overrides of the ``MEDKIOSK_*`` bus settings (bootstrap_servers, keys_dir, state_dir, metrics_port, ...).
    bus: dict[str, Any] = field(default_factory=dict)


def _section(cls: type[Any], raw: dict[str, Any], where: str, base: Path) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ValueError(f"[{where}]: unknown key(s) {sorted(unknown)}; expected some of {sorted(known)}")
    values = dict(raw)
    for name, value in raw.items():
        if known[name].type in ("Path", "Path | None") and value is not None:
            path = Path(value)
            values[name] = path if path.is_absolute() else (base / path).resolve()
    return cls(**values)


def load_config(path: Path) -> KioskConfig:
    """Parse a kiosk TOML file; relative paths are relative to the file. Errors name the section and key."""
    raw = tomllib.loads(path.read_text())
    kiosk = raw.pop("kiosk", None)
    if not isinstance(kiosk, dict) or "id" not in kiosk or "hospital" not in kiosk:
        raise ValueError(f"{path}: needs a [kiosk] section with id and hospital")
    base = path.resolve().parent
    sections = {
        "rfid": RfidSettings,
        "camera": CameraConfig,
        "liveness": LivenessSettings,
        "fusion": FusionSettings,
        "triage": TriageSettings,
        "commands": CommandsConfig,
        "telemetry": TelemetryConfig,
    }
    unknown = set(raw) - set(sections) - {"bus"}
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {sorted(unknown)}")
    parsed = {name: _section(cls, raw.get(name, {}), name, base) for name, cls in sections.items()}
    groups = kiosk.get("groups", [])
    if groups:
        parsed["commands"].groups = list(groups)
    return KioskConfig(kiosk_id=str(kiosk["id"]), hospital_id=str(kiosk["hospital"]), bus=raw.get("bus", {}), **parsed)

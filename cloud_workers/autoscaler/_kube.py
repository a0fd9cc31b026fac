"""The Kubernetes scale subresource through the official ``kubernetes`` client, for clusters without KEDA.

``GET`` and ``PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`` (``statefulsets/{name}/scale``
for a StatefulSet such as the gateway): the autoscaler reads the
current replicas and patches ``spec.replicas`` only when the policy's decision differs. The patch is
sent as an explicit JSON merge patch, which every API server accepts on the scale subresource (a
strategic merge patch, the client's fallback for an object, is not served for custom resources).
The client is synchronous (urllib3), so calls run in a worker thread. RBAC: ``get`` and ``patch`` on
``deployments/scale`` in the namespace (see ``infra/k8s``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["KubeScaleConfig", "KubeScaleError", "KubernetesScaleActuator"]

log = logging.getLogger(__name__)

#: Workload kinds with a scale subresource under apps/v1, and the client's name for each.
KINDS = {"Deployment": "deployment", "StatefulSet": "stateful_set"}


class KubeScaleError(RuntimeError):
    """The API server refused a read or a patch (status code and reason kept)."""

    def __init__(self, status: int, reason: str, deployment: str) -> None:
        super().__init__(f"{deployment}: HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.deployment = deployment


@dataclass(frozen=True, kw_only=True)
class KubeScaleConfig:
    namespace: str = "medkiosk"
    #: Explicit API server URL (with ``token``); otherwise in-cluster config, then the kubeconfig.
    host: str | None = None
    token: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    verify_ssl: bool = True
    field_manager: str = "medkiosk-autoscaler"
    timeout_s: float = 10.0


def _api_client(cfg: KubeScaleConfig) -> Any:
    from kubernetes import client, config

    if cfg.host:
        conf = client.Configuration()
        conf.host = cfg.host
        conf.verify_ssl = cfg.verify_ssl
        if cfg.token:
            conf.api_key = {"authorization": cfg.token}
            conf.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(conf)
    if cfg.kubeconfig is None:
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        except config.ConfigException:
            pass
    return config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cfg.kubeconfig) if cfg.kubeconfig else None, context=cfg.context
    )


class KubernetesScaleActuator:
    """Reads and patches Deployment replicas; ``close`` releases the connection pool."""

    def __init__(self, cfg: KubeScaleConfig) -> None:
        from kubernetes import client

        self._cfg = cfg
        self._api_client = _api_client(cfg)
        self._apps = client.AppsV1Api(self._api_client)

    def _call(self, deployment: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(deployment, self._cfg.namespace, *args, _request_timeout=self._cfg.timeout_s, **kwargs)
        except ApiException as exc:
            raise KubeScaleError(int(exc.status or 0), str(exc.reason), deployment) from exc

    def _api(self, kind: str, verb: str) -> Any:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
        return getattr(self._apps, f"{verb}_namespaced_{KINDS[kind]}_scale")

    def _get(self, deployment: str, kind: str = "Deployment") -> int:
        scale = self._call(deployment, self._api(kind, "read"))
        return int(scale.spec.replicas or 0)

    def _patch(self, deployment: str, replicas: int, kind: str = "Deployment") -> int:
        scale = self._call(
            deployment,
            self._api(kind, "patch"),
            {"spec": {"replicas": replicas}},
            field_manager=self._cfg.field_manager,
            _content_type="application/merge-patch+json",
        )
        return int(scale.spec.replicas or 0)

    async def replicas(self, deployment: str, kind: str = "Deployment") -> int:
        """``spec.replicas`` of the workload's scale subresource (``kind``: Deployment or StatefulSet)."""
        return await asyncio.to_thread(self._get, deployment, kind)

    async def scale(self, deployment: str, replicas: int, kind: str = "Deployment") -> bool:
        """Set ``spec.replicas``; ``False`` (and no PATCH) when it already has that value."""
        if replicas < 0:
            raise ValueError("replicas must be >= 0")
        current = await self.replicas(deployment, kind)
        if current == replicas:
            return False
        applied = await asyncio.to_thread(self._patch, deployment, replicas, kind)
        if applied != replicas:
            raise KubeScaleError(200, f"patched to {replicas} but the server says {applied}", deployment)
        log.info("scaled deployment %s/%s %d -> %d", self._cfg.namespace, deployment, current, replicas)
        return True

    def close(self) -> None:
        self._api_client.close()

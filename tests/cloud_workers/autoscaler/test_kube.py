"""The Kubernetes scale subresource actuator, through the official ``kubernetes`` client.

CONTRACT TEST: no Kubernetes API server can run on these machines, so the client talks to a loopback
HTTP server that implements what the autoscaler uses of the API: ``GET`` and ``PATCH``
``/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`` with the API server's semantics (an
``autoscaling/v1`` ``Scale`` object, bearer-token auth, merge and strategic-merge patches on an object,
JSON Patch only as a list of operations, 404 for an unknown Deployment, 422 for invalid replicas,
a new ``resourceVersion`` on every change). It proves our side of the contract, not a real cluster.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from cloud_workers.autoscaler._kube import KubernetesScaleActuator, KubeScaleConfig, KubeScaleError

TOKEN = "test-token"
PATH = re.compile(r"^/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)/scale$")


class FakeApiServer:
    def __init__(self) -> None:
        self.replicas: dict[tuple[str, str, str], int] = {
            ("medkiosk", "deployments", "gateway"): 2,
            ("medkiosk", "statefulsets", "medkiosk-gateway"): 1,
        }
        self.version = 100
        self.requests: list[tuple[str, str, str, Any]] = []
        self.lock = threading.Lock()

    def scale(self, ns: str, kind: str, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {"name": name, "namespace": ns, "resourceVersion": str(self.version)},
            "spec": {"replicas": self.replicas[(ns, kind, name)]},
            "status": {"replicas": self.replicas[(ns, kind, name)], "selector": f"app={name}"},
        }


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def make_handler(api: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def reply(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def route(self) -> tuple[str, str, str] | None:
            url = urlparse(self.path)
            m = PATH.match(url.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.reply(401, status(401, "Unauthorized", "Unauthorized"))
                return None
            if not m:
                self.reply(404, status(404, "NotFound", "the server could not find the requested resource"))
                return None
            ns, kind, name = m.group(1), m.group(2), m.group(3)
            if (ns, kind, name) not in api.replicas:
                self.reply(404, status(404, "NotFound", f'{kind}.apps "{name}" not found'))
                return None
            return ns, kind, name

        def do_GET(self) -> None:
            key = self.route()
            if key is None:
                return
            api.requests.append(("GET", self.path, "", None))
            self.reply(200, api.scale(*key))

        def do_PATCH(self) -> None:
            key = self.route()
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if key is None:
                return
            ctype = self.headers.get("Content-Type", "")
            patch = json.loads(body or b"null")
            api.requests.append(("PATCH", self.path, ctype, patch))
            with api.lock:
                if ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                    if not isinstance(patch, dict):
                        return self.reply(400, status(400, "BadRequest", "patch must be an object"))
                    replicas = patch.get("spec", {}).get("replicas", api.replicas[key])
                elif ctype == "application/json-patch+json":
                    if not isinstance(patch, list):
                        return self.reply(400, status(400, "BadRequest", "json patch must be a list of operations"))
                    replicas = next((op["value"] for op in patch if op.get("path") == "/spec/replicas"), None)
                else:
                    return self.reply(415, status(415, "UnsupportedMediaType", f"unsupported {ctype}"))
                if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                    return self.reply(422, status(422, "Invalid", "spec.replicas: Invalid value"))
                if replicas != api.replicas[key]:
                    api.replicas[key] = replicas
                    api.version += 1
            self.reply(200, api.scale(*key))

    return Handler


@pytest.fixture
def apiserver() -> Iterator[tuple[FakeApiServer, str]]:
    api = FakeApiServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def actuator(apiserver: tuple[FakeApiServer, str]) -> Iterator[KubernetesScaleActuator]:
    act = KubernetesScaleActuator(KubeScaleConfig(host=apiserver[1], token=TOKEN, namespace="medkiosk"))
    yield act
    act.close()


async def test_reads_and_patches_the_scale_subresource(
    apiserver: tuple[FakeApiServer, str], actuator: KubernetesScaleActuator
) -> None:
    api, _ = apiserver
    assert await actuator.replicas("gateway") == 2
    assert await actuator.scale("gateway", 5) is True
    assert api.replicas[("medkiosk", "deployments", "gateway")] == 5 and api.version == 101
    method, path, ctype, body = api.requests[-1]
    assert method == "PATCH" and ctype == "application/merge-patch+json" and body == {"spec": {"replicas": 5}}
    assert parse_qs(urlparse(path).query)["fieldManager"] == ["medkiosk-autoscaler"]
    # Nothing to change: a GET and no PATCH.
    before = len(api.requests)
    assert await actuator.scale("gateway", 5) is False
    assert [r[0] for r in api.requests[before:]] == ["GET"]


async def test_refusals_surface_as_errors(
    apiserver: tuple[FakeApiServer, str], actuator: KubernetesScaleActuator
) -> None:
    with pytest.raises(KubeScaleError) as err:
        await actuator.replicas("missing")
    assert err.value.status == 404
    with pytest.raises(ValueError):
        await actuator.scale("gateway", -1)
    intruder = KubernetesScaleActuator(KubeScaleConfig(host=apiserver[1], token="wrong", namespace="medkiosk"))
    try:
        with pytest.raises(KubeScaleError) as err:
            await intruder.scale("gateway", 3)
        assert err.value.status == 401
    finally:
        intruder.close()
    assert apiserver[0].replicas[("medkiosk", "deployments", "gateway")] == 2


async def test_statefulsets_have_their_own_scale_subresource(
    apiserver: tuple[FakeApiServer, str], actuator: KubernetesScaleActuator
) -> None:
    api, _ = apiserver
    assert await actuator.replicas("medkiosk-gateway", "StatefulSet") == 1
    assert await actuator.scale("medkiosk-gateway", 4, "StatefulSet") is True
    assert api.replicas[("medkiosk", "statefulsets", "medkiosk-gateway")] == 4
    assert urlparse(api.requests[-1][1]).path.endswith("/statefulsets/medkiosk-gateway/scale")
    with pytest.raises(KubeScaleError) as err:  # the same name is not a Deployment
        await actuator.replicas("medkiosk-gateway")
    assert err.value.status == 404
    with pytest.raises(ValueError):
        await actuator.replicas("medkiosk-gateway", "DaemonSet")


def test_json_patch_bodies_must_be_lists(apiserver: tuple[FakeApiServer, str]) -> None:
    """The loopback server keeps the API's patch rules: the same change as a JSON Patch list works, an
    object sent as a JSON Patch is refused by the server (the client itself rewrites that case)."""
    import urllib.request
    from urllib.error import HTTPError

    url = f"{apiserver[1]}/apis/apps/v1/namespaces/medkiosk/deployments/gateway/scale"

    def patch(body: object, ctype: str) -> int:
        req = urllib.request.Request(url, data=json.dumps(body).encode(), method="PATCH")
        req.add_header("Content-Type", ctype)
        req.add_header("Authorization", f"Bearer {TOKEN}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return int(resp.status)
        except HTTPError as exc:
            return exc.code

    assert patch([{"op": "replace", "path": "/spec/replicas", "value": 4}], "application/json-patch+json") == 200
    assert apiserver[0].replicas[("medkiosk", "deployments", "gateway")] == 4
    assert patch({"spec": {"replicas": 6}}, "application/json-patch+json") == 400
    assert patch({"spec": {"replicas": "6"}}, "application/merge-patch+json") == 422
    assert patch({"spec": {"replicas": 6}}, "text/plain") == 415
    assert apiserver[0].replicas[("medkiosk", "deployments", "gateway")] == 4

"""The gateway worker: verify without decrypting, audit, route to hospital topics."""

from cloud_workers.gateway._worker import Gateway, GatewayConfig

__all__ = ["Gateway", "GatewayConfig"]

"""Control plane: signed scaling commands down to kiosks and deployments."""

from cloud_workers.control._publish import publish_commands, scaling_command

__all__ = ["publish_commands", "scaling_command"]

"""Cloud-side workers: gateway and federated-learning services."""

__all__: list[str] = []

"""The federated-learning client that runs at each hospital on its own data."""

from edge_agent.federated._trainer import LocalResult, LocalTrainer

__all__ = ["LocalResult", "LocalTrainer"]

"""Knowledge-graph triage: route a kiosk user's symptoms to a hospital department (a routing aid, not a
diagnosis). Red-flag symptoms always go to Emergency by rule. The model is trained on the shipped graph
(``data/``, MedlinePlus-cited) plus SYNTHETIC presentations; ``python -m edge_agent.triage.train --out DIR``.
Importing this package does not import torch (training does)."""

from edge_agent.triage._graph import DATA_DIR, Condition, GraphError, KnowledgeGraph, load_graph, normalize_symptom
from edge_agent.triage._service import MODELS_DIR, TriageResult, TriageService, to_inference_result
from edge_agent.triage._vocab import TriageVocab

__all__ = [
    "DATA_DIR",
    "MODELS_DIR",
    "Condition",
    "GraphError",
    "KnowledgeGraph",
    "TriageResult",
    "TriageService",
    "TriageVocab",
    "load_graph",
    "normalize_symptom",
    "to_inference_result",
]

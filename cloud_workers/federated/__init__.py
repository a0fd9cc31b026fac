"""Federated learning in the cloud: coordinator, aggregator and keyholder, each its own process.

They meet only on topics (``fl.rounds.v1``, ``fl.updates.v1``, ``fl.sums.v1``, ``fl.aggregates.v1``,
``fl.models.v1``) and keep their state in the log: a restarted role re-reads the current round from the
offsets its announcement recorded. The round logic of each role is a pure state machine; the Kafka wiring
around it is thin. The aggregator holds only the Paillier public key; the keyholder decrypts a shard sum
only after checking it is the product of at least ``min_clients`` distinct, validly signed updates of that
round, exactly those the coordinator's close lists, and only within its own policy (its minimum of
contributors, the DP policy it requires, each hospital's epsilon as it computes it). Epsilon is never taken
from anyone's word: the coordinator computes it from the announced policies and participation
(``PrivacyLedger``) and publishes how.
"""

from cloud_workers.federated._accounting import PrivacyLedger
from cloud_workers.federated._aggregator import Aggregator, partition_for
from cloud_workers.federated._aggregator_state import AggregatorState, UpdateVerdict
from cloud_workers.federated._coordinator import Coordinator
from cloud_workers.federated._coordinator_config import (
    CoordinatorConfig,
    apply_mean,
    decode_weights,
    encode_weights,
)
from cloud_workers.federated._coordinator_state import CoordinatorState
from cloud_workers.federated._keyholder import Keyholder
from cloud_workers.federated._keyholder_check import CheckedSum, check_claims, referenced_offsets, verify_sum
from cloud_workers.federated._keyholder_policy import KeyholderPolicy
from cloud_workers.federated._keys import export_fl_role, init_fl_keys
from cloud_workers.federated._metrics import FlMetrics
from cloud_workers.federated._publish import Publisher, check_producer
from cloud_workers.federated._role import FlIdentities, FlRole
from cloud_workers.federated._updates import (
    AssembledUpdate,
    UpdateAssembler,
    assemble_parts,
    contributors_digest,
    envelope_ref,
    parse_update,
)

__all__ = [
    "Aggregator",
    "AggregatorState",
    "AssembledUpdate",
    "CheckedSum",
    "Coordinator",
    "CoordinatorConfig",
    "CoordinatorState",
    "FlIdentities",
    "FlMetrics",
    "FlRole",
    "Keyholder",
    "KeyholderPolicy",
    "PrivacyLedger",
    "Publisher",
    "UpdateAssembler",
    "UpdateVerdict",
    "apply_mean",
    "assemble_parts",
    "check_claims",
    "check_producer",
    "contributors_digest",
    "decode_weights",
    "encode_weights",
    "envelope_ref",
    "export_fl_role",
    "init_fl_keys",
    "parse_update",
    "partition_for",
    "referenced_offsets",
    "verify_sum",
]

"""KEDA's external scaler protocol: ``externalscaler.proto`` and its generated gRPC code (do not edit)."""

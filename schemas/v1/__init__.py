"""Generated protobuf modules for the medkiosk wire format, version 1 (do not edit the ``*_pb2`` files)."""

"""ZK-ADAPT: decentralized, private federated fine-tuning.

Each party trains locally; updates travel through an object store and rounds are
signalled over an ordered, signed channel. See DESIGN.md for the map.
"""

__version__ = "0.1.0"

"""Cardano layer 1: settings and PyCardano chain contexts (Ogmios v6, Blockfrost).

A leaf package: it imports nothing above it (no config), and nothing of the channel. The
operator layer joins it to the hydra channel (:mod:`zkadapt.operator.chain_layer1`).
"""

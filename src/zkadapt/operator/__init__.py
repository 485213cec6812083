"""Operator actions behind the CLI: commands that act on a running head or an escrow.

They read the session config and open clients through :mod:`zkadapt.assembly`, so they
sit above the leaf packages (channel, escrow), beside the CLI that calls them.
"""

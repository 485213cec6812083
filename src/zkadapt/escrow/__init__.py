"""zkadapt.escrow"""

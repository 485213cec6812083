"""zkadapt.storage"""

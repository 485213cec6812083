"""zkadapt.crypto"""

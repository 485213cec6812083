"""zkadapt.protocol"""

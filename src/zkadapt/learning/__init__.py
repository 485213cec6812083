"""zkadapt.learning"""

"""zkadapt.aggregation"""

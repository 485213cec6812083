"""zkadapt.channel"""

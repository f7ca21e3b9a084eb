"""Prometheus families (one registry) and the hot-path counters. Imports nothing else of
gateway/.
"""

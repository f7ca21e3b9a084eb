"""Prometheus families (one registry), the hot-path counters, and one `/metrics` for the
workers of `serve --workers N` (multiproc). Imports nothing else of gateway/.
"""

"""Bytes <-> Request: the ISO 8583 TCP, TGL/1 TCP and serial listeners, their framing,
endpoints and admission. May import config, ledger (Processor), security, metrics.
"""

"""The typed configuration: TOML read into frozen dataclasses, every error named by its
path. Imports nothing else of gateway/ (protocols/ only).
"""

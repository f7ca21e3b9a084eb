"""The ledger: the Processor, the Redis store and its Lua scripts (lua/), journal, audit,
cards, amounts, PIN hashing, reseller rules. Never sees bytes of a wire protocol.
May import config, security, metrics.
"""

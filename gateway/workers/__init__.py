"""`tillgate serve --workers N`: the supervisor of N gateway processes on the same ports, and
what worker 0 alone runs. May import config, embedded_redis, supervise, runfiles, reactor,
listeners (reuseport), ledger (storeconnect), metrics, security (logging, back-off);
imported by cli and app (role).
"""

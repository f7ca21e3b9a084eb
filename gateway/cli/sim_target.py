"""The simulator's target from `--config` and the connection options (`tillgate sim ...`): shared
by the one-request commands (gateway/cli/sim.py) and the run and load modes (sim_modes.py)."""

from __future__ import annotations


def build_target(args, protocol: str | None = None, config=None):
    """The target from --config plus overrides; raises TargetError / ConfigError."""
    from gateway.config.model import load_config
    from gateway.sim.target import target_from_config

    if config is None:
        config = load_config(args.config)
    # A scenario that names its protocol is pinned to it; --protocol picks for the others.
    protocol = protocol or args.protocol or "iso"
    target = target_from_config(config, protocol, args.listener)
    target = target.with_overrides(host=args.host, port=args.port, device=args.device,
                                   baud=args.baud, framing=args.framing, ack=args.ack,
                                   tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                                   tls_key=args.tls_key, tls_verify=args.tls_verify)
    if target.protocol == "tgl" and target.framing != "stxetx":
        raise ValueError("TGL/1 is always STX/ETX framed")
    return config, target

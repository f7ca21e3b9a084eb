"""The terminal simulator: what `tillgate sim` and the pytest plugin's `till` are made of.

- target:    where the till connects (host/port or serial device, protocol, framing), from config
- messages:  `Call` (one operation asked for) -> ISO 8583 fields or a TGL/1 payload; responses ->
             `Reply` (response code, balances, points) whatever the protocol
- links:     blocking byte channels: length-framed TCP, STX/ETX with ACK/NAK over TCP or serial
- till:      `Till`, a blocking till with one method per operation (HOST-SPEC 2.3)
- issuer:    issue cards into a gateway's store (scenarios and tests start from fresh cards)
- render:    a reply as a readable table (card masked) or JSON
- scenario, faults, junit:  scenario files of steps with expectations and injected faults,
             JUnit XML
- load, loadsetup, loadstats:  the load generator (asyncio, pipelined), the cards it needs,
             and its report
- pacing:    keeps a load run's operations under the gateway's refusing card rules
- cli_modes: the `run` and `load` modes of `tillgate sim` (gateway/cli/sim.py has the rest)
"""

from gateway.sim.messages import Call, Exchange, Reply
from gateway.sim.target import Target, target_from_config
from gateway.sim.till import Till

__all__ = ["Call", "Exchange", "Reply", "Target", "Till", "target_from_config"]

"""Run by tests/test_serve.py: SIGTERM arriving while a log line is being written.

The stream below refuses a write re-entered from a signal handler, as io.BufferedWriter does
("reentrant call"), and logging's own error reports go to it too, as they did in the gateway.
A SIGINT follows while stopping. Prints the stops seen (one) and whether "shutting down" was
logged.
"""

import asyncio
import logging
import os
import signal
import sys

from gateway.reactor import stop_on_signals


class OneWriterAtATime:
    """Like io.BufferedWriter: a write re-entered from a signal handler is refused."""

    def __init__(self):
        self.busy, self.lines = False, []

    def write(self, text):
        if self.busy:
            raise RuntimeError("reentrant call")
        self.busy = True
        try:
            if "trigger" in text:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of this write
            for _ in range(10_000):  # bytecodes: a Python-level signal handler runs in here
                pass
            self.lines.append(text)
        finally:
            self.busy = False

    def flush(self):
        pass


stream = sys.stderr = OneWriterAtATime()  # logging's own error reports go here too
logging.basicConfig(stream=stream, level=logging.INFO)
loop, stops = asyncio.new_event_loop(), []
# stopping takes a while, as the gateway's drain does: a second signal meanwhile is ignored
stop_on_signals(loop, lambda: (stops.append("stop"), loop.call_later(0.3, loop.stop)))
loop.call_soon(lambda: logging.getLogger("serial").warning("com1: line lost (trigger)"))
loop.call_later(0.1, os.kill, os.getpid(), signal.SIGINT)
loop.call_later(3, loop.stop)  # the bound, should the signal be lost
loop.run_forever()
print(stops, any("shutting down" in line for line in stream.lines), file=sys.__stdout__)

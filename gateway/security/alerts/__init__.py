"""Alerts: raised once per (rule, scope value, window) onto a durable Redis stream, then
delivered by the gateway to each configured sink (log, webhook, e-mail) at least until acked.

  record.py   the Alert (what a sink receives; never a whole card number or a PIN)
  queue.py    raise (de-duplicate + XADD in one script), consumer groups, read, ack
  sinks.py    log, webhook (HMAC-SHA256 signed POST) and e-mail (SMTP, STARTTLS, AUTH)
  service.py  the Twisted service that delivers, with exponential back-off per sink
"""

from gateway.security.alerts.queue import AlertQueue
from gateway.security.alerts.record import Alert

__all__ = ["Alert", "AlertQueue"]

"""What `tillgate users` and the portal's operator pages do to an account, once for both: each
action is the back office's query (gateway/backoffice/operators.py) plus what goes with it, a
lifted lock-out or a new set-password link. Who may do which to whom is the caller's business
(the CLI: whoever runs it; the portal: gateway/web/portal/operatorrules.py).

Disabling and both resets raise the operator's logout generation (in operators.py), so their
sessions end at their next request.
"""

from __future__ import annotations

from typing import Any

from gateway.backoffice import operators as ops
from gateway.config.model import Config
from gateway.web.portal import links
from gateway.web.portal.limits import LoginLimits


async def add(engine: Any, client: Any, config: Config, email: str, name: str, role: str,
              merchant: str | None, second_factor: str, password_hash: str | None = None
              ) -> tuple[ops.Operator, str | None]:
    """A new operator and, without a password, the one-time link to set one (to give them,
    once). ValueError (OperatorExists included) for bad input."""
    op = await ops.add_operator(engine, email, name, role, merchant, second_factor,
                                password_hash)
    link = None if password_hash else await links.new_link(client, config, op.id)
    return op, link


async def set_enabled(engine: Any, client: Any, config: Config, op: ops.Operator,
                      enabled: bool) -> None:
    """Enable (and lift a lock-out) or disable (every session ends)."""
    await ops.set_status(engine, op.id, "active" if enabled else "disabled")
    if enabled:
        await LoginLimits(client, config.portal).unlock(op.email)


async def reset_second_factor(engine: Any, op: ops.Operator) -> None:
    """The authenticator is forgotten: they enrol again at their next login."""
    await ops.set_totp_secret(engine, op.id, None)


async def reset_password(engine: Any, client: Any, config: Config, op: ops.Operator) -> str:
    """The password is removed and a lock-out lifted; returns a new one-time link."""
    await ops.set_password_hash(engine, op.id, None)
    await LoginLimits(client, config.portal).unlock(op.email)
    return await links.new_link(client, config, op.id)


def link_mail(config: Config, op: ops.Operator, link: str) -> tuple[str, str]:
    """Subject and body of the mail that carries a set-password link to its operator."""
    return ("[tillgate] set your portal password",
            f"Hello {op.display_name},\n\nan account of the tillgate portal was made or reset "
            f"for {op.email}. Choose its password here (good for {config.portal.link_hours} "
            f"hours, once):\n\n  {link}\n\nIf you did not expect this, tell head office.\n")

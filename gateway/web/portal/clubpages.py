"""Clubs, for head office and merchant managers: the config's `[clubs.<name>]` (which programs,
merchants and tills each binds; gateway/config/clubs.py) with the staff who belong to each, and
the programs' unnamed clubs (`programs.<id>.merchants`). Clubs are changed in the config (a
reload applies them); who belongs to one is changed on the operator's page
(gateway/web/portal/operatorpages.py). A manager sees the clubs of their merchant only.
"""

from __future__ import annotations

from gateway.backoffice import operators as ops
from gateway.web.portal.web import Ctx, Page, Reply


async def listing(ctx: Ctx) -> Reply:
    actor = ctx.operator
    assert actor is not None
    config = ctx.portal.config
    mine = actor.role == "head_office"
    engine = await ctx.portal.engine()
    people = (await ops.all_operators(engine) if mine else
              await ops.all_operators(engine, merchant=actor.merchant, role="staff"))
    clubs = [{"club": club, "members": [p for p in people if club.name in p.clubs]}
             for club in config.clubs.values() if mine or actor.merchant in club.merchants]
    unnamed = [p for p in config.programs.values() if p.merchants
               and (mine or actor.merchant in p.merchants)]
    return Page("clubs.html", {"title": "Clubs", "wide": True, "clubs": clubs,
                               "unnamed": unnamed})

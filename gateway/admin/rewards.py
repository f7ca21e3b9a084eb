"""Admin HTTP: a loyalty program's rewards catalogue at run time (gateway/ledger/rewards.py).

  GET   /v1/rewards[?program=ID]            {"rewards": [...]}                  rewards:read
  POST  /v1/rewards                          {"program", "id", "points", "name"?, "stock"?,
                                              "valid_from"?, "valid_to"?, "clubs"?, "tier"?,
                                              "enabled"?}: 201 the reward          rewards:write
  GET   /v1/rewards/<program>/<id>           the reward                           rewards:read
  PATCH /v1/rewards/<program>/<id>           the fields to change                 rewards:write
  POST  /v1/rewards/<program>/<id>/disable   no more claims (12 at the till)      rewards:write

`stock` is a number of items left or null (unlimited); dates are YYYY-MM-DD or null (open);
`clubs` a list of merchant ids (empty: every merchant). A bad field is a 400 that names it. The
change is stored with the token's id (`by`); claims see it at once (claim_reward.lua reads the
reward in the same call that takes the points).
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.web import resource

from gateway.admin.jsonio import NOT_AN_OBJECT, Answer, StoreResource, answer_later, json_object
from gateway.ledger import rewards
from gateway.ledger.store import Store
from gateway.security.tokens import Refusal

log = logging.getLogger(__name__)
READ, WRITE = "rewards:read", "rewards:write"


def _scope(request) -> str:
    return READ if request.method in (b"GET", b"HEAD") else WRITE


class Rewards(StoreResource):
    def getChild(self, path: bytes, request):
        refused = self.auth.check(request, _scope(request))
        if refused is not None:
            return Refusal(*refused)
        program = self.config.programs.get(path.decode("ascii", "replace"))
        if program is None or not program.is_loyalty:
            return Refusal(404, f"no loyalty program {path.decode('ascii', 'replace')!r}")
        return ProgramRewards(self, program.id)

    def render_GET(self, request):
        store = self.store_for(request, READ)
        if isinstance(store, Refusal):
            return store.render(request)
        wanted = request.args.get(b"program", [b""])[0].decode("ascii", "replace")
        return answer_later(request, self._list(store, wanted))

    def render_POST(self, request):
        store = self.store_for(request, WRITE)
        if isinstance(store, Refusal):
            return store.render(request)
        body = json_object(request)
        if body is None:
            return Refusal(400, NOT_AN_OBJECT).render(request)
        return answer_later(request, self._create(store, body, self.operator_of(request)))

    async def _list(self, store: Store, wanted: str) -> Answer:
        programs = [p for p in self.config.programs.values()
                    if p.is_loyalty and (not wanted or p.id == wanted)]
        if wanted and not programs:
            return 404, {"error": f"no loyalty program {wanted!r}"}
        found = [r.as_dict() for p in programs for r in await rewards.list_rewards(store, p)]
        return 200, {"rewards": found}

    async def _create(self, store: Store, body: dict[str, Any], by: str) -> Answer:
        given = dict(body)
        try:
            program = rewards.loyalty_program(self.config, str(given.pop("program", "")))
            rid = given.pop("id", "")
            reward = rewards.new_reward(self.config, program, rid, given)
        except rewards.RewardError as e:
            return 400, {"error": str(e)}
        if await rewards.get_reward(store, program, rid) is not None:
            return 409, {"error": f"reward {rid!r} exists in program {program.id!r}"}
        await rewards.put_reward(store, reward, by, set_stock=True)
        log.info("reward %s/%s created by %s", program.id, rid, by)
        return 201, reward.as_dict()


class ProgramRewards(resource.Resource):
    def __init__(self, catalogue: Rewards, program: str):
        super().__init__()
        self.catalogue = catalogue
        self.program = program

    def getChild(self, path: bytes, request):
        return OneReward(self.catalogue, self.program, path.decode("ascii", "replace"))


class OneReward(resource.Resource):
    def __init__(self, catalogue: Rewards, program: str, rid: str):
        super().__init__()
        self.catalogue = catalogue
        self.program = program
        self.rid = rid

    def getChild(self, path: bytes, request):
        if path == b"disable":
            return Disable(self)
        return Refusal(404, "no such action")

    def render_GET(self, request):
        return self.answer(request, None)

    def render_PATCH(self, request):
        body = json_object(request)
        if body is None:
            return Refusal(400, NOT_AN_OBJECT).render(request)
        return self.answer(request, body)

    def answer(self, request, given: dict[str, Any] | None):
        store = self.catalogue.started_store()  # the token was checked by getChild
        if isinstance(store, Refusal):
            return store.render(request)
        return answer_later(request, self._act(store, given, self.catalogue.operator_of(request)))

    async def _act(self, store: Store, given: dict[str, Any] | None, by: str) -> Answer:
        config = self.catalogue.config
        program = config.programs[self.program]
        current = await rewards.get_reward(store, program, self.rid)
        if current is None:
            return 404, {"error": f"no reward {self.rid!r} in program {self.program!r}"}
        if given is None:
            return 200, current.as_dict()
        try:
            reward = rewards.changed(config, current, given)
        except rewards.RewardError as e:
            return 400, {"error": str(e)}
        await rewards.put_reward(store, reward, by, set_stock="stock" in given)
        log.info("reward %s/%s changed by %s: %s", self.program, self.rid, by, sorted(given))
        changed = await rewards.get_reward(store, program, self.rid)
        return 200, (changed or reward).as_dict()


class Disable(resource.Resource):
    isLeaf = True

    def __init__(self, reward: OneReward):
        super().__init__()
        self.reward = reward

    def render_POST(self, request):
        return self.reward.answer(request, {"enabled": False})

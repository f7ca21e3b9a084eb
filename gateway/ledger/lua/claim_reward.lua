-- Claim a reward of the run-time catalogue (gateway/ledger/rewards.py): its points off the card
-- and one of its stock, in this one call (docs/ledger.md "Rewards").
--   KEYS[a.rwk]     {rw:<program>}:<id>  the reward's hash (on, pts, stock, from, to, clubs, tier)
--   KEYS[a.rwk + 1] {rw:<program>}:cl    the program's claims stream
-- A reward absent from Redis is the config's (a.rwdef = its cost: unlimited, always, anywhere).
-- On a Redis Cluster the reward's keys are in another slot than the card's, and this call is
-- step 2 of 3 (a.rwsplit, gateway/ledger/rewardsplit.py): reward_reserve.lua has checked the
-- reward and taken its item (a.rwpts its cost, a.rwtier the tier it needs, a.rwkey its key) and
-- reward_settle.lua writes the claims line or gives the item back after this answer.
--! include _reward_checks.lua

-- Is tier `have` at least tier `need`? a.tn: the program's tier names, lowest first (the tiers'
-- parameters, gateway/ledger/loyalty.py); no tier is below every tier. Without tiers configured a
-- tier is only itself.
local function tier_at_least(have, need)
  if have == need then return true end
  local rank = {}
  for i, t in ipairs(a.tn or {}) do rank[t] = i end
  return rank[need] ~= nil and (rank[have or ''] or 0) >= rank[need]
end

local r = replay()
if r then return r end
local rc = admit('active', true)
if rc then return decline(rc) end
local W, CL, rw, cost, tier
if a.rwsplit then
  W, cost, tier = a.rwkey, num(a.rwpts), a.rwtier
else
  W, CL = KEYS[a.rwk], KEYS[a.rwk + 1]
  rw = redis.call('HMGET', W, unpack(REWARD_FIELDS))
  if rw[1] then
    local refused, why = reward_refusal(rw)
    if refused then return decline(refused, why) end
    cost = num(rw[2])
    tier = rw[7]
  elseif num(a.rwdef) > 0 then
    cost = num(a.rwdef)
  else
    return decline('12', 'unknown reward')
  end
end
if tier and tier ~= '' and not tier_at_least(st.tier, tier) then
  return decline('12', 'tier too low')
end
if num(st.pts) < cost then return decline('51') end
if rw then  -- one Redis: the item is taken in this same call
  if rw[3] and num(rw[3]) <= 0 then return decline('05', 'out of stock') end
  if rw[3] then redis.call('HINCRBY', W, 'stock', -1) end
  if rw[1] then redis.call('HINCRBY', W, 'claimed', 1) end
end
local u = apply('redeem_points', 0, -cost, { last = a.key, rw = a.rw })
u.rw = a.rw; u.rwk = W
if CL then reward_log(CL, 'claim', -cost) end
return respond({ rc = '00', amt = cost, ptsd = -cost }, u)

--! no-prelude
-- A reward claim on a Redis Cluster, step 1 of 3 (gateway/ledger/rewardsplit.py, docs/ledger.md
-- "Rewards"): in the reward's slot, check the reward and take one of its stock before the card
-- script (step 2, claim_reward.lua with a.rwsplit, the card's slot) takes the points. One Redis
-- does all of it in claim_reward.lua, in one call.
--   KEYS[1] {rw:<program>}:<id>       the reward's hash
--   KEYS[2] {rw:<program>}:res:<key>  this request's reservation (expires with request records)
--   KEYS[3] {rw:<program>}:held       reservations not settled yet, by time (the sweep reads it)
--   ARGV[1] msgpack { key, rw, rwdef (a config reward's cost), merch, today, now, ttl, ch, mask,
--           term, opid }
-- Returns the reservation as a flat field list: st = held | refused (later claimed | returned),
-- pts the cost, tier the tier required, rc and msg when refused. A retransmission gets the same
-- reservation back and changes nothing.
local W, RES, HELD = KEYS[1], KEYS[2], KEYS[3]
local seen = redis.call('HGETALL', RES)
if #seen > 0 then return seen end
local a = cmsgpack.unpack(ARGV[1])
local function num(v) return tonumber(v or 0) or 0 end
local rec = { 'rw', a.rw, 'ch', a.ch, 'mask', a.mask or '', 't', a.now, 'term', a.term or '',
              'merch', a.merch or '', 'opid', a.opid or '' }
local function keep(fields)
  for _, v in ipairs(fields) do rec[#rec + 1] = v end
  redis.call('HSET', RES, unpack(rec))
  redis.call('EXPIRE', RES, a.ttl)
  return rec
end
local function refuse(rc, msg) return keep({ 'st', 'refused', 'rc', rc, 'msg', msg }) end

--! include _reward_checks.lua
local rw = redis.call('HMGET', W, unpack(REWARD_FIELDS))
local cost, tier, took, counted = 0, '', 0, 0
if rw[1] then
  local refused, why = reward_refusal(rw)
  if refused then return refuse(refused, why) end
  cost = num(rw[2])
  tier = rw[7] or ''
  if rw[3] then
    if num(rw[3]) <= 0 then return refuse('05', 'out of stock') end
    redis.call('HINCRBY', W, 'stock', -1)
    took = 1
  end
  redis.call('HINCRBY', W, 'claimed', 1)
  counted = 1
elseif num(a.rwdef) > 0 then
  cost = num(a.rwdef)
else
  return refuse('12', 'unknown reward')
end
redis.call('ZADD', HELD, a.now, a.key)
return keep({ 'st', 'held', 'pts', cost, 'tier', tier, 'took', took, 'cnt', counted })

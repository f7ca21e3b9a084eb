--! no-prelude
-- A reward claim on a Redis Cluster, step 3 of 3 (gateway/ledger/rewardsplit.py): in the reward's
-- slot, once the card script (step 2) has answered. Approved: the reservation becomes the claim
-- and its line goes into the claims stream. Refused (or never run: the sweep's tombstone): the
-- item reserved in step 1 is given back. Only a held reservation changes, so a retransmission
-- (or the sweep after the gateway) repeats neither.
--   KEYS[1] {rw:<program>}:<id>  KEYS[2] {rw:<program>}:res:<key>  KEYS[3] {rw:<program>}:held
--   KEYS[4] {rw:<program>}:cl    the claims stream
--   ARGV[1] the card script's response code ('' : it never ran), ARGV[2] the request key
-- Returns the reservation's state after the call (claimed | returned; refused or '' unchanged).
local W, RES, HELD, CL = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
redis.call('ZREM', HELD, ARGV[2])
local st = redis.call('HGET', RES, 'st')
if st ~= 'held' then return st or '' end
local r = redis.call('HMGET', RES, 'rw', 'pts', 'mask', 'ch', 'term', 'merch', 't', 'opid',
                     'took', 'cnt')
if ARGV[1] == '00' then
  -- the line claim_reward.lua writes on one Redis (reward_log in _prelude.lua)
  local e = { op = 'claim', rw = r[1], card = r[3], ch = r[4], dp = -(tonumber(r[2]) or 0),
              term = r[5], merch = r[6], key = ARGV[2], t = tonumber(r[7]) or 0, opid = r[8] }
  redis.call('XADD', CL, '*', 'e', cmsgpack.pack(e))
  redis.call('HSET', RES, 'st', 'claimed')
  return 'claimed'
end
if r[9] == '1' then redis.call('HINCRBY', W, 'stock', 1) end
if r[10] == '1' then redis.call('HINCRBY', W, 'claimed', -1) end
redis.call('HSET', RES, 'st', 'returned', 'rc', ARGV[1])
return 'returned'

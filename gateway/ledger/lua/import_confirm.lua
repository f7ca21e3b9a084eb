--! no-prelude
-- `cards import`, step 2: check a one-time code; tries are counted here, atomically.
--   KEYS[1] imp:{<file digest>}
--   ARGV: hash of the code given (with the batch's salt), max tries, ttl seconds once confirmed
-- Returns { outcome, tries left }: 'confirmed'; 'wrong' (tries left > 0); 'dropped' (the last
-- try failed: the batch must be started again, with a new code); or the state of a batch that
-- is not pending ('none' when there is no batch, or its code expired).
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return { 'none', 0 } end
if state ~= 'pending' then return { state, 0 } end
if redis.call('HGET', KEYS[1], 'codeh') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', 'confirmed')
  redis.call('HDEL', KEYS[1], 'codeh', 'salt')
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return { 'confirmed', 0 }
end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
local left = tonumber(ARGV[2]) - tries
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return { 'dropped', 0 }
end
return { 'wrong', left }

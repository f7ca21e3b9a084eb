--! no-prelude
-- Phase 3 of the velocity rules (gateway/security/rules.py), in the merchant's slot, once the answer is
-- known: give back reservations the answer did not use, and count events (unknown card, wrong
-- PIN, declined) that only the answer reveals.
--   KEYS[1] {m:<merchant>}:off:<terminal>   KEYS[1 + i] the counter hash { n, s } of step i
--   ARGV[1] msgpack list of steps { d = 'undo' | 'count' | 'gate', dn = count to give back,
--           a = amount, n = max count, m = max amount, act, x = window end (epoch s) }
--     undo   give back dn and a reserved in phase 1 (only while that window's counter lives)
--     count  add one event (and a); past the limit: report it, and disable the terminal if
--            act = 'disable'
--     gate   an event already known (a number that fits no program): refuse if the rule is
--            already at its limit, else count it; all gates are checked before any is counted
--   ARGV[2] '1': first check the terminal is not disabled (a request that had no phase 1)
-- Returns {0 | 1 refuse with 65 | 2 terminal disabled, then i, count, sum per step past its
-- limit}.
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return { 2 } end
local steps = cmsgpack.unpack(ARGV[1])
local out = { 0 }
local function trip(i, n, s)
  out[#out + 1] = i; out[#out + 1] = n; out[#out + 1] = s
end

for i, st in ipairs(steps) do
  if st.d == 'gate' then
    local h = redis.call('HMGET', KEYS[1 + i], 'n', 's')
    local n = tonumber(h[1] or 0)
    if st.n > 0 and n >= st.n then
      out[1] = 1
      trip(i, n, tonumber(h[2] or 0))
    end
  end
end
if out[1] == 1 then return out end

for i, st in ipairs(steps) do
  local key = KEYS[1 + i]
  if st.d == 'undo' then
    if redis.call('EXISTS', key) == 1 then
      if st.dn > 0 then redis.call('HINCRBY', key, 'n', -st.dn) end
      if st.a > 0 then redis.call('HINCRBY', key, 's', -st.a) end
    end
  else
    local n = redis.call('HINCRBY', key, 'n', 1)
    if n == 1 then redis.call('EXPIREAT', key, st.x) end  -- a new window's counter
    local s = 0
    if st.a > 0 then s = redis.call('HINCRBY', key, 's', st.a) end
    if st.d == 'count' and ((st.n > 0 and n > st.n) or (st.m > 0 and s > st.m)) then
      trip(i, n, s)
      if st.act == 'disable' then redis.call('SET', KEYS[1], 'velocity') end
    end
  end
end
return out

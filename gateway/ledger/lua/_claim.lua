-- Phase 1, in the merchant's slot: claim the request key and reserve the invoice number.
-- `claim(K, A)` takes claim.lua's KEYS as K and its ARGV as A, so that _claim_card.lua can run
-- it before a card script, on keys and arguments that come after the card script's own.
--   KEYS[1] {m:<merchant>}:k:<request key>   (value: the request's fingerprint)
--   KEYS[2] {m:<merchant>}:inv               (hash invoice -> request key holding it)
--   ARGV: fingerprint, ttl seconds, invoice ('' = none), request key
-- Returns 0 new, 1 retransmission (same content), 2 key reused with other content,
-- 3 invoice number already used.
--
-- With velocity rules (gateway/security/rules.py) there are more keys and a fifth argument, and the
-- answer is a list {code, then i, count, sum for each rule past its limit}:
--   KEYS[3] {m:<merchant>}:off:<terminal>    (the terminal is disabled while this exists)
--   KEYS[3 + i] the counter hash { n, s } of rule i in its current window
--   ARGV[5] msgpack list of rules { n = max count, m = max amount, a = amount this request adds,
--           act = 'alert' | 'decline' | 'disable', ev = 'op' | 'post', x = window end (epoch s) },
--           or '' when no rule applies (then only the disabled flag is checked and the answer
--           stays a plain code)
-- and two more codes: 4 the terminal is disabled, 5 a rule refuses (65). Operation rules count
-- here, as a reservation (phase 3 gives back what the card script refused); event rules that
-- refuse ('post') reserve one event, which phase 3 gives back when the event did not happen.
-- A refused request changes nothing: its reservations are taken back in the same script.
local function claim(K, A)
  local flag = A[5] ~= nil
  local rules = nil
  if flag and A[5] ~= '' then rules = cmsgpack.unpack(A[5]) end
  local function answer(code, trips)
    if not rules then return code end
    local out = { code }
    for _, t in ipairs(trips or {}) do
      out[#out + 1] = t[1]; out[#out + 1] = t[2]; out[#out + 1] = t[3]
    end
    return out
  end

  -- Claim the key first, one call on the common path (a new key); a refusal below takes the
  -- claim back, in this same atomic script, so no one ever sees it.
  if not redis.call('SET', K[1], A[1], 'NX', 'EX', A[2]) then
    if redis.call('GET', K[1]) == A[1] then return answer(1) end
    return answer(2)
  end
  local function refuse(code, refusals)
    redis.call('DEL', K[1])
    return answer(code, refusals)
  end
  if flag and redis.call('EXISTS', K[3]) == 1 then return refuse(4) end
  if A[3] ~= '' then
    local holder = redis.call('HGET', K[2], A[3])
    if holder and holder ~= A[4] then return refuse(3) end
  end
  local trips = {}
  if rules then
    -- Reserve first (the common case: one or two calls per rule), then take every reservation
    -- back if any rule refuses: a refused request leaves the counters as they were.
    -- The sum `s` is kept only by amount rules (m > 0), which alone send an amount `a`.
    local refusals, disable = {}, false
    for i, r in ipairs(rules) do
      local key = K[3 + i]
      local n = redis.call('HINCRBY', key, 'n', 1)
      if n == 1 then redis.call('EXPIREAT', key, r.x) end
      local s = 0
      if r.a > 0 then s = redis.call('HINCRBY', key, 's', r.a) end
      if (r.n > 0 and n > r.n) or (r.m > 0 and s > r.m) then
        if r.act == 'alert' then
          trips[#trips + 1] = { i, n, s }
        else
          refusals[#refusals + 1] = { i, n - 1, s - r.a }
          if r.act == 'disable' then disable = true end
        end
      end
    end
    if #refusals > 0 then
      for i, r in ipairs(rules) do
        redis.call('HINCRBY', K[3 + i], 'n', -1)
        if r.a > 0 then redis.call('HINCRBY', K[3 + i], 's', -r.a) end
      end
      if disable then redis.call('SET', K[3], 'velocity') end
      return refuse(5, refusals)
    end
  end
  if A[3] ~= '' then redis.call('HSET', K[2], A[3], A[4]) end
  return answer(0, trips)
end

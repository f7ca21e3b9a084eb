-- The points sweep of one card (gateway/ledger/sweep.py: `tillgate points expire`, the serve
-- service): expire its due lots (one `expire` entry), then, on its tier's review day, re-evaluate
-- its tier (the only place a tier goes down). Idempotent: a second call finds nothing to do.
-- Called with a.norec = 1 (an operator action has no request key of its own).
if not st.status then  -- gone: out of the indexes
  if a.xk then redis.call('ZREM', a.xk, a.ch) end
  if a.tk then redis.call('ZREM', a.tk, a.ch) end
  return decline('14')
end
local gone = expire_due()
lots_index()
local was = st.tier
if a.tiers then
  local trv = num(st.trv)
  if trv > 0 and trv <= a.day then tier_review()
  elseif trv == 0 then redis.call('ZREM', a.tk, a.ch) end
end
return respond({ rc = '00', ptsd = -gone, tch = (st.tier ~= was) and 1 or 0 })

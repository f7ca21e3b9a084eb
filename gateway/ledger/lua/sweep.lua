-- The points sweep of one card (gateway/ledger/sweep.py: `tillgate points expire`, the serve
-- service): expire its due lots (one `expire` entry), then, on its tier's review day, re-evaluate
-- its tier (the only place a tier goes down). Idempotent: a second call finds nothing to do.
-- Called with a.norec = 1 (an operator action has no request key of its own).
if not st.status then return decline('14') end  -- gone: sweep.py takes it out of the indexes
if ly.lots_fns then ly.lots_fns() end
if a.tn then ly.tier_fns() end

-- At the review day: down (or up) to what the card earned, else held a period more.
local function tier_review()
  local cur, q = ly.tier_at(st.tier), ly.tier_earned()
  if q ~= cur then
    ly.tier_set(q)
  elseif cur > 1 then
    redis.call('HSET', S, 'trv', a.day + a.trd)
    redis.call('ZADD', ly.index_key('tiers'), a.day + a.trd, a.ch)
  else
    redis.call('ZREM', ly.index_key('tiers'), a.ch)
  end
end

local gone = ly.expire_due() or 0
ly.lots_index()
local was = st.tier
if a.tn then
  local trv = num(st.trv)
  if trv > 0 and trv <= a.day then tier_review()
  elseif trv == 0 then redis.call('ZREM', ly.index_key('tiers'), a.ch) end
end
return respond({ rc = '00', ptsd = -gone, tch = (st.tier ~= was) and 1 or 0 })

-- Expiry, tiers and conversion (docs/ledger.md), a part of the prelude after `apply`: each is a
-- journal entry of its own, made by `apply`, in the script of the operation that caused it.
if a.day then  -- made only where used (_lots.lua)

-- Expire the lots that are due (their last day is before a.day) as one `expire` entry; never a
-- silent decrement. Called by admit (a card's next request) and by sweep.lua (the daily sweep),
-- whichever comes first; a second call finds nothing due. Returns the points expired.
ly.expire_due = function()
  if a.lv <= 0 or not a.day then return 0 end
  local lmin = num(st.lmin)
  if lmin == 0 or lmin + a.lv >= a.day then return 0 end
  ly.lots_fns()
  local days, left = ly.lot_list()
  local due = 0
  st.lmin = 0
  for _, d in ipairs(days) do
    if d + a.lv < a.day then
      due = due + left[d]
      ly.lot_set(d, 0)
    elseif st.lmin == 0 then
      st.lmin = d
    end
  end
  due = math.min(due, num(st.pts))
  if due > 0 then
    apply('expire', 0, -due, { lots_done = true })
  end
  redis.call('HSET', S, 'lmin', st.lmin, 'll', num(st.ll))
  ly.lots_index()
  return due
end

if a.tn then
-- Tiers: a.tn names and a.tt thresholds, lowest first; a.tw > 0: thresholds on the points
-- earned in the last a.tw days (the e<d> sums and ed), else on points earned ever (le).
ly.tier_at = function(name)
  for i, n in ipairs(a.tn) do
    if n == name then return i end
  end
  return 1
end

-- Up at once, inside the earn that qualifies; never down here. The busy case (still below the
-- next tier's threshold, nothing left the window) decides without making the functions below.
ly.tier_up = function()
  local cur = ly.tier_at(st.tier)
  local next_at = a.tt[cur + 1]
  if not next_at then return end  -- the top tier already
  if a.tw <= 0 then
    if num(st.le) < next_at then return end
  else
    local wlo = num(st.wlo)
    if num(st.wsum) < next_at and not (wlo > 0 and wlo <= a.day - a.tw) then return end
  end
  ly.tier_fns()
  local q = ly.tier_earned()
  if q > cur then ly.tier_set(q) end
end

ly.tier_fns = function()
if ly.tier_basis then return end
ly.lots_fns()
-- Points earned within the window; e<d> fields that left it are dropped first (only when the
-- oldest one did, so an earn costs no scan of the hash).
ly.tier_basis = function()
  if a.tw <= 0 then return num(st.le) end
  local edge = a.day - a.tw  -- days up to the edge are out of the window
  local wlo = num(st.wlo)
  if wlo > 0 and wlo <= edge then
    local flat = redis.call('HGETALL', ly.L)
    local wsum, lo = 0, 0
    for i = 1, #flat, 2 do
      if string.byte(flat[i]) == 101 then
        local d = tonumber(string.sub(flat[i], 2))
        if d <= edge then
          redis.call('HDEL', ly.L, flat[i])
        else
          wsum = wsum + tonumber(flat[i + 1])
          if lo == 0 or d < lo then lo = d end
        end
      end
    end
    local ld = num(st.ld)
    if ld <= edge then st.ed = 0 end  -- the open day left the window too
    if num(st.ed) > 0 then
      wsum = wsum + num(st.ed)
      if lo == 0 or ld < lo then lo = ld end
    end
    st.wsum, st.wlo = wsum, lo
    redis.call('HSET', S, 'wsum', wsum, 'wlo', lo, 'ed', num(st.ed))
  end
  return num(st.wsum)
end

ly.tier_earned = function()
  local basis, best = ly.tier_basis(), 1
  for i, t in ipairs(a.tt) do
    if basis >= t then best = i end
  end
  return best
end

-- A tier change is a zero-value `tier` entry; a tier above the lowest is held until its review
-- day (a.trd days on), kept in the program's review index index_key('tiers') (score = that day).
ly.tier_set = function(i)
  apply('tier', 0, 0, { tier = a.tn[i], tier_from = st.tier or a.tn[1] })
  if i > 1 then
    redis.call('HSET', S, 'trv', a.day + a.trd)
    redis.call('ZADD', ly.index_key('tiers'), a.day + a.trd, a.ch)
  else
    redis.call('HSET', S, 'trv', 0)
    redis.call('ZREM', ly.index_key('tiers'), a.ch)
  end
end
end  -- tier_fns
end

-- Combined card: every a.cvp points become a.cvv minor units of balance, as one `convert` entry
-- (dp < 0, dv > 0), as far as the maximum balance allows.
if a.cvp > 0 and a.cvv > 0 then ly.convert = function()
  local k = math.floor(num(st.pts) / a.cvp)
  if a.maxbal > 0 then k = math.min(k, math.floor((a.maxbal - num(st.bal)) / a.cvv)) end
  if k > 0 then apply('convert', k * a.cvv, -k * a.cvp) end
end end
end

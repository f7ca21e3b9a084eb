-- Expiry, tiers and conversion (docs/ledger.md), a part of the prelude after `apply`: each is a
-- journal entry of its own, made by `apply`, in the script of the operation that caused it.

-- Expire the lots that are due (their last day is before a.day) as one `expire` entry; never a
-- silent decrement. Called by admit (a card's next request) and by sweep.lua (the daily sweep),
-- whichever comes first; a second call finds nothing due. Returns the points expired.
local function expire_due()
  if a.lv <= 0 or not a.day then return 0 end
  local lmin = num(st.lmin)
  if lmin == 0 or lmin + a.lv >= a.day then return 0 end
  local days, left = lot_list()
  local due = 0
  st.lmin = 0
  for _, d in ipairs(days) do
    if d + a.lv < a.day then
      due = due + left[d]
      redis.call('HDEL', L, d)
    elseif st.lmin == 0 then
      st.lmin = d
    end
  end
  due = math.min(due, num(st.pts))
  if due > 0 then
    apply('expire', 0, -due, { lots_done = true })
  end
  redis.call('HSET', S, 'lmin', st.lmin)
  lots_index()
  return due
end

-- Tiers: a.tiers = { { n = name, t = threshold }, ... } lowest first; a.tw > 0: thresholds on
-- the points earned in the last a.tw days (the e<d> sums), else on points earned ever (le).
local function tier_at(name)
  for i, t in ipairs(a.tiers) do
    if t.n == name then return i end
  end
  return 1
end

-- Points earned within the window; e<d> fields that left it are dropped first (only when the
-- oldest one did, so an earn costs no scan of the hash).
local function tier_basis()
  if a.tw <= 0 then return num(st.le) end
  local edge = a.day - a.tw  -- days up to the edge are out of the window
  local wlo = num(st.wlo)
  if wlo > 0 and wlo <= edge then
    local flat = redis.call('HGETALL', L)
    local wsum, lo = 0, 0
    for i = 1, #flat, 2 do
      if string.byte(flat[i]) == 101 then
        local d = tonumber(string.sub(flat[i], 2))
        if d <= edge then
          redis.call('HDEL', L, flat[i])
        else
          wsum = wsum + tonumber(flat[i + 1])
          if lo == 0 or d < lo then lo = d end
        end
      end
    end
    st.wsum, st.wlo = wsum, lo
    redis.call('HSET', S, 'wsum', wsum, 'wlo', lo)
  end
  return num(st.wsum)
end

local function tier_earned()
  local basis, best = tier_basis(), 1
  for i, t in ipairs(a.tiers) do
    if basis >= t.t then best = i end
  end
  return best
end

-- A tier change is a zero-value `tier` entry; a tier above the lowest is held until its review
-- day (a.trd days on), kept in the program's review index a.tk (score = that day).
local function tier_set(i)
  apply('tier', 0, 0, { tier = a.tiers[i].n })
  if i > 1 then
    redis.call('HSET', S, 'trv', a.day + a.trd)
    redis.call('ZADD', a.tk, a.day + a.trd, a.ch)
  else
    redis.call('HSET', S, 'trv', 0)
    redis.call('ZREM', a.tk, a.ch)
  end
end

-- Up at once, inside the earn that qualifies; never down here.
local function tier_up()
  if not a.tiers then return end
  local q = tier_earned()
  if q > tier_at(st.tier) then tier_set(q) end
end

-- At the review day (sweep.lua): down (or up) to what the card earned, else held a period more.
local function tier_review()
  local cur, q = tier_at(st.tier), tier_earned()
  if q ~= cur then
    tier_set(q)
  elseif cur > 1 then
    redis.call('HSET', S, 'trv', a.day + a.trd)
    redis.call('ZADD', a.tk, a.day + a.trd, a.ch)
  else
    redis.call('ZREM', a.tk, a.ch)
  end
end

-- Combined card: every a.cvp points become a.cvv minor units of balance, as one `convert` entry
-- (dp < 0, dv > 0), as far as the maximum balance allows.
local function convert()
  if a.cvp <= 0 or a.cvv <= 0 then return end
  local k = math.floor(num(st.pts) / a.cvp)
  if a.maxbal > 0 then k = math.min(k, math.floor((a.maxbal - num(st.bal)) / a.cvv)) end
  if k > 0 then apply('convert', k * a.cvv, -k * a.cvp) end
end

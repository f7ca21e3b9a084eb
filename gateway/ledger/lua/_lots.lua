-- Points lots and earned sums (docs/ledger.md "Points lots and expiry", "Tiers"), a part of the
-- prelude: `apply` moves lots for every change of points, so no operation script needs its own.
--   L = {c:<id>}:lots, a hash in the card's slot:
--     <d>   points left of the lot earned on program day d (days since 1970-01-01 in the
--           program's time zone); it expires at the end of day d + a.lv (due from d + a.lv + 1)
--     e<d>  points earned on day d, kept while d is within the tier window (a.tw days)
--   card state: lmin = the oldest lot's day (0 = none: the next expiry, read without the hash),
--   le = points earned ever, wsum / wlo = the sum of the e<d> fields and their oldest day,
--   tier = the tier's name, trv = the day its tier is re-evaluated (the period end).
-- L is named from S, so it has the card's hash tag and slot; Redis Cluster serves a key of the
-- slot of the declared keys (KEYS stays [state, journal, records, velocity counters]).
local L = string.sub(S, 1, -2) .. 'lots'

-- Lots as { days ascending }, { day -> points left }.
local function lot_list()
  local flat = redis.call('HGETALL', L)
  local days, left = {}, {}
  for i = 1, #flat, 2 do
    if string.byte(flat[i]) ~= 101 then  -- not an `e<d>` field
      local d = tonumber(flat[i])
      days[#days + 1] = d
      left[d] = tonumber(flat[i + 1])
    end
  end
  table.sort(days)
  return days, left
end

-- `d:n,d:n` (an undo's record of the lots a change moved) <-> { { d, n }, ... }
local function moved_parse(s)
  local out = {}
  for d, n in string.gmatch(s or '', '(%d+):(%d+)') do out[#out + 1] = { tonumber(d), tonumber(n) } end
  return out
end

local function moved_format(moved)
  local parts = {}
  for i, m in ipairs(moved) do parts[i] = m[1] .. ':' .. m[2] end
  return table.concat(parts, ',')
end

-- Move dp points into or out of lots. plan: the lots an undo gives back to or takes back from
-- first (its original's record); newest: a return takes the latest lots first (the purchase
-- returned is most likely a recent one), every other debit the soonest-expiring first.
-- Points that predate lots (validity set on a program later) hold no lot: they never expire and
-- are spent after every lot. Returns { { d, n }, ... }, what moved.
local function lots_move(dp, plan, newest)
  local moved = {}
  if dp > 0 then
    local rest = dp
    for _, m in ipairs(plan) do
      local n = math.min(m[2], rest)
      if n > 0 then
        redis.call('HINCRBY', L, m[1], n)
        moved[#moved + 1] = { m[1], n }
        rest = rest - n
      end
    end
    if rest > 0 then
      redis.call('HINCRBY', L, a.day, rest)
      moved[#moved + 1] = { a.day, rest }
    end
    local lmin = num(st.lmin)
    for _, m in ipairs(moved) do
      if lmin == 0 or m[1] < lmin then lmin = m[1] end
    end
    st.lmin = lmin
    return moved
  end
  local need = -dp
  local days, left = lot_list()
  local function take(d, most)
    local n = math.min(left[d] or 0, most, need)
    if n <= 0 then return end
    left[d] = left[d] - n
    need = need - n
    if left[d] == 0 then redis.call('HDEL', L, d) else redis.call('HINCRBY', L, d, -n) end
    moved[#moved + 1] = { d, n }
  end
  for _, m in ipairs(plan) do take(m[1], m[2]) end
  if newest then
    for i = #days, 1, -1 do take(days[i], need) end
  else
    for i = 1, #days do take(days[i], need) end
  end
  st.lmin = 0
  for _, d in ipairs(days) do
    if left[d] > 0 then st.lmin = d; break end
  end
  return moved
end

-- The card's place in the program's expiry index (a.xk: a sorted set, score = the day its
-- oldest lot is due), kept with lmin. On Redis Cluster the index is in a slot of its own:
-- docs/ledger.md says how that splits.
local function lots_index()
  if not a.xk then return end
  local lmin = num(st.lmin)
  if lmin > 0 then
    redis.call('ZADD', a.xk, lmin + a.lv + 1, a.ch)
  else
    redis.call('ZREM', a.xk, a.ch)
  end
end

-- Earned points follow the lots (or today, without lots) that an earn, a return or their undo
-- moved: le ever, e<d> within the window. Appends the state fields to `set`.
local function earned_move(moved, sign, set)
  local total = 0
  for _, m in ipairs(moved) do total = total + m[2] end
  st.le = math.max(0, num(st.le) + sign * total)
  set[#set + 1] = 'le'; set[#set + 1] = st.le
  if a.tw <= 0 then return end
  local wsum, wlo = num(st.wsum), num(st.wlo)
  for _, m in ipairs(moved) do
    local d = m[1]
    if d > a.day - a.tw then
      local f = 'e' .. d
      local change = sign * m[2]
      local v = redis.call('HINCRBY', L, f, change)
      if v <= 0 then redis.call('HDEL', L, f); change = change - v end
      wsum = wsum + change
      if sign > 0 and (wlo == 0 or d < wlo) then wlo = d end
    end
  end
  st.wsum, st.wlo = wsum, wlo
  set[#set + 1] = 'wsum'; set[#set + 1] = wsum
  set[#set + 1] = 'wlo'; set[#set + 1] = wlo
end

-- What points changes add to `apply`: lots moved (returned for the undo record as `d:n,...`),
-- earned sums, lmin and the expiry index. ops whose points count as earned: EARNED below, and
-- an undo of one (extra.earned).
local EARNED = { earn = 1, add_points = 1, ['return'] = 1 }
local function points_move(op, dp, extra, set)
  if dp == 0 or not a.day then return nil end
  local moved
  if a.lv > 0 and not extra.lots_done then
    local lmin = num(st.lmin)
    moved = lots_move(dp, moved_parse(extra.lots), op == 'return')
    set[#set + 1] = 'lmin'; set[#set + 1] = st.lmin
    if num(st.lmin) ~= lmin then lots_index() end
  else
    moved = { { a.day, math.abs(dp) } }
  end
  if a.tiers and (EARNED[op] or extra.earned) and not extra.lots_done then
    earned_move(moved, dp > 0 and 1 or -1, set)
  end
  if a.lv > 0 then return moved_format(moved) end
  return nil
end

-- Points lots and earned sums (docs/ledger.md "Points lots and expiry", "Tiers"), a part of the
-- prelude: `apply` moves lots for every change of points, so no operation script needs its own.
--   L = {c:<id>}:lots, a hash in the card's slot:
--     <d>   points left of the lot earned on program day d (days since 1970-01-01 in the
--           program's time zone); it expires at the end of day d + a.lv (due from d + a.lv + 1)
--     e<d>  points earned on day d, kept while d is within the tier window (a.tw days)
--   card state: the open lot, the one of the day the card last earned, lives in the state hash
--   (ld its day, ll its points left, ed the points earned that day; L has no field of day ld),
--   so an earn on a day the card already earned touches no other key; lmin = the oldest lot's
--   day (0 = none: the next expiry), le = points earned ever, wsum / wlo = the points earned
--   within the window (e<d> and ed) and their oldest day, tier = the tier's name, trv = the day
--   the tier is re-evaluated (the period end).
-- L and the two indexes are in KEYS from a.xk on (gateway/ledger/cards.py `add_points_keys`):
-- every key a script touches is declared, and all are in the card's slot on a Redis Cluster.
-- Each call of a script runs its whole text, and making a function (a closure) costs on every
-- call, more the more locals the prelude has open (Lua finds each upvalue by walking them):
-- these are made only for a card of a program with lots, tiers or conversion (a.day given);
-- for any other card the few that the rest of the prelude calls are the no-op `nothing`. Of
-- those, the ones the busiest path (an earn on a day the card already earned, nothing due, no
-- tier crossed) does not call are made by `lots_fns` (and `tier_fns`, _loyalty.lua) the first
-- time a call needs them (docs/benchmarks.md section 18).
-- The helpers and keys are fields of one table, `ly`, not locals of their own: every closure
-- made later in the script finds its upvalues by walking the locals that closures captured
-- before it, and one local instead of twenty-one shortens every walk. For a card with lots or
-- tiers the fields the busiest path sets are named here (false: not made), so that the table
-- is made at the size it needs at once, not grown field by field; the rest are added by
-- lots_fns and tier_fns on the rarer paths (made at full size, the 21-field table cost the
-- busiest path 3,400 instructions more). Any other card gets the four the prelude calls
-- (docs/benchmarks.md section 18).
local function nothing() return nil end
local ly
if not a.day then
  ly = { points_move = nothing, expire_due = nothing, tier_up = nothing, convert = nothing }
else
ly = {
  L = false, EARNED = false, lots_fns = false, tier_fns = false, tier_at = false,
  points_move = nothing, expire_due = nothing, tier_up = nothing, convert = nothing,
}
ly.L = KEYS[a.xk]  -- {c:<id>}:lots, then the program's two indexes: declared by the caller
ly.EARNED = { earn = 1, add_points = 1, ['return'] = 1 }

ly.lots_fns = function()
if ly.lot_list then return end
-- the program's expiry and tier review indexes (gateway/ledger/loyalty.py `index_key`: on a
-- Redis Cluster, the program's index in the card's slot), KEYS[a.xk + 1] and KEYS[a.xk + 2]
ly.index_key = function(what) return KEYS[a.xk + (what == 'due' and 1 or 2)] end

-- Lots as { days ascending }, { day -> points left }, the open lot included.
ly.lot_list = function()
  local flat = redis.call('HGETALL', ly.L)
  local days, left = {}, {}
  for i = 1, #flat, 2 do
    if string.byte(flat[i]) ~= 101 then  -- not an `e<d>` field
      local d = tonumber(flat[i])
      days[#days + 1] = d
      left[d] = tonumber(flat[i + 1])
    end
  end
  local ll = num(st.ll)
  if ll > 0 then
    days[#days + 1] = num(st.ld)
    left[num(st.ld)] = ll
  end
  table.sort(days)
  return days, left
end

-- Today becomes the open day: the open lot and its earned sum go into L, and what L held of
-- today (after a clock step back between two gateways) comes out of it. Once per card and day.
ly.open_day = function(set)
  local ld = num(st.ld)
  if ld == a.day then return end
  if num(st.ll) > 0 then redis.call('HINCRBY', ly.L, ld, st.ll) end
  if num(st.ed) > 0 then redis.call('HINCRBY', ly.L, 'e' .. ld, st.ed) end
  local held = redis.call('HMGET', ly.L, a.day, 'e' .. a.day)
  if held[1] or held[2] then redis.call('HDEL', ly.L, a.day, 'e' .. a.day) end
  st.ld, st.ll, st.ed = a.day, num(held[1]), num(held[2])
  set[#set + 1] = 'ld'; set[#set + 1] = st.ld
  set[#set + 1] = 'll'; set[#set + 1] = st.ll
  set[#set + 1] = 'ed'; set[#set + 1] = st.ed
end

-- Set what is left of lot d (0: gone), in the state for the open lot, else in L.
ly.lot_set = function(d, v)
  if d == num(st.ld) then
    st.ll = v
  elseif v == 0 then
    redis.call('HDEL', ly.L, d)
  else
    redis.call('HSET', ly.L, d, v)
  end
end

-- `d:n,d:n` (an undo's record of the lots a change moved) <-> { { d, n }, ... }
local NONE = {}
ly.moved_parse = function(s)
  if not s then return NONE end
  local out = {}
  for d, n in string.gmatch(s or '', '(%d+):(%d+)') do out[#out + 1] = { tonumber(d), tonumber(n) } end
  return out
end

ly.moved_format = function(moved)
  if #moved == 1 then return moved[1][1] .. ':' .. moved[1][2] end
  local parts = {}
  for i, m in ipairs(moved) do parts[i] = m[1] .. ':' .. m[2] end
  return table.concat(parts, ',')
end

-- Move dp points into or out of lots. plan: the lots an undo gives back to or takes back from
-- first (its original's record); newest: a return takes the latest lots first (the purchase
-- returned is most likely a recent one), every other debit the soonest-expiring first.
-- Points that predate lots (validity set on a program later) hold no lot: they never expire and
-- are spent after every lot. Returns { { d, n }, ... }, what moved.
ly.lots_move = function(dp, plan, newest)
  local moved = {}
  if dp > 0 then
    local rest = dp
    for _, m in ipairs(plan) do
      local n = math.min(m[2], rest)
      if n > 0 then
        if m[1] == num(st.ld) then st.ll = num(st.ll) + n else redis.call('HINCRBY', ly.L, m[1], n) end
        moved[#moved + 1] = { m[1], n }
        rest = rest - n
      end
    end
    if rest > 0 then  -- open_day ran: today is the open lot
      st.ll = num(st.ll) + rest
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
  local days, left = ly.lot_list()
  local function take(d, most)
    local n = math.min(left[d] or 0, most, need)
    if n <= 0 then return end
    left[d] = left[d] - n
    need = need - n
    ly.lot_set(d, left[d])
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

-- The card's place in the program's expiry index (XK: a sorted set, score = the day its
-- oldest lot is due), kept with lmin. On Redis Cluster the index is in a slot of its own:
-- docs/ledger.md says how that splits.
ly.lots_index = function()
  if a.lv <= 0 then return end
  local lmin = num(st.lmin)
  if lmin > 0 then
    redis.call('ZADD', ly.index_key('due'), lmin + a.lv + 1, a.ch)
  else
    redis.call('ZREM', ly.index_key('due'), a.ch)
  end
end

-- Earned points follow the lots (or today, without lots) that an earn, a return or their undo
-- moved: le ever, e<d> / ed within the window. Appends the state fields to `set`.
ly.earned_move = function(moved, sign, set)
  if a.tw <= 0 then
    local total = 0
    for _, m in ipairs(moved) do total = total + m[2] end
    st.le = math.max(0, num(st.le) + sign * total)
    set[#set + 1] = 'le'; set[#set + 1] = st.le
    return
  end
  -- only the fields that change are written: each costs on the busiest path (a same-day earn)
  local wsum, wlo, ed = num(st.wsum), num(st.wlo), num(st.ed)
  for _, m in ipairs(moved) do
    local d = m[1]
    if d > a.day - a.tw then
      local change = sign * m[2]
      local v
      if d == num(st.ld) then
        v = num(st.ed) + change
        st.ed = math.max(v, 0)
      else
        v = redis.call('HINCRBY', ly.L, 'e' .. d, change)
        if v <= 0 then redis.call('HDEL', ly.L, 'e' .. d) end
      end
      if v < 0 then change = change - v end
      wsum = wsum + change
      if sign > 0 and (wlo == 0 or d < wlo) then wlo = d end
    end
  end
  st.wsum = wsum
  set[#set + 1] = 'wsum'; set[#set + 1] = wsum
  if wlo ~= num(st.wlo) then st.wlo = wlo; set[#set + 1] = 'wlo'; set[#set + 1] = wlo end
  if num(st.ed) ~= ed then set[#set + 1] = 'ed'; set[#set + 1] = st.ed end
end

end  -- lots_fns

-- What points changes add to `apply`: lots moved (returned for the undo record as `d:n,...`),
-- earned sums, lmin and the expiry index. ops whose points count as earned: EARNED above, and
-- an undo of one (extra.earned).
ly.points_move = function(op, dp, extra, set)
  if dp == 0 or not a.day or extra.lots_done then return nil end
  -- The busiest path, an earn on a day the card already earned, written out: no lists, no loops
  -- (the same as the general path below for this case). Without lots (tiers alone) the open
  -- day is kept only for a tier window; on lifetime tiers every earn takes this path.
  if dp > 0 and not extra.lots and (num(st.ld) == a.day or (a.lv <= 0 and a.tw <= 0)) then
    if a.lv > 0 then
      st.ll = num(st.ll) + dp
      set[#set + 1] = 'll'; set[#set + 1] = st.ll
      if num(st.lmin) == 0 then
        st.lmin = a.day
        set[#set + 1] = 'lmin'; set[#set + 1] = a.day
        ly.lots_fns()
        ly.lots_index()
      end
    end
    if a.tn and (ly.EARNED[op] or extra.earned) then
      if a.tw > 0 then
        st.ed, st.wsum = num(st.ed) + dp, num(st.wsum) + dp
        set[#set + 1] = 'ed'; set[#set + 1] = st.ed
        set[#set + 1] = 'wsum'; set[#set + 1] = st.wsum
        if num(st.wlo) == 0 then st.wlo = a.day; set[#set + 1] = 'wlo'; set[#set + 1] = a.day end
      else
        st.le = num(st.le) + dp
        set[#set + 1] = 'le'; set[#set + 1] = st.le
      end
    end
    if a.lv > 0 then return a.day .. ':' .. dp end
    return nil
  end
  ly.lots_fns()
  if dp > 0 and (a.lv > 0 or a.tw > 0) then ly.open_day(set) end
  local moved
  if a.lv > 0 then
    local lmin = num(st.lmin)
    moved = ly.lots_move(dp, ly.moved_parse(extra.lots), op == 'return')
    set[#set + 1] = 'll'; set[#set + 1] = num(st.ll)
    if num(st.lmin) ~= lmin then
      set[#set + 1] = 'lmin'; set[#set + 1] = st.lmin
      ly.lots_index()
    end
  else
    moved = { { a.day, math.abs(dp) } }
  end
  if a.tn and (ly.EARNED[op] or extra.earned) then
    ly.earned_move(moved, dp > 0 and 1 or -1, set)
  end
  if a.lv > 0 then return ly.moved_format(moved) end
  return nil
end
end

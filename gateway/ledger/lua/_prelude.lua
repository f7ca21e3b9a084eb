-- Shared by every card script (the loader puts this file in front of each one; Redis has no include).
--
-- Every card script is called with the same layout:
--   KEYS[1] {c:<h>}:s       the card's state hash
--   KEYS[2] {c:<h>}:j       the card's journal stream (append-only, msgpack entries)
--   KEYS[3] {c:<h>}:r:<key> the record of this request key (stored response, undo data, tombstone)
--   KEYS[4] {c:<h>}:r:<key> the record of the original (void, reversal, rollback; else = KEYS[3])
--   KEYS[5] the feed stream the back office reads (gateway/ledger/feed.py `feed_key`: one stream
--           on one Redis, the feed of the card's own slot on a Cluster)
--   ARGV[1] a msgpack map of parameters (see gateway/ledger/params.py `ScriptParams.build`)
-- and returns { packed response (msgpack map), 1 if this call decided it / 0 if it was replayed }.
-- All keys share the card's hash tag or map to its slot, so a script touches a single slot (Redis
-- Cluster ready).
local S, J, R, O, F = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local a = cmsgpack.unpack(ARGV[1])
-- The gateway leaves out what is at its default (ScriptParams.build): fewer fields to unpack here,
-- on the busier side under load. A field that is absent reads as its default.
setmetatable(a, { __index = { pinreq = 0, pin = '', tries = 0, lock = 0, maxbal = 0, window = 0,
                              exp = 0, faces = {}, partial = 0, advice = 0, points = 0, inv = '',
                              lv = 0, tw = 0, cvp = 0, cvv = 0 } })
local now = a.now

-- The state's fields named up front (values nil: nothing set yet), so that the table is made
-- with room for them all instead of growing five times while HGETALL's fields go in (-6,000
-- instructions per earn of a card with lots and tiers: docs/benchmarks.md section 18).
local st = {
  status = nil, bal = nil, pts = nil, n = nil, mask = nil, prog = nil, kind = nil,
  created = nil, face = nil, exp = nil, last = nil, ldn = nil, e1 = nil, ld = nil, ll = nil,
  ed = nil, lmin = nil, wsum = nil, wlo = nil, tier = nil, trv = nil, le = nil, pinh = nil,
  pinf = nil, pinu = nil, cust = nil,
}
do
  local flat = redis.call('HGETALL', S)
  for i = 1, #flat, 2 do st[flat[i]] = flat[i + 1] end
end

local function num(v) return tonumber(v or 0) or 0 end

-- a.dl: the deadline (epoch milliseconds, Store.deadline_ms) of a script called on its own, not as
-- `claim+<op>` (whose deadline _claim_card.lua checks): a balance transfer's steps. Run at or after
-- it (a stalled server running what waited in its socket), the script changes nothing and answers
-- the error LATE, as claim+<op> does: the gateway has stopped waiting and answered 96.
local function late()
  if not a.dl then return nil end
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) < a.dl then return nil end
  return redis.error_reply('LATE run after its deadline: the gateway has answered 96')
end

-- A retransmission gets the original response again; a late original after its reversal gets 05.
local function replay()
  local rec = redis.call('HMGET', R, 'resp', 'tomb')
  if rec[1] then return { rec[1], 0 } end
  if rec[2] then return { cmsgpack.pack({ rc = '05' }), 0 } end
  return nil
end

-- Velocity rules of the card scope (gateway/security/rules.py). a.vr lists the rules that apply to this
-- request; rule i counts in KEYS[5 + i], a hash { n = count, s = amount sum } that expires at the
-- end of its fixed window (r.x, epoch seconds). Each rule: n / m = max count / max amount (0 =
-- unlimited), act = 'alert' | 'decline' | 'lock', ev = 'op' (this operation, counted when
-- approved) | 'pin' (55/75 answers) | 'dec' (any refusal but 65). "More than N": the (N+1)th trips.
local vel_trips = {}

local function vel_trip(i, n, s) vel_trips[#vel_trips + 1] = { i, n, s } end

local function vel_lock()
  st.status = 'suspended'
  redis.call('HSET', S, 'status', 'suspended', 'vlock', 1)
end

-- Before anything changes: would this request pass a limit that refuses? Returns 65 or 62.
-- Event rules that refuse are rate limits: once N events are counted, the next request is 65.
local function vel_check()
  if not a.vr then return nil end
  for i, r in ipairs(a.vr) do
    if r.act ~= 'alert' then
      local h = redis.call('HMGET', KEYS[5 + i], 'n', 's')
      local n, s = num(h[1]), num(h[2])
      local over
      if r.ev == 'op' then
        over = (r.n > 0 and n + 1 > r.n) or (r.m > 0 and s + a.amount > r.m)
      else
        over = r.act == 'decline' and r.n > 0 and n >= r.n
      end
      if over then
        vel_trip(i, n, s)
        if r.act == 'lock' then
          vel_lock()
          return '62'
        end
        return '65'
      end
    end
  end
  return nil
end

-- After the answer is known, in the same script: count what happened; report alert rules that
-- went past their limit and lock the card where an event rule says so (for the next requests).
local function vel_commit(res)
  if not a.vr or not st.status or res.rc == '65' then return end
  local ok = res.rc == '00' or res.rc == '10'
  for i, r in ipairs(a.vr) do
    local hit
    if r.ev == 'op' then hit = ok
    elseif r.ev == 'pin' then hit = res.rc == '55' or res.rc == '75'
    else hit = not ok end
    if hit then
      local key = KEYS[5 + i]
      local n = redis.call('HINCRBY', key, 'n', 1)
      if n == 1 then redis.call('EXPIREAT', key, r.x) end  -- a new window's counter
      local s = 0
      if r.m > 0 then s = redis.call('HINCRBY', key, 's', num(res.amt or a.amount)) end
      if (r.n > 0 and n > r.n) or (r.m > 0 and s > r.m) then
        if r.ev ~= 'op' and r.act == 'lock' and st.status ~= 'suspended' then vel_lock() end
        if r.ev ~= 'op' or r.act == 'alert' then vel_trip(i, n, s) end
      end
    end
  end
end

-- Store the response under the request key (so a retransmission replays it) and return it.
-- `undo` holds what an undo needs: dv, dp (deltas), jid, n, prev (status before), op.
local function respond(res, undo)
  if res.rc == '00' or res.rc == '10' then res.auth = a.auth end
  -- Balances go out on approvals and on 51 only: a wrong PIN must not reveal them.
  if st.status and (res.auth or res.rc == '51') then
    res.bal = num(st.bal)
    res.pts = num(st.pts)
    if num(st.exp) > 0 then res.exp = tostring(st.exp) end
    if a.tn then res.tier = st.tier or a.tn[1] end
  end
  vel_commit(res)
  local packed = cmsgpack.pack(res)
  -- Nothing is stored for a card that does not exist: random numbers must not create keys.
  if a.norec ~= 1 and st.status and a.pr == 1 then
    -- The packed layout (redis.packed_records, docs/ledger.md "Request records"): the stored
    -- response and its code, and all else in one msgpack field `u`, one field to write instead
    -- of a dozen numbers to format and insert. `rc` and the reward's keys stay fields: scripts
    -- and the gateway read them alone (reward_orphan.lua, the HGET of `rwk` before a void).
    local u = undo or {}
    u.op, u.t = a.op, now
    if a.inv ~= '' then u.inv = a.inv end
    if num(a.amount) > 0 then u.ramt = a.amount end
    local rwk = u.rwk
    u.rwk = nil
    if rwk then
      redis.call('HSET', R, 'resp', packed, 'rc', res.rc, 'u', cmsgpack.pack(u), 'rwk', rwk)
    else
      redis.call('HSET', R, 'resp', packed, 'rc', res.rc, 'u', cmsgpack.pack(u))
    end
    redis.call('EXPIRE', R, a.ttl)
  elseif a.norec ~= 1 and st.status then
    local fields = { 'resp', packed, 'rc', res.rc, 'op', a.op, 't', now }
    if a.inv and a.inv ~= '' then fields[#fields + 1] = 'inv'; fields[#fields + 1] = a.inv end
    -- the amount asked for (field 4), which a reversal naming this request must repeat (2.6)
    if num(a.amount) > 0 then fields[#fields + 1] = 'ramt'; fields[#fields + 1] = a.amount end
    if undo then
      for k, v in pairs(undo) do
        fields[#fields + 1] = k
        fields[#fields + 1] = v
      end
    end
    redis.call('HSET', R, unpack(fields))
    redis.call('EXPIRE', R, a.ttl)
  end
  if #vel_trips > 0 then  -- reported to the gateway (alerts), never stored for a replay
    res.vt = vel_trips
    packed = cmsgpack.pack(res)
  end
  return { packed, 1 }
end

local function decline(rc, msg) return respond({ rc = rc, msg = msg }) end

--! include _lots.lua

-- Apply a change of money (dv) and points (dp), journal it, and return the undo data.
-- `extra` may set status, exp, tier, and the link to an undone entry (undo = journal id); for
-- points, lots = the `d:n,...` an undo gives back or takes back first, earned = an undo of an
-- earned change (_lots.lua).
local function apply(op, dv, dp, extra)
  extra = extra or {}
  local prev = st.status
  st.bal = num(st.bal) + dv
  st.pts = num(st.pts) + dp
  st.n = num(st.n) + 1
  local set = { 'bal', st.bal, 'pts', st.pts, 'n', st.n }
  if extra.status then st.status = extra.status; set[#set + 1] = 'status'; set[#set + 1] = st.status end
  if extra.exp then st.exp = extra.exp; set[#set + 1] = 'exp'; set[#set + 1] = st.exp end
  if dv < 0 or dp < 0 then set[#set + 1] = 'ldn'; set[#set + 1] = st.n end
  if extra.last then set[#set + 1] = 'last'; set[#set + 1] = extra.last end
  if extra.tier then st.tier = extra.tier; set[#set + 1] = 'tier'; set[#set + 1] = st.tier end
  local lots = ly.points_move(op, dp, extra, set)
  redis.call('HSET', S, unpack(set))
  local entry = {
    op = op, card = st.mask or '', ch = a.ch, dv = dv, dp = dp, bal = st.bal, pts = st.pts,
    term = a.term or '', merch = a.merch or '', key = a.key or '', t = now, n = st.n,
  }
  if extra.undo then entry.undo = extra.undo end
  if extra.rw then entry.rw = extra.rw end  -- the reward a claim (or its undo) was for
  if extra.promo then entry.promo = extra.promo end  -- promotions applied (_promotions.lua)
  if a.opid then entry.opid = a.opid end  -- the staff member (field 63 OP, TGL opid, operator)
  if extra.tier then entry.tier = extra.tier; entry.tier_from = extra.tier_from end
  local packed = cmsgpack.pack(entry)
  local jid = redis.call('XADD', J, '*', 'e', packed)
  -- The back office's feed, in the same call (gateway/ledger/feed.py): the same bytes, the
  -- entry's journal id and the card's program. One XADD, never trimmed here: the consumer trims
  -- what it has acknowledged (a MAXLEN here could drop entries SQL has not seen).
  redis.call('XADD', F, '*', 'e', packed, 'j', jid, 'p', st.prog or '')
  return { dv = dv, dp = dp, jid = jid, n = st.n, prev = prev, key = a.key or '', lots = lots }
end

--! include _loyalty.lua

-- Status, PIN lock and expiry gate. want = 'issued' (activation) or 'active' (everything else).
-- Returns a response code, or nil when the card may proceed.
local function gate(want, pin)
  local s = st.status
  if not s then return '14' end
  if s == 'lost' then return '41' end
  if s == 'suspended' then return '62' end
  if s == 'closed' then return '78' end
  -- The card's customer is inactive in the back office (set_holder.lua keeps the field): every
  -- operation is answered as for a suspended card, in this same atomic call.
  if st.cust == 'inactive' then return '62' end
  if s == 'locked' then
    local untl = num(st.pinu)
    if untl > 0 and now >= untl then
      st.status = 'active'; st.pinf = 0
      redis.call('HSET', S, 'status', 'active', 'pinf', 0, 'pinu', 0)
      s = 'active'
    else
      return pin and '75' or '62'
    end
  end
  if want == 'issued' then
    if s ~= 'issued' then return '12' end
    return nil
  end
  if s ~= 'active' then return '78' end
  if num(st.exp) > 0 and a.today > num(st.exp) then return '54' end
  return nil
end

-- PIN check with tries counted atomically; a missing PIN counts as a wrong one.
local function check_pin()
  if a.pinreq ~= 1 then return nil end
  if st.pinh and a.pin == st.pinh then
    if num(st.pinf) > 0 then redis.call('HSET', S, 'pinf', 0) end
    return nil
  end
  local fails = redis.call('HINCRBY', S, 'pinf', 1)
  if fails >= a.tries then
    local untl = 0
    if a.lock > 0 then untl = now + a.lock end
    st.status = 'locked'
    redis.call('HSET', S, 'status', 'locked', 'pinu', untl)
    return '75'
  end
  return '55'
end

-- Status, velocity and PIN checks in order; nil = go on.
local function admit(want, pin)
  local rc = gate(want, pin) or vel_check()
  if rc then return rc end
  ly.expire_due()  -- points due are gone before anything is decided on them
  if pin then return check_pin() end
  return nil
end

local function over_max(newbal)
  return a.maxbal > 0 and newbal > a.maxbal
end

-- One line in the program's reward claims stream (`tillgate rewards claims`): a claim, or the
-- void / reversal / rollback that undid one (`orig` = the claim's request key).
local function reward_log(key, op, dp, rw, orig)
  local e = { op = op, rw = rw or a.rw, card = st.mask or '', ch = a.ch, dp = dp,
              term = a.term or '', merch = a.merch or '', key = a.key or '', t = now,
              opid = a.opid or '' }
  if orig then e.orig = orig end
  redis.call('XADD', key, '*', 'e', cmsgpack.pack(e))
end

-- Undo the change recorded in the original's record `o` (a map of its fields). Returns a
-- response code and leaves the record marked undone. Used by void, reversal and rollback.
local function undo(o, op)
  local dv, dp = -num(o.dv), -num(o.dp)
  if string.sub(o.op or '', 1, 8) == 'transfer' then return '12', 'a transfer cannot be undone' end
  if num(st.bal) + dv < 0 or num(st.pts) + dp < 0 then
    return '12', 'value already spent'
  end
  local extra = { undo = o.jid, lots = o.lots, earned = ly.EARNED and ly.EARNED[o.op] }
  if o.prev == 'issued' then
    if num(st.ldn) > num(o.n) then return '12', 'spent since activation' end
    extra.status = 'issued'; extra.exp = 0
  end
  if st.last == o.key then extra.last = '' end
  -- a reward claim gives its stock back too: the gateway passes the reward's keys (a.rwk), or,
  -- on a Redis Cluster (a.rwsplit), gives it back itself in the reward's slot after this call,
  -- told so by the third value (the response's `rwu`: gateway/ledger/rewardsplit.py)
  if o.rwk and not a.rwsplit and (not a.rwk or KEYS[a.rwk] ~= o.rwk) then
    return '12', 'reward keys missing'
  end
  extra.rw = o.rw
  apply(op, dv, dp, extra)
  ly.expire_due()  -- points given back to a lot that is due since expire at once, journalled
  redis.call('HSET', O, 'undone', 1)
  if o.rwk and a.rwsplit then return '00', nil, o.rwk end
  if o.rwk then
    local has = redis.call('HMGET', o.rwk, 'stock', 'on')  -- a config reward has neither
    if has[1] then redis.call('HINCRBY', o.rwk, 'stock', 1) end
    if has[2] then redis.call('HINCRBY', o.rwk, 'claimed', -1) end
    reward_log(KEYS[a.rwk + 1], op, -num(o.dp), o.rw, o.key)
  end
  return '00'
end

-- A request's record as a map, in either layout (respond): its own fields, and those packed in
-- `u` (the packed layout) where no field of the same name was set since (undone, tomb, t).
local function record(key)
  local flat = redis.call('HGETALL', key)
  if #flat == 0 then return nil end
  local o = {}
  for i = 1, #flat, 2 do o[flat[i]] = flat[i + 1] end
  if o.u then
    for k, v in pairs(cmsgpack.unpack(o.u)) do
      if o[k] == nil then o[k] = v end
    end
  end
  return o
end


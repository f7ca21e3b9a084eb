--! no-prelude
-- Trim one card's journal to a checkpoint (gateway/ledger/trim.py, docs/ledger.md "Journal
-- trimming"): the entries up to and including ARGV[1] become one `checkpoint` entry, with that
-- same id, that carries what they add up to; the entries after it stay as they are.
--   KEYS[1] {c:<id>}:j   the card's journal stream (its only key: one slot)
--   ARGV[1] the id of the last entry to fold in (the caller has seen it in SQL)
--   ARGV[2] how many entries must stay after it, at least
-- Returns { entries folded in by this call (0: none), the checkpoint's id or why not; a reason
-- that starts `fault:` is a journal the audit would fault, the others a race or nothing to do }.
--
-- A stream cannot take an entry in front of later ones (XADD wants an id above the newest), so
-- the stream is written again: the checkpoint under ARGV[1], then every later entry under its
-- own id with its own bytes (their ids are what SQL, undo links and pages know them by). The
-- cost is the length of what stays. The checkpoint changes no value (dv = dp = 0): its bal and
-- pts are those of the last entry folded in, checked here against the running sum from the
-- previous checkpoint (or zero), so a journal the audit would fault is never trimmed.
local J = KEYS[1]
local cut, keep = ARGV[1], tonumber(ARGV[2])
local head = redis.call('XRANGE', J, '-', cut)
if #head == 0 or head[#head][1] ~= cut then return { 0, 'no entry ' .. cut } end
local kept = redis.call('XLEN', J) - #head
if kept < keep then return { 0, 'only ' .. kept .. ' entries after it' } end

local first = cmsgpack.unpack(head[1][2][2])
local bal, pts, cnt, tier, from = 0, 0, 0, nil, 1
if first.op == 'checkpoint' then
  if #head == 1 then return { 0, 'already the checkpoint' } end  -- idempotent: done before
  bal, pts, cnt, tier, from = first.bal, first.pts, first.cnt, first.tier, 2
end
local last
for i = from, #head do
  local e = cmsgpack.unpack(head[i][2][2])
  if e.op == 'checkpoint' then return { 0, 'fault: a checkpoint after the first entry' } end
  bal, pts = bal + e.dv, pts + e.dp
  if bal ~= e.bal or pts ~= e.pts then
    return { 0, 'fault: entry ' .. head[i][1] .. ' does not sum: run tillgate audit' }
  end
  cnt = cnt + 1
  if e.tier then tier = e.tier end
  last = e
end

local checkpoint = { op = 'checkpoint', card = last.card, ch = last.ch, dv = 0, dp = 0,
                     bal = bal, pts = pts, term = '', merch = '', key = '', t = last.t,
                     n = last.n, cnt = cnt }
if tier then checkpoint.tier = tier end
local rest = redis.call('XRANGE', J, '(' .. cut, '+')
redis.call('DEL', J)
redis.call('XADD', J, cut, 'e', cmsgpack.pack(checkpoint))
for _, entry in ipairs(rest) do
  redis.call('XADD', J, entry[1], unpack(entry[2]))
end
return { #head - from + 1, cut }

-- Reversal (HOST-SPEC 2.6) of the original named by KEYS[4].
-- Unknown original: leave a tombstone there (a late original then gets 05) and approve.
-- Already reversed, declined or a change-free original: approve and change nothing.
-- Applied: undo it exactly once, within a.window seconds; a load whose value was spent: 12.
-- A field 4 that is not the original's amount: 13, nothing changed.
local r = replay()
if r then return r end
-- A card never issued cannot have had the original applied: approve (a till retries a declined
-- reversal for ever) and change nothing.
if not st.status then return respond({ rc = '00' }) end
if st.status == 'lost' then return decline('41') end
local o = record(O)
if not o then
  redis.call('HSET', O, 'tomb', 1, 't', now)
  redis.call('EXPIRE', O, a.ttl)
  return respond({ rc = '00' })
end
-- HOST-SPEC 1.1, 2.6: a reversal carrying field 4 undoes the whole original, so its amount must
-- be the one the original asked for; another amount is refused and changes nothing (checked
-- before anything else about the original, so a wrong amount never looks approved).
if not o.tomb and num(a.amount) > 0 and o.ramt and num(o.ramt) ~= num(a.amount) then
  return decline('13', 'reversal amount differs from the original')
end
if o.tomb or o.undone or (o.rc ~= '00' and o.rc ~= '10') then return respond({ rc = '00' }) end
if not o.jid then
  if o.op == 'balance' or o.op == 'prevalidate' then return decline('12', 'not reversible') end
  return respond({ rc = '00' })
end
if now - num(o.t) > a.window then return decline('12', 'reversal window passed') end
local code, msg, rwu = undo(o, 'reversal')
if code ~= '00' then return decline(code, msg) end
-- a compensating reversal (gateway/ledger/compensate.py): the till was answered 96 for the
-- original, so a retransmission of it is declined as a late original, not replayed as approved
if a.refused then redis.call('HSET', O, 'resp', cmsgpack.pack({ rc = '05' })) end
-- the undone sale never happened: its invoice number may be used again (`freed`)
return respond({ rc = '00', amt = math.abs(num(o.dv) ~= 0 and num(o.dv) or num(o.dp)),
                 freed = o.inv, rwu = rwu })

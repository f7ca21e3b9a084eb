-- Operator rollback of the card's most recent transaction (a.lastkey, its record in KEYS[4]).
-- Called with a.norec = 1: an operator action has no request key of its own.
if not st.status then return decline('14') end
if (st.last or '') == '' or st.last ~= a.lastkey then return decline('25', 'nothing to roll back') end
local o = record(O)
if not o or o.undone or not o.jid then return decline('25', 'nothing to roll back') end
local code, msg, rwu = undo(o, 'rollback')
if code ~= '00' then return decline(code, msg) end
return respond({ rc = '00', amt = math.abs(num(o.dv) ~= 0 and num(o.dv) or num(o.dp)),
                 rwu = rwu })

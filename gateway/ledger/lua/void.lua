-- Void: undo the original named by KEYS[4], which must exist in this card's slot (else 25).
-- A void of a load takes value out, so it needs the PIN; a void of an activation (deactivation)
-- is allowed only while nothing was spent since.
local r = replay()
if r then return r end
local o = record(O)
if not o or o.tomb or (o.rc ~= '00' and o.rc ~= '10') then return decline('25') end
local rc = admit('active', num(o.dv) > 0)
if rc then return decline(rc) end
if not o.jid then return decline('12', 'nothing to void') end
if o.undone then return decline('12', 'already undone') end
local code, msg, rwu = undo(o, 'void')
if code ~= '00' then return decline(code, msg) end
-- the undone sale never happened: its invoice number may be used again (`freed`)
return respond({ rc = '00', amt = math.abs(num(o.dv) ~= 0 and num(o.dv) or num(o.dp)),
                 freed = o.inv, rwu = rwu })

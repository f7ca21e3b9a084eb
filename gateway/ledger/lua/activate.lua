-- Activate a pre-issued card with a variable initial load (gift) or with nothing (loyalty).
-- a.amount: initial load; a.exp: expiry YYYYMMDD from today, 0 = never.
local r = replay()
if r then return r end
local rc = admit('issued', false)
if rc then return decline(rc) end
if over_max(a.amount) then return decline('61') end
local u = apply('activate', a.amount, 0, { status = 'active', exp = a.exp, last = a.key })
return respond({ rc = '00', amt = a.amount }, u)

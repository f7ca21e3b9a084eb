-- Balance transfer, step 2 on the target card: credit a.amount and a.points (idempotent on the
-- request key, recorded in the target's slot).
local too_late = late()
if too_late then return too_late end
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
if over_max(num(st.bal) + a.amount) then return decline('61') end
local u = apply('transfer_in', a.amount, a.points, {})
return respond({ rc = '00', amt = a.amount, ptsd = a.points }, u)

-- Earn points on a purchase; a.points was computed from the program's rules by the processor.
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
local u = apply('earn', 0, a.points, { last = a.key })
return respond({ rc = '00', amt = a.amount, ptsd = a.points }, u)

-- Add points directly (points-only programs); they count towards a tier like earned ones.
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
local u = apply('add_points', 0, a.amount, { last = a.key })
ly.tier_up()
ly.convert()
return respond({ rc = '00', amt = a.amount, ptsd = a.amount }, u)

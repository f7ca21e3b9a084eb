-- Spend points (a.points: the amount asked, or the reward's cost); 51 when short.
local r = replay()
if r then return r end
local rc = admit('active', true)
if rc then return decline(rc) end
if num(st.pts) < a.points then return decline('51') end
local u = apply('redeem_points', 0, -a.points, { last = a.key })
return respond({ rc = '00', amt = a.points, ptsd = -a.points }, u)

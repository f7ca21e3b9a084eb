-- Return of goods: take back the points the returned amount had earned (a.points), never
-- more than the card holds.
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
local back = math.min(a.points, num(st.pts))
local u = apply('return', 0, -back, { last = a.key })
return respond({ rc = '00', amt = a.amount, ptsd = -back }, u)

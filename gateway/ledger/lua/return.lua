-- Return of goods: take back the points the returned amount had earned (a.points, or at the
-- card's tier's rate a.tp), never more than the card holds; from the latest lots first.
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
local pts = a.points
if a.tp then pts = a.tp[ly.tier_at(st.tier)] or 0 end
local back = math.min(pts, num(st.pts))
local u = apply('return', 0, -back, { last = a.key })
return respond({ rc = '00', amt = a.amount, ptsd = -back }, u)

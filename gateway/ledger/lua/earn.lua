-- Earn points on a purchase; a.points was computed from the program's rules by the processor,
-- a.tp (with tiers) holds the points at each tier's rate: the card's tier before this earn
-- decides. Then a tier up and a conversion to money, each its own entry (_loyalty.lua).
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
local pts = a.points
if a.tp then pts = a.tp[tier_at(st.tier)] or 0 end
local u = apply('earn', 0, pts, { last = a.key })
tier_up()
convert()
return respond({ rc = '00', amt = a.amount, ptsd = pts }, u)

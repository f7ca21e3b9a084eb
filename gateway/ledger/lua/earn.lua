-- Earn points on a purchase; a.points was computed from the program's rules by the processor,
-- and the active promotions (a.promo) are applied to it here.
--! include _promotions.lua
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
local points = promo_points(a.points)
if not st.e1 then redis.call('HSET', S, 'e1', 1) end  -- first purchase promotions: once a card
local u = apply('earn', 0, points, { last = a.key, promo = promo_ids() })
return respond({ rc = '00', amt = a.amount, ptsd = points }, u)

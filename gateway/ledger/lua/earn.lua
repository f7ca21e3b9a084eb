-- Earn points on a purchase; a.points was computed from the program's rules by the processor,
-- a.tp (with tiers) holds the points at each tier's rate: the card's tier before this earn
-- decides. The active promotions (a.promo) are applied to that here. Then a tier up and a
-- conversion to money, each its own entry (_loyalty.lua).
--! include _promotions.lua
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
local base = a.points
if a.tp then base = a.tp[ly.tier_at(st.tier)] or 0 end
local points = promo_points(base)
if not st.e1 then redis.call('HSET', S, 'e1', 1) end  -- first purchase promotions: once a card
local u = apply('earn', 0, points, { last = a.key, promo = promo_ids() })
ly.tier_up()
ly.convert()
return respond({ rc = '00', amt = a.amount, ptsd = points }, u)

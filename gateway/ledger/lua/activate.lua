-- Activate a pre-issued card with a variable initial load (gift) or with nothing (loyalty).
-- a.amount: initial load (a load bonus may add to it); a.exp: expiry YYYYMMDD from today,
-- 0 = never.
--! include _promotions.lua
local r = replay()
if r then return r end
local rc = admit('issued', false)
if rc then return decline(rc) end
local value = a.amount + promo_load_bonus()  -- a load bonus on the initial load (a.promo)
if over_max(value) then return decline('61') end
local u = apply('activate', value, 0, { status = 'active', exp = a.exp, last = a.key,
                                         promo = promo_ids() })
return respond({ rc = '00', amt = a.amount }, u)

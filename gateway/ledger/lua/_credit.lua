-- Money onto an active card: reload.lua and refund.lua follow the same rules and differ only in
-- the operation their journal entry names (`credit_op`, set by each before this part).
-- Refused (61) above the program's maximum balance, a promotion's bonus included.
local r = replay()
if r then return r end
local rc = admit('active', false)
if rc then return decline(rc) end
local value = a.amount + promo_load_bonus()  -- a load bonus (reload only: a.promo)
if over_max(num(st.bal) + value) then return decline('61') end
local u = apply(credit_op, value, 0, { last = a.key, promo = promo_ids() })
return respond({ rc = '00', amt = a.amount }, u)

-- Pay out the whole balance; the card stays active.
local r = replay()
if r then return r end
local rc = admit('active', true)
if rc then return decline(rc) end
local bal = num(st.bal)
if bal <= 0 then return respond({ rc = '00', amt = 0 }) end
local u = apply('cashout', -bal, 0, { last = a.key })
return respond({ rc = '00', amt = bal }, u)

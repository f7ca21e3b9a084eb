-- Purchase. Short balance: partial approval (10) of what is there when a.partial = 1, else 51.
-- An advice (a.advice = 1) was completed offline: it is posted in full even into overdraft.
local r = replay()
if r then return r end
local rc = admit('active', a.advice ~= 1)
if rc then return decline(rc) end
local bal = num(st.bal)
local take, code, msg = a.amount, '00', nil
if bal < take and a.advice ~= 1 then
  if a.partial == 1 and bal > 0 then take, code = bal, '10' else return decline('51') end
elseif bal < take then
  msg = 'overdraft'
end
local u = apply('redeem', -take, 0, { last = a.key })
return respond({ rc = code, amt = take, msg = msg }, u)

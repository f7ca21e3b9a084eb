-- Can this card be activated? Changes nothing but the stored response of the request key.
local r = replay()
if r then return r end
local rc = admit('issued', false)
if rc then return decline(rc) end
return respond({ rc = '00', amt = a.amount })

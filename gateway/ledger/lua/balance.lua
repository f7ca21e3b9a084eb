-- Balance inquiry (money or points): reveals value, so the PIN is checked; changes nothing else.
local r = replay()
if r then return r end
local rc = admit('active', true)
if rc then return decline(rc) end
return respond({ rc = '00' })

-- Activate a pre-valued card: the amount must be the card's face value (set at issue), or,
-- for a card issued without one, one of the program's face values (a.faces).
local r = replay()
if r then return r end
local rc = admit('issued', false)
if rc then return decline(rc) end
local face = num(st.face)
if face > 0 then
  if a.amount ~= face then return decline('13', 'not the face value') end
else
  local ok = false
  for _, v in ipairs(a.faces) do if v == a.amount then ok = true end end
  if #a.faces == 0 then return decline('12', 'not a pre-valued card') end
  if not ok then return decline('13', 'not a face value') end
end
if over_max(a.amount) then return decline('61') end
local u = apply('activate', a.amount, 0, { status = 'active', exp = a.exp, last = a.key })
return respond({ rc = '00', amt = a.amount }, u)

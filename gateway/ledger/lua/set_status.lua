-- Operator change of a card's status, journaled (a zero-value entry: who, when, which way):
--   a.to = 'suspended'  from issued, active or locked (the status it had is kept in `prev`)
--   a.to = 'reinstate'  from suspended: back to `prev` (active after a velocity suspension)
--   a.to = 'lost'       reported lost or stolen: from any status but closed; for good (41)
--   a.to = 'closed'     from any status; for good (78); the balance stays, for the audit
-- Returns rc 00, 14 for an unknown card, or 12 with a message when the change is not allowed.
if not st.status then return decline('14') end
local from = st.status
local FROM = {
  suspended = { issued = true, active = true, locked = true },
  reinstate = { suspended = true },
  lost = { issued = true, active = true, locked = true, suspended = true },
  closed = { issued = true, active = true, locked = true, suspended = true, lost = true },
}
local allowed = FROM[a.to]
if not allowed then return decline('12', 'unknown status change') end
if not allowed[from] then return decline('12', 'card is ' .. from) end
local to = a.to
if to == 'reinstate' then
  to = st.prev or 'active'  -- a velocity rule's suspension (vlock) keeps no `prev`
  redis.call('HDEL', S, 'prev', 'vlock')
elseif to == 'suspended' then
  redis.call('HSET', S, 'prev', from)
end
apply('status:' .. a.to, 0, 0, { status = to })
return respond({ rc = '00', msg = from .. ' -> ' .. to })

-- Balance transfer, compensation on the source when the target refused: restore what
-- transfer_out moved, make the card active again, and make the target's refusal (a.rc) the
-- stored response of the request key. Idempotent: a second call changes nothing.
local too_late = late()
if too_late then return too_late end
local o = record(R)
if not o or o.undone or o.op ~= 'transfer_out' or not o.jid then
  return { redis.call('HGET', R, 'resp') or cmsgpack.pack({ rc = a.rc }), 0 }
end
apply('transfer_back', -num(o.dv), -num(o.dp), { status = 'active', undo = o.jid })
redis.call('HSET', R, 'undone', 1)
return respond({ rc = a.rc, msg = a.msg })

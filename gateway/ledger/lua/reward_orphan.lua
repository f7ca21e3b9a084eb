--! no-prelude
-- The sweep of reward reservations nobody settled (gateway/ledger/rewardsplit.py; a gateway that
-- died between the reservation and its settlement): in the card's slot, what became of the
-- request. The card's record of it answers (its code); a request the card script never ran for
-- gets a tombstone, so that it never will (a late retransmission is answered 05, as after a
-- reversal: replay() in _prelude.lua) and the item can be given back.
--   KEYS[1] {c:<id>}:r:<key>   ARGV[1] now, ARGV[2] ttl
-- Returns the record's response code, or '' (a tombstone: the claim did not happen).
local rec = redis.call('HMGET', KEYS[1], 'rc', 'tomb')
if rec[1] then return rec[1] end
if not rec[2] then
  redis.call('HSET', KEYS[1], 'tomb', 1, 't', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return ''

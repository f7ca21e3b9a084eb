--! no-prelude
-- Phase 1, in the merchant's slot: claim the request key and reserve the invoice number.
--   KEYS[1] {m:<merchant>}:k:<request key>   (value: the request's fingerprint)
--   KEYS[2] {m:<merchant>}:inv               (hash invoice -> request key holding it)
--   ARGV: fingerprint, ttl seconds, invoice ('' = none), request key
-- Returns 0 new, 1 retransmission (same content), 2 key reused with other content,
-- 3 invoice number already used.
local fp = redis.call('GET', KEYS[1])
if fp then
  if fp == ARGV[1] then return 1 end
  return 2
end
if ARGV[3] ~= '' then
  local holder = redis.call('HGET', KEYS[2], ARGV[3])
  if holder and holder ~= ARGV[4] then return 3 end
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 0

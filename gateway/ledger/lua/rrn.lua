--! no-prelude
-- Reseller retransmissions, in the merchant's slot: the first request with an RRN claims it.
--   KEYS[1] {m:<merchant>}:rrn:<message class>:<rrn>   (hash: key, fp)
--   ARGV: request key, fingerprint, ttl seconds
-- Returns {} when the RRN is new (now claimed by this request key), or {original key,
-- original fingerprint} when it was claimed before (by this key or another).
local held = redis.call('HMGET', KEYS[1], 'key', 'fp')
if held[1] then return { held[1], held[2] } end
redis.call('HSET', KEYS[1], 'key', ARGV[1], 'fp', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {}

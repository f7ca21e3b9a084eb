--! no-prelude
-- A reseller's settlement record of the day, in the merchant's slot: one entry per request key,
-- so a replayed request never settles twice.
--   KEYS[1] {m:<merchant>}:settle:<yyyymmdd>   (hash request key -> msgpack entry)
--   ARGV: request key, packed entry, ttl seconds
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1

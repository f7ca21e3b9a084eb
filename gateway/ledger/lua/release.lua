--! no-prelude
-- Phase 3: free an invoice number whose request the card script refused (a declined sale does
-- not burn the number). Only the request that holds it may free it.
--   KEYS[1] {m:<merchant>}:inv   ARGV: invoice, request key
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0

--! no-prelude
-- Raise an alert once per (rule, scope value, window): the de-duplication key is set with NX and
-- the alert appended to the durable alert stream in the same step, so either both happen or
-- neither. Delivery (gateway/alerts) reads the stream with one consumer group per sink.
--   KEYS[1] {alerts}:d:<rule>:<scope value>:<window>   KEYS[2] {alerts}:q (stream)
--   ARGV[1] seconds the de-duplication key lives   ARGV[2] stream length cap (approximate)
--   ARGV[3] the alert (JSON)
-- Returns the stream id, or false when this alert was already raised in this window.
if not redis.call('SET', KEYS[1], 1, 'NX', 'EX', ARGV[1]) then return false end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'a', ARGV[3])

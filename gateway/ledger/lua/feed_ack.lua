--! no-prelude
-- The back office's acknowledgement of feed entries it has written to SQL, and the trim that
-- allows, in one call (gateway/backoffice/feed.py):
--   KEYS[1] a feed stream (gateway/ledger/feed.py)   ARGV[1] the consumer group
--   ARGV[2 ..] the ids of the entries SQL has committed
-- Trims the stream to the group's oldest entry not yet acknowledged: its oldest pending entry,
-- or, with none pending, everything up to the last one delivered. Never an entry SQL has not
-- confirmed. Returns the stream's length after: what is left to ingest (the lag).
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local floor
if pending[1] > 0 then
  floor = pending[2]
else
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    if info['name'] == ARGV[1] and info['last-delivered-id'] ~= '0-0' then
      local ms, seq = string.match(info['last-delivered-id'], '^(%d+)-(%d+)$')
      floor = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
    end
  end
end
if floor then redis.call('XTRIM', KEYS[1], 'MINID', floor) end
return redis.call('XLEN', KEYS[1])

-- One round trip for a request on one card: the claim (_claim.lua), then, unless it refuses, the
-- operation's card script (_prelude.lua + <op>.lua), in one atomic call. The loader makes one of
-- these per card script, named `claim+<op>`, with the card script in place of the marked line.
--   KEYS[1 .. ARGV[2]]   the card script's KEYS (state, journal, records, card velocity counters)
--   KEYS[ARGV[2] + 1 ..] claim.lua's KEYS (request key, invoice numbers, terminal rules)
--   ARGV[1]              the card script's parameters
--   ARGV[2]              how many of KEYS are the card script's
--   ARGV[3]              the deadline (epoch milliseconds): from then on the gateway may have
--                        stopped waiting for this call and answered 96 ("nothing was changed")
--   ARGV[4 ..]           claim.lua's ARGV
-- Returns { claim's answer } when the claim refuses (codes 2 to 5), else { claim's answer, the
-- card script's two return values }; an error reply LATE, changing nothing, when Redis runs the
-- call at or after its deadline (a server that was stalled, then ran what waited in its socket).
--
-- The keys of the merchant and of the card keep their own hash tags, so on a Redis Cluster the
-- two halves would be two calls again, as they are for a transfer (claim.lua).
local now = redis.call('TIME')
if tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) >= tonumber(ARGV[3]) then
  return redis.error_reply('LATE run after its deadline: the gateway has answered 96')
end

local claimed = claim({ unpack(KEYS, tonumber(ARGV[2]) + 1) }, { unpack(ARGV, 4) })
local code = type(claimed) == 'table' and claimed[1] or claimed
if code ~= 0 and code ~= 1 then return { claimed } end

local function card_script()
--! card script
end

local out = card_script()
return { claimed, out[1], out[2] }

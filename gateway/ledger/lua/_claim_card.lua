-- One round trip for a request on one card: the claim (_claim.lua), then, unless it refuses, the
-- operation's card script (_prelude.lua + <op>.lua), in one atomic call. The loader makes one of
-- these per card script, named `claim+<op>`, with the card script in place of the marked line.
--   KEYS[1 .. ARGV[2]]   the card script's KEYS (state, journal, records, card velocity counters)
--   KEYS[ARGV[2] + 1 ..] claim.lua's KEYS (request key, invoice numbers, terminal rules)
--   ARGV[1]              the card script's parameters
--   ARGV[2]              how many of KEYS are the card script's
--   ARGV[3 ..]           claim.lua's ARGV
-- Returns { claim's answer } when the claim refuses (codes 2 to 5), else { claim's answer, the
-- card script's two return values }.
--
-- The keys of the merchant and of the card keep their own hash tags, so on a Redis Cluster the
-- two halves would be two calls again, as they are for a transfer (claim.lua).
local claimed = claim({ unpack(KEYS, tonumber(ARGV[2]) + 1) }, { unpack(ARGV, 3) })
local code = type(claimed) == 'table' and claimed[1] or claimed
if code ~= 0 and code ~= 1 then return { claimed } end

local function card_script()
--! card script
end

local out = card_script()
return { claimed, out[1], out[2] }

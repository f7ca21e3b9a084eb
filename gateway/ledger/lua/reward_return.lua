--! no-prelude
-- The undo of a reward claim on a Redis Cluster (void, reversal, rollback, `rewards void-claim`;
-- gateway/ledger/rewardsplit.py): after the card script undid the claim (its points back), the
-- item goes back to the reward and the undo's line into the claims stream, in the reward's slot,
-- once per undo request key (a retransmission of the undo finds its mark and changes nothing).
-- The stock rule is the one-Redis undo's (`undo` in _prelude.lua).
--   KEYS[1] {rw:<program>}:<id>  KEYS[2] {rw:<program>}:ret:<undo key>  KEYS[3] {rw:<program>}:cl
--   ARGV[1] the claims stream entry (msgpack), ARGV[2] seconds the mark is kept
-- Returns 1 when it gave the item back now, 0 when it had already.
local W, MARK, CL = KEYS[1], KEYS[2], KEYS[3]
if not redis.call('SET', MARK, 1, 'NX', 'EX', ARGV[2]) then return 0 end
local has = redis.call('HMGET', W, 'stock', 'on')  -- a config reward has neither
if has[1] then redis.call('HINCRBY', W, 'stock', 1) end
if has[2] then redis.call('HINCRBY', W, 'claimed', -1) end
redis.call('XADD', CL, '*', 'e', ARGV[1])
return 1

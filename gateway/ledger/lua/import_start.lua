--! no-prelude
-- `cards import`, step 1: a batch waits for its one-time code.
--   KEYS[1] imp:{<file digest>}   (hash: state, codeh, salt, tries, cards, created)
--   ARGV: code hash, salt, cards, now, ttl seconds
-- A batch already confirmed or done keeps its state (returned); a pending one gets the new code
-- and its tries start over. Returns the state the batch is in afterwards.
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'confirmed' or state == 'done' then return state end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'pending', 'codeh', ARGV[1], 'salt', ARGV[2], 'tries', 0,
           'cards', ARGV[3], 'created', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 'pending'

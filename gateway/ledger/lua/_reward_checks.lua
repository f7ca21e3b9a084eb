-- The checks a reward's own hash decides, shared by claim_reward.lua (one Redis: the whole claim
-- in one call) and reward_reserve.lua (a Redis Cluster's step 1, in the reward's slot). Needs
-- `a` (today, merch) and `num` defined before the include line.
local REWARD_FIELDS = { 'on', 'pts', 'stock', 'from', 'to', 'clubs', 'tier' }

-- rw: HMGET of REWARD_FIELDS of a reward that exists. Returns a refusal's code and message
-- (disabled, not valid today, a club reward at another merchant), or nil.
local function reward_refusal(rw)
  if rw[1] ~= '1' then return '12', 'reward disabled' end
  if (num(rw[4]) > 0 and a.today < num(rw[4])) or (num(rw[5]) > 0 and a.today > num(rw[5])) then
    return '12', 'reward not valid today'
  end
  local clubs = rw[6] or ''
  if clubs ~= '' and not string.find(',' .. clubs .. ',', ',' .. a.merch .. ',', 1, true) then
    return '58', 'reward not claimable here'
  end
  return nil
end

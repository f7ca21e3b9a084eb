-- Operator unlock of a PIN-locked card, or of a card a velocity rule suspended (vlock).
-- Returns 1 when it was locked.
if st.status == 'suspended' and st.vlock then
  redis.call('HSET', S, 'status', 'active')
  redis.call('HDEL', S, 'vlock')
  return 1
end
if st.status ~= 'locked' then return 0 end
redis.call('HSET', S, 'status', 'active', 'pinf', 0, 'pinu', 0)
return 1

-- Operator unlock of a PIN-locked card. Returns 1 when it was locked.
if st.status ~= 'locked' then return 0 end
redis.call('HSET', S, 'status', 'active', 'pinf', 0, 'pinu', 0)
return 1

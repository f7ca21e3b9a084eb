-- The back office tells the card whether its customer is inactive (gateway/ledger/holders.py):
--   a.cust = 'inactive'  the customer holding this card is inactive: the gate answers 62
--   a.cust = ''          it is active again, or the card left that customer (unlinked, moved)
-- The field `cust` of the state hash is what the gate reads, so the refusal is atomic with every
-- operation. A change is journaled as a zero-value entry (`cust:inactive` / `cust:active`: who,
-- when, which way), as an operator's status change is; setting what is already set changes and
-- journals nothing (the back office re-applies the field freely, e.g. `customers sync-status`).
-- Returns rc 00 with msg 'changed' or 'unchanged', or 14 for an unknown card.
if not st.status then return decline('14') end
local want = a.cust
if want ~= 'inactive' and want ~= '' then return decline('12', 'unknown customer status') end
if (st.cust or '') == want then return respond({ rc = '00', msg = 'unchanged' }) end
if want == '' then
  redis.call('HDEL', S, 'cust')
  st.cust = nil
else
  redis.call('HSET', S, 'cust', want)
  st.cust = want
end
apply(want == '' and 'cust:active' or 'cust:inactive', 0, 0)
return respond({ rc = '00', msg = 'changed' })

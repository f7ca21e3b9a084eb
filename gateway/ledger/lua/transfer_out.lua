-- Balance transfer, step 1 on the source card: move all value and points out and mark the card
-- lost for ever. Step 2 (transfer_in) credits the target in its own slot; if that fails,
-- transfer_back restores the source. See docs/ledger.md.
local too_late = late()
if too_late then return too_late end
local r = replay()
if r then return r end
local rc = admit('active', true)
if rc then return decline(rc) end
local bal, pts = num(st.bal), num(st.pts)
local u = apply('transfer_out', -bal, -pts, { status = 'lost', last = '' })
return respond({ rc = '00', amt = bal, ptsd = pts }, u)

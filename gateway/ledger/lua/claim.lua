--! no-prelude
--! include _claim.lua
-- Phase 1 as a call of its own, in the merchant's slot (_claim.lua says what it does): balance
-- transfers claim first, then run scripts on two cards. Every other operation claims inside its
-- card script's call (_claim_card.lua): one round trip, not two.
return claim(KEYS, ARGV)

-- Refund onto the card (_credit.lua).
local credit_op = 'refund'
--! include _credit.lua

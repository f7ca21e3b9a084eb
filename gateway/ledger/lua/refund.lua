-- Refund onto the card (_credit.lua).
local credit_op = 'refund'
--! include _promotions.lua
--! include _credit.lua

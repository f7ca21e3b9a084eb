-- Add value (_credit.lua).
local credit_op = 'reload'
--! include _promotions.lua
--! include _credit.lua

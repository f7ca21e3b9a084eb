-- Add value (_credit.lua).
local credit_op = 'reload'
--! include _credit.lua

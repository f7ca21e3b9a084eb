-- Create a pre-issued (inactive) card. Returns 0 when the number is already taken.
if redis.call('EXISTS', S) == 1 then return 0 end
local f = { 'prog', a.prog, 'kind', a.kind, 'status', 'issued', 'bal', 0, 'pts', 0, 'n', 0,
            'mask', a.mask, 'created', now, 'face', a.face or 0 }
if a.pinh then f[#f + 1] = 'pinh'; f[#f + 1] = a.pinh end
if a.batch then f[#f + 1] = 'batch'; f[#f + 1] = a.batch end  -- cards import: its file's digest
redis.call('HSET', S, unpack(f))
return 1

-- Promotions the gateway found active for this request (gateway/ledger/promotions.py), applied
-- in this same call so two gateways never disagree. A load's a.promo: a list of { id, k, min, b };
-- an earn's: a.pm, a.pmi, a.pb (gateway/ledger/promotions.py EarnPromotions).
-- What applied is named in the journal entry (`promo`, ids joined by commas): the bonus is part
-- of the operation's own entry, so a void or reversal of it takes the bonus back too.
local applied = nil  -- the ids that applied, joined by commas (a string: no table to make)

local function promo_applied(id)
  applied = applied and (applied .. ',' .. id) or id
end

-- Points an earn gives: the highest multiplier that applies (a.pm, its id a.pmi) times the
-- purchase's points, plus each points bonus that applies (a.pb: id, points, first, ... as the
-- gateway decided them for this amount; first = 1: only on the card's first earn, kept in state
-- `e1`). The gateway passes scalars and a flat list, cheaper to unpack than maps.
local function promo_points(base)
  local bonus, pb = 0, a.pb
  if pb then
    for i = 1, #pb, 3 do
      if pb[i + 2] == 0 or not st.e1 then
        bonus = bonus + pb[i + 1]
        promo_applied(pb[i])
      end
    end
  end
  if not a.pm or base <= 0 then return base + bonus end
  applied = applied and (a.pmi .. ',' .. applied) or a.pmi  -- the multiplier is named first
  return base * a.pm + bonus
end

-- Money a load gets on top: each load bonus whose minimum the amount reaches.
local function promo_load_bonus()
  local bonus = 0
  for _, p in ipairs(a.promo or {}) do
    if p.k == 'load' and a.amount >= num(p.min) then
      bonus = bonus + num(p.b)
      promo_applied(p.id)
    end
  end
  return bonus
end

local function promo_ids() return applied end

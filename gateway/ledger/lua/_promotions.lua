-- Promotions the gateway found active for this request (gateway/ledger/promotions.py), applied
-- in this same call so two gateways never disagree. a.promo: a list of { id, k, m, p, min, b }.
-- What applied is named in the journal entry (`promo`, ids joined by commas): the bonus is part
-- of the operation's own entry, so a void or reversal of it takes the bonus back too.
local promo_applied = {}

-- Points an earn gives: the highest multiplier that applies times the purchase's points, plus
-- each points bonus that applies (first purchase: the card's first earn, kept in state `e1`).
local function promo_points(base)
  local mult, mult_id, bonus = 1, nil, 0
  for _, p in ipairs(a.promo or {}) do
    if p.k == 'mult' and p.m > mult then
      mult, mult_id = p.m, p.id
    elseif (p.k == 'first' and not st.e1) or (p.k == 'spend' and a.amount >= num(p.min)) then
      bonus = bonus + num(p.p)
      promo_applied[#promo_applied + 1] = p.id
    end
  end
  if mult_id and base > 0 then table.insert(promo_applied, 1, mult_id) else mult = 1 end
  return base * mult + bonus
end

-- Money a load gets on top: each load bonus whose minimum the amount reaches.
local function promo_load_bonus()
  local bonus = 0
  for _, p in ipairs(a.promo or {}) do
    if p.k == 'load' and a.amount >= num(p.min) then
      bonus = bonus + num(p.b)
      promo_applied[#promo_applied + 1] = p.id
    end
  end
  return bonus
end

local function promo_ids()
  if #promo_applied == 0 then return nil end
  return table.concat(promo_applied, ',')
end

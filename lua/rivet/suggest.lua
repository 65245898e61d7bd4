-- "Did you mean ...?": the known name nearest to a misspelt one, for the errors of the
-- schema checks. Only runs when an error is being raised.
local M = {}

-- Edit distance with adjacent transpositions (optimal string alignment), byte-wise.
local function distance(a, b)
  local la, lb = #a, #b
  local prev2, prev, cur = {}, {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cb = b:byte(j)
      local cost = ca == cb and 0 or 1
      local d = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if i > 1 and j > 1 and ca == b:byte(j - 1) and a:byte(i - 1) == cb then
        d = math.min(d, prev2[j - 2] + 1)
      end
      cur[j] = d
    end
    prev2, prev, cur = prev, cur, prev2
  end
  return prev[lb]
end

--- The name of `names` (an array) closest to `name`: the same but for case, else within
--- an edit distance of a third of its length (at least 1, at most 3); nil when none is.
function M.nearest(name, names)
  if type(name) ~= "string" then return nil end
  local lower = name:lower()
  local best, best_d
  local limit = math.max(1, math.min(3, math.floor(#name / 3)))
  for i = 1, #names do
    local n = names[i]
    local d = n:lower() == lower and 0 or distance(lower, n:lower())
    if d <= limit and (best_d == nil or d < best_d) then best, best_d = n, d end
  end
  return best
end

--- " (did you mean 'x'?)" for the nearest name, else " (<what>: a, b, c)" listing up to
--- ten of `names`, or " (<none>)" when there are none.
function M.hint(name, names, what, none)
  local n = M.nearest(name, names)
  if n then return " (did you mean '" .. n .. "'?)" end
  if #names == 0 then return " (" .. none .. ")" end
  local shown = {}
  for i = 1, math.min(#names, 10) do shown[i] = names[i] end
  return " (" .. what .. ": " .. table.concat(shown, ", ") .. (#names > 10 and ", ..." or "") .. ")"
end

return M

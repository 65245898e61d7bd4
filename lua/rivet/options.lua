-- Option tables: unknown keys are errors (a misspelt option must not be ignored), and
-- the official client's names are accepted as aliases of ours.
local M = {}

--- Raises a plain Lua error naming the first key of `opts` that is not in `valid` (an
--- array of names), with the valid ones. `what` names the call ("rivet.client",
--- "getOrCreate", ...).
function M.check_keys(opts, valid, what, level)
  local set = valid.set
  if not set then
    set = {}
    for i = 1, #valid do set[valid[i]] = true end
    valid.set = set
  end
  for k in pairs(opts) do
    if not set[k] then
      local names = {}
      for i = 1, #valid do names[i] = valid[i] end
      table.sort(names)
      error(what .. ": unknown option '" .. tostring(k) .. "' (valid: " .. table.concat(names, ", ") .. ")",
        level + 1)
    end
  end
end

--- Copies `opts`, renaming aliases (alias -> name); raises when both are given.
function M.aliases(opts, map, what, level)
  local out
  for alias, name in pairs(map) do
    if opts[alias] ~= nil then
      if opts[name] ~= nil then
        error(what .. ": options '" .. alias .. "' and '" .. name .. "' mean the same; give one", level + 1)
      end
      if not out then
        out = {}
        for k, v in pairs(opts) do out[k] = v end
      end
      out[name], out[alias] = out[alias], nil
    end
  end
  return out or opts
end

return M

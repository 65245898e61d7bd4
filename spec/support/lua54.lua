-- Lua 5.4-only syntax for the specs. LuaJIT cannot parse this file: require it only
-- when not running on LuaJIT (specs skip what needs it there, saying so in their name).
local M = {}

--- Opens a value with open() into a `<close>` variable, calls use(v) inside that scope
--- and returns v after the scope has ended (closed).
function M.in_close_scope(open, use)
  local seen
  do
    local v <close> = open()
    use(v)
    seen = v
  end
  return seen
end

return M

-- What Lua 5.4 and LuaJIT (the 5.1 library) do differently, for the specs and their
-- helpers (the library's own differences are in lua/rivet/compat.lua).
local M = {}

M.pack = table.pack or function(...) return { n = select("#", ...), ... } end
M.unpack = table.unpack or unpack -- luacheck: ignore 113

--- os.execute(cmd) as 5.4 reports it: true when the command exited 0, and its exit code.
--- (LuaJIT returns the raw wait status of system(), which is always truthy.)
function M.execute(cmd)
  local a, _, code = os.execute(cmd)
  if type(a) == "number" then
    if a >= 256 then a = math.floor(a / 256) end
    return a == 0, a
  end
  return a == true, code
end

return M

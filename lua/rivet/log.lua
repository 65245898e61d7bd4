-- Library logging: silent unless the user installs a logger with rivet.setLogger(fn).
-- fn(level, message, fields) with level "debug" | "info" | "warn" | "error"; fields is a
-- table or nil. Callers must never put tokens or connection params in message or fields.
local M = {}

local logger = nil

--- Installs fn(level, message, fields) as the logger (nil: silent again).
function M.set(fn)
  if fn ~= nil and type(fn) ~= "function" then
    error("bad argument #1 to 'setLogger': expected a function or nil, got " .. type(fn), 3)
  end
  logger = fn
  -- libwebsockets' own lines (errors, warnings, notices) go to the same logger
  require("rivet.core").set_ws_logger(fn and function(level, line)
    M.emit(level, "libwebsockets: " .. line, nil)
  end or nil)
end

--- True when a logger is installed (lets callers skip building costly messages).
function M.enabled() return logger ~= nil end

--- Hands one message to the logger; a no-op without one. A failing logger is ignored:
--- logging must never break the loop that called it.
function M.emit(level, msg, fields)
  local fn = logger
  if fn == nil then return end
  pcall(fn, level, msg, fields)
end

return M

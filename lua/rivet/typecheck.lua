-- Validators for the types of a schema module (docs/schema.md, "Type mapping"). Each
-- schema type becomes a function check(v) that returns nothing when v travels as a value
-- of that JavaScript type (docs/values.md), else what is wrong ("must be a number, got
-- string") and where, as a path below v (".points[2].x"; nil for v itself). They are
-- made once, when the client is created; checking a value that passes allocates nothing.
local core = require("rivet.core")
local compat = require("rivet.compat")
local suggest = require("rivet.suggest")

local null, array_mt, map_mt, bytes_mt = core.null, core.array_mt, core.map_mt, core.bytes_mt
local type, getmetatable, pairs, next, tostring = type, getmetatable, pairs, next, tostring
local floor, find, format = math.floor, string.find, string.format
local math_type = math.type -- nil on LuaJIT: numbers there never become bigints
local valid_utf8 = compat.valid_utf8
local TWO53 = 9007199254740992

-- LuaJIT: int64_t / uint64_t cdata are integers (docs/values.md, "Integers on LuaJIT").
local is_int64, int64_in_double = function() return false end, nil
if rawget(_G, "jit") then
  local ok, int64 = pcall(require, "rivet.int64")
  if ok then
    local ffi = require("ffi")
    local lo, hi = ffi.new("int64_t", -TWO53), ffi.new("int64_t", TWO53)
    local uhi = ffi.new("uint64_t", TWO53)
    is_int64 = int64.is_int64
    -- within ±2^53: it travels as a JavaScript number, beyond as a bigint
    int64_in_double = function(v)
      if ffi.istype("uint64_t", v) then return v <= uhi end
      return v >= lo and v <= hi
    end
  end
end

local M = {}

--- What v is, for "got ...".
local function got(v)
  if v == nil then return "nil" end
  if v == null then return "rivet.null" end
  local t = type(v)
  if t == "table" then
    local mt = getmetatable(v)
    if mt == bytes_mt then return "bytes (rivet.bytes)" end
    if mt == array_mt then return "an array" end
    return "a table"
  end
  if t == "string" then
    if find(v, "[\128-\255]") and not valid_utf8(v) then return "a string that is not valid UTF-8" end
    return "string"
  end
  if t == "cdata" then return "cdata " .. tostring(v) end
  return t
end
M.got = got

local function show(v)
  if type(v) == "string" then return format("%q", v) end
  return tostring(v)
end

-- true when t's keys are exactly 1..#t (#t > 0): an unmarked table that travels as an array
local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local k = 0
  for _ in pairs(t) do k = k + 1 end
  return k == n
end

--------------------------------------------------------------------------------------
-- Descriptions ("a number", "an array (number[])")
--------------------------------------------------------------------------------------

local PRIMITIVES = {
  any = "any value", ["nil"] = "nil", boolean = "a boolean", number = "a number",
  integer = "an integer", string = "a string", bytes = "bytes",
}

-- The type as TypeScript-like text: number, Item, number[], {x: number}, "a"|"b".
local function text(t, named, depth)
  depth = depth or 0
  if type(t) == "string" then return t end
  if t.ref then return t.ref end
  if depth > 3 then return "..." end
  if t.array then
    local inner = text(t.array, named, depth + 1)
    if inner:find("|") then inner = "(" .. inner .. ")" end
    return inner .. "[]"
  end
  if t.map then return "{[string]: " .. text(t.map, named, depth + 1) .. "}" end
  if t.tuple then
    local parts = {}
    for i, x in ipairs(t.tuple) do parts[i] = text(x, named, depth + 1) end
    if t.rest then parts[#parts + 1] = "..." .. text(t.rest, named, depth + 1) .. "[]" end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  if t.oneOf then
    local parts = {}
    for i, x in ipairs(t.oneOf) do parts[i] = show(x) end
    return table.concat(parts, "|")
  end
  if t.union then
    local parts = {}
    for i, x in ipairs(t.union) do parts[i] = text(x, named, depth + 1) end
    return table.concat(parts, "|")
  end
  if t.fields then
    local parts = {}
    for i, f in ipairs(t.fields) do
      if i > 4 then parts[#parts + 1] = "..."; break end
      parts[#parts + 1] = f.name .. (f.optional and "?" or "") .. ": " .. text(f.type, named, depth + 1)
    end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return "any"
end

-- "a number", "a table (Item)", "one of "red", "green"": what a value must be.
local function expect(t, named, seen)
  if type(t) == "string" then return PRIMITIVES[t] end
  local target = t
  if t.ref then
    seen = seen or {}
    if seen[t.ref] then return t.ref end
    seen[t.ref] = true
    target = named[t.ref]
  end
  if target.oneOf then
    local parts = {}
    for i, x in ipairs(target.oneOf) do parts[i] = show(x) end
    if #parts == 1 then return parts[1] end
    return "one of " .. table.concat(parts, ", ")
  end
  if target.union then
    if t.ref then
      local all_tables = true
      for _, m in ipairs(target.union) do
        if type(m) == "string" or m.oneOf or m.union then all_tables = false end
      end
      if all_tables then return "a table (" .. t.ref .. ")" end
    end
    local parts = {}
    for i, m in ipairs(target.union) do parts[i] = expect(m, named, seen) end
    if #parts == 1 then return parts[1] end
    return table.concat(parts, ", ", 1, #parts - 1) .. " or " .. parts[#parts]
  end
  if target.array or target.tuple then return "an array (" .. text(t, named) .. ")" end
  return "a table (" .. text(t, named) .. ")"
end

--------------------------------------------------------------------------------------
-- Primitive validators
--------------------------------------------------------------------------------------

local P = {}

P.any = function() end

P["nil"] = function(v)
  if v ~= nil and v ~= null then return "must be nil, got " .. got(v) end
end

P.boolean = function(v)
  if type(v) ~= "boolean" then return "must be a boolean, got " .. got(v) end
end

P.number = function(v)
  local tv = type(v)
  if tv == "number" then
    if math_type and (v > TWO53 or v < -TWO53) and math_type(v) == "integer" then
      return "must be a number, got the integer " .. tostring(v) .. " (beyond 2^53 an integer travels as a bigint)"
    end
    return
  end
  if tv == "cdata" and is_int64(v) then
    if int64_in_double(v) then return end
    return "must be a number, got " .. tostring(v) .. " (beyond 2^53 an integer travels as a bigint)"
  end
  return "must be a number, got " .. got(v)
end

P.integer = function(v)
  local tv = type(v)
  if tv == "number" then
    if math_type and math_type(v) == "integer" then return end
    -- a float with an integer value travels as the same JavaScript number as that integer
    if v == floor(v) and v <= TWO53 and v >= -TWO53 then return end
    return "must be an integer, got " .. tostring(v)
  end
  if tv == "cdata" and is_int64(v) then return end
  return "must be an integer, got " .. got(v)
end

P.string = function(v)
  if type(v) == "string" then
    if not find(v, "[\128-\255]") or valid_utf8(v) then return end
    return "must be a string, got a string that is not valid UTF-8 (it would travel as bytes)"
  end
  return "must be a string, got " .. got(v)
end

P.bytes = function(v)
  local tv = type(v)
  if tv == "table" and getmetatable(v) == bytes_mt then return end
  if tv == "string" then
    if find(v, "[\128-\255]") and not valid_utf8(v) then return end -- travels as bytes
    return "must be bytes, got string (valid UTF-8 travels as a JavaScript string: wrap it with rivet.bytes(s))"
  end
  return "must be bytes (a string wrapped with rivet.bytes(s)), got " .. got(v)
end

--------------------------------------------------------------------------------------
-- Compound validators
--------------------------------------------------------------------------------------

local compile

local function key_path(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return "." .. k end
  return "[" .. show(k) .. "]"
end

-- Nothing when v travels as a JavaScript array (docs/values.md), else what is wrong.
local function not_array(v, exp)
  if type(v) ~= "table" then return "must be " .. exp .. ", got " .. got(v) end
  local mt = getmetatable(v)
  if mt == array_mt then return end
  if mt == bytes_mt or mt == map_mt then return "must be " .. exp .. ", got " .. got(v) end
  if next(v) == nil then return "must be " .. exp .. ", got an empty table (it travels as {}: use rivet.array({}))" end
  if not is_sequence(v) then return "must be " .. exp .. ", got a table whose keys are not 1..n" end
end

local function array_checker(t, ctx, where)
  local check = compile(t.array, ctx, where .. ".array")
  local exp = expect(t, ctx.named)
  return function(v)
    local m = not_array(v, exp)
    if m then return m end
    for i = 1, #v do
      local e, p = check(v[i])
      if e then return e, "[" .. i .. "]" .. (p or "") end
    end
  end
end

local function tuple_checker(t, ctx, where)
  local checks = {}
  for i, x in ipairs(t.tuple) do checks[i] = compile(x, ctx, where .. ".tuple[" .. i .. "]") end
  local max = #checks
  local min = t.min or max
  local rest = t.rest ~= nil and compile(t.rest, ctx, where .. ".rest") or nil
  local exp = expect(t, ctx.named)
  return function(v)
    local m = not_array(v, exp)
    if m then return m end
    local n = #v
    if n < min or (n > max and not rest) then
      return "must be " .. exp .. ", got an array of " .. n .. " item" .. (n == 1 and "" or "s")
    end
    for i = 1, n do
      local e, p = (checks[i] or rest)(v[i])
      if e then return e, "[" .. i .. "]" .. (p or "") end
    end
  end
end

local function map_checker(t, ctx, where)
  local check = compile(t.map, ctx, where .. ".map")
  local exp = expect(t, ctx.named)
  return function(v)
    if type(v) ~= "table" then return "must be " .. exp .. ", got " .. got(v) end
    local mt = getmetatable(v)
    if mt == array_mt or mt == bytes_mt then return "must be " .. exp .. ", got " .. got(v) end
    if mt ~= map_mt and is_sequence(v) then
      return "must be " .. exp .. ", got an array (keys 1..n travel as a JavaScript array: mark it with rivet.map(t))"
    end
    for k, x in pairs(v) do
      local tk = type(k)
      if tk ~= "string" and not (tk == "number" and k == floor(k)) and not is_int64(k) then
        return "has a key of type " .. tk .. " (the keys of a JavaScript object are strings)"
      end
      local m, p = check(x)
      if m then return m, key_path(k) .. (p or "") end
    end
  end
end

local function fields_checker(t, ctx, where, exp)
  local names, checks, optional, set, n = {}, {}, {}, {}, 0
  for i, f in ipairs(t.fields) do
    if type(f) ~= "table" or type(f.name) ~= "string" then
      ctx.fail(where .. ".fields[" .. i .. "]: expected { name = ..., type = ... }")
    end
    n = i
    names[i] = f.name
    checks[i] = compile(f.type, ctx, where .. ".fields[" .. i .. "].type")
    optional[i] = f.optional == true
    set[f.name] = true
  end
  local open = t.open == true
  local sorted = {}
  for i = 1, n do sorted[i] = names[i] end
  table.sort(sorted)
  exp = exp or expect(t, ctx.named)
  local in_what = exp:gsub("^a table %((.*)%)$", "%1")
  return function(v)
    if type(v) ~= "table" then return "must be " .. exp .. ", got " .. got(v) end
    local mt = getmetatable(v)
    if mt == array_mt or mt == bytes_mt or (mt ~= map_mt and is_sequence(v)) then
      if mt == nil then
        return "must be " .. exp .. ", got a table with keys 1..n (it travels as a JavaScript array)"
      end
      return "must be " .. exp .. ", got " .. got(v)
    end
    for i = 1, n do
      local x = v[names[i]]
      if x == nil then
        if not optional[i] then
          local m = checks[i](nil)
          if m then return m, key_path(names[i]) end
        end
      else
        local m, p = checks[i](x)
        if m then return m, key_path(names[i]) .. (p or "") end
      end
    end
    if not open then
      for k in pairs(v) do
        if not set[k] then
          return "has no field " .. (type(k) == "string" and "'" .. k .. "'" or tostring(k)) .. " in " .. in_what
            .. suggest.hint(k, sorted, "its fields", "it has no fields")
        end
      end
    end
  end
end

local function one_of_checker(t, ctx, where)
  local set, strings = {}, {}
  if type(t.oneOf) ~= "table" or #t.oneOf == 0 then
    ctx.fail(where .. ".oneOf: expected a non-empty array of values")
  end
  for _, x in ipairs(t.oneOf) do
    set[x] = true
    if type(x) == "string" then strings[#strings + 1] = x end
  end
  local exp = expect(t, ctx.named)
  return function(v)
    if v ~= nil and set[v] then return end
    local m = "must be " .. exp .. ", got " .. (v ~= nil and v ~= null and type(v) ~= "table" and show(v) or got(v))
    if type(v) == "string" then
      local near = suggest.nearest(v, strings)
      if near then m = m .. " (did you mean " .. show(near) .. "?)" end
    end
    return m
  end
end

-- The Lua types a value of schema type t may have (for the error of a union).
local function kinds(t, named, out, seen)
  out = out or {}
  if type(t) == "string" then
    if t == "any" then out.any = true
    elseif t == "nil" then out["nil"] = true
    elseif t == "number" or t == "integer" then out.number = true; out.cdata = true
    elseif t == "bytes" then out.string = true; out.table = true
    else out[t] = true end
  elseif t.ref then
    seen = seen or {}
    if not seen[t.ref] then
      seen[t.ref] = true
      kinds(named[t.ref], named, out, seen)
    end
  elseif t.oneOf then
    for _, x in ipairs(t.oneOf) do out[type(x)] = true end
  elseif t.union then
    for _, m in ipairs(t.union) do kinds(m, named, out, seen) end
  else
    out.table = true
  end
  return out
end

-- The member of a union of tables that a value's literal field picks, when every table
-- member has a required field of that name with literal values, no value in two members:
-- { field = name, index = { [value] = member }, expect = "one of ..." }, or nil.
local function discriminant(members, named)
  local tables = {}
  for i, m in ipairs(members) do
    local d = m
    if type(d) == "table" and d.ref then d = named[d.ref] end
    if type(d) == "table" and d.fields then tables[#tables + 1] = { i, d.fields } end
  end
  if #tables < 2 then return nil end
  for _, f in ipairs(tables[1][2]) do
    local index, shown, ok = {}, {}, true
    for _, entry in ipairs(tables) do
      local lit
      for _, g in ipairs(entry[2]) do
        if g.name == f.name and type(g.type) == "table" and g.type.oneOf and not g.optional then lit = g.type.oneOf end
      end
      if not lit then ok = false; break end
      for _, x in ipairs(lit) do
        if index[x] ~= nil then ok = false end
        index[x] = entry[1]
        shown[#shown + 1] = show(x)
      end
    end
    if ok then return { field = f.name, index = index, expect = "one of " .. table.concat(shown, ", ") } end
  end
  return nil
end

local function union_checker(t, ctx, where, exp)
  if type(t.union) ~= "table" or #t.union == 0 then ctx.fail(where .. ".union: expected a non-empty array of types") end
  local checks, member_kinds = {}, {}
  local n = #t.union
  for i, m in ipairs(t.union) do
    checks[i] = compile(m, ctx, where .. ".union[" .. i .. "]")
    member_kinds[i] = kinds(m, ctx.named)
  end
  local disc = discriminant(t.union, ctx.named)
  exp = exp or expect(t, ctx.named)
  return function(v)
    local k = (v == nil or v == null) and "nil" or type(v)
    if disc and k == "table" then
      local i = disc.index[v[disc.field]]
      if i then return checks[i](v) end
    end
    -- only the members that take this kind of value are tried: a value that passes
    -- builds no message on the way
    local only, count = nil, 0
    for i = 1, n do
      local mk = member_kinds[i]
      if mk[k] or mk.any then
        if not checks[i](v) then return end
        count = count + 1
        only = i
      end
    end
    -- one member takes this kind of value: its complaint says more than the list
    if count == 1 then return checks[only](v) end
    if disc and k == "table" then
      local x = v[disc.field]
      return "must be " .. disc.expect .. ", got " .. (x == nil and "nil" or show(x)), key_path(disc.field)
    end
    return "must be " .. exp .. ", got " .. got(v)
  end
end

local function ref_checker(t, ctx, where)
  local name = t.ref
  local def = ctx.named[name]
  if def == nil then ctx.fail(where .. ": no type '" .. tostring(name) .. "' in the schema's types") end
  local cell = ctx.refs[name]
  if cell then
    if cell.check then return cell.check end
    return function(v) return cell.check(v) end -- recursive: compiled once we get back here
  end
  cell = {}
  ctx.refs[name] = cell
  -- messages name a table type by its name ("a table (Item)")
  cell.check = compile(def, ctx, "types." .. name, expect(t, ctx.named))
  return cell.check
end

--- Compiles schema type t (docs/schema.md) into a validator. ctx: { named = the module's
--- types, refs = {}, fail = function(msg) that raises a format error }; `where` names t
--- in format errors; `exp` (optional) is how messages describe t ("a table (Item)").
function compile(t, ctx, where, exp)
  if type(t) == "string" then
    local c = P[t]
    if not c then ctx.fail(where .. ": unknown type '" .. t .. "'") end
    return c
  end
  if type(t) ~= "table" then ctx.fail(where .. ": a type must be a name or a table, got " .. type(t)) end
  if t.ref ~= nil then return ref_checker(t, ctx, where) end
  if t.array ~= nil then return array_checker(t, ctx, where) end
  if t.map ~= nil then return map_checker(t, ctx, where) end
  if t.tuple ~= nil then return tuple_checker(t, ctx, where) end
  if t.oneOf ~= nil then return one_of_checker(t, ctx, where) end
  if t.union ~= nil then return union_checker(t, ctx, where, exp) end
  if t.fields ~= nil then
    if type(t.fields) ~= "table" then ctx.fail(where .. ".fields: expected an array") end
    return fields_checker(t, ctx, where, exp)
  end
  ctx.fail(where .. ": unknown type (expected a name, or a table with ref, array, map, tuple, oneOf, union or fields)")
end

M.compile = compile
M.expect = expect

return M

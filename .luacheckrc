-- luacheck configuration: `make lint`, and a step of scripts/test.sh (`make test`).
-- Every warning counts; an exception is scoped to the file or line it is about and says why.

-- The library runs on PUC Lua 5.4 and LuaJIT 2.1 from one source (rivet.compat picks what
-- each has), so both interpreters' globals are known.
std = "lua54+luajit"
max_line_length = 120

files["lua/rivet/resty"] = { std = "+ngx_lua" }
-- The native and the resty scheduler implement one interface, and the cosocket transport
-- the C core's transport methods: a method that needs no state in one of them still
-- takes self.
files["lua/rivet/scheduler.lua"] = { ignore = { "212/self" } }
files["lua/rivet/resty/scheduler.lua"] = { ignore = { "212/self" } }
files["lua/rivet/resty/transport.lua"] = { ignore = { "212/self" } }

files["spec"] = { std = "+busted" }
-- request handlers of the nginx the OpenResty specs start (spec/nginx/nginx.conf)
files["spec/nginx"] = { std = "+ngx_lua" }
files["examples/openresty"] = { std = "+ngx_lua" }

-- LuaLS definition files: the functions have empty bodies (arguments never used) and
-- the class tables only carry annotations (filled, never read)
files["types"] = { ignore = { "212", "241" } }

-- written by tools/rivet-schema (make test checks it for drift): its lines are the
-- generator's, one field or annotation each
files["spec/actors/typed_schema.lua"] = { max_line_length = false }

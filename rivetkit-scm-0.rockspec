-- lua-rivetkit: the Lua client for Rivet actors.
-- Offline install from a checkout (Debian packages from README "Install" first):
--   luarocks --lua-version=5.4 make --deps-mode=none rivetkit-scm-0.rockspec
-- For LuaJIT 2.1 (luarocks calls it Lua 5.1; PUC Lua 5.1 is not supported):
--   luarocks --lua-version=5.1 make --deps-mode=none rivetkit-scm-0.rockspec \
--     LUA_INCDIR=/usr/include/luajit-2.1
rockspec_format = "3.0"
package = "rivetkit"
version = "scm-0"
source = {
  url = "git+file:///dev/null", -- built from the checkout with `luarocks make`
}
description = {
  summary = "Lua client for Rivet actors (RivetKit 2.0 and 2.3)",
  detailed = [[
require("rivet") finds or creates Rivet actors by name and key, calls their actions,
holds live connections that stream their events, and talks to their raw HTTP and
WebSocket handlers. C core (libcurl, libwebsockets, libcbor) with a Lua API and a
coroutine scheduler that never blocks a game loop.]],
  license = "MIT",
  labels = { "rivet", "actors", "rpc", "websocket" },
}
dependencies = {
  "lua >= 5.1", -- Lua 5.4, or LuaJIT 2.1 (the Makefile tells them apart by luajit.h)
}
build = {
  -- The Makefile is the one build definition; it finds libcurl, libwebsockets and
  -- libcbor with pkg-config (Debian: libcurl4-openssl-dev libwebsockets-dev libcbor-dev)
  -- and builds for the Lua whose headers luarocks passes (LUA_INCDIR).
  type = "make",
  build_target = "build",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INC = "$(LUA_INCDIR)",
  },
  install_target = "install",
  install_variables = {
    LUA_INC = "$(LUA_INCDIR)", -- which build to install
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
    INST_TYPESDIR = "$(PREFIX)/types", -- LuaLS definitions (docs/editor.md)
    -- rivet-schema (docs/schema.md): its launcher in the rock's bin directory (luarocks
    -- puts it on PATH), the Node script itself in the rock's own directory
    INST_BINDIR = "$(BINDIR)",
    INST_PREFIX = "$(PREFIX)",
  },
}
test = {
  type = "command",
  command = "make test",
}

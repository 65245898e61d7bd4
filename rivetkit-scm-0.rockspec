-- lua-rivetkit: the Lua client for Rivet actors.
-- Offline install from a checkout (Debian packages from README "Install" first):
--   luarocks --lua-version=5.4 make --deps-mode=none rivetkit-scm-0.rockspec
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
  "lua >= 5.4",
}
build = {
  -- The Makefile is the one build definition; it finds libcurl, libwebsockets and
  -- libcbor with pkg-config (Debian: libcurl4-openssl-dev libwebsockets-dev libcbor-dev).
  type = "make",
  build_target = "build",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INC = "$(LUA_INCDIR)",
  },
  install_target = "install",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
}
test = {
  type = "command",
  command = "make test",
}

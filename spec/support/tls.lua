-- Certificates from a throw-away CA (openssl) and a local proxy (spec/support/tls_proxy.mjs)
-- in front of the test server: TLS-terminating, or plain and logging request heads.
local fake = require("spec.support.fake")

local M = {}

local function sh(cmd)
  local ok = os.execute(cmd .. " >/dev/null 2>&1")
  assert(ok, "command failed: " .. cmd)
end

--- Makes a CA and two server certificates signed by it in a new temporary directory:
--- good.pem (CN/SAN localhost and 127.0.0.1) and wrong.pem (SAN wrong.example only).
--- Returns {dir=, ca=, good_cert=, good_key=, wrong_cert=, wrong_key=, other_ca=, remove=}.
function M.make_certs()
  local dir = os.tmpname()
  os.remove(dir)
  sh("mkdir -p " .. dir)
  local function ca(name)
    sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=%s' -keyout %s/%s.key -out %s/%s.pem")
      :format("lua-rivetkit test " .. name, dir, name, dir, name))
  end
  local function leaf(name, cn, san)
    sh(("openssl req -newkey rsa:2048 -nodes -subj '/CN=%s' -keyout %s/%s.key -out %s/%s.csr")
      :format(cn, dir, name, dir, name))
    local ext = io.open(dir .. "/" .. name .. ".ext", "w")
    ext:write("subjectAltName=" .. san .. "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ext:close()
    sh(("openssl x509 -req -in %s/%s.csr -CA %s/ca.pem -CAkey %s/ca.key -CAcreateserial -days 2"
      .. " -out %s/%s.pem -extfile %s/%s.ext")
      :format(dir, name, dir, dir, dir, name, dir, name))
  end
  ca("ca")
  ca("other")
  leaf("good", "localhost", "DNS:localhost,IP:127.0.0.1")
  leaf("wrong", "wrong.example", "DNS:wrong.example")
  return {
    dir = dir,
    ca = dir .. "/ca.pem",
    other_ca = dir .. "/other.pem",
    good_cert = dir .. "/good.pem", good_key = dir .. "/good.key",
    wrong_cert = dir .. "/wrong.pem", wrong_key = dir .. "/wrong.key",
    remove = function() os.execute("rm -rf " .. dir) end,
  }
end

--- A self-signed certificate for localhost and 127.0.0.1 (no CA: verification fails
--- unless it is trusted itself) in a new temporary directory: {cert=, key=, remove=}.
function M.self_signed()
  local dir = os.tmpname()
  os.remove(dir)
  sh("mkdir -p " .. dir)
  sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost"
    .. " -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/self.key -out %s/self.pem"):format(dir, dir))
  return {
    cert = dir .. "/self.pem", key = dir .. "/self.key",
    remove = function() os.execute("rm -rf " .. dir) end,
  }
end

--- Starts a proxy to `target` (http://host:port). opts: cert, key (TLS), log (file).
--- Returns {port=, pid=, stop=function}.
function M.proxy(target, opts)
  local hostport = target:match("^https?://([^/]+)")
  local cmd = "spec/support/tls_proxy.mjs --target " .. hostport
  if opts.cert then cmd = cmd .. " --cert " .. opts.cert .. " --key " .. opts.key end
  if opts.log then cmd = cmd .. " --log " .. opts.log end
  local srv = fake.start(cmd)
  srv.port = tonumber(srv.endpoint:match(":(%d+)$"))
  return srv
end

--- The request heads a logging proxy has seen so far (one string).
function M.read_log(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

return M

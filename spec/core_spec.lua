-- The C module is the one built for the interpreter running the spec.

describe("mxroute.core", function()
  it("is loaded from the build directory of this interpreter", function()
    local dir = jit and "build/luajit/" or "build/lua5.4/"
    local path = package.searchpath("mxroute.core", package.cpath)
    assert.is_truthy(path, "mxroute.core not found in " .. package.cpath)
    assert.matches(dir .. "mxroute/core.so", path, 1, true)
  end)

  it("loads and has a version string", function()
    local core = require "mxroute.core"
    assert.is_string(core.version)
    assert.matches("^%d+%.%d+", core.version)
  end)
end)

-- The option lists of README.md and doc/cli.md are generated from the
-- one definition of the options (csrc/loptions.c) by tools/options-doc
-- (`make docs`): they must say what the table says.
local util = require "support.util"
local options = require "mxroute.options"

local ROOT = os.getenv("MXR_ROOT") or "."

local function options_doc(...)
  return util.run(util.interpreter() .. " " .. util.quote(ROOT .. "/tools/options-doc"), { ... })
end

-- The lines of section name in text.
local function section(text, name)
  return assert(text:match("<!%-%- " .. name .. ": generated[^\n]*\n(.-)<!%-%- /" .. name .. " %-%->"))
end

describe("the generated option docs", function()
  local readme = assert(util.read_file(ROOT .. "/README.md"))

  it("are what tools/options-doc writes from the option table", function()
    local out, err, status = options_doc("--check", ROOT)
    assert.equal("", err)
    assert.equal("", out)
    assert.equal(0, status)
  end)

  it("list every option with its range and flag, every cache field, every flag", function()
    local opts, cache = section(readme, "options"), section(readme, "cache")
    local flags = section(assert(util.read_file(ROOT .. "/doc/cli.md")), "flags")
    for _, f in ipairs(options.LIST) do
      local sub = f.name:match("^cache%.(.+)$")
      local row = sub and cache:match("\n| `" .. sub .. "` |[^\n]*")
                  or opts:match("\n| `" .. f.name .. "` |[^\n]*")
      assert.truthy(row, f.name)
      if f.kind == "integer" and f.max < 2 ^ 53 then
        assert.truthy(row:find(("integer %d..%d"):format(f.min, f.max), 1, true), row)
      end
      if f.flag then
        assert.truthy(row:find("`" .. f.flag .. "`", 1, true), row)
        assert.truthy(flags:find("`" .. f.flag, 1, true), f.flag)
      end
    end
  end)

  it("fail the check when a file says otherwise, and are rewritten by the table", function()
    local dir = util.make_dir("optdoc")
    assert(util.execute("mkdir " .. util.quote(dir .. "/doc")))
    local cli_md = assert(util.read_file(ROOT .. "/doc/cli.md"))
    local wrong = readme:gsub("| `tries` | integer 1%.%.20 |", "| `tries` | integer 1..30 |")
    assert.are_not.equal(readme, wrong)
    util.write_file(dir .. "/README.md", wrong)
    util.write_file(dir .. "/doc/cli.md", cli_md)
    local _, err, status = options_doc("--check", dir)
    assert.equal(1, status)
    assert.matches("README.md: section 'options' differs from the option table", err, 1, true)
    local _, _, wrote = options_doc(dir)
    assert.equal(0, wrote)
    assert.equal(readme, util.read_file(dir .. "/README.md"))
    assert.equal(cli_md, util.read_file(dir .. "/doc/cli.md"))
    util.remove_dir(dir)
  end)
end)

describe("stale", function() it("records an old pid", function()
  local f = io.open(os.getenv("MXR_TEST_TMP") .. "/pids/stale", "w"); f:write("27910\n"); f:close()
  os.execute("sleep 1000 & echo $! > $MXR_TEST_TMP/pids/fresh.pid")
end) end)

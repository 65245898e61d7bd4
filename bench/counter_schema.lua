-- The schema of the bench counter (bench/actors.mjs) for the bench's schema row: written
-- by hand in the format rivet-schema writes (docs/schema.md), since the bench actors
-- are JavaScript.
return {
  format = 1,
  actors = {
    counter = {
      actions = {
        increment = { params = { { name = "amount", type = "number", optional = true } }, returns = "number" },
        getCount = { params = {}, returns = "number" },
        emitMany = { params = { { name = "n", type = "number" } }, returns = "number" },
      },
      events = {
        newCount = { { name = "count", type = "number" } },
        tick = { { name = "i", type = "number" } },
      },
    },
  },
}

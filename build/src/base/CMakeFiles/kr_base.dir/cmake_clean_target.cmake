file(REMOVE_RECURSE
  "../../lib/libkr_base.a"
)

"""`relay lock`: each function's and layer's requirements `.in` resolved into a hashed lock.

- `lockfile`: the lock file format (relay's header, pins with hashes), read by the build too
- `targets`: what to lock (functions and layers with requirements)
- `check`: `--check`, a lock's staleness from its header alone
- `resolvers`: pip-tools and uv, behind one `Resolver` protocol
- `resolve`: the entry point, `lock_project`, and writing one lock
- `results`: the result records
"""

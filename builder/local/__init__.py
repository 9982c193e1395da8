"""`relay local`: an embedded AWS (a moto server on 127.0.0.1) for demos and development.

`lifecycle.py` starts, reuses and stops it (`up`, `down`, `status`);
`server.py` is the moto process; `accounts.py` prepares it for a project
(bucket, roles, signing key); `state.py` is `.relay/local.json` and the
`LocalSandbox` value that commands read from it and hand, explicitly, to the
session factories and the signer. Nothing here writes `os.environ`.
"""

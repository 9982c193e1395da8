"""The artifact registry in S3: content-addressed blobs, signed manifests and releases.

`layout` names every key; `store` is the seam to S3 (tests wrap it to inject
failures); `dist` reads what `relay build` produced; `release`, `statement`
and `sbom` make the stored documents; `signing` makes and checks DSSE
envelopes (Ed25519 key files, AWS KMS); `versions` parses, bumps and orders
semver; `catalog` finds versions without listing the registry; `publish`
writes a release, `verify` checks one, `rebuild` reproduces one from git;
`cache` is the remote build cache; `factory` wires them from the config.
"""

"""Building bundles: locks, wheels for the Lambda platform, and the deterministic zip.

The primitives here (`zipwriter`, `digest`, `strip`, `limits`, `platform`) are
pure or touch only the files they are given; the build pipeline composes them.
"""

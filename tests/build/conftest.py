from build_helpers import cache_dir, relay, tiny_project, wheelhouse  # noqa: F401  (fixtures)

from build_helpers import cache_dir, tiny_project, wheelhouse  # noqa: F401  (fixtures)

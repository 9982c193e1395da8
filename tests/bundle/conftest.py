from bundle_helpers import cache_dir, tiny_project, wheelhouse  # noqa: F401  (fixtures)

"""The offline model store: pinned carrier wheels, sha256-verified artifacts, their manifest,
and the conversions (``export/``) that make them."""

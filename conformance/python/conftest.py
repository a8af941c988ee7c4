import os
import sys

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "clients", "python", "tests")))
try:
    import floatd  # noqa: F401  (installed with pip install ./clients/python)
except ImportError:
    sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "clients", "python")))

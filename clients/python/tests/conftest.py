import os
import sys

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
try:
    import floatd  # noqa: F401  (installed with pip install ./clients/python)
except ImportError:
    sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..")))

import pytest  # noqa: E402

from harness import FloatdServer  # noqa: E402


@pytest.fixture(scope="module")
def server():
    s = FloatdServer().start()
    yield s
    s.stop()

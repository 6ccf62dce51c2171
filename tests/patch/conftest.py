import sys
from pathlib import Path

# patch_helpers.py sits beside the tests; importlib import mode does not put it on sys.path.
sys.path.insert(0, str(Path(__file__).parent))

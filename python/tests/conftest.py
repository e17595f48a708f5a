import os
import sys

# Test the source tree without installing it.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

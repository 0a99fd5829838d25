import os
import sys

# Tier 1 runs from a plain checkout, with or without the package installed.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

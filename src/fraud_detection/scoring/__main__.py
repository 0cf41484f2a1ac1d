"""``python -m fraud_detection.scoring``: the same as ``fraud-detection-score``."""

import sys

from fraud_detection.scoring.cli import main

sys.exit(main())

"""Suite-wide environment: worker and sink processes started by tests serve no metrics port unless a test
asks for one, so several of them can run side by side."""

import os

os.environ["METRICS_PORT"] = "0"

#!/bin/bash
# EMR bootstrap action: the Python libraries the feature job needs on every node. The rolling
# kernel runs with mapInArrow (numpy, pyarrow, and pandas beside them, on the workers); the feature view arrives
# compiled to JSON, so no YAML library is needed. Versions that support EMR 7's Python 3.9;
# uploaded by `sls deploy`.
set -euo pipefail
sudo python3 -m pip install --quiet "numpy==1.26.4" "pandas==2.2.3" "pyarrow==17.0.0"

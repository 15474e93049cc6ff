#!/bin/bash
# EMR bootstrap action: the Python libraries the feature job needs on every node, installed for the
# interpreter the steps run the job on (its one argument: EMR_PYTHON in
# functions/commons/jobs/spark-submit-step.ts, /usr/bin/python3.11). Amazon Linux 2023's system
# /usr/bin/python3 stays 3.9, which the job cannot run on (docs/AWS_CONTRACTS.md E11). The rolling
# kernel runs with mapInArrow (numpy, pyarrow, and pandas beside them, on the workers); the feature view
# arrives compiled to JSON, so no YAML library is needed. Uploaded by `sls deploy`.
set -euo pipefail
python="${1:?usage: bootstrap-python.sh /usr/bin/python3.N}"
if [[ ! -x "$python" ]]; then
  echo "bootstrap-python.sh: $python is not on this node; EMR 7.1 and later ship Python 3.11" >&2
  exit 1
fi
# AL2023 packages pip apart from each interpreter (python3.11-pip).
if ! "$python" -m pip --version >/dev/null 2>&1; then
  sudo dnf install -y --quiet "$(basename "$python")-pip"
fi
# The versions the tests run with (requirements.txt; test_emr_bootstrap.py keeps them equal).
sudo "$python" -m pip install --quiet "numpy==2.2.6" "pandas==2.2.3" "pyarrow==19.0.1"

"""Entry point of the feature job: `spark-submit spark/feature_job.py --view energy --input … --mode …`.
Everything else lives in the feature_store package (shipped to EMR as feature_store.zip)."""

import sys

from feature_store.job import main

if __name__ == "__main__":
    sys.exit(main())

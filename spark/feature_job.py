"""Entry point of the feature job: `spark-submit spark/feature_job.py --view energy --input … --mode …`.
Everything else lives in the feature_store package (shipped to EMR as feature_store.zip)."""

import sys

# EMR's default Python is 3.9 (docs/AWS_CONTRACTS.md E11); the package needs 3.11 and would fail at
# import with an AttributeError. Say so instead, before importing it.
if sys.version_info < (3, 11):  # noqa: UP036 (the point: a clear message on the wrong interpreter)
    sys.exit("the feature job needs Python 3.11 or later (spark.pyspark.python), not " + sys.version.split()[0])

from feature_store.job import main

if __name__ == "__main__":
    sys.exit(main())

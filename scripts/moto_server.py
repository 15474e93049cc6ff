"""moto's server, with its S3 event notifications brought to the shape S3 sends.

S3 puts the object's version id in the event of a versioning-enabled bucket ("versionId": "object
version if bucket is versioning-enabled, otherwise null",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html;
docs/AWS_CONTRACTS.md S4). moto 5.2 leaves it out, so ingest filed a local upload under an ETag-based
id (and staged whatever version was newest) while its uploader followed the version S3 had created.
Every local moto (scripts/moto.sh, local/engines.ts) runs through this file; it takes moto_server's
arguments.
"""

import sys
from typing import Any

from moto.s3 import notifications
from moto.server import main

_moto_s3_event = notifications._get_s3_event  # noqa: SLF001 - the one place moto builds the event


def _s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
    event = _moto_s3_event(event_name, bucket, key, notification_id)
    if bucket.is_versioned:
        for record in event["Records"]:
            record["s3"]["object"]["versionId"] = key.version_id
    return event


notifications._get_s3_event = _s3_event  # noqa: SLF001 - send_event looks it up at each call

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
